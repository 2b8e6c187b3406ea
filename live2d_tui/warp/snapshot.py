"""Stable snapshots of files another machine rewrites non-atomically.

A file is *stable* when ``(size, mtime_ns)`` is identical on two polls at least
``min_interval`` seconds apart (Warp's own "ripe" rule is similar). Only then is it read and
handed to a validator; a read during which the signature changed is discarded. A vanished file
(``FileNotFoundError``: Warp deletes and moves the table in) or an invalid read is transient: the
previous snapshot stays in force and the next poll tries again.

The source's handle is held only while its bytes are copied, never while they are parsed (Warp
deletes and moves its tables; a handle held long on an SMB share can make Warp spin):

- :class:`StableSnapshot` (small files, e.g. ``previous.settings``) reads the file whole into
  memory, closes it, then parses the bytes;
- :class:`CopiedSnapshot` (Warp's particle table, hundreds of MB in a long session) copies it
  with a kernel copy to a scratch file in a local folder, re-stats the source to confirm it did
  not change during the copy, then parses the scratch file streaming and deletes it. Memory
  does not grow with the file, and the source is open exactly as long as a whole read would
  take (parsing the source directly instead would hold its handle for the whole, seconds-long
  parse, and a rewrite during the parse could mix two versions).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

Signature = tuple[int, int]
"""(size, mtime_ns) of a file."""


def file_signature(path: Path) -> Signature | None:
    """``(size, mtime_ns)`` of ``path``, or None when it does not exist (right now)."""
    try:
        st = Path(path).stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_size, st.st_mtime_ns)


class StabilityTracker:
    """Remembers when each path's signature was first seen, to tell settled files apart."""

    def __init__(self, min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.min_interval = min_interval
        self._clock = clock
        self._seen: dict[str, tuple[Signature, float]] = {}

    def check(self, key: str, signature: Signature | None) -> bool:
        """Record ``signature`` for ``key``; True when it has been the same for ≥ min_interval.

        The first observation of a signature is never stable: it needs a second poll.
        """
        now = self._clock()
        if signature is None:
            self._seen.pop(key, None)
            return False
        previous = self._seen.get(key)
        if previous is None or previous[0] != signature:
            self._seen[key] = (signature, now)
            return False
        return now - previous[1] >= self.min_interval


@dataclass(slots=True)
class SnapshotResult[T]:
    """Outcome of one :meth:`StableSnapshot.poll`."""

    value: T | None
    """The snapshot in force (the previous one when nothing new was accepted)."""
    changed: bool
    """A new snapshot was accepted in this poll."""
    error: str | None = None
    """Why a stable read was rejected (the previous snapshot stays)."""
    missing: bool = False
    """The file does not exist right now."""
    settling: bool = False
    """The file changed and is not stable yet: look again after ``min_interval``."""


class StableSnapshot[T]:
    """The latest valid, stable content of one file, parsed by ``parse``.

    ``parse(data, source)`` raises ``ValueError`` (or a subclass) for an invalid read.
    """

    def __init__(
        self,
        path: Path,
        parse: Callable[[bytes, str], T],
        *,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self._parse = parse
        self._tracker = StabilityTracker(min_interval, clock)
        self._accepted: Signature | None = None
        self._rejected: Signature | None = None
        self.value: T | None = None

    @property
    def accepted(self) -> Signature | None:
        """The signature of the content in :attr:`value` (``None`` before the first)."""
        return self._accepted

    def poll(self) -> SnapshotResult[T]:
        """Stat the file; read, parse and accept it if it is stable and new."""
        signature = file_signature(self.path)
        if signature is None:
            self._tracker.check(str(self.path), None)
            return SnapshotResult(self.value, changed=False, missing=True)
        if signature == self._accepted or signature == self._rejected:
            return SnapshotResult(self.value, changed=False)
        if not self._tracker.check(str(self.path), signature):
            return SnapshotResult(self.value, changed=False, settling=True)
        try:
            value = self._load(signature)
        except FileNotFoundError:
            return SnapshotResult(self.value, changed=False, missing=True)
        except _Changed:  # rewritten while we read: try again at the next poll
            return SnapshotResult(self.value, changed=False, settling=True)
        except ValueError as exc:
            self._rejected = signature
            return SnapshotResult(self.value, changed=False, error=str(exc))
        self._accepted = signature
        self._rejected = None
        self.value = value
        return SnapshotResult(value, changed=True)

    def _load(self, signature: Signature) -> T:
        """Read and parse the file whose stable signature is ``signature``.

        Raises:
            FileNotFoundError: the file vanished.
            _Changed: the file changed while it was read.
            ValueError: the parser rejected it.
        """
        data = self.path.read_bytes()
        if file_signature(self.path) != signature or len(data) != signature[0]:
            raise _Changed
        return self._parse(data, str(self.path))


class _Changed(Exception):
    """The file changed while it was being read."""


class CopiedSnapshot[T](StableSnapshot[T]):
    """A :class:`StableSnapshot` of a large file, copied locally and parsed from the copy.

    ``parse_file(path, source)`` parses the local copy at ``path`` (naming ``source``, the
    original, in errors) and raises ``ValueError`` (or a subclass) for an invalid file.
    """

    def __init__(
        self,
        path: Path,
        parse_file: Callable[[Path, str], T],
        *,
        scratch_folder: Path | None = None,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """See the class docstring.

        Args:
            path: the file to follow.
            parse_file: the parser of a local copy.
            scratch_folder: where the copy is made (created if needed), ideally a local disk;
                the system's temporary folder by default.
            min_interval: see :class:`StabilityTracker`.
            clock: see :class:`StabilityTracker`.
        """
        super().__init__(path, _never, min_interval=min_interval, clock=clock)
        self._parse_file = parse_file
        folder = Path(tempfile.gettempdir()) if scratch_folder is None else Path(scratch_folder)
        self.scratch = folder / f".{self.path.name}.scratch"
        """The copy being parsed; it exists only during a poll (a fixed name, so a crash
        leaves at most one behind, overwritten by the next poll)."""

    def _load(self, signature: Signature) -> T:
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self.path, self.scratch)  # sendfile: no user-space buffer
            if (
                file_signature(self.path) != signature
                or self.scratch.stat().st_size != signature[0]
            ):
                raise _Changed
            return self._parse_file(self.scratch, str(self.path))
        finally:
            with contextlib.suppress(OSError):
                self.scratch.unlink()


def _never(data: bytes, source: str) -> NoReturn:
    raise AssertionError("CopiedSnapshot parses files, not bytes")
