"""Stable snapshots of files another machine rewrites non-atomically.

A file is *stable* when ``(size, mtime_ns)`` is identical on two polls at least
``min_interval`` seconds apart (Warp's own "ripe" rule is similar). Only then is it read — whole,
into memory, the handle closed at once — and handed to a validator. A vanished file
(``FileNotFoundError``: Warp deletes and moves the table in) or an invalid read is transient: the
previous snapshot stays in force and the next poll tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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

    def forget(self, key: str) -> None:
        """Drop what is known about ``key``."""
        self._seen.pop(key, None)


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
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SnapshotResult(self.value, changed=False, missing=True)
        if file_signature(self.path) != signature or len(data) != signature[0]:
            # Rewritten while we read: try again at the next poll.
            return SnapshotResult(self.value, changed=False, settling=True)
        try:
            value = self._parse(data, str(self.path))
        except ValueError as exc:
            self._rejected = signature
            return SnapshotResult(self.value, changed=False, error=str(exc))
        self._accepted = signature
        self._rejected = None
        self.value = value
        return SnapshotResult(value, changed=True)

    def reset(self) -> None:
        """Forget the accepted signature so the next stable read is accepted again."""
        self._accepted = None
        self._rejected = None
