"""The plugin's pure parts: when a run counts as finished, and how the plugin exits."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from kubectl_runcommand.outcome import (
    EXIT_ARM_ERROR,
    EXIT_DEADLINE,
    EXIT_UNKNOWN,
    finished,
    outcome,
)


def body(generation: int, observed: int, finished_status: str, condition_gen: int) -> Any:
    condition = {
        "type": "Finished",
        "status": finished_status,
        "reason": "Succeeded",
        "observedGeneration": condition_gen,
    }
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "state": "Succeeded",
            "conditions": [condition],
        },
    }


def test_a_finished_previous_generation_is_not_finished() -> None:
    """Right after a runToken bump: what `kubectl wait --for=condition=Finished` would accept."""
    assert not finished(body(2, 1, "True", 1))
    assert not finished(body(2, 2, "False", 2))
    assert finished(body(2, 2, "True", 2))


@pytest.mark.parametrize(
    ("status", "code", "has_reason"),
    [
        ({"state": "Succeeded", "exitCode": 0}, 0, False),
        ({"state": "Failed", "reason": "CommandFailed", "exitCode": 3}, 3, False),
        ({"state": "Failed", "reason": "ResourceNotFound", "message": "m"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "ProvisioningFailed"}, EXIT_ARM_ERROR, True),
        ({"state": "Failed", "reason": "DeadlineExceeded"}, EXIT_DEADLINE, True),
        ({"state": "Unknown", "reason": "SubmissionOutcomeUnknown"}, EXIT_UNKNOWN, True),
    ],
)
def test_exit_codes(status: dict[str, Any], code: int, has_reason: bool) -> None:
    result = outcome(status)
    assert result.code == code
    assert (result.reason is not None) == has_reason


def test_the_plugins_final_states_are_the_operators() -> None:
    """The plugin keeps its own list (it is stdlib-only and never imports the operator); this
    holds it to the operator's vocabulary, so a new final state cannot be missed."""
    from kubectl_runcommand.outcome import FINAL

    from controller.vocabulary import SetState, State

    assert sorted(FINAL) == sorted(state.value for state in State if state.final)
    # finished() serves sets too: their final states are among the RunCommand's.
    assert {SetState.SUCCEEDED.value, SetState.FAILED.value} <= set(FINAL)


def test_the_plugin_imports_nothing_beyond_the_standard_library() -> None:
    import subprocess
    import sys

    # Every module of the plugin: main() loads the command line only once it has started.
    probe = (
        "import importlib, pkgutil, sys, kubectl_runcommand as p; "
        "loaded = [importlib.import_module(m.name) for m in pkgutil.walk_packages(p.__path__, "
        "'kubectl_runcommand.')]; assert len(loaded) > 10, loaded; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'kubernetes', 'kopf', 'azure', 'yaml', 'aiohttp') "
        "or m.split('.')[0] in ('controller', 'aks_arm_emulator')]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --selector: the RunCommandSet the plugin creates ----------------------------------------


def test_a_selector_becomes_the_sets_cluster_selector() -> None:
    from kubectl_runcommand.fleet import parse_selector

    sub, sub2 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
    assert parse_selector(f"sub={sub}") == {"subscriptions": [sub]}
    assert parse_selector(f"sub={sub},sub={sub2},rg=rg-fleet,tag=env=prod,tag=team=a=b") == {
        "subscriptions": [sub, sub2],
        "resourceGroups": ["rg-fleet"],
        "matchTags": {"env": "prod", "team": "a=b"},  # a tag value may hold '='
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rg=rg-fleet", "at least one sub="),
        ("sub=s,env=prod", "unknown key 'env'"),
        ("sub=s,tag=env", "tag=KEY=VALUE"),
        ("sub=s,tag==x", "tag=KEY=VALUE"),
        ("sub=s,rg", "not KEY=VALUE"),
        ("sub=s,tag=env=a,tag=env=b", "two different values"),
    ],
)
def test_a_selector_that_cannot_be_read_says_why(text: str, says: str) -> None:
    from kubectl_runcommand.fleet import SelectorError, parse_selector

    with pytest.raises(SelectorError, match=says):
        parse_selector(text)


def test_invoke_with_a_selector_creates_a_set_with_the_rollout_bounds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The argument parsing end to end up to the API server: what kubectl would be handed."""
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    created: list[dict[str, Any]] = []

    def create(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        created.append(body)
        return {**body, "metadata": {**body["metadata"], "namespace": "ci"}}

    monkeypatch.setattr(Kubectl, "create", create)
    code = plugin.main(
        ["invoke", "--no-wait", "--selector", "sub=s1,rg=rg-fleet,tag=env=prod",
         "--max-concurrency", "25%", "--max-failures", "1", "--timeout", "60",
         "--", "kubectl", "get", "nodes"]
    )  # fmt: skip
    assert code == 0
    (body,) = created
    assert body["kind"] == "RunCommandSet"
    assert body["metadata"]["name"].startswith("invoke-")
    assert body["spec"] == {
        "template": {"command": "kubectl get nodes", "timeoutSeconds": 60},
        "clusterSelector": {
            "subscriptions": ["s1"],
            "resourceGroups": ["rg-fleet"],
            "matchTags": {"env": "prod"},
        },
        "maxConcurrency": "25%",
        "maxFailures": 1,
    }
    assert capsys.readouterr().out.strip() == body["metadata"]["name"]


def test_a_bad_selector_or_bound_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    monkeypatch.setattr(Kubectl, "create", lambda *_: pytest.fail("nothing is created"))
    assert plugin.main(["invoke", "--selector", "rg=x", "--", "true"]) == 2
    assert plugin.main(["invoke", "--selector", "sub=s", "--max-failures", "x", "--", "true"]) == 2


def test_a_set_exits_0_only_when_every_cluster_succeeded() -> None:
    from kubectl_runcommand.fleet import progress_table, set_exit
    from kubectl_runcommand.outcome import EXIT_SET_FAILED

    failed = {
        "state": "Failed",
        "reason": "ClustersFailed",
        "message": "round 1: 1 of 2 clusters failed",
        "total": 2,
        "succeeded": 1,
        "failed": 1,
        "clusters": [
            {"clusterId": "/s/x/managedClusters/b", "child": "set-2", "state": "Failed",
             "exitCode": 3, "reason": "CommandFailed"},
            {"clusterId": "/s/x/managedClusters/a", "child": "set-1", "state": "Succeeded",
             "exitCode": 0},
        ],
    }  # fmt: skip
    code, summary = set_exit(failed)
    assert code == EXIT_SET_FAILED
    assert summary == "ClustersFailed: round 1: 1 of 2 clusters failed; failed: b (CommandFailed)"
    assert set_exit({**failed, "state": "Succeeded"}) == (0, None)
    table = progress_table(failed).splitlines()
    assert table[1].split() == ["CLUSTER", "CHILD", "STATE", "EXIT"]
    assert table[2].split() == ["b", "set-2", "Failed", "3"]
    assert table[3].split() == ["a", "set-1", "Succeeded", "0"]


# invoke -- ARGV: the words reach the cluster as given (issue 24, defect 2) -------------------


def created_by_invoke(monkeypatch: pytest.MonkeyPatch, *argv: str) -> list[dict[str, Any]]:
    """What `invoke --no-wait ARGV` hands kubectl to create, with nothing sent anywhere."""
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    created: list[dict[str, Any]] = []

    def create(self: Any, body: dict[str, Any]) -> dict[str, Any]:
        created.append(body)
        metadata = {**body["metadata"], "namespace": "ci", "uid": "u-1", "generation": 1}
        return {**body, "metadata": metadata}

    monkeypatch.setattr(Kubectl, "create", create)
    monkeypatch.setattr(Kubectl, "merge_patch", lambda self, kind, name, patch: {})
    assert plugin.main(["invoke", "--no-wait", *argv]) == 0
    return created


@pytest.mark.parametrize(
    ("words", "command"),
    [
        (["bash", "-c", "echo one; exit 3"], "bash -c 'echo one; exit 3'"),
        (["echo", "a   b", "it's"], "echo 'a   b' 'it'\"'\"'s'"),
        (["kubectl", "get", "ns", "-l", "x in (a,b)"], "kubectl get ns -l 'x in (a,b)'"),
        (["kubectl", "get", "nodes"], "kubectl get nodes"),
        (["echo migrating; exit 3"], "echo migrating; exit 3"),  # one word: a shell line
    ],
)
def test_invoke_argv_is_quoted_word_by_word_and_one_word_is_a_command_line(
    monkeypatch: pytest.MonkeyPatch, words: list[str], command: str
) -> None:
    import shlex

    (body,) = created_by_invoke(monkeypatch, "--cluster", "s/rg/aks", "--", *words)
    assert body["spec"]["command"] == command
    if len(words) > 1:
        assert shlex.split(command) == words  # bash -c reads back exactly these words
    (fleet,) = created_by_invoke(monkeypatch, "--selector", "sub=s", "--", *words)
    assert fleet["spec"]["template"]["command"] == command


# user errors: one line, a documented exit code, nothing created (defect 7, plugin flags) -----


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def run_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str]:
    """main(argv) with kubectl forbidden to create anything: its exit code and its one line."""
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    monkeypatch.setattr(Kubectl, "create", lambda *_: pytest.fail("nothing is created"))
    try:
        code = plugin.main(list(argv))
    except SystemExit as exit_:  # argparse's own usage errors
        code = int(exit_.code or 0)
    return code, one_line_error(capsys)


def test_a_file_that_cannot_be_read_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from kubectl_runcommand import __main__ as plugin
    from kubectl_runcommand.kubectl import Kubectl

    monkeypatch.setattr(Kubectl, "create", lambda *_: pytest.fail("nothing is created"))
    unreadable = tmp_path / "secret.sh"
    unreadable.write_text("echo hi\n")
    unreadable.chmod(0)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "job.sh").write_text("1")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "job.sh").write_text("2")
    (tmp_path / "bad name.sh").write_text("x")
    cases = {
        "/missing": "-f /missing: No such file or directory",
        str(tmp_path): "Is a directory",
        str(tmp_path / "bad name.sh"): "'bad name.sh' cannot be a ConfigMap key",
    }
    if os.geteuid() != 0:  # root reads anything
        cases[str(unreadable)] = "Permission denied"
    for path, says in cases.items():
        code = plugin.main(["invoke", "--cluster", "s/rg/aks", "-f", path, "--", "true"])
        assert code == 2
        assert says in one_line_error(capsys)
    two = ["-f", str(tmp_path / "a" / "job.sh"), "-f", str(tmp_path / "b" / "job.sh")]
    assert plugin.main(["invoke", "--cluster", "s/rg/aks", *two, "--", "true"]) == 2
    assert "both named job.sh" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["invoke", "--cluster", "foo/bar", "--", "true"], "SUBSCRIPTION/RESOURCE_GROUP/NAME"),
        (["invoke", "--cluster", "s//n", "--", "true"], "SUBSCRIPTION/RESOURCE_GROUP/NAME"),
        (["invoke", "--cluster", "s/rg/n", "--wait-timeout", "-1", "--", "true"], "-1"),
        (["invoke", "--cluster", "s/rg/n", "--timeout", "0", "--", "true"], "at least 1"),
        (["invoke", "--cluster", "s/rg/n", "--max-concurrency", "2", "--", "true"], "--selector"),
        (["invoke", "--cluster", "s/rg/n", "--max-failures", "1", "--", "true"], "--selector"),
        (["invoke", "--cluster", "s/rg/n"], "give the command after --"),
        (["invoke", "--selector", "sub=s", "--max-concurrency", "x", "--", "true"], "'x'"),
        (["logs", "rc", "--run", "0"], "--run"),
        (["wait", "rc", "--wait-timeout", "soon"], "soon"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    says: str,
) -> None:
    code, line = run_refused(monkeypatch, capsys, *argv)
    assert code == 2
    assert says in line


def fake_kubectl(tmp_path: Path, script: str) -> str:
    """A `kubectl` on PATH that runs this shell script: the real binary's failures on demand."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "kubectl").chmod(0o755)
    return str(bin_dir)


def test_kubectl_missing_or_failing_is_one_line_and_125(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from kubectl_runcommand import __main__ as plugin

    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert plugin.main(["wait", "rc"]) == 125
    assert "kubectl is not on PATH" in one_line_error(capsys)

    forbidden = (
        'echo \'Error from server (Forbidden): runcommands.aks.gitops.dev is forbidden: User "ci"'
        " cannot create resource' >&2; exit 1"
    )
    monkeypatch.setenv("PATH", fake_kubectl(tmp_path, forbidden))
    assert plugin.main(["invoke", "--cluster", "s/rg/n", "--", "true"]) == 125
    assert "(Forbidden)" in one_line_error(capsys)

    (tmp_path / "bin" / "kubectl").write_text("#!/bin/sh\necho 'not json'\n")
    assert plugin.main(["wait", "rc"]) == 125
    assert "not JSON" in one_line_error(capsys)

    (tmp_path / "bin" / "kubectl").chmod(0o644)  # there, but cannot be run
    assert plugin.main(["wait", "rc"]) == 125
    one_line_error(capsys)


def test_logs_of_a_run_not_in_history_is_not_there_125(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Not a usage error: the flag is well formed, the run is not on the API server."""
    from kubectl_runcommand import __main__ as plugin

    body = {"metadata": {"name": "rc", "namespace": "ci", "generation": 1},
            "status": {"history": [{"commandId": "c1"}, {"commandId": "c2"}]}}  # fmt: skip
    monkeypatch.setenv("PATH", fake_kubectl(tmp_path, f"echo '{json.dumps(body)}'"))
    assert plugin.main(["logs", "rc", "--run", "3"]) == 125
    assert "rc has 2 finished runs" in one_line_error(capsys)


def test_help_describes_every_flag_without_format_artefacts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kubectl_runcommand import __main__ as plugin

    with pytest.raises(SystemExit) as exited:
        plugin.main(["invoke", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "%%" not in text
    flat = " ".join(text.split())
    for flag in ("--cluster SUB/RG/NAME", "--resource-id ID", "-f FILE, --file FILE",
                 "--wait, --no-wait", "--max-concurrency N|P%"):  # fmt: skip
        after = flat[flat.index(flag) + len(flag) :].lstrip()
        assert not after.startswith("-"), f"{flag} has no help text"
    assert "shlex" not in flat and "quoted" in flat  # how ARGV becomes the command line


def test_a_first_ctrl_c_waits_for_the_creation_and_a_second_stops_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import signal

    from kubectl_runcommand.interrupt import deferred_interrupt

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest was started in the background
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt), deferred_interrupt("creating runcommand/x"):
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("created")  # the block goes on to its end
    assert steps == ["created"]
    assert "finishing creating runcommand/x first" in capsys.readouterr().err
    with pytest.raises(KeyboardInterrupt), deferred_interrupt("creating runcommand/y"):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("never")
    assert steps == ["created"]
    assert signal.getsignal(signal.SIGINT) == before  # put back


def test_files_that_cannot_be_stored_leave_no_runcommand_behind_unsaid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The RunCommand is created (suspended), its files ConfigMap refused: it is deleted again,
    or, where RBAC allows no delete, the one line says it is left suspended and how to remove
    it."""
    from kubectl_runcommand import __main__ as plugin

    metadata = {"name": "x", "namespace": "ci", "uid": "u-1", "generation": 1}
    created = {"apiVersion": "aks.gitops.dev/v1alpha1", "kind": "RunCommand", "metadata": metadata}
    log = tmp_path / "calls"
    script = f"""echo "$@" >> {log}
case "$*" in
  *"create -f -"*) if grep -q ConfigMap; then
      echo 'Error from server (Forbidden): configmaps is forbidden' >&2; exit 1; fi
    echo '{json.dumps(created)}';;
  *delete*) [ -e {tmp_path}/may-delete ] && exit 0
    echo 'Error from server (Forbidden): cannot delete' >&2; exit 1;;
esac"""
    monkeypatch.setenv("PATH", f"{fake_kubectl(tmp_path, script)}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "job.sh").write_text("echo hi\n")
    argv = ["invoke", "--cluster", "s/rg/n", "-f", str(tmp_path / "job.sh"), "--", "bash job.sh"]
    assert plugin.main(argv) == 125
    line = one_line_error(capsys)
    assert line.startswith("kubectl-runcommand: the files ConfigMap: Error from server (Forbid")
    name = line.split("runcommand/")[1].split(" ")[0]
    assert line.endswith(
        f"runcommand/{name} is left suspended: kubectl delete runcommand {name} -n ci"
    )
    assert "patch" not in log.read_text()  # never resumed

    (tmp_path / "may-delete").touch()
    assert plugin.main(argv) == 125
    assert one_line_error(capsys).endswith("was deleted again")
