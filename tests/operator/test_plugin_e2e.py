"""The real `kubectl runcommand` plugin (the console script pip installs), found by the real
kubectl on PATH, against the real operator, emulator and API servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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


def plugin_env() -> dict[str, str]:
    """The environment in which kubectl's plugin discovery finds the console script pip
    installed."""
    scripts = Path(sys.executable).parent
    if not (scripts / "kubectl-runcommand").exists():
        pytest.fail("kubectl-runcommand is not installed: make venv installs kubectl-plugin/")
    return {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}


def plugin_runner(kubectl_path: str, kubeconfig: Path, namespace: str) -> Any:
    """`kubectl runcommand SUBCOMMAND --kubeconfig=... -n NAMESPACE ARGS...`."""
    env = plugin_env()

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
    assert created["spec"]["suspend"] is False  # created suspended, resumed once the files were
    assert "FilesNotFound" not in done.stderr  # so the first submission found them
    assert created["status"]["attempts"] == 1


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
    missing = plugin("logs", "chatty", "--run", "3")  # not there: not a usage error
    assert missing.returncode == 125, missing.stderr
    assert missing.stderr == "kubectl-runcommand: chatty has 2 finished runs, not 3\n"


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
    # a fleet: invoke --selector, and wait and logs on the set it created
    fleet = as_ci("invoke", "--selector", fleet_selector("prod"), "--", "echo", "fleet", "ci")
    assert fleet.returncode == 0, fleet.stderr
    later = as_ci("invoke", "--selector", fleet_selector("prod"), "--no-wait", "--", "true")
    assert later.returncode == 0, later.stderr
    assert as_ci("wait", later.stdout.strip()).returncode == 0
    assert as_ci("logs", later.stdout.strip()).returncode == 0
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


# invoke -- ARGV reaches the cluster word for word (issue 24, defect 2) ------------------------


def test_invoke_argv_reaches_the_cluster_exactly_as_given(
    plugin: Any, target_cluster: ControlPlane, kubectl_path: str, namespace: str
) -> None:
    done = plugin("invoke", "--cluster", TARGET, "--", "bash", "-c", "echo one; exit 3")
    assert (done.returncode, done.stdout) == (3, "one\n"), done.stderr

    done = plugin("invoke", "--cluster", TARGET, "--", "echo", "a   b", "it's")
    assert (done.returncode, done.stdout) == (0, "a   b it's\n"), done.stderr

    target = RunCommands(kubectl_path, target_cluster.kubeconfig)
    for suffix, value in (("a", "a"), ("c", "c")):
        target.kubectl("create", "namespace", f"{namespace}-{suffix}")
        target.kubectl("label", "namespace", f"{namespace}-{suffix}", f"argv-{namespace}={value}")
    done = plugin("invoke", "--cluster", TARGET, "--", "kubectl", "get", "ns", "-o", "name",
                  "-l", f"argv-{namespace} in (a,b)")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, f"namespace/{namespace}-a\n"), done.stderr


# Ctrl-C during invoke (defect 3) ---------------------------------------------------------------


def test_ctrl_c_during_invoke_says_what_runs_on_and_leaves_nothing_unowned(
    management_cluster: ControlPlane, kubectl_path: str, namespace: str, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C (SIGINT to the plugin's whole process group, its kubectl children
    too) at moments from start-up to following: whatever exists afterwards is named on stderr
    with how to follow it, the files ConfigMap is owned by its RunCommand, the command runs on,
    and `wait` then reports it."""
    admin = RunCommands(kubectl_path, management_cluster.kubeconfig)
    (tmp_path / "hello.txt").write_text("hello\n")
    moments: list[float | str] = [0.1, 0.2, 0.3, 0.5, 0.8, 1.2, "created", "running"]
    seen: dict[str, int] = {}
    kubeconfig = management_cluster.kubeconfig

    def listed(where: str, kind: str) -> list[dict[str, Any]]:
        return list(kubectl_json(kubectl_path, kubeconfig, "-n", where, "get", kind)["items"])

    for index, moment in enumerate(moments):
        where = f"{namespace}-int{index}"
        admin.kubectl("create", "namespace", where)

        argv = [kubectl_path, "runcommand", "invoke", f"--kubeconfig={kubeconfig}",
                "-n", where, "--cluster", TARGET, "-f", str(tmp_path / "hello.txt"),
                "--", "sleep 2; cat hello.txt"]  # fmt: skip
        started = time.monotonic()
        process = subprocess.Popen(argv, env=plugin_env(), start_new_session=True, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        if isinstance(moment, float):
            time.sleep(max(0.0, started + moment - time.monotonic()))
        else:  # once the RunCommand is there (resumed), or once it runs
            while not [
                item
                for item in listed(where, "runcommands")
                if item["spec"].get("suspend") is False
                and (moment == "created" or (item.get("status") or {}).get("state") == "Running")
            ]:
                assert time.monotonic() < started + 60 and process.poll() is None, moment
                time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
        items = listed(where, "runcommands")
        files = [
            cm for cm in listed(where, "configmaps") if cm["metadata"]["name"].endswith("-files")
        ]
        said = [line for line in err.splitlines() if line.startswith("kubectl-runcommand")]
        if not items:  # before anything was created: nothing is left either
            assert files == [], (moment, err)
            if process.returncode == 130:
                assert said and said[-1] in (
                    "kubectl-runcommand: interrupted",
                    "kubectl-runcommand: interrupted: nothing was created",
                ), (moment, err)
            else:  # the signal came before the plugin's code ran (kubectl, Python's start-up)
                assert said == [], (moment, err)
            key = f"nothing ({process.returncode})"
            seen[key] = seen.get(key, 0) + 1
            continue
        (created,) = items
        name = created["metadata"]["name"]
        assert process.returncode == 130, (moment, err)
        assert "Traceback" not in err, (moment, err)
        last = err.strip().splitlines()[-1]
        assert last == (
            f"kubectl-runcommand: interrupted: runcommand/{name} was created and runs on; "
            f"follow it with: kubectl runcommand wait {name} -n {where}"
        ), (moment, err)
        assert created["spec"]["suspend"] is False, moment
        (cm,) = files
        (owner,) = cm["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "RunCommand",
            name,
            created["metadata"]["uid"],
        ), moment
        followed = plugin_runner(kubectl_path, kubeconfig, where)("wait", name)
        assert (followed.returncode, followed.stdout) == (0, "hello\n"), (moment, followed.stderr)
        seen["created"] = seen.get("created", 0) + 1
    assert seen.get("created", 0) >= 2, seen  # at least the two moments that wait for it


# a set created with --no-wait: wait and logs follow it (plugin flags) ---------------------------


def fleet_selector(env: str) -> str:
    from tests.operator.conftest import FLEET_GROUP, FLEET_SUBSCRIPTION

    return f"sub={SUBSCRIPTION_ID},sub={FLEET_SUBSCRIPTION},rg={FLEET_GROUP},tag=env={env}"


def test_wait_and_logs_follow_a_set_created_with_no_wait(plugin: Any) -> None:
    created = plugin("invoke", "--selector", fleet_selector("prod"), "--no-wait",
                     "--", "echo", "from the set")  # fmt: skip
    assert created.returncode == 0, created.stderr
    name = created.stdout.strip()
    waited = plugin("wait", name)
    assert waited.returncode == 0, waited.stderr
    assert "fleet-a" in waited.stdout and "fleet-c" in waited.stdout  # the final table
    assert plugin("wait", f"runcommandset/{name}", "-o", "json").returncode == 0

    logs = plugin("logs", name)
    assert logs.returncode == 0, logs.stderr
    blocks = logs.stdout.split("==> ")[1:]
    assert sorted(block.split(" ", 1)[0] for block in blocks) == ["fleet-a", "fleet-c"]
    assert all(block.endswith("Succeeded, exit 0) <==\nfrom the set\n") for block in blocks)
    as_json = json.loads(plugin("logs", name, "-o", "json").stdout)
    assert {entry["output"] for entry in as_json["clusters"]} == {"from the set\n"}
    assert plugin("logs", name, "--run", "2").returncode == 2  # a set has no run history
    missing = plugin("wait", "no-such-thing")
    assert missing.returncode == 125
    assert missing.stderr == (
        "kubectl-runcommand: no RunCommand or RunCommandSet named no-such-thing\n"
    )
