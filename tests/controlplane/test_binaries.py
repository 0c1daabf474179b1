"""build-binaries.sh and what it builds: helm behaves like its release, kstatus is the pinned one.

The script's own logic (stamps, release flags) is checked with a stand-in `go` that only records
what it is asked to build; the built binaries are checked for real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .launcher import REPO_ROOT, find_binary

HERE = Path(__file__).resolve().parent
GOBUILD = HERE / "gobuild"
CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"


def required(module_dir: Path, module: str) -> str:
    """The version of `module` that a wrapper module's go.mod requires."""
    match = re.search(
        rf"^\s*(?:require\s+)?{re.escape(module)} (v\S+)", (module_dir / "go.mod").read_text(), re.M
    )
    assert match, f"{module} not required in {module_dir}/go.mod"
    return match[1]


HELM_VERSION = required(GOBUILD / "helm", "helm.sh/helm/v3")
CLIENT_GO_MINOR = required(GOBUILD / "helm", "k8s.io/client-go").split(".")[1]  # v0.34.2 -> 34


# The script, with a stand-in go ---------------------------------------------------------------

FAKE_GO = """#!/usr/bin/env bash
# Records `go build` and writes its -o target, as a build would.
echo "$*" >> "$GO_LOG"
while [ $# -gt 0 ]; do
  if [ "$1" = -o ]; then printf '#!/bin/sh\\n' > "$2"; chmod +x "$2"; fi
  shift
done
"""


class Script:
    def __init__(self, root: Path) -> None:
        self.dir = root / "controlplane"
        shutil.copytree(HERE / "gobuild", self.dir / "gobuild")
        shutil.copy2(HERE / "build-binaries.sh", self.dir / "build-binaries.sh")
        (root / "path").mkdir()
        (root / "path" / "go").write_text(FAKE_GO)
        (root / "path" / "go").chmod(0o755)
        self.bin, self.log = root / "bin", root / "go.log"
        self.env = {
            **os.environ,
            "PATH": f"{root / 'path'}:{os.environ['PATH']}",
            "BIN_DIR": str(self.bin),
            "GO_LOG": str(self.log),
        }

    def run(self, *names: str) -> list[str]:
        """Run the script; return the `go build` command lines it ran."""
        self.log.write_text("")
        done = subprocess.run(
            ["bash", str(self.dir / "build-binaries.sh"), *names],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return self.log.read_text().splitlines()


@pytest.fixture
def script(tmp_path: Path) -> Script:
    return Script(tmp_path)


def test_helm_gets_its_release_flags(script: Script) -> None:
    """helm's Makefile: the version, and the Kubernetes version that `helm template` and `helm lint`
    assume, from client-go's (0.N -> 1.N); unset, helm assumes v1.20.0."""
    (build,) = script.run("helm")
    for flag in (
        f"helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
        "helm.sh/helm/v3/internal/version.gitTreeState=clean",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
        f"helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={CLIENT_GO_MINOR}",
        "helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
        f"helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={CLIENT_GO_MINOR}",
    ):
        assert f"-X {flag} " in f"{build} ", build
    assert "-trimpath" in build.split()


def test_kstatus_is_built_like_the_others(script: Script) -> None:
    (build,) = script.run("kstatus")
    assert build.split()[:3] == ["build", "-v", "-trimpath"]
    assert (script.bin / "kstatus").is_file()


def test_a_binary_is_rebuilt_when_its_module_or_its_flags_change(script: Script) -> None:
    assert len(script.run("kstatus")) == 1
    assert script.run("kstatus") == []  # up to date
    go_mod = script.dir / "gobuild" / "kstatus" / "go.mod"
    go_mod.write_text(go_mod.read_text() + "\n")
    assert len(script.run("kstatus")) == 1
    assert script.run("kstatus") == []
    text = (script.dir / "build-binaries.sh").read_text()
    (script.dir / "build-binaries.sh").write_text(
        text.replace('build kstatus . "-s -w"', 'build kstatus . "-s -w -X main.flag=changed"')
    )
    assert len(script.run("kstatus")) == 1


def test_without_names_it_builds_every_wrapper_module(script: Script) -> None:
    built = {Path(line.split(" -o ")[1].split()[0]).name for line in script.run()}
    modules = {f"{d.name}.tmp" for d in GOBUILD.iterdir() if (d / "go.mod").is_file()}
    # krew's wrapper module also yields its manifest validator; Prometheus' yields promtool.
    assert built == modules | {"validate-krew-manifest.tmp", "promtool.tmp"}


def test_the_controller_manager_is_the_api_servers_release(script: Script) -> None:
    """kube-controller-manager comes from the same k8s.io/kubernetes as kube-apiserver, with the
    same version flags, so the pair is one Kubernetes release."""
    kube = required(GOBUILD / "kube-apiserver", "k8s.io/kubernetes")
    assert required(GOBUILD / "kube-controller-manager", "k8s.io/kubernetes") == kube
    (apiserver,) = script.run("kube-apiserver")
    (controller_manager,) = script.run("kube-controller-manager")
    assert f"-X k8s.io/component-base/version.gitVersion={kube} " in controller_manager
    assert apiserver.split(" -o ")[0] == controller_manager.split(" -o ")[0]


def test_an_unknown_name_is_refused(script: Script) -> None:
    done = subprocess.run(
        ["bash", str(script.dir / "build-binaries.sh"), "kubelet"],
        env=script.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "no wrapper module kubelet" in done.stderr


# The built binaries ----------------------------------------------------------------------------


def helm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_NO_PLUGINS": "1",
    }
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [find_binary("helm"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_helm_reports_the_pinned_version(tmp_path: Path) -> None:
    done = helm("version", "--template", "{{.Version}} {{.GitTreeState}}", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{HELM_VERSION} clean"


def test_helm_assumes_the_kubernetes_version_of_its_client_go(tmp_path: Path) -> None:
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text(
        "kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    done = helm("template", "t", str(chart), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f'kubeVersion: "v1.{CLIENT_GO_MINOR}.0"' in done.stdout


def test_helm_template_renders_the_chart_without_kube_version(tmp_path: Path) -> None:
    """The chart requires a newer Kubernetes than helm's built-in default (v1.20.0): a helm built
    without the release flags refuses it unless told --kube-version."""
    done = helm("template", "t", str(CHART), home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "kind: Deployment" in done.stdout


def test_kstatus_is_the_pinned_cli_utils() -> None:
    go = shutil.which("go")
    assert go, "go is needed to build the binaries"
    done = subprocess.run(
        [go, "version", "-m", find_binary("kstatus")], capture_output=True, text=True, check=True
    )
    pinned = required(GOBUILD / "kstatus", "sigs.k8s.io/cli-utils")
    assert re.search(
        rf"^\s*dep\s+sigs\.k8s\.io/cli-utils\s+{re.escape(pinned)}\s", done.stdout, re.M
    )
    assert re.search(r"^\s*build\s+CGO_ENABLED=0$", done.stdout, re.M)
    assert re.search(r"^\s*build\s+-trimpath=true$", done.stdout, re.M)


@pytest.mark.parametrize("name", ["promtool", "prometheus"])
def test_promtool_and_prometheus_report_the_pinned_version(name: str) -> None:
    done = subprocess.run(
        [find_binary(name), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    pinned = required(GOBUILD / "prometheus", "github.com/prometheus/prometheus")
    assert f"version {pinned}" in done.stdout + done.stderr
