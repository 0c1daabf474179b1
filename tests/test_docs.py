"""The docs site: the strict build has no warning, the generated reference describes everything
it lists, and the landing README fits on a screen with every link resolving."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest
import yaml

from tests.controlplane.launcher import REPO_ROOT

SITE_URL = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text().split("\nnav:")[0])["site_url"]
LANDING = REPO_ROOT / "README.md"  # the landing page


def _reference() -> ModuleType:
    path = REPO_ROOT / "docs" / "hooks" / "reference.py"
    spec = importlib.util.spec_from_file_location("docs_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reference = _reference()


@functools.cache
def generated_pages() -> dict[str, str]:
    """The generated reference pages, rendered once for all the tests that read them (each
    rendering walks every CRD, the flags, the Helm values and the module map)."""
    return reference.pages()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [str(Path(sys.executable).parent / "mkdocs"), "build", "--strict", "--site-dir", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    warnings = [line for line in build.stderr.splitlines() if "WARNING" in line]
    assert build.returncode == 0 and not warnings, build.stderr[-4000:]
    return out


def test_every_flag_field_reason_and_value_has_a_description() -> None:
    assert reference.missing_descriptions() == []


def test_a_field_without_a_description_is_reported() -> None:
    crd = {"spec": {"names": {"kind": "X"}, "versions": [{"name": "v1", "schema": {
        "openAPIV3Schema": {"properties": {"spec": {"description": "d", "properties": {
            "bare": {"type": "string"}}}}}}}]}}  # fmt: skip
    fields = {f.path: f.description for _, f in reference.crd_fields(crd)}
    assert fields == {"spec": "d", "spec.bare": ""}


def _rows(page: str) -> dict[str, str]:
    """First cell (without backticks) -> last cell, for every table row of a generated page."""
    rows = {}
    for line in page.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) >= 2 and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells[-1]
    return rows


def test_every_flag_of_help_is_in_the_reference_with_its_description(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from controller.config import parser

    monkeypatch.setenv("COLUMNS", "10000")  # argparse wraps at hyphens otherwise
    help_text = parser({}).format_help()
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])\b", help_text)) - {"-h", "--help"}
    rows = _rows(generated_pages()["reference/operator-flags.md"])
    described = {f.strip("`") for cell, text in rows.items() if text for f in cell.split(", ")}
    assert flags and flags <= described, flags - described


def test_every_environment_variable_the_operator_reads_is_in_the_reference() -> None:
    page = generated_pages()["reference/operator-flags.md"]
    names = [n for n, _ in reference.environment_read_directly(in_parser=True)]
    names += [n for n, _ in reference.environment_read_directly()]
    assert {"WATCH_NAMESPACES", "MAX_LOG_BYTES", "AZURE_CLIENT_ID"} <= set(names)
    assert [n for n in names if f"`{n}`" not in page] == []


def test_every_crd_field_is_in_its_page_with_its_description() -> None:
    pages = generated_pages()
    for crd in reference.crd_documents():
        rows = _rows(pages[reference.crd_page_name(crd)])
        for _, field in reference.crd_fields(crd):
            assert rows.get(f"`{field.path}`"), f"{crd['spec']['names']['kind']} {field.path}"


def test_every_state_and_reason_is_in_the_reference_with_its_description() -> None:
    from controller.vocabulary import Reason, State

    rows = _rows(generated_pages()["reference/reasons.md"])
    for member in [*State, *Reason]:
        assert rows.get(f"`{member}`"), member


def test_every_helm_value_is_in_the_reference() -> None:
    rows = _rows(generated_pages()["reference/helm-values.md"])
    for key, schema, _, _ in reference.helm_values():
        assert f"`{key}`" in rows, key
        if not schema.get("properties"):
            assert rows[f"`{key}`"], key


def test_the_operators_metrics_are_in_the_reference() -> None:
    page = generated_pages()["reference/metrics.md"]
    for name in ("aks_runcommand_submissions_total", "aks_runcommand_runs_finished_total",
                 "aks_runcommand_errors_total", "aks_runcommand_waiting"):  # fmt: skip
        assert f"`{name}`" in page


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _anchors(html: Path) -> set[str]:
    parser = _Anchors()
    parser.feed(html.read_text())
    return parser.ids


def test_the_landing_readme_fits_and_every_link_resolves(site: Path) -> None:
    text = LANDING.read_text()
    assert len(text.encode()) <= 12 * 1024
    links = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"\*\*(https://[^*]+)\*\*", text)
    assert links
    for link in links:
        if link.startswith(SITE_URL):
            url = urlsplit(link)
            page = site / link[len(SITE_URL) :].split("#")[0] / "index.html"
            assert page.is_file(), link
            if url.fragment:
                assert url.fragment in _anchors(page), link
        elif link.startswith(("http://", "https://")):
            continue  # another site (kopf's): the tests run offline
        else:  # relative to the repository's root, where the lead moves it as README.md
            assert (REPO_ROOT / link.split("#")[0]).exists(), link


def test_every_page_of_the_nav_was_built(site: Path) -> None:
    nav = yaml.safe_load("nav:" + (REPO_ROOT / "mkdocs.yml").read_text().split("\nnav:")[1])

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for v in node.values() for p in pages(v)]
        if isinstance(node, list):
            return [p for v in node for p in pages(v)]
        return []

    for page in pages(nav["nav"]):
        directory = page.removesuffix(".md").removesuffix("index")
        assert (site / directory / "index.html").is_file(), page


REPO_BLOB = "https://github.com/aks-runcommand-operator/aks-runcommand-operator/blob/main/"


def test_links_into_the_repository_name_files_that_exist() -> None:
    """mkdocs checks links between pages; links to the repository's files are checked here."""
    linked = []
    for page in sorted((REPO_ROOT / "docs").rglob("*.md")):
        for link in re.findall(r"\]\((" + re.escape(REPO_BLOB) + r"[^)\s#]+)", page.read_text()):
            linked.append(link)
            assert (REPO_ROOT / link[len(REPO_BLOB) :]).exists(), f"{page.name}: {link}"
    assert linked


def test_every_page_has_one_title() -> None:
    """One `# ` heading per page, outside code blocks: the nav and search take it as the title."""
    pages = {
        p.relative_to(REPO_ROOT).as_posix(): p.read_text()
        for p in (REPO_ROOT / "docs").rglob("*.md")
    }
    pages.update(generated_pages())
    for name, text in pages.items():
        prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
        titles = [line for line in prose.splitlines() if line.startswith("# ")]
        assert len(titles) == 1, f"{name}: {titles}"


def _first_yaml_block_after(text: str, heading: str) -> str:
    section = text[text.index(heading) :]
    return section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]


def test_the_least_privilege_guide_shows_the_pipelines_role() -> None:
    """tests/operator/test_plugin_e2e.py proves the pipelines guide's Role is all a pipeline
    needs; the least-privilege guide must show that same Role."""
    heading = "A pipeline job instead of `az aks command invoke`"
    docs = (REPO_ROOT / "docs" / "guides" / "pipelines.md").read_text()
    least = (REPO_ROOT / "docs" / "guides" / "least-privilege.md").read_text()
    role = _first_yaml_block_after(docs, heading)
    assert "runcommandsets" in role
    assert _first_yaml_block_after(least, "## A pipeline") == role


def test_a_crd_missing_from_the_nav_gets_its_reference_entry() -> None:
    nav = [{"Reference": ["reference/index.md", {"RunCommand": "reference/crd-runcommands.md"}]}]
    reference.on_config({"nav": nav})
    entries = nav[0]["Reference"]
    pages = [v for e in entries if isinstance(e, dict) for v in e.values()]
    expected = sorted(reference.crd_page_name(crd) for crd in reference.crd_documents())
    assert sorted(pages) == expected and len(expected) >= 3
    assert entries[0] == "reference/index.md"
