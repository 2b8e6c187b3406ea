"""Wait for a change of the few Warp files that matter, with watchfiles.

Only ``previous.settings`` and the particle table are watched — never the session tree (which
grows by several files per movie). Locally, inotify watches the folders holding them
(non-recursive, filtered by name, because Warp replaces the table by delete + move, which would
orphan a watch on the file itself). On network filesystems inotify never fires for writes made by
the Warp PC, so watchfiles is forced to poll, and it polls just the files, not the folders.
Either way the wait ends after ``heartbeat`` seconds at the latest, since stability checks need
repeated looks even when nothing is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

import watchfiles


@dataclass(frozen=True, slots=True)
class Targets:
    """What to watch."""

    folders: tuple[Path, ...]
    """Folders holding the files (watched non-recursively with inotify)."""
    names: frozenset[str]
    """File names of interest in those folders."""
    files: tuple[Path, ...]
    """The files themselves (polled on network filesystems)."""


async def wait_for_change(
    targets: Targets, stop: asyncio.Event, *, heartbeat: float, force_polling: bool
) -> bool:
    """Return True when a watched file changed, False after ``heartbeat`` s or when ``stop`` is
    set (whichever comes first)."""

    def existing() -> list[Path]:
        if force_polling:
            return [p for p in targets.files if p.exists()]
        return [p for p in targets.folders if p.is_dir()]

    # A stat on a share that went away can block for long: keep it off the event loop.
    paths = await asyncio.to_thread(existing)
    if not paths:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), heartbeat)
        return False
    names = targets.names

    def wanted(_change: watchfiles.Change, path: str) -> bool:
        return Path(path).name in names

    watcher = watchfiles.awatch(
        *paths,
        watch_filter=None if force_polling else wanted,
        stop_event=stop,
        recursive=False,
        force_polling=force_polling,
        poll_delay_ms=max(100, int(min(heartbeat, 2.0) * 500)),
        rust_timeout=max(1, int(heartbeat * 1000)),
        yield_on_timeout=True,
        debounce=200,
        step=50,
    )
    try:
        async for changes in watcher:
            return bool(changes)
    finally:
        await watcher.aclose()
    return False
