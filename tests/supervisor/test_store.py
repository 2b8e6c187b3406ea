"""The session store and the shared context alone, on real output folders.

The store saves before it announces, reports a failing save once, swaps sessions by saving the
old one's state before closing it, and keeps the last-session pointer; the context publishes on
the loop's thread only and logs into the open session's log.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from live2d_tui.config import JobSettings
from live2d_tui.events import ErrorRaised, Event, EventBus, LogLine, SessionStatus, StatusChanged
from live2d_tui.paths import read_last_session
from live2d_tui.supervisor import SupervisorError
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.lock import LockHeldError, OutputLock
from live2d_tui.supervisor.state import load_state
from live2d_tui.supervisor.store import SessionStore

from .conftest import TINY_JOB, Recorder, tiny_config
from .fakes import fake_dataset, make_session, open_store


async def test_the_status_is_saved_before_it_is_announced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    store = await open_store(make_session(out))
    seen_on_disk: list[tuple[SessionStatus, SessionStatus]] = []

    def check_disk(event: Event) -> None:
        if isinstance(event, StatusChanged):
            loaded = load_state(out)
            assert loaded is not None
            seen_on_disk.append((event.status, loaded.state.status))

    store.ctx.bus.subscribe(check_disk)
    await store.set_status(SessionStatus.WAITING, "automatic jobs on")
    await store.set_status(SessionStatus.WAITING, "again")  # unchanged: saved, not announced
    await store.set_status(SessionStatus.WAITING, "opened", force=True)
    await store.set_status(SessionStatus.FAILED, "three failures")
    assert seen_on_disk == [
        (SessionStatus.WAITING, SessionStatus.WAITING),
        (SessionStatus.WAITING, SessionStatus.WAITING),
        (SessionStatus.FAILED, SessionStatus.FAILED),
    ]
    assert store.status is SessionStatus.FAILED


async def test_settings_are_validated_then_staged_and_saved(tmp_path: Path) -> None:
    out = tmp_path / "out"
    session = make_session(out)
    store = await open_store(session)
    with pytest.raises(SupervisorError, match="invalid settings: class_number"):
        await store.stage(replace(TINY_JOB, class_number=0))
    assert session.state.settings == TINY_JOB
    await store.stage(TINY_JOB.with_changes(mask_radius=77))
    loaded = load_state(out)
    assert loaded is not None and loaded.state.settings.mask_radius == 77
    await store.set_automatic(True)
    loaded = load_state(out)
    assert loaded is not None and loaded.state.automatic


async def test_a_failing_save_is_reported_once_until_a_save_succeeds(tmp_path: Path) -> None:
    out = tmp_path / "out"
    session = make_session(out)
    store = await open_store(session)
    recorder = Recorder(store.ctx.bus)
    await store.save()
    shutil.rmtree(out)  # the folder vanished (an unmounted share)
    await store.save()
    await store.save()
    errors = [e.message for e in recorder.of(ErrorRaised)]
    assert len(errors) == 1 and errors[0].startswith(f"cannot save the session state in {out}")
    out.mkdir()
    await store.save()  # works again: the next failure is news
    assert load_state(out) is not None
    shutil.rmtree(out)
    await store.save()
    assert len(recorder.of(ErrorRaised)) == 2


async def test_switching_saves_the_previous_session_then_closes_it(tmp_path: Path) -> None:
    first = make_session(tmp_path / "a")
    store = await open_store(first)
    first.state = replace(first.state, last_error="not saved yet")  # in memory only
    second = make_session(tmp_path / "b")
    await store.switch_to(second)

    loaded = load_state(tmp_path / "a")
    assert loaded is not None and loaded.state.last_error == "not saved yet"
    assert fake_dataset(first).closed and not first.lock.held
    OutputLock(tmp_path / "a").acquire()  # free again
    with pytest.raises(LockHeldError):
        OutputLock(tmp_path / "b").acquire()
    assert store.current is second and store.session is second
    store.ctx.log("a line for the open session")
    assert "a line for the open session" in (tmp_path / "b" / "live2d.log").read_text()
    assert not (tmp_path / "a" / "live2d.log").exists()

    await store.close()
    assert store.current is None and fake_dataset(second).closed and not second.lock.held
    with pytest.raises(SupervisorError, match="not started"):
        store.session  # noqa: B018
    store.ctx.log("after closing")  # reaches the bus only
    assert "after closing" not in (tmp_path / "b" / "live2d.log").read_text()


async def test_the_last_session_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await open_store(make_session(tmp_path / "out"))
    recorder = Recorder(store.ctx.bus)
    await asyncio.to_thread(store.write_pointer, tmp_path / "warp", tmp_path / "out")
    last = read_last_session()
    assert last is not None and last.output_folder == tmp_path / "out"

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("LIVE2D_HOME", str(blocker / "home"))
    await asyncio.to_thread(store.write_pointer, tmp_path / "warp", tmp_path / "out")
    for _ in range(100):  # the lines are forwarded to the loop's thread
        if len(recorder.of(LogLine)) >= 2:
            break
        await asyncio.sleep(0.01)
    lines = [e.text for e in recorder.of(LogLine)]
    # the pointer and the default configuration file (written once a session opens) both live
    # under LIVE2D_HOME: each failure is one log line, neither raises
    assert len(lines) == 2
    assert lines[0].startswith("Cannot update the last-session pointer")
    assert lines[1].startswith("Cannot write the configuration file")


async def test_the_context_publishes_on_the_loop_thread_only(tmp_path: Path) -> None:
    ctx = SupervisorContext(tiny_config(), EventBus())
    threads: list[int] = []
    ctx.bus.subscribe(lambda event: threads.append(threading.get_ident()))
    worker = threading.Thread(target=ctx.log_threadsafe, args=("before the loop is known",))
    worker.start()
    worker.join()
    assert threads == [worker.ident]  # no loop yet: delivered where it was sent

    ctx.attach_loop()
    threads.clear()
    arrived = asyncio.Event()
    ctx.bus.subscribe(lambda event: arrived.set())

    def from_worker() -> None:
        ctx.publish_threadsafe(StatusChanged(status=SessionStatus.WAITING))
        ctx.log_threadsafe("from a worker")

    await asyncio.to_thread(from_worker)
    await asyncio.wait_for(arrived.wait(), 10)
    while len(threads) < 2:
        await asyncio.sleep(0.01)
    assert threads == [threading.get_ident()] * 2


async def test_a_store_without_a_session_saves_nothing() -> None:
    store = SessionStore(SupervisorContext(tiny_config(), EventBus()))
    await store.save()
    await store.close()
    assert store.current is None and store.status is SessionStatus.STOPPED
    with pytest.raises(SupervisorError, match="not started"):
        store.stage_now(JobSettings())
