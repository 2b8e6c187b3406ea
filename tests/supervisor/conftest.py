"""Fixtures of the supervisor tests: a tiny classification setup on the built-in engine."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from live2d_tui.config import Config, JobSettings, ServerConfig
from live2d_tui.events import Event, EventBus

TINY_JOB = JobSettings(
    mask_radius=60.0,
    class_number=4,
    particles_per_class=20,
    run_count_startup=2,
    run_count_refine=1,
    particle_count_initial=100,
    particle_count_update=60,
    stream_after_abinit=False,
)
"""Seed + 2 startup + 1 refinement cycles of 4 classes: a job takes a few seconds. After the ab
initio the next job is seeded, as in the original (the streaming tests switch to streaming)."""


def tiny_server(**changes: object) -> ServerConfig:
    """Built-in engine, 2 processes, fast polling and retries."""
    base = ServerConfig(
        engine="builtin",  # type: ignore[arg-type]
        pool_size=2,
        interval=0.2,
        retry_seconds=0.05,
        min_free_gb=0.0,
        niceness=0,
    )
    return base.with_changes(**changes) if changes else base


def tiny_config(**server_changes: object) -> Config:
    return Config(server=tiny_server(**server_changes), job=TINY_JOB)


class Recorder:
    """Collects events and lets a test wait for one."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        bus.subscribe(self)

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(event):
                future.set_result(event)

    def of[T](self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait(self, predicate: Callable[[Event], bool], timeout: float = 120.0) -> Event:
        for event in self.events:
            if predicate(event):
                return event
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)

    async def wait_new(self, predicate: Callable[[Event], bool], timeout: float = 120.0) -> Event:
        """Like :meth:`wait`, ignoring events already recorded."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return await asyncio.wait_for(future, timeout)


def child_pids() -> list[int]:
    """Live (non-zombie) child processes of this process."""
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def engine_processes(output_folder: Path) -> list[int]:
    """Live processes whose command line or working directory is inside ``output_folder``."""
    needle = str(output_folder)
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat[stat.rindex(")") + 2] == "Z":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if needle in cmd or cwd.startswith(needle):
            found.append(int(entry.name))
    return found


@pytest.fixture
def warp_session(make_warp_session) -> Path:  # type: ignore[no-untyped-def]
    """A finished Warp session of 4 micrographs × ~45 particles (184), 64 px, 150 Å."""
    return make_warp_session(  # type: ignore[no-any-return]
        micrographs=4, particles_per_micrograph=40, box=64, seed=1
    )
