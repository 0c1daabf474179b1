"""The full output: the core decides what to store (before the status patch) and which output
objects to delete (runs that fell out of history); the runtime only performs it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from controller.core import InvalidSpec, Observation, after_poll, plan
from controller.core.output import OutputRef, OutputWrite, output_name

from .core_helpers import COMMAND_ID, SETTINGS, at, make_spec, merge, result, running

NAME = "deploy-ns"


def seen(status: dict[str, Any], **spec: Any) -> Observation:
    return Observation(make_spec(**spec), status, 1, at(100), SETTINGS, NAME)


def test_a_finished_run_writes_its_whole_output_to_a_configmap_by_default() -> None:
    logs = "x" * (500 * 1024) + "\nthe end\n"
    decision = after_poll(seen(running(make_spec())), result(3, logs=logs), 1.0)

    expected_name = f"{NAME}-out-{COMMAND_ID[:10]}"
    assert decision.output == OutputWrite("ConfigMap", expected_name, logs)
    ref = {"kind": "ConfigMap", "name": expected_name, "key": "output"}
    assert decision.patch["logsRef"] == ref
    assert decision.patch["history"][-1]["logsRef"] == ref
    assert decision.delete_outputs == ()


@pytest.mark.parametrize(("kind", "written"), [("Secret", "Secret"), ("None", None)])
def test_spec_output_selects_a_secret_or_nothing(kind: str, written: str | None) -> None:
    spec = make_spec(output={"kind": kind})
    decision = after_poll(seen(running(spec), output={"kind": kind}), result(0), 1.0)

    assert (decision.output.kind if decision.output else None) == written
    assert ("logsRef" in decision.patch) == (written is not None)
    assert ("logsRef" in decision.patch["history"][-1]) == (written is not None)


def test_spec_output_is_a_watch_field_not_part_of_the_run() -> None:
    assert make_spec(output={"kind": "Secret"}).run_hash == make_spec().run_hash


def test_output_objects_of_runs_that_fall_out_of_history_are_deleted() -> None:
    settings = replace(SETTINGS, history_limit=2)
    status: dict[str, Any] = {}
    writes: list[str] = []
    deleted: list[OutputRef] = []
    for token in range(4):
        spec = make_spec(runToken=str(token))
        status = running(spec, before=status)
        # each run gets its own command id, as ARM would give
        status["commandId"] = f"{token:02d}{COMMAND_ID}"
        observed = Observation(spec, status, 1, at(100), settings, NAME)
        decision = after_poll(observed, result(0), 1.0)
        assert decision.output is not None
        writes.append(decision.output.name)
        deleted.extend(decision.delete_outputs)
        status = merge(status, decision.patch)

    assert [entry["logsRef"]["name"] for entry in status["history"]] == writes[-2:]
    assert deleted == [OutputRef("ConfigMap", name) for name in writes[:2]]


def test_a_new_run_clears_the_previous_logs_ref_but_history_keeps_it() -> None:
    spec = make_spec()
    done = merge(running(spec), after_poll(seen(running(spec)), result(0), 1.0).patch)
    bumped = make_spec(runToken="2")
    claim = plan(Observation(bumped, done, 2, at(200), SETTINGS, NAME))

    assert claim.patch["logsRef"] is None
    assert done["history"][-1]["logsRef"]["name"] == done["logsRef"]["name"]


def test_non_utf8_output_is_kept_as_bytes() -> None:
    valid = OutputWrite("ConfigMap", "n", "héllo\x00")
    assert valid.payload() == ("héllo\x00", None)
    # A decoder's escaped bytes come back as they were; JSON's lone surrogates are not dropped.
    escaped = OutputWrite("ConfigMap", "n", b"ok \xff\xfe".decode("utf-8", "surrogateescape"))
    assert escaped.payload() == (None, b"ok \xff\xfe")
    lone = OutputWrite("ConfigMap", "n", "a\ud800b")
    text, raw = lone.payload()
    assert text is None and raw is not None and raw.startswith(b"a") and raw.endswith(b"b")


def test_lone_surrogates_in_output_do_not_break_the_status_tail() -> None:
    decision = after_poll(seen(running(make_spec())), result(0, logs="a\ud800b\n"), 1.0)
    assert decision.patch["logs"] == "ab\n"
    assert decision.output is not None and decision.output.text == "a\ud800b\n"


def test_output_names_fit_and_are_stable() -> None:
    name = output_name("r" * 253, "ABCDEF0123456789")
    assert len(name) <= 253 and name.endswith("-out-abcdef0123")
    assert output_name("r" * 253, "ABCDEF0123456789") == name


def test_an_unknown_output_kind_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.output\.kind"):
        make_spec(output={"kind": "PersistentVolume"})
