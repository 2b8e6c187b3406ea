"""Atomic, durable file writes: temp file in the same folder, fsync, rename, fsync the folder.

Every file that another part of the program (or another program) reads back — session state,
configuration, cycle stars — is written through here, so a crash, a full disk or a kill leaves
either the old content or the new content, never a torn file.

The temporary file is created like any new file (mode 0666 less the umask, and a folder's
default ACL applies), not with :func:`tempfile.mkstemp`'s 0600: the rename keeps the temporary
file's mode, and colleagues on a shared workstation (and ``warp_to_cistem``) must be able to
read the results.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk; a no-op where the OS does not allow it."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


NEW_FILE_MODE = 0o666
"""The mode new files are created with; the kernel takes the umask (or default ACL) off it."""

_TEMP_TRIES = 100


def create_temp_file(folder: Path, name: str) -> tuple[int, Path]:
    """Create a new, empty, uniquely named temporary file ``.<name>.<random>.tmp`` in ``folder``.

    Unlike :func:`tempfile.mkstemp` the file gets the mode any new file gets (0666 less the
    umask), so the file it is renamed to is readable by whoever the user's umask allows.

    Returns:
        An open read-write descriptor and the file's path.

    Raises:
        OSError: the folder cannot be written (FileExistsError after many name collisions).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    for _ in range(_TEMP_TRIES):
        path = Path(folder) / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(path, flags, NEW_FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {name} in {folder}")


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    binary = "b" in mode
    fd, tmp = create_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    with atomic_writer(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically and durably."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
