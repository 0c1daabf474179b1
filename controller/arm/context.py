"""Build the runCommand ``context``: a base64-encoded zip of the files the command needs.

The zip is deterministic (same files, same bytes) so an unchanged resource yields an identical
request: entries sorted by name, timestamps fixed at 1980-01-01 (zip's epoch), mode 0644
(scripts run as ``sh script.sh``), Unix as the creating system, DEFLATE at a fixed level.
File names are checked before anything is zipped: the command pod extracts the zip, so a name
must stay inside the extraction directory.
"""

from __future__ import annotations

import base64
import io
import posixpath
import re
import stat
import zipfile
from collections.abc import Mapping

from .errors import ContextTooLargeError, InvalidContextPathError

__all__ = ["build_context", "normalize_context_path"]

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = stat.S_IFREG | 0o644
_UNIX = 3
_COMPRESS_LEVEL = 6
_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_context_path(name: str) -> str:
    """Return the normalised relative path of ``name``, or raise InvalidContextPathError.

    Refused: empty names, absolute paths, Windows drives, backslashes (a separator on Windows
    extractors), control characters, ``..`` anywhere, and names denoting a directory.
    """

    def refuse(reason: str) -> InvalidContextPathError:
        return InvalidContextPathError(f"context file name {name!r} {reason}")

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


def build_context(files: Mapping[str, bytes], max_bytes: int) -> str:
    """Zip ``files`` (relative path -> content) deterministically and base64 the result.

    Raises InvalidContextPathError for an unsafe or duplicate name, ContextTooLargeError when
    the base64 text is longer than ``max_bytes``.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    entries: dict[str, bytes] = {}
    for name, content in files.items():
        normalized = normalize_context_path(name)
        if normalized in entries:
            raise InvalidContextPathError(
                f"context file name {name!r} duplicates another entry after normalisation "
                f"(both are {normalized!r})"
            )
        entries[normalized] = content

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            archive.writestr(info, entries[name], compresslevel=_COMPRESS_LEVEL)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    if len(encoded) > max_bytes:
        raise ContextTooLargeError(len(encoded), max_bytes)
    return encoded
