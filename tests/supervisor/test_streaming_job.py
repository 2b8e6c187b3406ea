"""A streaming job in the supervisor: triggers, stop, abort and recovery after a restart, on a
simulated live session and the built-in engine (real subprocesses, real files)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from live2d_tui.classify.streaming import index as ix
from live2d_tui.config import ClassificationType, Config
from live2d_tui.events import (
    BlockType,
    CycleFinished,
    CycleStarted,
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


def _stream_files_match_index(out: Path) -> ix.StreamIndex:
    """The stream folder holds exactly the files its committed index names."""
    folder = ix.stream_folder(out)
    index = ix.load_index(folder)
    assert index is not None
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert names == index.files() | {ix.INDEX}
    positions = [(b.first, b.last) for b in index.blocks]
    assert positions == sorted(positions)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(positions))
    return index


async def _streaming_from_ab_initio(sup: Supervisor, rec: Recorder) -> None:
    """Automatic jobs: the ab initio, then the streaming job's first update (cycle 4)."""
    await sup.start_automatic()
    first = await rec.wait(lambda e: isinstance(e, JobFinished))
    assert isinstance(first, JobFinished) and first.success
    await rec.wait(lambda e: isinstance(e, StreamState) and e.cycle == 4 and not e.updating)


async def test_abort_during_an_update_keeps_the_previous_cycle_and_the_stream_continues(
    tmp_path: Path,
) -> None:
    warp = tmp_path / "warp"
    out = warp / "classification"
    with live_session(warp, micrographs=8, first=3) as live:
        sup = Supervisor(stream_config(), warp_folder=warp)
        rec = Recorder(sup.bus)
        await sup.start()
        try:
            await _streaming_from_ab_initio(sup, rec)
            live.release()
            await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 5, 180)
            await sup.abort()
            snap = sup.snapshot()
            assert snap.status is SessionStatus.STOPPED and snap.stream is None
            assert [c.number for c in snap.cycles][-1] == 4
            assert not (out / "cycle_5.mrc").exists() and not (out / "cycle_5.star").exists()
            assert engine_processes(out) == []
            failed = [e.number for e in rec.of(CycleFinished) if not e.success]
            assert failed == [5]
            index = _stream_files_match_index(out)
            assert index.cycle == 4
            # automatic jobs again: the same stream continues and takes the waiting particles
            await sup.start_automatic()
            state = await rec.wait_new(
                lambda e: isinstance(e, StreamState) and e.cycle == 5 and not e.updating, 180
            )
            assert isinstance(state, StreamState) and state.particles > index.particles
            assert _stream_files_match_index(out).base_cycle == index.base_cycle
            await sup.stop()
            await rec.wait_new(lambda e: isinstance(e, JobFinished))
        finally:
            await sup.close()
    _history_files(out)


async def test_a_seeded_job_while_streaming_restarts_the_stream_from_its_result(
    tmp_path: Path,
) -> None:
    warp = tmp_path / "warp"
    out = warp / "classification"
    with live_session(warp, micrographs=6, first=3):
        sup = Supervisor(stream_config(), warp_folder=warp)
        rec = Recorder(sup.bus)
        await sup.start()
        try:
            await _streaming_from_ab_initio(sup, rec)
            seeded = STREAM_JOB.with_changes(classification_type="seeded")
            await sup.start_job_now(seeded, continue_automatic=False)
            done = await rec.wait_new(
                lambda e: isinstance(e, JobFinished) and "streaming" not in e.message, 240
            )
            assert isinstance(done, JobFinished) and done.success
            snap = sup.snapshot()
            last_seeded = snap.cycles[-1]
            assert last_seeded.settings["classification_type"] == "seeded"
            # the stream was stopped with its full star: cycle 4 has both files
            assert any(c.number == 4 for c in snap.cycles)
            streaming = STREAM_JOB.with_changes(classification_type="streaming")
            await sup.start_job_now(streaming, continue_automatic=False)
            finished = await rec.wait_new(lambda e: isinstance(e, JobFinished), 180)
            assert isinstance(finished, JobFinished) and finished.success
            index = _stream_files_match_index(out)
            assert index.base_cycle == last_seeded.number
            assert index.cycle == last_seeded.number + 1
        finally:
            await sup.close()
    _history_files(out)


async def test_restart_after_an_interrupted_update_removes_its_files_and_continues(
    tmp_path: Path,
) -> None:
    warp = tmp_path / "warp"
    out = warp / "classification"
    with live_session(warp, micrographs=8, first=3) as live:
        sup = Supervisor(stream_config(), warp_folder=warp)
        rec = Recorder(sup.bus)
        await sup.start()
        try:
            await _streaming_from_ab_initio(sup, rec)
            live.release()
            await rec.wait(lambda e: isinstance(e, CycleStarted) and e.number == 5, 180)
        finally:
            await sup.close()  # the running update ends; the job stays recorded
        # what a kill in the middle of writing leaves: files the index does not name
        orphan = ix.stream_folder(out) / "blocks" / "b99_v5.star"
        orphan.write_text("half written")
        (out / "cycle_5.mrc").write_bytes(b"partial")
        again = Supervisor(stream_config(), warp_folder=warp)
        rec = Recorder(again.bus)
        await again.start()
        try:
            assert not orphan.exists()
            assert not (out / "cycle_5.mrc").exists()
            _stream_files_match_index(out)
            snap = again.snapshot()
            assert snap.automatic and snap.cycles[-1].number == 4
            # the interrupted streaming job continues with the same stream
            state = await rec.wait(
                lambda e: isinstance(e, StreamState) and e.cycle == 5 and not e.updating, 180
            )
            assert isinstance(state, StreamState)
            assert _stream_files_match_index(out).base_cycle == 3
            await again.stop()
            await rec.wait(lambda e: isinstance(e, JobFinished))
        finally:
            await again.close()
    _history_files(out)


@pytest.mark.slow
def test_sigkill_of_live2d_run_during_streaming_updates_then_restart(
    tmp_path: Path,
    make_warp_session,  # type: ignore[no-untyped-def]
) -> None:
    """``live2d run --once`` runs one streaming update; killed at random moments of it (or of
    its commit), the next start finds the history and the stream in agreement, every block
    named by the index whole, no orphan file and no particle in two blocks."""
    import json
    import random
    import time

    from live2d_tui.supervisor.state import STATE_NAME

    from .headless import Headless, write_config

    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=5)
    out = warp / "classification"
    config = write_config(tmp_path)
    streaming = ["--set", "stream_batch=40", "--set", "stream_revisit=1"]
    first = Headless(
        [str(warp), "--once", "--config", str(config), "--set", "stream_after_abinit=true"]
    )
    assert first.finish(240) == 0, first.text()[-3000:]
    rng = random.Random(2026)
    kills = 0
    for trial in range(6):
        run = Headless([str(warp), "--once", "--config", str(config), *streaming])
        run.wait_for("(streaming update", timeout=120)
        time.sleep(rng.uniform(0.0, 2.0))
        if run.proc.poll() is None:
            run.kill()
            kills += 1
        else:
            assert run.finish(30) == 0, run.text()[-3000:]
        state = json.loads((out / STATE_NAME).read_text())  # never torn
        assert state["job"] is None or state["job"]["kind"] == "streaming", trial
    assert kills >= 3
    final = Headless([str(warp), "--once", "--config", str(config), *streaming])
    assert final.finish(240) == 0, final.text()[-3000:]
    _history_files(out)
    loaded = load_state(out)
    assert loaded is not None
    index = _stream_files_match_index(out)
    # the newest cycle in the history is the stream's last committed update
    assert loaded.state.last_cycle is not None and loaded.state.last_cycle.number == index.cycle
    numbers = [c.number for c in loaded.state.history]
    assert numbers == sorted(set(numbers))
    # every active particle is in exactly one block's rows
    folder = ix.stream_folder(out)
    rows = [read_star(folder / b.star)["position"] for b in index.blocks if b.star]
    positions = sorted(int(p) for part in rows for p in part)
    assert len(positions) == len(set(positions)) == index.particles
    assert engine_processes(out) == []


async def test_the_last_particles_are_taken_once_none_arrives_for_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("live2d_tui.supervisor.triggers.STREAM_IDLE_SECONDS", 2.0)
    warp = tmp_path / "warp"
    config = Config(server=tiny_server(), job=STREAM_JOB.with_changes(stream_batch=1000))
    with live_session(warp, micrographs=5, first=3) as live:
        sup = Supervisor(config, warp_folder=warp)
        rec = Recorder(sup.bus)
        await sup.start()
        try:
            await _streaming_from_ab_initio(sup, rec)
            before = rec.of(StreamState)[-1].particles
            live.release()  # one movie, far fewer than a batch; then the microscope stops
            state = await rec.wait(
                lambda e: isinstance(e, StreamState) and e.cycle == 5 and not e.updating, 120
            )
            assert isinstance(state, StreamState)
            assert state.particles > before and state.waiting == 0
            await sup.stop()
            await rec.wait_new(lambda e: isinstance(e, JobFinished))
        finally:
            await sup.close()
