"""Ledger journal mode per filesystem, thread-safe queries, and the watcher in both modes."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from live2d_tui.dataset import ledger as ledger_module
from live2d_tui.dataset.ledger import Generation, Ledger, NewRange
from live2d_tui.warp import watch


def test_wal_locally_rollback_journal_on_network_filesystems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = Ledger(tmp_path / "a.sqlite")
    assert local.journal_mode == "wal"
    local.close()
    monkeypatch.setattr(ledger_module, "is_network_filesystem", lambda path: True)
    remote = Ledger(tmp_path / "b.sqlite")
    assert remote.journal_mode == "delete"
    mode = remote._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "delete"
    remote.close()


def test_queries_from_another_thread_while_appending(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.start_generation(Generation(0, "", 16, 1.0, True, True, 0, 10, 10), abinitio=False)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                positions = led.active_positions()
                assert positions.tolist() == list(range(1, positions.size + 1))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    nz = 0
    for i in range(200):
        led.commit_append(
            [NewRange(f"s{i}", "m", 1, 1, "f4", "", 3, nz + 1)],
            [],
            nz=nz + 3,
            star_bytes=10,
            relion_bytes=10,
        )
        nz += 3
    done.set()
    thread.join()
    assert not errors and led.active_count() == 600
    assert led.take_flag("abinitio") is False
    led.close()


def test_active_particles_after_a_position_and_when_a_particle_was_appended(
    tmp_path: Path,
) -> None:
    led = Ledger(tmp_path / "l.sqlite")
    led.start_generation(Generation(0, "", 16, 1.0, True, True, 0, 10, 10), abinitio=False)
    led.commit_append(
        [NewRange("a", "ma", 1, 1, "f4", "", 4, 1), NewRange("b", "mb", 1, 1, "f4", "", 3, 5)],
        [],
        nz=7,
        star_bytes=10,
        relion_bytes=10,
    )
    first = led.appended_at(2)
    assert first is not None and led.appended_at(7) == first and led.appended_at(8) is None
    led.commit_append(
        [NewRange("c", "mc", 1, 1, "f4", "", 5, 8)], [], nz=12, star_bytes=20, relion_bytes=20
    )
    later = led.appended_at(12)
    assert later is not None and later >= first
    assert [led.active_count_after(p) for p in (0, 3, 7, 12)] == [12, 9, 5, 0]
    led.set_active(["b"], False)  # positions 5-7 leave
    assert [led.active_count_after(p) for p in (0, 3, 7)] == [9, 6, 5]
    # a retired (reprocessed) range is no longer current: its time comes from the database
    led.commit_append(
        [NewRange("a", "ma", 2, 2, "f4", "", 2, 13)], ["a"], nz=14, star_bytes=30, relion_bytes=30
    )
    assert led.appended_at(2) == first and led.active_count_after(0) == 7
    led.close()
    reopened = Ledger(tmp_path / "l.sqlite")
    assert reopened.appended_at(12) == later  # loaded from the database
    reopened.close()


@pytest.mark.parametrize("polling", [False, True])
async def test_wait_for_change_sees_the_table_being_replaced(tmp_path: Path, polling: bool) -> None:
    star = tmp_path / "goodparticles_M.star"
    star.write_text("x\n")
    targets = watch.Targets(folders=(tmp_path,), names=frozenset({star.name}), files=(star,))
    stop = asyncio.Event()

    replaced = asyncio.Event()

    async def keep_replacing() -> None:
        # Warp's delete + move, repeated: the watcher may start (and take its baseline) late
        # on a loaded machine, so one replacement alone could land before it looks.
        n = 0
        while not replaced.is_set():
            await asyncio.sleep(0.3)
            n += 1
            tmp = tmp_path / "goodparticles_M.star_root"
            tmp.write_text("y\n" * n)
            star.unlink()
            tmp.rename(star)

    task = asyncio.create_task(keep_replacing())
    changed = await watch.wait_for_change(targets, stop, heartbeat=20.0, force_polling=polling)
    replaced.set()
    await task
    assert changed
    # nothing happens: the heartbeat ends the wait
    assert not await watch.wait_for_change(targets, stop, heartbeat=0.3, force_polling=polling)

    if polling:
        return
    # an unrelated file in the watched folder does not count

    async def unrelated() -> None:
        await asyncio.sleep(0.2)
        (tmp_path / "other.xml").write_text("z")

    task = asyncio.create_task(unrelated())
    assert not await watch.wait_for_change(targets, stop, heartbeat=1.0, force_polling=False)
    await task
