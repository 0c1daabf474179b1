"""The real `kubectl runcommand` plugin (the console script pip installs), found by the real
kubectl on PATH, against the real operator, emulator and API servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane import ControlPlane
from tests.kube import kubectl_json
from tests.operator.rc import RunCommands, manifest
from tests.stack import RESOURCE_GROUP, SUBSCRIPTION_ID

pytestmark = pytest.mark.usefixtures("operator")
TARGET = f"{SUBSCRIPTION_ID}/{RESOURCE_GROUP}/aks-target"
BIG = 500 * 1024


def plugin_runner(kubectl_path: str, kubeconfig: Path, namespace: str) -> Any:
    """`kubectl runcommand SUBCOMMAND --kubeconfig=... -n NAMESPACE ARGS...`, with the console
    script pip installed found on PATH by kubectl's plugin discovery."""
    scripts = Path(sys.executable).parent
    if not (scripts / "kubectl-runcommand").exists():
        pytest.fail("kubectl-runcommand is not installed: make venv installs kubectl-plugin/")
    env = {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(subcommand: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [
            kubectl_path,
            "runcommand",
            subcommand,
            f"--kubeconfig={kubeconfig}",
            "-n",
            namespace,
            *args,
        ]
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    return run


@pytest.fixture
def plugin(management_cluster: ControlPlane, kubectl_path: str, namespace: str) -> Any:
    return plugin_runner(kubectl_path, management_cluster.kubeconfig, namespace)


@pytest.fixture
def rc(management_cluster: ControlPlane, kubectl_path: str) -> RunCommands:
    return RunCommands(kubectl_path, management_cluster.kubeconfig)


def test_invoke_runs_files_and_exits_zero(
    plugin: Any, rc: RunCommands, namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "hello.txt").write_text("hello from a file\n")
    done = plugin(
        "invoke", "--cluster", TARGET, "-f", str(tmp_path / "hello.txt"), "--", "cat hello.txt"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello from a file\n"
    assert "Succeeded" in done.stderr  # state changes as they happened
    (created,) = kubectl_json(
        rc.kubectl_path, rc.kubeconfig, "-n", namespace, "get", "runcommands"
    )["items"]
    files = rc.kubectl(
        "-n", namespace, "get", "configmap", f"{created['metadata']['name']}-files", "-o", "json"
    ).stdout
    (owner,) = json.loads(files)["metadata"]["ownerReferences"]
    assert owner["uid"] == created["metadata"]["uid"]


def test_invoke_exits_with_the_remote_exit_code(plugin: Any) -> None:
    done = plugin("invoke", "--cluster", TARGET, "--", "echo about to fail; exit 3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == "about to fail\n"
    assert "kubectl-runcommand:" not in done.stderr  # the command's own failure: no reason line


def test_an_arm_404_has_its_own_exit_code_and_reason(plugin: Any) -> None:
    done = plugin(
        "invoke",
        "--cluster",
        f"{SUBSCRIPTION_ID}/{RESOURCE_GROUP}/no-such-cluster",
        "--",
        "echo hi",
    )
    assert done.returncode == 120, done.stderr
    (reason,) = [line for line in done.stderr.splitlines() if line.startswith("kubectl-runcommand")]
    assert "ResourceNotFound" in reason and "no-such-cluster" in reason


def test_a_timeout_has_its_own_exit_code(plugin: Any) -> None:
    done = plugin("invoke", "--cluster", TARGET, "--timeout", "2", "-o", "json", "--", "sleep 30")
    assert done.returncode == 121, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["state"], summary["reason"]) == ("Failed", "DeadlineExceeded")
    assert summary["pluginExitCode"] == 121


def test_wait_right_after_a_rerun_reports_the_new_run(
    plugin: Any, rc: RunCommands, namespace: str
) -> None:
    rc.apply(manifest("again", namespace, "echo run; exit 3"))
    first = json.loads(plugin("wait", "again", "-o", "json").stdout)
    assert first["exitCode"] == 3

    bumped = plugin("rerun", "again")
    assert bumped.returncode == 0, bumped.stderr
    waited = plugin("wait", "again", "-o", "json")  # at once: the operator has not seen it yet
    assert waited.returncode == 3, waited.stderr
    second = json.loads(waited.stdout)
    assert second["commandId"] != first["commandId"]
    assert second["generation"] == first["generation"] + 1


def test_logs_of_a_500_kib_output_are_complete_and_earlier_runs_stay_readable(
    plugin: Any, rc: RunCommands, namespace: str
) -> None:
    rc.apply(manifest("chatty", namespace, f"head -c {BIG} /dev/zero | tr '\\0' x; echo"))
    assert plugin("wait", "chatty").returncode == 0
    logs = plugin("logs", "chatty")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "x" * BIG + "\n"

    rerun = plugin("rerun", "chatty", "--wait")
    assert rerun.returncode == 0, rerun.stderr
    assert plugin("logs", "chatty", "--run", "2").stdout == "x" * BIG + "\n"
    assert plugin("logs", "chatty", "--run", "3").returncode == 1


def test_the_readme_transcript(plugin: Any, rc: RunCommands, namespace: str) -> None:
    """Produces the README's transcript (set PLUGIN_TRANSCRIPT=path to write it)."""
    lines: list[str] = []

    def shown(shell: str, *args: str, pipe_wc: bool = False) -> subprocess.CompletedProcess[str]:
        done = plugin(*args)
        lines.append(f"$ {shell}")
        lines.extend(done.stderr.splitlines())
        out = f"{len(done.stdout.encode())}" if pipe_wc else done.stdout.rstrip("\n")
        lines.extend(out.splitlines())
        lines.append(f"$ echo $?\n{done.returncode}" if not pipe_wc else "")
        return done

    failing = shown(
        f"kubectl runcommand invoke -n ci --cluster {TARGET} -- 'echo migrating; exit 3'",
        "invoke",
        "--cluster",
        TARGET,
        "--",
        "echo migrating; exit 3",
    )
    assert failing.returncode == 3
    rc.apply(manifest("dump", namespace, f"head -c {BIG} /dev/zero | tr '\\0' x"))
    assert plugin("wait", "dump").returncode == 0
    big = shown("kubectl runcommand logs -n ci dump | wc -c", "logs", "dump", pipe_wc=True)
    assert len(big.stdout) == BIG
    again = shown(
        "kubectl runcommand rerun -n ci dump --wait | wc -c",
        "rerun",
        "dump",
        "--wait",
        pipe_wc=True,
    )
    assert again.returncode == 0 and len(again.stdout) == BIG
    transcript = "\n".join(line for line in lines if line != "").replace(namespace, "ci")
    if os.environ.get("PLUGIN_TRANSCRIPT"):
        Path(os.environ["PLUGIN_TRANSCRIPT"]).write_text(transcript + "\n")


def readme_role() -> str:
    """The Role the docs' pipelines guide shows (tests/test_docs.py keeps the README's the same)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "guides" / "pipelines.md").read_text()
    section = text[text.index("A pipeline job instead of `az aks command invoke`") :]
    return section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]


def test_the_readme_role_is_all_a_pipeline_needs(
    management_cluster: ControlPlane, kubectl_path: str, namespace: str, tmp_path: Path
) -> None:
    admin = RunCommands(kubectl_path, management_cluster.kubeconfig)
    role = readme_role().replace("namespace: ci", f"namespace: {namespace}")
    admin.apply(role)
    admin.kubectl("-n", namespace, "create", "serviceaccount", "ci")
    admin.kubectl(
        "-n",
        namespace,
        "create",
        "rolebinding",
        "ci",
        "--role=runcommand-ci",
        f"--serviceaccount={namespace}:ci",
    )
    token = admin.kubectl("-n", namespace, "create", "token", "ci").stdout.strip()
    config = json.loads(management_cluster.kubeconfig.read_text())
    config["users"] = [{"name": "ci", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "ci"
    ci_kubeconfig = tmp_path / "ci-kubeconfig"
    ci_kubeconfig.write_text(json.dumps(config))
    (tmp_path / "job.sh").write_text("echo from the pipeline\n")
    as_ci = plugin_runner(kubectl_path, ci_kubeconfig, namespace)
    invoked = as_ci(
        "invoke",
        "--cluster",
        TARGET,
        "-f",
        str(tmp_path / "job.sh"),
        "-o",
        "json",
        "--",
        "bash job.sh",
    )
    assert invoked.returncode == 0, invoked.stderr
    name = json.loads(invoked.stdout)["name"]
    assert as_ci("logs", name).stdout == "from the pipeline\n"
    assert as_ci("rerun", name, "--wait").returncode == 0
    # and nothing more: no Secrets, no deleting
    denied = admin.kubectl(
        "auth",
        "can-i",
        "get",
        "secrets",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:ci",
        check=False,
    )
    assert denied.stdout.strip() == "no"


def test_invoke_with_a_selector_runs_a_set_and_shows_its_progress(plugin: Any) -> None:
    """The session's tagged fleet: env=prod is fleet-a and fleet-c, in two subscriptions."""
    from tests.operator.conftest import FLEET_GROUP, FLEET_SUBSCRIPTION

    selector = f"sub={SUBSCRIPTION_ID},sub={FLEET_SUBSCRIPTION},rg={FLEET_GROUP},tag=env=prod"
    done = plugin("invoke", "--selector", selector, "--max-concurrency", "1", "-o", "json",
                  "--", "echo", "fleet-hello")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "CLUSTER" in done.stderr and "Progressing" in done.stderr  # the live table
    final = json.loads(done.stdout)
    assert final["pluginExitCode"] == 0
    assert final["status"]["state"] == "Succeeded"
    rows = {e["clusterId"].rsplit("/", 1)[-1]: e for e in final["status"]["clusters"]}
    assert set(rows) == {"fleet-a", "fleet-c"}
    assert all(e["state"] == "Succeeded" and e["exitCode"] == 0 for e in rows.values())


def test_invoke_with_a_selector_exits_123_with_a_summary_when_a_cluster_fails(
    plugin: Any,
) -> None:
    from tests.operator.conftest import FLEET_GROUP, FLEET_SUBSCRIPTION

    selector = f"sub={SUBSCRIPTION_ID},sub={FLEET_SUBSCRIPTION},rg={FLEET_GROUP},tag=env=dev"
    done = plugin("invoke", "--selector", selector, "--", "exit 4")
    assert done.returncode == 123, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("kubectl-runcommand: runcommandset/invoke-"), last
    assert "2 of 2 clusters failed" in last and "fleet-b (CommandFailed)" in last
    assert "fleet-d" in done.stdout  # the final table
