"""Release inputs: one version source, the krew manifest and plugin archive, the workflows.

The version lives in pyproject.toml only; Chart.yaml repeats it (checked here) and the image tag
falls back to the chart's appVersion (rendered with the real helm). The krew manifest and archive
are checked with krew's own code: its manifest validator and `krew install --archive`, built from
their Go module like helm. actionlint itself runs in `make lint`; here it is shown to fail on a
broken workflow, so a green lint means something.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "aks-runcommand-operator"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
BIN_DIR = Path(os.environ.get("BIN_DIR", REPO_ROOT / ".cache" / "bin"))
OWNER = "aks-runcommand-operator"  # the GitHub owner the README and values.yaml name
REPOSITORY = f"{OWNER}/aks-runcommand-operator"
FAKE_SHA = "0123456789abcdef" * 4


def load_release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", REPO_ROOT / "scripts" / "release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = load_release()


def binary(name: str) -> Path:
    path = BIN_DIR / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"{name} not found at {path}: build it with `make binaries`")
    return path


def run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


# --- one version source -------------------------------------------------------------------------


def project_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert isinstance(version, str)
    return version


def test_chart_version_and_app_version_are_the_package_version() -> None:
    version = project_version()
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["version"] == version, "Chart.yaml version differs from pyproject.toml's"
    assert str(chart["appVersion"]) == version, "Chart.yaml appVersion differs from pyproject's"
    # The release script reads the same values without a YAML library.
    assert release.version() == version
    assert release.chart_versions() == {"version": version, "appVersion": version}


def test_image_tag_defaults_to_the_app_version(tmp_path: Path) -> None:
    values = load_yaml(CHART / "values.yaml")
    assert values["image"]["tag"] == "", "values.yaml pins image.tag: leave it empty (appVersion)"
    rendered = run(
        binary("helm"),
        "template",
        "r",
        CHART,
        "--kube-version",
        "1.35.4",
        env={**os.environ, "HELM_CACHE_HOME": str(tmp_path), "HELM_CONFIG_HOME": str(tmp_path)},
    )
    assert rendered.returncode == 0, rendered.stderr
    images = {
        c["image"]
        for doc in yaml.safe_load_all(rendered.stdout)
        if doc and doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"{values['image']['repository']}:{project_version()}"}


def test_values_image_is_the_one_the_release_pushes() -> None:
    """release.yml pushes ghcr.io/<owner>/aks-runcommand-operator and checks values.yaml names it
    (scripts/release.py check-image); the README's owner is the same."""
    image = f"ghcr.io/{OWNER}/aks-runcommand-operator"
    assert load_yaml(CHART / "values.yaml")["image"]["repository"] == image
    release.check_image(image)
    with pytest.raises(release.ReleaseError, match=r"image\.repository"):
        release.check_image("ghcr.io/someone-else/aks-runcommand-operator")


def test_the_docs_name_the_current_version() -> None:
    """The docs site's install, upgrade and verify commands name the current version too."""
    version = project_version()
    named = {}
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        text = page.read_text()
        found = re.findall(r"oci://\S+/aks-runcommand-operator\s+--version\s+(\S+)", text)
        found += re.findall(r"aks-runcommand-operator:(\d+\.\d+\.\d+\S*?)[\s`'\"]", text)
        found += re.findall(r"releases/download/v(\d+\.\d+\.\d+\S*?)/", text)
        if found:
            named[page.relative_to(REPO_ROOT).as_posix()] = set(found)
    assert "docs/install/helm.md" in named
    assert {page: v for page, v in named.items() if v != {version}} == {}


def test_changelog_follows_keep_a_changelog_and_describes_the_version() -> None:
    text = (REPO_ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.*)$", text, flags=re.MULTILINE)
    assert headings[0] == "[Unreleased]"
    versions = []
    for heading in headings[1:]:
        match = re.fullmatch(r"\[(\d+\.\d+\.\d+(?:-[\w.]+)?)\] - (\d{4}-\d{2}-\d{2})", heading)
        assert match, f"CHANGELOG heading {heading!r} is not '[X.Y.Z] - YYYY-MM-DD'"
        versions.append(match[1])
    assert (
        versions
        == sorted(versions, key=lambda v: [int(p) for p in v.split("-")[0].split(".")])[::-1]
    ), "CHANGELOG versions are not newest first"
    for name in ["Unreleased", *versions]:
        assert re.search(rf"^\[{re.escape(name)}\]: https://github.com/{REPOSITORY}/", text, re.M)
    assert project_version() in versions, "CHANGELOG.md has no section for the current version"
    assert "### Added" in release.changelog_section(project_version())


# --- scripts/release.py check-tag, on a copy of the release inputs ------------------------------


def fake_project(root: Path, *, version: str = "1.2.3", plugin: bool = True) -> Path:
    """The files the release reads: the three distributions' metadata, with a stdlib-only
    stand-in for the kubectl plugin's package."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{version}"\n')
    (root / "emulator").mkdir()
    (root / "emulator" / "pyproject.toml").write_text(
        f'[project]\nname = "e"\nversion = "{version}"\ndependencies = ["aiohttp==1"]\n'
    )
    project = root / "kubectl-plugin"
    project.mkdir()
    scripts = '[project.scripts]\nkubectl-runcommand = "kubectl_runcommand.__main__:main"\n'
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "p"\nversion = "{version}"\ndependencies = []\n\n'
        + (scripts if plugin else "")
    )
    chart = root / "charts" / "aks-runcommand-operator"
    chart.mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: aks-runcommand-operator\n"
        f'version: {version}\nappVersion: "{version}"\n'
    )
    (chart / "values.yaml").write_text("image:\n  repository: ghcr.io/o/aks-runcommand-operator\n")
    (root / "CHANGELOG.md").write_text(
        f"# Changelog\n\n## [Unreleased]\n\n## [{version}] - 2026-01-02\n\n### Added\n\n- All.\n\n"
        f"[{version}]: https://example.invalid/\n"
    )
    (root / "LICENSE").write_text("Apache License\n")
    # The operator's package is beside the plugin's, and never in its zipapp.
    (root / "controller").mkdir()
    (root / "controller" / "__init__.py").write_text("raise ImportError('not in the zipapp')\n")
    package = project / "kubectl_runcommand"
    (package / "sub").mkdir(parents=True)
    (package / "py.typed").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    if plugin:
        (package / "__init__.py").write_text('"""The plugin."""\n')
        (package / "__main__.py").write_text(
            "import sys\n\n\ndef main() -> int:\n"
            "    import kubectl_runcommand\n"
            "    print('plugin', kubectl_runcommand.__file__, *sys.argv[1:])\n"
            "    return 7 if '--fail' in sys.argv else 0\n"
        )
    (root / "kubectl-plugin" / "krew").mkdir(parents=True)
    template = REPO_ROOT / "kubectl-plugin" / "krew" / "runcommand.yaml"
    (root / "kubectl-plugin" / "krew" / "runcommand.yaml").write_text(template.read_text())
    return root


def test_check_tag_accepts_a_consistent_release(tmp_path: Path) -> None:
    root = fake_project(tmp_path)
    assert release.check_tag("v1.2.3", root) == "1.2.3"
    assert release.changelog_section("1.2.3", root) == "### Added\n\n- All.\n"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: None, "tag 'v9.9.9' is not v1.2.3"),
        (
            lambda r: (r / "charts/aks-runcommand-operator/Chart.yaml").write_text(
                'version: 1.2.3\nappVersion: "1.2.2"\n'
            ),
            "appVersion is '1.2.2'",
        ),
        (
            lambda r: (r / "CHANGELOG.md").write_text("## [Unreleased]\n"),
            r"no section '## \[1.2.3\]",
        ),
        (
            lambda r: (r / "kubectl-plugin/kubectl_runcommand/__main__.py").unlink(),
            "module kubectl_runcommand.__main__ not found under kubectl-plugin/",
        ),
        (
            lambda r: (r / "emulator/pyproject.toml").write_text(
                '[project]\nname = "e"\nversion = "1.2.2"\n'
            ),
            r"emulator/pyproject.toml: version is '1.2.2', not '1.2.3'",
        ),
        (
            lambda r: (r / "kubectl-plugin/pyproject.toml").write_text(
                '[project]\nversion = "1.2.3"\ndependencies = ["PyYAML==6.0.3"]\n'
                '[project.scripts]\nkubectl-runcommand = "kubectl_runcommand.__main__:main"\n'
            ),
            "the plugin must depend on nothing",
        ),
        (lambda r: (r / "emulator/pyproject.toml").unlink(), "no pyproject.toml in emulator/"),
    ],
    ids=[
        "wrong-tag",
        "chart-app-version",
        "no-changelog-section",
        "no-plugin-module",
        "emulator-version",
        "plugin-dependency",
        "no-emulator-project",
    ],
)
def test_check_tag_refuses_inconsistent_releases(tmp_path: Path, change: Any, message: str) -> None:
    root = fake_project(tmp_path)
    change(root)
    tag = "v9.9.9" if "v9.9.9" in message else "v1.2.3"
    with pytest.raises(release.ReleaseError, match=message):
        release.check_tag(tag, root)


def test_check_tag_cli_exits_non_zero(tmp_path: Path) -> None:
    result = run(sys.executable, REPO_ROOT / "scripts" / "release.py", "check-tag", "v0.0.0-nope")
    assert result.returncode == 1
    assert "is not v" in result.stderr


# --- krew manifest and plugin archive -----------------------------------------------------------

REQUIRED_PLATFORM_FIELDS = {"selector", "uri", "sha256", "bin"}


def check_krew_manifest(manifest: dict[str, Any]) -> None:
    """The fields krew requires (krew's internal/index/validation), checked in Python."""
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert re.fullmatch(r"[\w-]+", manifest["metadata"]["name"])
    spec = manifest["spec"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-[\w.]+)?", spec["version"]), spec["version"]
    assert spec["shortDescription"] and "\n" not in spec["shortDescription"]
    assert spec["homepage"].startswith("https://")
    assert spec["platforms"]
    for platform in spec["platforms"]:
        assert platform.keys() >= REQUIRED_PLATFORM_FIELDS
        selector = platform["selector"]
        keys = set(selector.get("matchLabels", {})) | {
            e["key"] for e in selector.get("matchExpressions", [])
        }
        assert keys and keys <= {"os", "arch"}
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
        assert platform["uri"].startswith("https://")
        assert platform["bin"] == "kubectl-runcommand"


def test_krew_template_is_yaml_with_every_field_krew_requires() -> None:
    path = REPO_ROOT / "kubectl-plugin" / "krew" / "runcommand.yaml"
    template = load_yaml(path)
    assert template["metadata"]["name"] == path.stem  # krew: file name = plugin name
    rendered = yaml.safe_load(release.krew_manifest(FAKE_SHA, REPOSITORY))
    check_krew_manifest(rendered)
    (platform,) = rendered["spec"]["platforms"]
    tag = f"v{project_version()}"
    assert rendered["spec"]["version"] == tag
    assert platform["uri"] == (
        f"https://github.com/{REPOSITORY}/releases/download/{tag}/kubectl-runcommand-{tag}.tar.gz"
    )
    assert platform["sha256"] == FAKE_SHA


@pytest.mark.parametrize(
    ("sha256", "repository"),
    [("ABC", REPOSITORY), (FAKE_SHA.upper(), REPOSITORY), (FAKE_SHA, "not a repository")],
)
def test_krew_manifest_refuses_bad_inputs(sha256: str, repository: str) -> None:
    with pytest.raises(release.ReleaseError):
        release.krew_manifest(sha256, repository)


def test_check_krew_manifest_catches_a_missing_field() -> None:
    broken = yaml.safe_load(release.krew_manifest(FAKE_SHA, REPOSITORY))
    del broken["spec"]["platforms"][0]["bin"]
    with pytest.raises(AssertionError):
        check_krew_manifest(broken)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A fake project's krew archive and rendered manifest: (root, archive, manifest)."""
    root = fake_project(tmp_path / "src")
    archive = release.krew_archive(tmp_path / "dist", root)
    sha256 = run("sha256sum", archive).stdout.split()[0]
    manifest = tmp_path / "dist" / "runcommand.yaml"  # krew: the file name is the plugin name
    manifest.write_text(release.krew_manifest(sha256, REPOSITORY, root))
    return root, archive, manifest


def test_krew_archive_is_reproducible_and_holds_the_zipapp_and_license(
    built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, archive, _ = built
    assert archive.name == "kubectl-runcommand-v1.2.3.tar.gz"
    again = release.krew_archive(tmp_path / "again", root)
    assert again.read_bytes() == archive.read_bytes(), "two builds differ"
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"kubectl-runcommand", "LICENSE"}
        assert members["kubectl-runcommand"].mode == 0o755
        app = tar.extractfile("kubectl-runcommand")
        assert app is not None
        data = app.read()
    assert data.startswith(b"#!/usr/bin/env python3\n")
    (tmp_path / "app.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "app.zip") as z:
        names = z.namelist()
    assert names == [*sorted(names[:-1]), "__main__.py"]
    assert names == [
        "kubectl_runcommand/__init__.py",
        "kubectl_runcommand/__main__.py",
        "kubectl_runcommand/py.typed",
        "kubectl_runcommand/sub/__init__.py",
        "__main__.py",
    ]


def test_zipapp_refuses_a_package_without_init(tmp_path: Path) -> None:
    """zipimport cannot import namespace packages: fail the build, not the user's first run."""
    root = fake_project(tmp_path)
    (root / "kubectl-plugin" / "kubectl_runcommand" / "sub" / "__init__.py").unlink()
    (root / "kubectl-plugin" / "kubectl_runcommand" / "sub" / "m.py").write_text("")
    with pytest.raises(
        release.ReleaseError, match=r"kubectl-plugin/kubectl_runcommand/sub/ has no __init__\.py"
    ):
        release.build_zipapp(tmp_path / "app", root)


def test_krew_accepts_the_manifest_and_installs_the_archive(
    built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """krew's own validator, then `krew install --archive` (which checks the sha256, unpacks
    and links `bin`) for each OS, then the installed plugin runs with python3 and nothing else."""
    _, archive, manifest = built
    validated = run(binary("validate-krew-manifest"), "-manifest", manifest, "-skip-install")
    assert validated.returncode == 0, validated.stderr
    for os_name, arch in [("linux", "amd64"), ("linux", "arm64"), ("darwin", "arm64")]:
        krew_root = tmp_path / f"krew-{os_name}-{arch}"
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "KREW_ROOT": str(krew_root),
            "KREW_OS": os_name,
            "KREW_ARCH": arch,
        }
        installed = run(
            binary("krew"), "install", f"--manifest={manifest}", f"--archive={archive}", env=env
        )
        assert installed.returncode == 0, installed.stderr
    plugin = tmp_path / "krew-linux-amd64" / "bin" / "kubectl-runcommand"
    # Through its shebang (python3 on PATH), and with no site-packages at all (-I -S): the
    # plugin's package comes from the zipapp, not from this virtual environment.
    direct = run(plugin, "--flag")
    assert direct.returncode == 0, direct.stderr
    assert "kubectl-runcommand/kubectl_runcommand/__init__.py" in direct.stdout
    isolated = run(sys.executable, "-I", "-S", plugin, "--fail")
    assert isolated.returncode == 7, isolated.stderr
    assert isolated.stdout.startswith("plugin ") and "--fail" in isolated.stdout


def test_krew_refuses_an_archive_whose_sha256_differs(
    built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, archive, manifest = built
    manifest.write_text(
        manifest.read_text().replace(run("sha256sum", archive).stdout[:64], "1" * 64)
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KREW_ROOT": str(tmp_path / "k")}
    installed = run(
        binary("krew"), "install", f"--manifest={manifest}", f"--archive={archive}", env=env
    )
    assert installed.returncode != 0
    assert "checksum" in installed.stderr.lower() or "sha256" in installed.stderr.lower()


def test_krew_validator_refuses_a_manifest_without_bin(built: tuple[Path, Path, Path]) -> None:
    _, _, manifest = built
    manifest.write_text(manifest.read_text().replace("bin: kubectl-runcommand", "bin: ''"))
    validated = run(binary("validate-krew-manifest"), "-manifest", manifest, "-skip-install")
    assert validated.returncode != 0
    assert "`bin` has to be set" in validated.stderr


def test_the_real_plugin_runs_from_its_zipapp(tmp_path: Path) -> None:
    try:
        release.plugin_module()
    except release.ReleaseError as error:
        pytest.skip(f"the kubectl plugin is not in this tree yet: {error}")
    app = release.build_zipapp(tmp_path / "kubectl-runcommand")
    result = run(sys.executable, "-I", "-S", app, "--help")
    assert result.returncode == 0, (
        "kubectl-runcommand --help failed from its zipapp with only the standard library; the "
        f"plugin must not import third-party packages:\n{result.stderr}"
    )


# --- workflows ----------------------------------------------------------------------------------


def workflow(name: str) -> dict[str, Any]:
    data = load_yaml(WORKFLOWS / name)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def uses_lines() -> list[tuple[str, str]]:
    return [
        (path.name, line.strip())
        for path in sorted(WORKFLOWS.glob("*.yml"))
        for line in path.read_text().splitlines()
        if re.match(r"\s*(-\s+)?uses:", line)
    ]


def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment() -> None:
    lines = uses_lines()
    assert len(lines) > 10
    for name, line in lines:
        if "uses: ./" in line:  # this repository's own reusable workflow
            continue
        assert re.fullmatch(
            r"(-\s+)?uses:\s+[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s+v\d+\.\d+\.\d+", line
        ), f"{name}: {line!r} is not pinned as owner/action@<40-hex sha> # vX.Y.Z"


def test_the_same_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for _, line in uses_lines():
        match = re.search(r"uses:\s+([\w.-]+/[\w.-]+)@(\S+)", line)
        if match:
            pins.setdefault(match[1].lower(), set()).add(match[2])
    assert {action: refs for action, refs in pins.items() if len(refs) > 1} == {}


def test_workflows_ask_for_the_least_permissions() -> None:
    ci = workflow("ci.yml")
    assert ci["permissions"] == {"contents": "read"}
    assert set(ci["on"]) == {"push", "pull_request", "workflow_call"}
    release_workflow = workflow("release.yml")
    assert release_workflow["on"] == {"push": {"tags": ["v*"]}}
    assert release_workflow["permissions"] == {}
    jobs = release_workflow["jobs"]
    expected = {
        "ci": {"contents": "read"},
        "prepare": {"contents": "read"},
        "image": {"contents": "read", "packages": "write", "id-token": "write"},
        "chart": {"contents": "read", "packages": "write", "id-token": "write"},
        "github-release": {"contents": "write"},
        "docs": {"contents": "read"},
        "pages": {"pages": "write", "id-token": "write"},
    }
    assert {name: job.get("permissions") for name, job in jobs.items()} == expected


def test_release_publishes_the_docs_site_built_strictly_after_the_release() -> None:
    jobs = workflow("release.yml")["jobs"]
    assert {"run": "make docs"} in jobs["docs"]["steps"]
    assert "ci" in jobs["docs"]["needs"]
    upload = [s for s in jobs["docs"]["steps"] if "upload-pages-artifact" in s.get("uses", "")]
    assert upload and upload[0]["with"]["path"] == ".cache/site"
    assert set(jobs["pages"]["needs"]) == {"docs", "github-release"}
    assert jobs["pages"]["environment"]["name"] == "github-pages"
    assert any("actions/deploy-pages" in s.get("uses", "") for s in jobs["pages"]["steps"])


def test_release_builds_both_architectures_with_sbom_and_provenance_and_signs() -> None:
    steps = workflow("release.yml")["jobs"]["image"]["steps"]
    (build,) = [s for s in steps if "docker/build-push-action" in s.get("uses", "")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    runs = "\n".join(s.get("run", "") for s in steps)
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in runs


def test_release_installs_the_helm_the_tests_use() -> None:
    gomod = (REPO_ROOT / "tests" / "controlplane" / "gobuild" / "helm" / "go.mod").read_text()
    (tested,) = re.findall(r"helm\.sh/helm/v3 (v\S+)", gomod)
    steps = workflow("release.yml")["jobs"]["chart"]["steps"]
    (setup,) = [s for s in steps if "azure/setup-helm" in s.get("uses", "")]
    assert setup["with"]["version"] == tested


@pytest.mark.parametrize("document", ["docs/install/verifying.md"])
def test_readme_verify_commands_match_the_signing_identity(document: str) -> None:
    readme = (REPO_ROOT / document).read_text()
    identity = f"'^https://github.com/{REPOSITORY}/.github/workflows/release.yml@refs/tags/v.*$'"
    assert readme.count(f"--certificate-identity-regexp {identity}") >= 2  # image and chart
    assert "--certificate-oidc-issuer https://token.actions.githubusercontent.com" in readme
    assert workflow("release.yml")["env"]["CERT_ISSUER"] == (
        "https://token.actions.githubusercontent.com"
    )


# --- actionlint can fail ------------------------------------------------------------------------

BROKEN_WORKFLOW = """\
on: push
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - run: echo ${{ github.event.pull_request.title }}
      - uses: actions/checkout@v4
        with:
          no-such-input: true
      - run: echo "${{ steps.nope.outputs.x }}"
"""


def test_actionlint_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "broken.yml").write_text(BROKEN_WORKFLOW)
    result = run(binary("actionlint"), "-shellcheck=", "-no-color", workflows / "broken.yml")
    assert result.returncode == 1, result.stdout
    assert 'input "no-such-input" is not defined' in result.stdout
    assert 'property "nope" is not defined' in result.stdout
    assert "potentially untrusted" in result.stdout


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    shellcheck = run("sh", "-c", "command -v shellcheck").stdout.strip()
    if not shellcheck:
        pytest.skip("shellcheck is not installed (.ci/run installs it)")
    path = tmp_path / "w.yml"
    path.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: for f in $(ls *.txt); do echo $f; done\n"
    )
    result = run(binary("actionlint"), f"-shellcheck={shellcheck}", "-no-color", path)
    assert result.returncode == 1
    assert "shellcheck reported issue" in result.stdout
