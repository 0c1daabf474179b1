"""`python -m controller` with a configuration that cannot work: it exits 2 at once with one line
naming the file and the flag or variable, instead of kopf's "will try again in 60 seconds" loop
(issue 24, defect 4). Each case runs the real entry point in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# e2e: each case starts the operator as a process (a fresh interpreter importing kopf).
pytestmark = pytest.mark.e2e
# Far below kopf's 60 s between login attempts: a process still running then is in that loop.
_EXITS_WITHIN = 30.0


def run_operator(
    tmp_path: Path, *argv: str, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBERNETES_", "AZURE_", "ARM_")) and k != "KUBECONFIG"
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "controller", *argv],
        env={**clean, "HOME": str(tmp_path), **env},  # no ~/.kube/config to fall back on
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=_EXITS_WITHIN,
        check=False,
    )
    return done, time.monotonic() - started


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_missing_kubeconfig_exits_2_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "kubeconfig"
    done, elapsed = run_operator(tmp_path, env={"KUBECONFIG": str(missing)})
    line = one_error_line(done)
    assert f"kubeconfig {missing} (env KUBECONFIG): no such file" in line
    print(f"exited {done.returncode} after {elapsed:.1f} s")


def test_without_kubeconfig_the_default_path_is_named(tmp_path: Path) -> None:
    done, _ = run_operator(tmp_path, env={})
    line = one_error_line(done)
    assert f"kubeconfig {tmp_path / '.kube' / 'config'} (the default; set KUBECONFIG" in line


@pytest.mark.parametrize(
    "content",
    ["clusters: [\n", "{}\n", "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"],
    ids=["not-yaml", "empty", "unknown-context"],
)
def test_an_unusable_kubeconfig_exits_2_naming_the_path(tmp_path: Path, content: str) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text(content)
    done, _ = run_operator(tmp_path, env={"KUBECONFIG": str(broken)})
    assert f"kubeconfig {broken} (env KUBECONFIG) cannot be used: " in one_error_line(done)


def test_an_in_cluster_pod_without_its_token_exits_2_naming_the_token(tmp_path: Path) -> None:
    done, _ = run_operator(
        tmp_path, env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    )
    line = one_error_line(done)
    assert "in-cluster configuration" in line
    assert "/var/run/secrets/kubernetes.io/serviceaccount/token" in line


def test_a_missing_arm_ca_file_exits_2_naming_the_file_and_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    done, _ = run_operator(tmp_path, "--arm-ca-file", str(missing), env={})
    assert f"--arm-ca-file {missing} (env ARM_CA_FILE): no such file" in one_error_line(done)
