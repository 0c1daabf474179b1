"""The Dockerfile, checked statically (there is no container engine here to build it)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
VALUES = REPO_ROOT / "charts" / "aks-runcommand-operator" / "values.yaml"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def text(self) -> str:
        return "\n".join(f"{kw} {args}" for kw, args in self.instructions)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with line continuations joined, comments and blank lines dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    result = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def parse() -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            match = re.fullmatch(
                r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE
            )
            assert match, f"unparsable FROM {args}"
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m[1] or m[2]], match[1])
            stages.append(Stage(base, match[2]))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM, not {keyword}"
            name, _, default = args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse()[1]


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for name, value in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", args):
            env[name] = value.strip('"')
    return env


def test_two_stages_on_a_pinned_slim_python(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == ["builder", "runtime"]
    for stage in stages:
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", stage.base), stage.base


def test_builder_builds_wheels_from_pyproject(stages: list[Stage]) -> None:
    builder = stages[0]
    copied = " ".join(builder.all("COPY"))
    assert "pyproject.toml" in copied and "controller" in copied
    assert any(
        re.search(r"\bpip wheel\b.*--wheel-dir /wheels \.$", run) for run in builder.all("RUN")
    )


def test_runtime_installs_only_the_operator_wheel(stages: list[Stage]) -> None:
    runtime = stages[-1]
    runs = runtime.all("RUN")
    installs = [run for run in runs if "pip install" in run]
    assert len(installs) == 1
    (install,) = installs
    assert "--no-index" in install and "--find-links=/wheels" in install
    assert "from=builder" in install
    assert re.search(r"pip install (--\S+ )*aks-runcommand-operator(\s|$)", install), install
    # No extras (test/dev), no test tools, nothing from the build context.
    text = runtime.text()
    for forbidden in ("[test", "[dev", "pytest", "kubectl", "helm", "kmock"):
        assert forbidden not in text, f"{forbidden!r} in the runtime stage"
    for copy in runtime.all("COPY"):
        assert copy.startswith("--from=builder"), f"runtime COPY from the build context: {copy}"


def test_runtime_runs_as_a_numeric_non_root_user_matching_the_chart(stages: list[Stage]) -> None:
    runtime = stages[-1]
    (user,) = runtime.all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "USER must be numeric for runAsNonRoot to verify it"
    assert int(uid) != 0 and int(gid) != 0
    values = yaml.safe_load(VALUES.read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["securityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    # The user is created with that uid.
    assert any(f"--uid {uid}" in run for run in runtime.all("RUN"))
    # Nothing runs as root after USER.
    keywords = [k for k, _ in runtime.instructions]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")


def test_runtime_works_with_a_read_only_root_filesystem(stages: list[Stage]) -> None:
    env = env_of(stages[-1])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["TMPDIR"] == "/tmp"
    values = yaml.safe_load(VALUES.read_text())
    assert values["securityContext"]["readOnlyRootFilesystem"] is True


def test_entrypoint_is_the_console_script(stages: list[Stage]) -> None:
    (entrypoint,) = stages[-1].all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["aks-runcommand-operator"]  # exec form: signals reach kopf
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["aks-runcommand-operator"] == "controller.__main__:main"


def test_dockerignore_keeps_the_context_to_what_the_build_copies(stages: list[Stage]) -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything excluded ...
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for copy in stages[0].all("COPY"):
        *sources, _destination = copy.split()
        copied.update(s.rstrip("/") for s in sources if not s.startswith("--"))
    assert copied <= included, f"COPY sources excluded by .dockerignore: {copied - included}"
    assert included <= copied | {"README.md"}


# The image is built from the operator's distribution only --------------------------------------

# The repository's two other distributions (a token issuer with a `bash -c` executor, and the
# kubectl plugin): neither is in the build context, the wheel or the image.
OTHER_DISTRIBUTIONS = ("emulator", "kubectl-plugin")
OTHER_PACKAGES = ("aks_arm_emulator", "kubectl_runcommand")
OPERATOR_FILES = ("pyproject.toml", "README.md", "controller/")
# The programs the builder stage's RUN lines may use: the test below runs them here, on the host.
BUILDER_PROGRAMS = {"pip"}
WILDCARDS = {"**": ".*", "*": "[^/]*", "?": "[^/]"}


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(excludes, regex) per .dockerignore line, in order (Docker: the last match wins)."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        assert not set(pattern) & set("[]\\"), f"this test does not parse {line!r}"
        regex = "".join(
            WILDCARDS.get(part, re.escape(part)) for part in re.split(r"(\*\*|\*|\?)", pattern)
        )
        patterns.append((excludes, re.compile(regex)))
    return patterns


def in_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends `path` (relative, '/'-separated) to the build: a pattern that matches
    the path or one of its parent directories decides, the last one to match winning."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for excludes, regex in patterns:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = excludes
    return not excluded


def context_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    patterns = dockerignore_patterns()
    return [path for path in listed if (REPO_ROOT / path).is_file() and in_context(path, patterns)]


def test_the_build_context_is_the_operator_distribution_only() -> None:
    files = context_files()
    assert "controller/__main__.py" in files and "pyproject.toml" in files
    assert [path for path in files if not path.startswith(OPERATOR_FILES)] == []
    for directory in OTHER_DISTRIBUTIONS:  # they exist: they are left out
        assert (REPO_ROOT / directory / "pyproject.toml").is_file(), directory


def test_the_operator_distribution_has_only_the_operator_script(stages: list[Stage]) -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"aks-runcommand-operator": "controller.__main__:main"}
    # No guard in the image: nothing to drop, nothing to check for.
    text = "\n".join(stage.text() for stage in stages)
    for name in (*OTHER_DISTRIBUTIONS, *OTHER_PACKAGES, "aks-arm-emulator", "kubectl-runcommand"):
        assert name not in text, f"the Dockerfile names {name!r}"


@pytest.fixture(scope="module")
def image_wheel(stages: list[Stage], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's wheel, built as the builder stage builds it: from the build context that
    .dockerignore leaves, with the stage's COPY and RUN instructions (its dependencies' wheels,
    which the image also installs, are not built here)."""
    root = tmp_path_factory.mktemp("image-build")
    context, workdir, wheels = root / "context", root / "src", root / "wheels"
    for path in context_files():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, context / path)
    workdir.mkdir()
    builder = stages[0]
    assert builder.all("WORKDIR") == ["/src"]
    for keyword, args in builder.instructions:
        if keyword == "COPY":
            *sources, destination = args.split()
            for source in sources:
                into = destination.endswith("/")
                target = workdir / destination / (Path(source).name if into else "")
                if (context / source).is_dir():
                    shutil.copytree(context / source, target, dirs_exist_ok=True)
                else:
                    shutil.copy2(context / source, target)
        elif keyword == "RUN":
            for command in args.split("&&"):
                program = command.split()[0]
                assert program in BUILDER_PROGRAMS, f"teach this test to run {command!r}"
            command = args.replace(
                "pip wheel --wheel-dir /wheels .",
                f"{sys.executable} -m pip wheel --no-deps --wheel-dir {wheels} .",
            )
            assert "/wheels" not in command.replace(str(wheels), ""), command
            subprocess.run(
                ["bash", "-c", command],
                cwd=workdir,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                check=True,
                capture_output=True,
                timeout=300,
            )
    (wheel,) = wheels.glob("aks_runcommand_operator-*.whl")
    return wheel


def test_the_image_wheel_holds_only_the_operator(image_wheel: Path) -> None:
    with zipfile.ZipFile(image_wheel) as wheel:
        names = wheel.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    assert "controller/__main__.py" in names and "controller/core/__init__.py" in names
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"controller"}
    assert [n for n in names if n.startswith(OTHER_PACKAGES)] == []
    assert "aks-runcommand-operator = controller.__main__:main" in scripts
    assert "emulator" not in scripts and "kubectl" not in scripts


def test_installing_the_image_wheel_installs_only_the_operator(
    image_wheel: Path, tmp_path: Path
) -> None:
    """What the runtime stage's `pip install` puts on disk, from that wheel."""
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
    subprocess.run(
        [*pip, "--target", str(target), str(image_wheel)],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (target / "controller" / "__main__.py").is_file()
    packages = sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info"))
    assert packages == ["bin", "controller"]
    scripts = sorted(p.name for p in (target / "bin").iterdir())
    assert scripts == ["aks-runcommand-operator"]
