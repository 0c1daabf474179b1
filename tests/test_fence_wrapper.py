"""The ExactlyOnce wrapper (controller/core/fence.sh), run directly with bash against a real
kube-apiserver, the way the AKS command pod runs it: the context unpacked in a working
directory, kubectl on PATH, a HOME that is not writable. Each test counts the objects the
user's command created, so a command run twice (or run when it must not) is seen."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.core.fence import NAMESPACE, Fence, FenceKind
from controller.vocabulary import EXPIRES_LABEL, FENCE_LABEL
from tests.controlplane import ControlPlane
from tests.helpers import poll_until
from tests.kube import kubectl, kubectl_json

PROBES = "fence-probes"  # where the users' commands leave their marks


@dataclass
class Target:
    plane: ControlPlane
    kubectl_path: str
    directory: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> Any:
        return kubectl(self.kubectl_path, self.plane.kubeconfig, *args, stdin=stdin, check=check)

    def get(self, *args: str) -> Any:
        return kubectl_json(self.kubectl_path, self.plane.kubeconfig, *args)

    def as_user(self, user: str) -> Path:
        """A kubeconfig that acts as `user` (impersonated by the admin), with no RBAC of its own."""
        config = json.loads(self.plane.kubeconfig.read_text())
        for entry in config["users"]:
            entry["user"]["as"] = user
        path = self.directory / f"kubeconfig-{user}"
        path.write_text(json.dumps(config))
        return path

    def grant(self, user: str, resource: str, verbs: list[str], namespace: str = NAMESPACE) -> None:
        name = f"{user}-{resource}"
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": verbs}],
        }  # fmt: skip
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        }  # fmt: skip
        for item in (role, binding):
            self.kubectl("apply", "-f", "-", stdin=json.dumps(item))

    def fence(self, kind: FenceKind, name: str) -> dict[str, Any] | None:
        found = self.kubectl("-n", NAMESPACE, "get", kind.lower(), name, "-o", "json", check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    def probes(self, mark: str) -> int:
        """How many times a command that ran `probe MARK` ran."""
        listed = self.get("-n", PROBES, "get", "configmaps", "-l", f"mark={mark}")
        return len(listed["items"])


@pytest.fixture(scope="module")
def target(
    target_cluster: ControlPlane, kubectl_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Target:
    target = Target(target_cluster, kubectl_path, tmp_path_factory.mktemp("fence"))
    for namespace in (NAMESPACE, PROBES):  # AKS creates aks-command on first use of run command
        target.kubectl("create", "namespace", namespace, check=False)
    return target


def probe(mark: str) -> str:
    """A command that leaves one uniquely named object per execution, labelled with `mark`."""
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "generateName": f"{mark}-", "namespace": PROBES, "labels": {"mark": mark}}})  # fmt: skip
    return f"kubectl create -f - <<'EOF' >/dev/null\n{manifest}\nEOF\n"


@dataclass
class Submission:
    """One submission of a run: its context unpacked in a working directory."""

    fence: Fence
    command: str
    directory: Path

    def run(self, kubeconfig: Path, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
        workdir = self.directory / uuid.uuid4().hex[:8]
        for path, data in self.fence.files(self.command):
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).write_bytes(data)
        env = {
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "KUBECONFIG": str(kubeconfig),
            "HOME": "/nonexistent",  # as in the command pod: not writable
            "HOSTNAME": f"command-{workdir.name}",
            "LANG": "C.UTF-8",
        }
        return subprocess.run(
            ["bash", ".aks-runcommand/fence.sh"], cwd=workdir, env=env, capture_output=True,
            timeout=timeout, check=False,
        )  # fmt: skip


def submission(
    target: Target,
    command: str,
    *,
    kind: FenceKind = "ConfigMap",
    timeout_seconds: int = 600,
    started: datetime | None = None,
) -> Submission:
    deadline = (started or datetime.now(UTC)) + timedelta(seconds=timeout_seconds)
    name = f"rc-{uuid.uuid4()}-{uuid.uuid4().hex[:16]}-{uuid.uuid4().hex[:8]}"
    return Submission(
        Fence.for_run(name, kind, deadline, timeout_seconds), command, target.directory
    )


def data(fence: dict[str, Any], key: str) -> bytes:
    if fence["kind"] == "Secret":
        return base64.b64decode(fence["data"][key])
    if key in fence.get("binaryData", {}):
        return base64.b64decode(fence["binaryData"][key])
    return str(fence["data"][key]).encode()


def test_the_first_submission_runs_the_command_and_records_its_result(target: Target) -> None:
    mark = f"win-{uuid.uuid4().hex[:8]}"
    run = submission(target, f'{probe(mark)}echo "home=$HOME"; echo oops >&2; exit 3')

    done = run.run(target.plane.kubeconfig)

    assert done.returncode == 3, done
    assert done.stdout == b"home=/tmp\noops\n"
    assert target.probes(mark) == 1
    fence = target.fence("ConfigMap", run.fence.name)
    assert fence is not None
    assert data(fence, "state") == b"done" and data(fence, "exitCode") == b"3"
    assert data(fence, "output") == b"home=/tmp\noops\n"
    labels = fence["metadata"]["labels"]
    assert labels[FENCE_LABEL] == "true"
    assert labels[EXPIRES_LABEL] == str(int(run.fence.expires.timestamp()))


def test_a_later_submission_replays_the_output_and_exit_code_and_runs_nothing(
    target: Target,
) -> None:
    mark = f"replay-{uuid.uuid4().hex[:8]}"
    run = submission(target, f"{probe(mark)}printf 'no newline at the end'; exit 7")
    first = run.run(target.plane.kubeconfig)

    again = run.run(target.plane.kubeconfig)

    assert (first.returncode, again.returncode) == (7, 7)
    assert again.stdout == first.stdout == b"no newline at the end"
    assert target.probes(mark) == 1


def test_a_submission_that_finds_the_fence_claimed_waits_for_the_result(target: Target) -> None:
    mark = f"wait-{uuid.uuid4().hex[:8]}"
    run = submission(target, f"{probe(mark)}sleep 4; echo slow; exit 0")
    results: list[subprocess.CompletedProcess[bytes]] = []
    first = threading.Thread(target=lambda: results.append(run.run(target.plane.kubeconfig)))
    first.start()
    poll_until(
        lambda: target.fence("ConfigMap", run.fence.name),
        lambda fence: fence is not None,
        what="the first submission claims the fence",
        timeout=60,
        interval=0.2,
    )

    second = run.run(target.plane.kubeconfig)
    first.join()

    assert results[0].returncode == second.returncode == 0
    assert results[0].stdout == second.stdout == b"slow\n"
    assert target.probes(mark) == 1


def test_no_result_before_the_deadline_ends_with_its_own_answer_and_runs_nothing(
    target: Target,
) -> None:
    mark = f"missing-{uuid.uuid4().hex[:8]}"
    # The first submission's pod was evicted after it claimed: the fence says running for good.
    run = submission(target, probe(mark), timeout_seconds=10)
    target.kubectl("-n", NAMESPACE, "create", "configmap", run.fence.name,
                   "--from-literal=state=running")  # fmt: skip

    started = time.monotonic()
    done = run.run(target.plane.kubeconfig)

    assert done.returncode == 212, done
    assert done.stdout.decode().startswith(
        f"aks-runcommand-fence: FenceResultMissing: ConfigMap {NAMESPACE}/{run.fence.name} was "
        "claimed by an earlier submission of this run, which recorded no result"
    )
    assert time.monotonic() - started < 30
    assert target.probes(mark) == 0


def test_a_forbidden_identity_runs_nothing_and_says_so(target: Target) -> None:
    mark = f"forbidden-{uuid.uuid4().hex[:8]}"
    run = submission(target, probe(mark))

    done = run.run(target.as_user("fence-nobody"))

    assert done.returncode == 211, done
    line = done.stdout.decode()
    assert line.startswith("aks-runcommand-fence: FenceUnavailable: Error from server (Forbidden)")
    assert 'User "fence-nobody" cannot create resource "configmaps"' in line
    assert line.count("\n") == 1
    assert target.fence("ConfigMap", run.fence.name) is None
    assert target.probes(mark) == 0


def test_an_identity_that_may_create_but_not_update_runs_nothing(target: Target) -> None:
    mark = f"no-update-{uuid.uuid4().hex[:8]}"
    target.grant("fence-creator", "configmaps", ["create", "get", "delete"])
    run = submission(target, probe(mark))

    done = run.run(target.as_user("fence-creator"))

    assert done.returncode == 211, done
    assert "claimed the fence but cannot update it" in done.stdout.decode()
    assert target.fence("ConfigMap", run.fence.name) is None  # the claim was undone
    assert target.probes(mark) == 0


def test_create_get_and_update_are_enough_and_cleaning_up_needs_no_more(target: Target) -> None:
    user = "fence-minimal"
    target.grant(user, "configmaps", ["create", "get", "update"])
    target.grant(user, "configmaps", ["create"], PROBES)  # for its command's own probe
    mark = f"minimal-{uuid.uuid4().hex[:8]}"
    run = submission(target, f"{probe(mark)}echo ok")

    first, again = run.run(target.as_user(user)), run.run(target.as_user(user))

    assert (first.returncode, first.stdout) == (0, b"ok\n"), first
    assert (again.returncode, again.stdout) == (0, b"ok\n"), again
    assert target.probes(mark) == 1


def test_expired_fences_are_cleaned_by_the_next_winner_and_nothing_else(target: Target) -> None:
    now = int(time.time())
    names = {"old": f"old-{uuid.uuid4().hex[:8]}", "young": f"young-{uuid.uuid4().hex[:8]}",
             "unlabelled": f"other-{uuid.uuid4().hex[:8]}"}  # fmt: skip
    for key, expires in (("old", now - 60), ("young", now + 3600)):
        target.kubectl("-n", NAMESPACE, "create", "configmap", names[key])
        target.kubectl("-n", NAMESPACE, "label", "configmap", names[key],
                       f"{FENCE_LABEL}=true", f"{EXPIRES_LABEL}={expires}")  # fmt: skip
    target.kubectl("-n", NAMESPACE, "create", "configmap", names["unlabelled"])
    old_secret = f"old-secret-{uuid.uuid4().hex[:8]}"
    target.kubectl("-n", NAMESPACE, "create", "secret", "generic", old_secret)
    target.kubectl("-n", NAMESPACE, "label", "secret", old_secret,
                   f"{FENCE_LABEL}=true", f"{EXPIRES_LABEL}={now - 60}")  # fmt: skip

    done = submission(target, "true").run(target.plane.kubeconfig)

    assert done.returncode == 0, done
    assert target.fence("ConfigMap", names["old"]) is None
    assert target.fence("ConfigMap", names["young"]) is not None
    assert target.fence("ConfigMap", names["unlabelled"]) is not None
    assert target.fence("Secret", old_secret) is not None  # a Secret run cleans Secrets


def test_with_a_secret_fence_the_output_is_kept_in_a_secret_and_replayed(target: Target) -> None:
    mark = f"secret-{uuid.uuid4().hex[:8]}"
    run = submission(target, f"{probe(mark)}echo token=s3cr3t", kind="Secret")

    first, again = run.run(target.plane.kubeconfig), run.run(target.plane.kubeconfig)

    assert first.stdout == again.stdout == b"token=s3cr3t\n"
    assert target.fence("ConfigMap", run.fence.name) is None
    fence = target.fence("Secret", run.fence.name)
    assert fence is not None and data(fence, "output") == b"token=s3cr3t\n"
    assert target.probes(mark) == 1


def test_output_that_is_not_utf8_is_replayed_byte_for_byte(target: Target) -> None:
    run = submission(target, r"printf 'caf\xe9 \xff\x00 end\n'")

    first, again = run.run(target.plane.kubeconfig), run.run(target.plane.kubeconfig)

    assert first.stdout == again.stdout == b"caf\xe9 \xff\x00 end\n"


def test_the_fence_keeps_what_arm_keeps_512_kib(target: Target) -> None:
    run = submission(target, "head -c 600000 /dev/zero | tr '\\0' x")

    first, again = run.run(target.plane.kubeconfig), run.run(target.plane.kubeconfig)

    assert len(first.stdout) == 600000  # streamed whole, as ARM receives it
    assert again.stdout == b"x" * 512 * 1024


def test_the_command_is_stopped_before_the_runs_deadline(target: Target) -> None:
    run = submission(target, "echo started; sleep 60", timeout_seconds=12)  # stopped 5 s early

    started = time.monotonic()
    done = run.run(target.plane.kubeconfig)

    assert done.returncode == 124, done
    assert done.stdout == b"started\n"
    assert time.monotonic() - started < 30
    fence = target.fence("ConfigMap", run.fence.name)
    assert fence is not None and data(fence, "exitCode") == b"124"


def test_a_submission_after_the_runs_deadline_claims_nothing(target: Target) -> None:
    mark = f"late-{uuid.uuid4().hex[:8]}"
    started = datetime.now(UTC) - timedelta(seconds=700)
    run = submission(target, probe(mark), started=started)

    done = run.run(target.plane.kubeconfig)

    assert done.returncode == 213, done
    assert done.stdout.decode().startswith("aks-runcommand-fence: DeadlinePassed:")
    assert target.fence("ConfigMap", run.fence.name) is None
    assert target.probes(mark) == 0
