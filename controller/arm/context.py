"""The runCommand ``context``: a base64-encoded zip of the files the command needs.

:func:`build_context` makes one. The zip is deterministic (same files, same bytes) so an
unchanged resource yields an identical request: entries sorted by name, timestamps fixed at
1980-01-01 (zip's epoch), mode 0644 (scripts run as ``sh script.sh``), Unix as the creating
system, DEFLATE at a fixed level.

:func:`check_context` judges one a user wrote: within the size limit, base64 of a zip, no links.

Both check every name before anything is sent, because the command pod extracts the zip: a name
must stay inside the extraction directory, and no two names may collide, neither as the same
file twice (one would silently replace the other) nor as a file and a directory (``a`` and
``a/b``: extraction fails). Files come from several sources (spec.files, ConfigMaps, Secrets),
so a collision names both sides, with their sources when the caller gives them.
"""

from __future__ import annotations

import base64
import io
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .errors import ContextTooLargeError, InvalidContextError, InvalidContextPathError

__all__ = [
    "ContextFile",
    "ContextFiles",
    "add_to_context",
    "build_context",
    "check_context",
    "normalize_context_path",
]

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = stat.S_IFREG | 0o644
_UNIX = 3
_COMPRESS_LEVEL = 6
_ENCRYPTED_FLAG = 0x1
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ContextFile:
    """One file of a context: its path in the zip, its bytes, and where it came from, for
    error messages (``"spec.files[a]"``, ``"ConfigMap x key a"``). ``repr`` hides the bytes:
    they may come from a Secret."""

    path: str
    data: bytes = field(repr=False)
    source: str | None = None

    @property
    def label(self) -> str:
        return _label(self.path, self.source)


# A mapping of path -> bytes, or (path, bytes) pairs and ContextFiles, duplicates included.
ContextFiles = Mapping[str, bytes] | Iterable[ContextFile | tuple[str, bytes]]


def normalize_context_path(name: str) -> str:
    """Return the normalised relative path of ``name``, or raise InvalidContextPathError.

    Refused: empty names, absolute paths, Windows drives, backslashes (a separator on Windows
    extractors), control characters, ``..`` anywhere, and names denoting a directory.
    """
    return _normalized(name, _label(name, None))


def build_context(files: ContextFiles, max_bytes: int) -> str:
    """Zip ``files`` deterministically and base64 the result.

    Raises InvalidContextPathError for an unsafe name or two colliding ones (naming both),
    ContextTooLargeError when the base64 text is longer than ``max_bytes``.
    """
    _check_limit(max_bytes)
    names = _Names()
    entries: dict[str, bytes] = {}
    for file in _context_files(files):
        normalized = _normalized(file.path, file.label)
        names.add_file(normalized, file.label)
        entries[normalized] = file.data

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _write_entries(archive, entries)
    return _encoded(buffer.getvalue(), max_bytes)


def add_to_context(context: str | None, files: ContextFiles, max_bytes: int) -> str:
    """``context`` (None, or one :func:`build_context` made or :func:`check_context` passed)
    with ``files`` added, entries of the original kept byte for byte. A name that collides
    with one already there is refused, naming both."""
    if context is None:
        return build_context(files, max_bytes)
    _check_limit(max_bytes)
    buffer = io.BytesIO(base64.b64decode(context, validate=True))
    names = _Names()
    with zipfile.ZipFile(buffer) as archive:
        for info in archive.infolist():
            names.add_entry(info.orig_filename, _label(info.orig_filename, "zip entry"))
    entries: dict[str, bytes] = {}
    for file in _context_files(files):
        normalized = _normalized(file.path, file.label)
        names.add_file(normalized, file.label)
        entries[normalized] = file.data
    with zipfile.ZipFile(buffer, "a") as archive:
        _write_entries(archive, entries)
    return _encoded(buffer.getvalue(), max_bytes)


def _write_entries(archive: zipfile.ZipFile, entries: Mapping[str, bytes]) -> None:
    for name in sorted(entries):
        info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = _UNIX
        info.external_attr = _FILE_MODE << 16
        archive.writestr(info, entries[name], compresslevel=_COMPRESS_LEVEL)


def _encoded(raw: bytes, max_bytes: int) -> str:
    encoded = base64.b64encode(raw).decode("ascii")
    if len(encoded) > max_bytes:
        raise ContextTooLargeError(len(encoded), max_bytes)
    return encoded


def check_context(context: str, max_bytes: int) -> None:
    """Check a ready-made ``context`` before it is sent, as :func:`build_context` checks files.

    Raises ContextTooLargeError (the base64 text is longer than ``max_bytes``), InvalidContextError
    (not strict base64, not a zip, an encrypted or symbolic-link entry) or InvalidContextPathError
    (an unsafe entry name, or two that collide). Reads the zip's directory only: nothing is
    decompressed.
    """
    _check_limit(max_bytes)
    if len(context) > max_bytes:
        raise ContextTooLargeError(len(context), max_bytes)
    try:
        raw = base64.b64decode(context, validate=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII character
        raise InvalidContextError(
            f"context is not valid base64 ({exc}); encode the zip without line breaks (base64 -w0)"
        ) from None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            infos = archive.infolist()
    except Exception as exc:
        # zipfile raises several types for damaged input (BadZipFile, ValueError, EOFError...);
        # whichever it is, the command pod could not extract this either.
        raise InvalidContextError(
            f"context is base64 but not a readable zip archive: {type(exc).__name__}: {exc}"
        ) from None
    names = _Names()
    for info in infos:
        # orig_filename is the name as stored: zipfile cuts .filename at a NUL byte.
        name = info.orig_filename
        label = _label(name, "zip entry")
        mode = info.external_attr >> 16
        if info.create_system == _UNIX and stat.S_ISLNK(mode):
            raise InvalidContextError(
                f"context entry {label} is a symbolic link; the command pod would follow it "
                "outside the context root"
            )
        if info.flag_bits & _ENCRYPTED_FLAG:
            raise InvalidContextError(
                f"context entry {label} is encrypted; the command pod cannot extract it"
            )
        names.add_entry(name, label)


class _Names:
    """The normalised names of one context so far; refuses the same file twice and a path
    used both as a file and as a directory."""

    def __init__(self) -> None:
        self._files: dict[str, str] = {}  # normalised path -> label of its entry
        self._directories: dict[str, str] = {}  # directory -> label of an entry that implies it

    def add_file(self, path: str, label: str) -> None:
        first = self._files.get(path)
        if first is not None:
            raise InvalidContextPathError(
                f"context file {label} duplicates {first}: both are {path!r}"
            )
        under = self._directories.get(path)
        if under is not None:
            raise _conflict(label, under, path)
        self._claim_parents(path, label)
        self._files[path] = label

    def add_entry(self, name: str, label: str) -> None:
        """A zip entry as stored: a name ending in '/' is a directory."""
        if name.endswith("/") and len(name) > 1:
            self.add_directory(_normalized(name[:-1], label), label)
        else:
            self.add_file(_normalized(name, label), label)

    def add_directory(self, path: str, label: str) -> None:
        file = self._files.get(path)
        if file is not None:
            raise _conflict(file, label, path)
        self._claim_parents(path, label)
        self._directories.setdefault(path, label)

    def _claim_parents(self, path: str, label: str) -> None:
        segments = path.split("/")
        for end in range(1, len(segments)):
            parent = "/".join(segments[:end])
            file = self._files.get(parent)
            if file is not None:
                raise _conflict(file, label, parent)
            self._directories.setdefault(parent, label)


def _conflict(file_label: str, other_label: str, path: str) -> InvalidContextPathError:
    return InvalidContextPathError(
        f"context files {file_label} and {other_label} conflict: {path!r} would be both a file "
        "and a directory"
    )


def _label(path: str, source: str | None) -> str:
    return f"{path!r} ({source})" if source else repr(path)


def _normalized(name: str, label: str) -> str:
    def refuse(reason: str) -> InvalidContextPathError:
        return InvalidContextPathError(f"context file name {label} {reason}")

    if not name:
        raise refuse("is empty")
    if "\\" in name:
        raise refuse("contains a backslash; use '/' as the separator")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise refuse("contains a control character")
    if name.startswith("/") or _DRIVE.match(name):
        raise refuse("is absolute; use a path relative to the context root")
    if name.endswith("/"):
        raise refuse("names a directory; list files only")
    segments = name.split("/")
    if ".." in segments:
        raise refuse("contains '..'; paths must stay inside the context root")
    normalized = posixpath.normpath(name)
    if normalized in (".", ""):
        raise refuse("does not name a file")
    return normalized


def _context_files(files: ContextFiles) -> Iterator[ContextFile]:
    if isinstance(files, Mapping):
        for path, data in files.items():
            yield ContextFile(path, data)
        return
    for item in files:
        yield item if isinstance(item, ContextFile) else ContextFile(*item)


def _check_limit(max_bytes: int) -> None:
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
