"""The deterministic, traversal-safe context builder, and the check of a ready-made context."""

from __future__ import annotations

import base64
import io
import re
import stat
import warnings
import zipfile

import pytest

from controller.arm import (
    ContextFile,
    ContextTooLargeError,
    InvalidContextError,
    InvalidContextPathError,
    add_to_context,
    build_context,
    check_context,
)

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


@pytest.mark.parametrize(
    "pair", [("a/b", "a//b"), ("./a", "a"), ("x/./y", "x/y"), ("same", "same")]
)
def test_duplicates_are_refused_naming_both(pair: tuple[str, str]) -> None:
    with pytest.raises(InvalidContextPathError, match="duplicates") as caught:
        build_context([(pair[0], b"1"), (pair[1], b"2")], LIMIT)
    assert repr(pair[0]) in caught.value.message and repr(pair[1]) in caught.value.message


@pytest.mark.parametrize(
    "names",
    [("a", "a/b"), ("a/b", "a"), ("x/y", "x/y/z/w"), ("x/y/z/w", "x//y")],
)
def test_a_path_that_is_both_file_and_directory_is_refused_naming_both(
    names: tuple[str, str],
) -> None:
    with pytest.raises(InvalidContextPathError, match="both a file and a directory") as caught:
        build_context([(name, b"x") for name in names], LIMIT)
    assert all(repr(name) in caught.value.message for name in names)
    assert caught.value.code == "InvalidContextPath" and not caught.value.retryable


def test_collisions_name_the_sources_the_caller_gave() -> None:
    files = [
        ContextFile("a", b"1", "spec.files[a]"),
        ("b", b"2"),
        ContextFile("a", b"3", "ConfigMap tools key a"),
    ]
    with pytest.raises(InvalidContextPathError) as caught:
        build_context(files, LIMIT)
    assert str(caught.value) == (
        "InvalidContextPath: context file 'a' (ConfigMap tools key a) duplicates "
        "'a' (spec.files[a]): both are 'a'"
    )
    with pytest.raises(InvalidContextPathError, match=r"'\.\./x' \(Secret s key x\)"):
        build_context([ContextFile("../x", b"", "Secret s key x")], LIMIT)


def test_pairs_files_and_a_mapping_give_the_same_context() -> None:
    pairs = build_context(list(FILES.items()), LIMIT)
    files = build_context([ContextFile(name, data, "x") for name, data in FILES.items()], LIMIT)
    assert pairs == files == build_context(FILES, LIMIT)


def test_context_file_repr_hides_its_bytes() -> None:
    file = ContextFile("token", b"secret-bytes-from-a-Secret", "Secret s key token")
    assert "secret-bytes" not in repr(file)
    assert "Secret s key token" in repr(file)


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


# check_context: a ready-made context ----------------------------------------------------------


def zip_of(*entries: str | zipfile.ZipInfo) -> str:
    """base64 of a zip with ``entries`` as written (no checks; duplicates allowed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; they are the point
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry in entries:
                archive.writestr(entry, b"" if str(entry).endswith("/") else b"data")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def renamed(context: str, name: str, raw: bytes) -> str:
    """``context`` with entry ``name`` renamed to ``raw`` (same length) in the stored bytes:
    zipfile itself refuses to write some names (it cuts them at a NUL byte)."""
    archive = base64.b64decode(context).replace(name.encode(), raw)
    return base64.b64encode(archive).decode("ascii")


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "entries",
    [
        # As `zip -r` writes them: directory entries before their files.
        ("manifests/", "manifests/app/", "manifests/app/deploy.yaml", "x"),
        (),  # an empty zip is a valid, if useless, context
    ],
    ids=["directories", "empty"],
)
def test_a_zip_with_directory_entries_passes_and_one_unsafe_entry_more_does_not(
    entries: tuple[str, ...],
) -> None:
    """check_context raises or returns nothing: its verdict is shown by the same zip with one
    unsafe entry added, which it refuses naming that entry."""
    check_context(zip_of(*entries), LIMIT)
    with pytest.raises(InvalidContextPathError, match=r"\.\./escape"):
        check_context(zip_of(*entries, "../escape"), LIMIT)


def test_a_built_context_passes_the_check_of_ready_made_ones() -> None:
    context = build_context(FILES, LIMIT)
    check_context(context, LIMIT)
    assert unzip(context).namelist() == sorted(FILES)  # what was checked is what was built


def test_a_context_over_the_limit_is_too_large_before_it_is_decoded() -> None:
    context = zip_of("a")
    check_context(context, len(context))
    with pytest.raises(ContextTooLargeError) as caught:
        check_context(context, len(context) - 1)
    assert (caught.value.size, caught.value.limit) == (len(context), len(context) - 1)
    with pytest.raises(ContextTooLargeError):
        check_context("not base64 at all" * 100, 100)


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        ("not base64!", "not valid base64"),
        ("UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=", "not valid base64"),  # bad padding
        ("ü" * 8, "not valid base64"),
        (zip_of("a")[:40] + "\n" + zip_of("a")[40:], "base64 -w0"),
        ("", "not a readable zip"),
        (base64.b64encode(b"just some text, not a zip").decode(), "not a readable zip"),
        (base64.b64encode(base64.b64decode(zip_of("a"))[:-10]).decode(), "not a readable zip"),
        (zip_of("bin/", symlink("bin/kubectl")), "symbolic link"),
    ],
    ids=[
        "garbage",
        "padding",
        "non-ascii",
        "line-break",
        "empty",
        "text",
        "truncated-zip",
        "symlink",
    ],
)
def test_a_context_that_is_not_base64_of_a_plain_zip_is_invalid(context: str, reason: str) -> None:
    with pytest.raises(InvalidContextError, match=reason) as caught:
        check_context(context, LIMIT)
    error = caught.value
    assert type(error) is InvalidContextError
    assert (error.code, error.retryable) == ("InvalidContext", False)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (("/etc/passwd",), "absolute"),
        (("C:/x",), "absolute"),
        (("../x",), "'..'"),
        (("a/../../b",), "'..'"),
        (("a/../",), "'..'"),
        (("a\\b",), "backslash"),
        (("a", "a"), "duplicates"),
        (("./a", "a"), "duplicates"),
        (("a", "a/b"), "both a file and a directory"),
        (("a/b", "a"), "both a file and a directory"),
        (("a/", "a"), "both a file and a directory"),
        (("a", "a/"), "both a file and a directory"),
    ],
)
def test_unsafe_or_colliding_entry_names_are_refused(entries: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidContextPathError, match=reason) as caught:
        check_context(zip_of(*entries), LIMIT)
    assert (caught.value.code, caught.value.retryable) == ("InvalidContextPath", False)
    assert "(zip entry)" in caught.value.message


def test_an_entry_name_with_a_nul_byte_is_refused_not_cut_short() -> None:
    context = renamed(zip_of("safe-name"), "safe-name", b"safe\x00../x")
    with pytest.raises(InvalidContextPathError, match="control character"):
        check_context(context, LIMIT)


def test_an_encrypted_entry_is_refused() -> None:
    archive = bytearray(base64.b64decode(zip_of("secret.txt")))
    central = archive.index(b"PK\x01\x02")  # the central directory record zipfile lists
    archive[central + 8] |= 0x1  # general purpose flag: encrypted
    with pytest.raises(InvalidContextError, match="encrypted"):
        check_context(base64.b64encode(archive).decode("ascii"), LIMIT)


# add_to_context: the ExactlyOnce wrapper's files next to the run's own ---------------------


WRAPPER = [ContextFile(".wrap/run.sh", b"echo wrapped\n", "the wrapper")]


def test_files_added_to_a_ready_made_zip_keep_its_entries_byte_for_byte() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("bin/tool", date_time=(2020, 5, 6, 7, 8, 10))
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(info, b"#!/bin/sh\n")
        archive.writestr("dir/", b"")
    original = base64.b64encode(buffer.getvalue()).decode()

    added = add_to_context(original, WRAPPER, LIMIT)

    check_context(added, LIMIT)
    archive = unzip(added)
    assert archive.namelist() == ["bin/tool", "dir/", ".wrap/run.sh"]
    kept = archive.getinfo("bin/tool")
    assert (kept.date_time, kept.external_attr >> 16) == (
        (2020, 5, 6, 7, 8, 10),
        stat.S_IFREG | 0o755,
    )
    assert archive.read(".wrap/run.sh") == b"echo wrapped\n"
    assert add_to_context(original, WRAPPER, LIMIT) == added  # deterministic


def test_files_added_to_no_context_or_to_built_files_make_one_context() -> None:
    assert unzip(add_to_context(None, WRAPPER, LIMIT)).namelist() == [".wrap/run.sh"]
    built = add_to_context(build_context(FILES, LIMIT), WRAPPER, LIMIT)
    assert sorted(unzip(built).namelist()) == sorted([*FILES, ".wrap/run.sh"])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ((".wrap/run.sh",), "'.wrap/run.sh' (the wrapper) duplicates '.wrap/run.sh' (zip entry)"),
        ((".wrap",), "'.wrap' (zip entry) and '.wrap/run.sh' (the wrapper) conflict"),
    ],
    ids=["same-path", "file-over-directory"],
)
def test_an_added_file_that_collides_is_refused_naming_both(
    entries: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidContextPathError, match=re.escape(message)):
        add_to_context(zip_of(*entries), WRAPPER, LIMIT)


def test_the_limit_applies_to_the_context_with_the_files_added() -> None:
    context = build_context({"a": b"x"}, LIMIT)
    with pytest.raises(ContextTooLargeError):
        add_to_context(context, WRAPPER, len(context) + 10)
