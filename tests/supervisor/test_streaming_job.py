"""A streaming job in the supervisor: triggers, stop, abort and recovery after a restart, on a
simulated live session and the built-in engine (real subprocesses, real files)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from live2d_tui.config import ClassificationType, Config
from live2d_tui.events import (
    BlockType,
    CycleFinished,
    JobFinished,
    SessionStatus,
    StreamState,
)
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session
from live2d_tui.supervisor import Supervisor
from live2d_tui.supervisor.state import load_state

from .conftest import TINY_JOB, Recorder, engine_processes, tiny_server

STREAM_JOB = TINY_JOB.with_changes(stream_after_abinit=True, stream_batch=40, stream_revisit=1)


def stream_config() -> Config:
    return Config(server=tiny_server(), job=STREAM_JOB)


class LiveSession:
    """A simulated microscope that writes ``first`` movies, then one more each time the test
    releases it."""

    def __init__(self, folder: Path, *, micrographs: int, first: int, seed: int = 3) -> None:
        self.folder = folder
        self._gate = threading.Semaphore(0)
        self._first = first
        self._closed = False
        opts = SimulationOptions(
            micrographs=micrographs, particles_per_micrograph=40, box=64, seed=seed, rate=0.01
        )
        self.thread = threading.Thread(
            target=simulate_session, args=(folder, opts), kwargs={"on_event": self._pause}
        )

    def _pause(self, event: SimEvent) -> None:
        if event.kind == "movie_done" and event.micrograph >= self._first - 1 and not self._closed:
            self._gate.acquire(timeout=240)

    def release(self, movies: int = 1) -> None:
        for _ in range(movies):
            self._gate.release()

    def close(self) -> None:
        self._closed = True
        self.release(100)
        self.thread.join(240)


@contextmanager
def live_session(folder: Path, **kwargs: int) -> Iterator[LiveSession]:
    live = LiveSession(folder, **kwargs)
    live.thread.start()
    try:
        while not (folder / "previous.settings").exists():
            threading.Event().wait(0.05)
        yield live
    finally:
        live.close()


def _history_files(out: Path) -> None:
    """Every recorded cycle has its files; records with a star match its rows."""
    loaded = load_state(out)
    assert loaded is not None
    for record in loaded.state.cycles:
        assert (out / f"{record.name}.mrc").is_file()
        assert len(read_star(out / f"{record.name}.star")) == record.particle_count
    for record in loaded.state.stream_cycles:
        assert (out / f"{record.name}.mrc").is_file()
        assert not (out / f"{record.name}.star").exists()


async def test_streaming_after_ab_initio_updates_on_batches_and_stops(tmp_path: Path) -> None:
    warp = tmp_path / "warp"
    out = warp / "classification"
    with live_session(warp, micrographs=8, first=3) as live:
        sup = Supervisor(stream_config(), warp_folder=warp)
        rec = Recorder(sup.bus)
        await sup.start()
        try:
            await sup.start_automatic()
            first = await rec.wait(lambda e: isinstance(e, JobFinished))
            assert isinstance(first, JobFinished) and first.success
            assert sup.snapshot().settings.classification_type is ClassificationType.STREAMING
            # the streaming job starts from the ab initio's result and refines it once
            update = await rec.wait(
                lambda e: isinstance(e, CycleFinished) and e.number == 4 and e.success
            )
            assert update is not None
            live.release()  # 40 more particles: the next update
            state = await rec.wait(
                lambda e: isinstance(e, StreamState) and e.cycle == 5 and not e.updating, 180
            )
            assert isinstance(state, StreamState)
            assert state.particles > 102 and state.blocks >= 3
            await sup.stop()
            done = await rec.wait_new(lambda e: isinstance(e, JobFinished))
            assert isinstance(done, JobFinished) and done.success
            snap = sup.snapshot()
            assert snap.status is SessionStatus.STOPPED
            streamed = [c for c in snap.cycles if c.block_type is BlockType.STREAMING]
            assert [c.number for c in streamed] == [4, 5]
        finally:
            await sup.close()
    _history_files(out)
    # stop wrote the newest cycle's full star
    loaded = load_state(out)
    assert loaded is not None and loaded.state.cycles[-1].number == 5
    assert engine_processes(out) == []
