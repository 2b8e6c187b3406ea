"""Which filesystem a path lives on, from ``/proc/self/mountinfo``.

Network filesystems matter twice: inotify never fires there for writes made by the Warp PC (so
watching must poll), and SQLite's WAL mode is unsafe there (so the ledger uses a rollback
journal).
"""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_FSTYPES = frozenset(
    {"cifs", "smb3", "smbfs", "nfs", "nfs4", "fuse.sshfs", "9p", "afs", "ceph", "fuse.rclone"}
)
"""Filesystem types where inotify misses remote writes and WAL is unsafe."""

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[tuple[str, str]]:
    """(mount point, fstype) pairs of a mountinfo text, in file order."""
    mounts: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if "-" not in parts or len(parts) < 7:
            continue
        sep = parts.index("-")
        if sep + 1 >= len(parts):
            continue
        mounts.append((_unescape(parts[4]), parts[sep + 1]))
    return mounts


def filesystem_type(path: Path, mountinfo: str | None = None) -> str:
    """fstype of the mount holding ``path`` ('' when unknown, e.g. not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    target = os.path.realpath(path)
    best, best_type = "", ""
    for point, fstype in parse_mountinfo(mountinfo):
        prefix = point.rstrip("/") + "/"
        if (target == point or target.startswith(prefix) or point == "/") and len(point) >= len(
            best
        ):
            best, best_type = point, fstype
    return best_type


def is_network_filesystem(path: Path, mountinfo: str | None = None) -> bool:
    """True when ``path`` is on a network filesystem (see :data:`NETWORK_FSTYPES`)."""
    return filesystem_type(path, mountinfo) in NETWORK_FSTYPES


def polling_forced_by_env() -> bool:
    """watchfiles' own environment switch for polling."""
    value = os.environ.get("WATCHFILES_FORCE_POLLING", "")
    return bool(value) and value.lower() not in {"false", "disable", "disabled"}
