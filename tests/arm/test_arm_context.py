"""The deterministic, traversal-safe context builder."""

from __future__ import annotations

import base64
import io
import stat
import zipfile

import pytest

from controller.arm import ContextTooLargeError, InvalidContextPathError, build_context

FILES = {
    "ns.yaml": b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n",
    "manifests/deploy.yaml": b"kind: Deployment\n" * 20,
    "scripts/run.sh": b"#!/bin/sh\nkubectl apply -f ns.yaml\n",
}
LIMIT = 1_000_000


def unzip(context: str) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(base64.b64decode(context, validate=True)))


def test_round_trip_with_fixed_metadata() -> None:
    archive = unzip(build_context(FILES, LIMIT))

    assert archive.namelist() == sorted(FILES)
    for info in archive.infolist():
        assert archive.read(info) == FILES[info.filename]
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert stat.S_IMODE(info.external_attr >> 16) == 0o644
        assert stat.S_ISREG(info.external_attr >> 16)


def test_same_files_give_the_same_bytes_whatever_the_insertion_order() -> None:
    first = build_context(FILES, LIMIT)
    again = build_context(dict(FILES), LIMIT)
    reordered = build_context(dict(reversed(list(FILES.items()))), LIMIT)
    assert first == again == reordered
    assert build_context({**FILES, "ns.yaml": b"changed"}, LIMIT) != first


def test_names_are_normalised() -> None:
    archive = unzip(build_context({"./a//b/./c.yaml": b"x"}, LIMIT))
    assert archive.namelist() == ["a/b/c.yaml"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x", "'..'"),
        ("a/../../b", "'..'"),
        ("a/../b", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:\\x", "backslash"),
        ("C:/x", "absolute"),
        ("..\\x", "backslash"),
        ("", "empty"),
        (".", "does not name a file"),
        ("dir/", "directory"),
        ("a\x00b", "control character"),
    ],
)
def test_unsafe_names_are_refused(name: str, reason: str) -> None:
    with pytest.raises(InvalidContextPathError, match=reason):
        build_context({name: b"x"}, LIMIT)


@pytest.mark.parametrize("pair", [("a/b", "a//b"), ("./a", "a"), ("x/./y", "x/y")])
def test_duplicates_after_normalisation_are_refused(pair: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="duplicates"):
        build_context({pair[0]: b"1", pair[1]: b"2"}, LIMIT)


def test_size_limit_applies_to_the_base64_text() -> None:
    size = len(build_context(FILES, LIMIT))
    assert build_context(FILES, size) is not None  # exactly at the limit is fine
    with pytest.raises(ContextTooLargeError) as caught:
        build_context(FILES, size - 1)
    assert str(caught.value) == (
        f"ContextTooLarge: context is {size} bytes after zip+base64, limit is {size - 1}"
    )


def test_non_positive_limit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        build_context(FILES, 0)
