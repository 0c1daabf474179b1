"""Exactly once, end to end: each defect of the "run exactly once, recorded" issue, on real API
servers, the real operator and the emulator's log of every POST it saw."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import kubectl_json
from tests.operator.rc import RunCommands, condition, manifest
from tests.stack import Emulator, Operator, cluster_entry

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


@pytest.fixture
def faults(emulator: Emulator) -> Iterator[Emulator]:
    """The session's emulator, with whatever faults a test sets switched off afterwards."""
    try:
        yield emulator
    finally:
        emulator.set_faults(
            serverErrorRate=0.0, throttleRate=0.0, latencySeconds=0.0, submitLatencySeconds=0.0,
            dropConnectionAfterSubmitRate=0.0,
        )  # fmt: skip


def posts_of(emulator: Emulator, correlation_ids: set[str]) -> list[dict[str, Any]]:
    return [post for post in emulator.posts() if post["correlationId"] in correlation_ids]


def commands_posted(emulator: Emulator, command_marker: str) -> list[dict[str, Any]]:
    """Accepted or dropped POSTs (the ones that run) whose command contains the marker."""
    accepted = {s["commandId"]: s for s in emulator.submissions()}
    return [
        post
        for post in emulator.posts()
        if post["outcome"] in ("accepted", "dropped")
        and command_marker in str(accepted.get(post.get("commandId"), {}).get("command", ""))
    ]


def test_editing_watch_fields_of_a_running_command_never_submits_again(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    marker = f"edit-{namespace}"
    rc.apply(manifest("edited", namespace, f"sleep 6; echo {marker}", timeoutSeconds=60))
    running = rc.wait(namespace, "edited", states=("Running",))["status"]

    rc.apply(manifest("edited", namespace, f"sleep 6; echo {marker}", timeoutSeconds=120))
    rc.apply(manifest("edited", namespace, f"sleep 6; echo {marker}", timeoutSeconds=180,
                      retries=5, submitPolicy="AtLeastOnce"))  # fmt: skip

    done = rc.wait(namespace, "edited")["status"]
    assert done["state"] == "Succeeded"
    assert done["commandId"] == running["commandId"]
    assert done["observedGeneration"] == 3
    assert len(commands_posted(emulator, marker)) == 1
    assert [entry["commandId"] for entry in done["history"]] == [running["commandId"]]


def test_raising_the_timeout_after_deadline_exceeded_resumes_the_same_command(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    marker = f"resume-{namespace}"
    rc.apply(manifest("resumed", namespace, f"sleep 8; echo {marker}", timeoutSeconds=2))
    expired = rc.wait(namespace, "resumed", timeout=30)["status"]
    assert expired["reason"] == "DeadlineExceeded"

    rc.apply(manifest("resumed", namespace, f"sleep 8; echo {marker}", timeoutSeconds=120))

    done = rc.wait_for(namespace, "resumed", lambda s: s.get("state") == "Succeeded")["status"]
    assert done["commandId"] == expired["commandId"]
    assert marker in done["logs"]
    assert len(commands_posted(emulator, marker)) == 1
    assert [entry["state"] for entry in done["history"]] == ["Succeeded"]


def test_a_new_run_waits_for_the_running_one_and_both_land_in_history(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    marker = f"overlap-{namespace}"
    rc.apply(manifest("twice", namespace, f"sleep 6; echo {marker}-1", runToken="1"))
    first = rc.wait(namespace, "twice", states=("Running",))["status"]

    rc.apply(manifest("twice", namespace, f"sleep 6; echo {marker}-1", runToken="2"))
    waiting = rc.wait_for(
        namespace, "twice", lambda s: s.get("reason") == "WaitingForRunningCommand"
    )
    reconciling = condition(waiting, "Reconciling")
    assert reconciling is not None and reconciling["status"] == "True"
    assert waiting["status"]["commandId"] == first["commandId"]

    done = rc.wait_for(
        namespace, "twice",
        lambda s: s.get("state") == "Succeeded" and s["commandId"] != first["commandId"],
    )["status"]  # fmt: skip
    assert [(e["runToken"], e["commandId"]) for e in done["history"]] == [
        ("1", first["commandId"]),
        ("2", done["commandId"]),
    ]
    runs = {s["commandId"]: s for s in emulator.submissions()}
    first_run, second_run = runs[first["commandId"]], runs[done["commandId"]]
    assert second_run["submittedAt"] >= first_run["finishedAt"], "the runs overlapped"


def test_a_post_held_45s_by_arm_ends_succeeded(
    rc: RunCommands, namespace: str, faults: Emulator
) -> None:
    faults.set_faults(submitLatencySeconds=45.0)
    rc.apply(manifest("held", namespace, "echo held"))
    done = rc.wait(namespace, "held", timeout=90)["status"]
    assert done["state"] == "Succeeded", done
    assert [p["outcome"] for p in posts_of(faults, {done["correlationId"]})] == ["accepted"]


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (
            {"tenantId": "not a tenant!", "clientId": "app", "clientSecret": "s"},
            "InvalidCredentials",
        ),
        (
            {"tenantId": TENANT, "clientId": "app", "clientCertificate": GARBAGE_PEM},
            "InvalidCredentials",
        ),
    ],
    ids=["bad-tenant", "garbage-pem"],
)
def test_credentials_that_cannot_sign_in_fail_at_once_and_send_nothing(
    rc: RunCommands, namespace: str, emulator: Emulator, secret: dict[str, str], reason: str
) -> None:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in secret.items()}
    metadata = {"name": "creds", "namespace": namespace}
    rc.apply(json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": data}))
    started = time.monotonic()
    rc.apply(
        manifest("nosignin", namespace, "echo never", credentials={"secretRef": {"name": "creds"}})
    )

    status = rc.wait(namespace, "nosignin", timeout=30)["status"]
    assert (status["state"], status["reason"]) == ("Failed", reason), status
    assert time.monotonic() - started < 20
    assert "commandId" not in status and "claimedBy" not in status
    assert not [p for p in emulator.posts() if "never" in json.dumps(p)]


def test_a_revoked_token_is_replaced_and_the_run_succeeds(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    rc.apply(manifest("before", namespace, "echo before"))
    assert rc.wait(namespace, "before")["status"]["state"] == "Succeeded"

    emulator.revoke_tokens()
    rc.apply(manifest("after", namespace, "echo after"))

    status = rc.wait(namespace, "after")["status"]
    assert status["state"] == "Succeeded", status
    outcomes = [p["outcome"] for p in posts_of(emulator, {status["correlationId"]})]
    assert outcomes in (["accepted"], ["refused", "accepted"]), outcomes


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("timeoutSeconds", 250_000_000_000, "spec.timeoutSeconds"),
        ("ttlSecondsAfterFinished", 250_000_000_000, "spec.ttlSecondsAfterFinished"),
        ("files", {"big.sh": "x" * (241 * 1024)}, "spec.filesFrom"),
    ],
    ids=["timeout", "ttl", "inline-file"],
)
def test_values_past_the_crd_maxima_are_refused_at_apply(
    rc: RunCommands, namespace: str, field: str, value: object, message: str
) -> None:
    refused = rc.kubectl(
        "apply", "--server-side", "-f", "-",
        stdin=manifest("huge", namespace, "true", **{field: value}), check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert message in refused.stderr


def test_a_200kib_inline_file_applied_client_side_runs(
    rc: RunCommands, namespace: str, operator: Operator
) -> None:
    content = "#" * (200 * 1024)
    rc.apply(manifest("large", namespace, "wc -c < big.txt", files={"big.txt": content}))

    status = rc.wait(namespace, "large", timeout=60)["status"]
    assert status["state"] == "Succeeded", status
    assert status["logs"].strip() == str(len(content))
    body = rc.get(namespace, "large")
    assert not any(
        key.startswith("aks.gitops.dev/") for key in body["metadata"].get("annotations", {})
    )


def test_duplicate_and_conflicting_paths_fail_with_nothing_sent(
    rc: RunCommands, namespace: str, emulator: Emulator
) -> None:
    rc.kubectl("-n", namespace, "create", "configmap", "one", "--from-literal", "a=1")
    rc.kubectl("-n", namespace, "create", "configmap", "two", "--from-literal", "b=2")
    same_path = [{"configMapRef": {"name": "one"}}]
    under_a_file = [{"configMapRef": {"name": "two"}, "pathPrefix": "a"}]
    rc.apply(manifest("dupes", namespace, "cat a", files={"a": "0"}, filesFrom=same_path))
    rc.apply(manifest("nested", namespace, "cat a/b", files={"a": "0"}, filesFrom=under_a_file))

    for name in ("dupes", "nested"):
        status = rc.wait(namespace, name)["status"]
        assert (status["state"], status["reason"]) == ("Failed", "InvalidContextPath"), status
        assert "a" in status["message"]
        assert "claimedBy" not in status and "commandId" not in status


def _zip(entries: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        (base64.b64encode(b"not a zip at all").decode(), "InvalidContext"),
        (_zip({"../evil.sh": b"rm -rf /"}), "InvalidContextPath"),
    ],
    ids=["not-a-zip", "traversal"],
)
def test_a_bad_user_supplied_context_fails_with_nothing_sent(
    rc: RunCommands, namespace: str, emulator: Emulator, context: str, reason: str
) -> None:
    rc.apply(manifest("ctx", namespace, "ls", context=context))
    status = rc.wait(namespace, "ctx")["status"]
    assert (status["state"], status["reason"]) == ("Failed", reason), status
    assert "claimedBy" not in status and "commandId" not in status


def test_output_cut_by_arm_says_so_in_status_and_an_event(rc: RunCommands, namespace: str) -> None:
    rc.apply(manifest("chatty", namespace, "head -c 700000 /dev/zero | tr '\\0' x"))
    status = rc.wait(namespace, "chatty")["status"]
    assert status["state"] == "Succeeded"
    assert status["logsTruncated"] is True
    assert "ARM cut the output" in status["message"]
    assert any(e["reason"] == "LogsTruncated" for e in rc.events(namespace, "chatty"))


def test_an_api_server_outage_right_after_arm_accepts_keeps_the_command_id(
    rc: RunCommands, namespace: str, faults: Emulator, management_cluster: ControlPlane,
    operator: Operator,
) -> None:  # fmt: skip
    faults.set_faults(submitLatencySeconds=4.0)
    rc.apply(manifest("outage", namespace, "sleep 2; echo survived"))
    claimed = rc.wait_for(namespace, "outage", lambda s: s.get("state") == "Submitting")
    correlation_id = claimed["status"]["correlationId"]
    stopping_from = datetime.now(UTC)
    management_cluster.stop_apiserver()
    # ARM accepts while the API server is away, and the operator finds it cannot record that.
    (post,) = poll_until(
        lambda: posts_of(faults, {correlation_id}),
        lambda posts: [p["outcome"] for p in posts] == ["accepted"],
        what=f"the emulator answers the POST of {correlation_id}",
        timeout=60,
    )
    assert datetime.fromisoformat(post["answeredAt"]) > stopping_from, (post, stopping_from)
    poll_until(
        lambda: operator.log.read_text(),
        lambda log: f"{namespace}/outage: cannot record ARM's answer yet" in log,
        what="the operator tries to record ARM's answer while the API server is away",
        timeout=60,
        describe=lambda log: log[-2000:],
    )
    management_cluster.start_apiserver()

    status = rc.wait(namespace, "outage", timeout=90)["status"]
    assert status["state"] == "Succeeded", status
    assert "survived" in status["logs"]
    assert [p["outcome"] for p in posts_of(faults, {status["correlationId"]})] == ["accepted"]
    assert "Traceback" not in operator.log.read_text()


# submitPolicy ExactlyOnce: the fence in the target cluster --------------------------------

PROBES = "fence-e2e"


def probe_command(mark: str) -> str:
    """Leaves one uniquely named ConfigMap in the target per execution, labelled `mark`."""
    manifest_text = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "generateName": f"{mark}-", "namespace": PROBES, "labels": {"mark": mark}}})  # fmt: skip
    return f"kubectl create -f - <<'EOF' -o name\n{manifest_text}\nEOF\n"


@pytest.fixture
def target(target_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    """kubectl on the target cluster, as its admin."""
    target = RunCommands(kubectl_path, target_cluster.kubeconfig)
    for name in (PROBES, "aks-command"):  # AKS creates aks-command itself
        target.kubectl("create", "namespace", name, check=False)
    return target


def executions(target: RunCommands, mark: str) -> int:
    listed = kubectl_json(target.kubectl_path, target.kubeconfig, "-n", PROBES, "get",
                          "configmaps", "-l", f"mark={mark}")  # fmt: skip
    return len(listed["items"])


def test_exactly_once_resubmits_after_a_dropped_post_and_the_command_runs_once(
    rc: RunCommands, namespace: str, faults: Emulator, target: RunCommands
) -> None:
    mark = f"dropped-{namespace}"
    faults.set_faults(dropConnectionAfterSubmitRate=1.0)
    rc.apply(manifest("fenced", namespace, probe_command(mark), submitPolicy="ExactlyOnce"))
    in_doubt = rc.wait_for(
        namespace, "fenced", lambda s: s.get("reason") == "SubmissionOutcomeUnknown"
    )["status"]
    faults.set_faults(dropConnectionAfterSubmitRate=0.0)

    done = rc.wait(namespace, "fenced", timeout=90)["status"]

    assert (done["state"], done["exitCode"], done["attempts"]) == ("Succeeded", 0, 2), done
    assert done["logs"].startswith(f"configmap/{mark}-")
    assert done["fence"] == in_doubt["fence"]
    assert "submitting the same run again" in in_doubt["message"]
    assert executions(target, mark) == 1  # both submissions started; the command ran once
    fence = kubectl_json(target.kubectl_path, target.kubeconfig, "-n", "aks-command", "get",
                         "configmap", done["fence"])  # fmt: skip
    assert (fence["data"]["state"], fence["data"]["exitCode"]) == ("done", "0")
    assert fence["data"]["output"] == done["logs"]


def test_a_forbidden_fence_fails_with_the_rbac_it_needs_and_runs_nothing(
    rc: RunCommands, namespace: str, emulator: Emulator, target: RunCommands,
    target_cluster: ControlPlane, tmp_path: Path,
) -> None:  # fmt: skip
    # An Entra ID cluster's command runs as the caller: here a user without RBAC in the target.
    kubeconfig = json.loads(target_cluster.kubeconfig.read_text())
    for entry in kubeconfig["users"]:
        entry["user"]["as"] = f"nobody-{namespace}"
    path = tmp_path / "kubeconfig-nobody"
    path.write_text(json.dumps(kubeconfig))
    name = f"aks-norbac-{namespace}"
    emulator.add_cluster(cluster_entry(name, path))
    mark = f"forbidden-{namespace}"

    rc.apply(manifest("norbac", namespace, probe_command(mark), cluster=name,
                      submitPolicy="ExactlyOnce"))  # fmt: skip

    status = rc.wait(namespace, "norbac", timeout=90)["status"]
    assert (status["state"], status["reason"]) == ("Failed", "FenceUnavailable"), status
    message = status["message"]
    assert "so the command did not run" in message
    assert f'User "nobody-{namespace}" cannot create resource "configmaps"' in message
    assert "create, get and update on configmaps in namespace aks-command" in message
    assert status["attempts"] == 1
    assert executions(target, mark) == 0
    assert any(e["reason"] == "Failed" for e in rc.events(namespace, "norbac"))
