"""The shared test helpers (tests/helpers.py): the merge patch has the API server's semantics,
checked once against a real one; the fake clock moves only when slept on; poll_until says what
it waited for."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import FAST_EXAMPLES, FakeClock, examples, merge_patch, poll_until
from tests.kube import kubectl, kubectl_json

ORIGINAL: dict[str, Any] = {
    "a": {"b": 1, "c": 3},
    "s": "text",
    "l": [1, 2],
    "keep": {"deep": {"x": 1}},
}
# (patch, what the API server makes of ORIGINAL with it)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "nested-merge": ({"a": {"b": 2}}, {**ORIGINAL, "a": {"b": 2, "c": 3}}),
    "null-deletes": (
        {"a": {"c": None}, "s": None},
        {"a": {"b": 1}, "l": [1, 2], "keep": {"deep": {"x": 1}}},
    ),
    "null-in-a-new-object": ({"new": {"x": 1, "gone": None}}, {**ORIGINAL, "new": {"x": 1}}),
    "object-over-a-scalar": ({"s": {"k": None, "v": 1}}, {**ORIGINAL, "s": {"v": 1}}),
    "list-replaced": ({"l": [3]}, {**ORIGINAL, "l": [3]}),
    "scalar-over-an-object": ({"keep": 5}, {**ORIGINAL, "keep": 5}),
}  # fmt: skip

DOCUMENT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "documents.helpers.test"},
    "spec": {
        "group": "helpers.test",
        "names": {"kind": "Document", "plural": "documents", "singular": "document"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                        },
                    }
                },
            }
        ],
    },
}


@pytest.mark.parametrize(("patch", "expected"), CASES.values(), ids=CASES.keys())
def test_merge_patch_follows_rfc_7386(patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = json.dumps(ORIGINAL)
    assert merge_patch(ORIGINAL, patch) == expected
    assert json.dumps(ORIGINAL) == before  # the target is not changed


def test_merge_patch_is_the_api_servers(
    management_cluster: ControlPlane, kubectl_path: str
) -> None:
    """Every case, applied by a real API server as `kubectl patch --type=merge` does."""
    config = management_cluster.kubeconfig
    kubectl(kubectl_path, config, "apply", "-f", "-", stdin=json.dumps(DOCUMENT_CRD))
    kubectl(
        kubectl_path, config, "wait", "--for=condition=Established", "crd/documents.helpers.test"
    )
    for index, (patch, _) in enumerate(CASES.values()):
        document = {
            "apiVersion": "helpers.test/v1",
            "kind": "Document",
            "metadata": {"name": f"case-{index}", "namespace": "default"},
            "spec": ORIGINAL,
        }
        kubectl(kubectl_path, config, "create", "-f", "-", stdin=json.dumps(document))
        kubectl(
            kubectl_path, config, "-n", "default", "patch", "document", f"case-{index}",
            "--type=merge", "-p", json.dumps({"spec": patch}),
        )  # fmt: skip
    for index, (patch, expected) in enumerate(CASES.values()):
        served = kubectl_json(
            kubectl_path, config, "-n", "default", "get", "document", f"case-{index}"
        )
        assert served["spec"] == expected == merge_patch(ORIGINAL, patch), patch


async def test_the_fake_clock_moves_only_when_slept_on_or_advanced() -> None:
    clock = FakeClock(10.0)
    assert clock() == 10.0
    await clock.sleep(2.5)
    clock.advance(1.0)
    assert (clock(), clock.sleeps) == (13.5, [2.5])


def test_poll_until_returns_the_answer_that_was_awaited() -> None:
    answers = iter([1, 2, 3])
    assert poll_until(lambda: next(answers), lambda n: n >= 2, what="n", timeout=5, interval=0) == 2


def test_poll_until_says_what_it_waited_for_and_what_it_saw() -> None:
    started = time.monotonic()
    with pytest.raises(
        AssertionError, match=r"the state is final: not so after 0\.2s; last seen 'Running'"
    ):
        poll_until(
            lambda: "Running",
            lambda s: s == "Succeeded",
            what="the state is final",
            timeout=0.2,
            interval=0.05,
        )
    assert time.monotonic() - started >= 0.2


def test_the_fast_profile_bounds_a_propertys_examples_and_the_thorough_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "fast")
    assert examples(250) == FAST_EXAMPLES < 250
    assert examples(5) == 5
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "thorough")
    assert examples(250) == 250


def test_a_crd_without_conditions_yet_is_not_established_rather_than_an_error() -> None:
    """Right after its creation a CRD's status has `conditions: null` (as CI once caught it);
    the wait reads that as "not yet", where kubectl's jsonpath filter failed on it."""
    from tests.kube import established_status

    fresh = {"status": {"acceptedNames": {"kind": "", "plural": ""}, "conditions": None}}
    assert established_status(fresh) is None
    assert established_status({"metadata": {"name": "x"}}) is None
    ready = {"status": {"conditions": [{"type": "NamesAccepted", "status": "True"},
                                       {"type": "Established", "status": "True"}]}}  # fmt: skip
    assert established_status(ready) == "True"
