"""Session state: round trip, cisTEM schema keys, .prev recovery, own settings per cycle."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.events import BlockType, SessionStatus
from live2d_tui.supervisor.state import (
    PREV_NAME,
    STATE_NAME,
    CycleRecord,
    JobRecord,
    SessionState,
    StateError,
    load_state,
    save_state,
)


def _record(number: int, settings: JobSettings, classes: int = 4) -> CycleRecord:
    own = settings.to_dict()
    own["class_number"] = classes
    return CycleRecord(
        name=f"cycle_{number}",
        number=number,
        block_type=BlockType.STARTUP,
        cycle_number_in_block=number,
        high_res_limit=12.5,
        particle_count=100,
        process_count=2,
        particle_count_per_class=(10, 30, 20, 25, 15),
        used_per_class=(40, 20, 10, 20, 10),
        fraction_used=0.6,
        settings=own,
        time="2026-01-01T00:00:00+00:00",
        duration_seconds=3.5,
        generation=0,
        input_rows=100,
        cpu_seconds=12.0,
    )


def _state(tmp_path: Path) -> SessionState:
    settings = JobSettings(mask_radius=90.0)
    job = JobRecord(
        kind=ClassificationType.ABINIT,
        settings=settings.to_dict(),
        base_cycle_number=None,
        force_abinit=False,
        cycles_total=5,
        next_cycle_number=2,
        cycles_done=2,
    )
    return SessionState(
        warp_folder=str(tmp_path / "w"),
        output_folder=str(tmp_path),
        settings=settings,
        status=SessionStatus.RUNNING,
        automatic=True,
        cycles=(_record(0, settings), _record(1, settings)),
        job=job,
    )


def test_round_trip(tmp_path: Path) -> None:
    state = _state(tmp_path)
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded is not None and not loaded.recovered_from_prev
    assert loaded.state == state


def test_cpu_time_and_speed_of_a_cycle(tmp_path: Path) -> None:
    record = _record(1, JobSettings())
    assert record.passes_per_cpu_second == 100 * 0.6 / 12.0
    # a record written before the CPU time was kept reads back as unknown
    old = {k: v for k, v in record.to_dict().items() if k != "cpu_seconds"}
    assert CycleRecord.from_dict(old).passes_per_cpu_second is None
    seed = CycleRecord.from_dict(record.to_dict() | {"block_type": "random_seed"})
    assert seed.cpu_seconds == 12.0 and seed.passes_per_cpu_second is None


def test_schema_keys_read_by_cistem_warp_to_cistem(tmp_path: Path) -> None:
    """cisTEM's importer reads exactly these keys; renaming one breaks it."""
    save_state(tmp_path, _state(tmp_path))
    data = json.loads((tmp_path / STATE_NAME).read_text())
    assert isinstance(data["cycles"], list) and data["cycles"]
    for cycle in data["cycles"]:
        assert isinstance(cycle["name"], str) and cycle["name"] == f"cycle_{cycle['number']}"
        assert isinstance(cycle["number"], int)
        assert isinstance(cycle["particle_count"], int)
        assert isinstance(cycle["high_res_limit"], float)
        assert isinstance(cycle["settings"]["class_number"], int)
        assert isinstance(cycle["settings"]["mask_radius"], int | float)
        assert len(cycle["particle_count_per_class"]) == cycle["settings"]["class_number"] + 1
    assert data["working_directory"] == str(tmp_path)


def test_each_cycle_keeps_its_own_settings(tmp_path: Path) -> None:
    state = _state(tmp_path)
    changed = replace(state, settings=state.settings.with_changes(mask_radius=50))
    save_state(tmp_path, changed)
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert loaded.state.settings.mask_radius == 50
    assert all(c.settings["mask_radius"] == 90.0 for c in loaded.state.cycles)


def test_prev_copy_recovers_damaged_state(tmp_path: Path) -> None:
    first = _state(tmp_path)
    save_state(tmp_path, first)
    second = replace(first, cycles=(*first.cycles, _record(2, first.settings)))
    save_state(tmp_path, second)
    assert load_state(tmp_path).state == second  # type: ignore[union-attr]
    (tmp_path / STATE_NAME).write_text('{"cycles": [ {"name": "cyc')  # torn / damaged
    loaded = load_state(tmp_path)
    assert loaded is not None and loaded.recovered_from_prev
    assert loaded.state == first
    assert "previous good copy" in loaded.message and STATE_NAME in loaded.message
    assert (tmp_path / f"{STATE_NAME}.damaged").exists()
    # the next save keeps the good .prev instead of copying the damaged file over it
    save_state(tmp_path, loaded.state)
    assert load_state(tmp_path).state == first  # type: ignore[union-attr]
    assert json.loads((tmp_path / PREV_NAME).read_text())["cycles"]


def test_both_damaged_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / STATE_NAME).write_text("not json")
    (tmp_path / PREV_NAME).write_text("[]")
    with pytest.raises(StateError, match="damaged too"):
        load_state(tmp_path)


def test_new_folder_has_no_state(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None


def test_reads_original_live2d_state(tmp_path: Path) -> None:
    """State written by the original (strings for numbers, no version) loads."""
    original = {
        "warp_folder": "/data/w",
        "working_directory": "/data/o",
        "settings": {"mask_radius": "100", "classification_type": "seeded", "pixel_size": "1.0"},
        "job_status": "listening",
        "cycles": [
            {
                "name": "cycle_0",
                "number": 0,
                "settings": {"class_number": "50"},
                "high_res_limit": 40,
                "block_type": "random_seed",
                "cycle_number_in_block": 1,
                "time": "2019-01-01 00:00:00",
                "process_count": 1,
                "particle_count": 50000,
                "particle_count_per_class": [0] * 51,
                "fraction_used": 0.3,
            }
        ],
    }
    (tmp_path / STATE_NAME).write_text(json.dumps(original))
    loaded = load_state(tmp_path)
    assert loaded is not None
    assert loaded.state.settings.classification_type is ClassificationType.SEEDED
    assert loaded.state.cycles[0].block_type is BlockType.RANDOM_SEED
    assert loaded.state.output_folder == "/data/o"


def test_streaming_updates_without_a_star_are_kept_apart_from_cycles(tmp_path: Path) -> None:
    state = _state(tmp_path)
    settings = state.settings
    streamed = replace(_record(2, settings), block_type=BlockType.STREAMING)
    state = state.with_cycle(streamed, star=False)
    # warp_to_cistem reads "cycles": only cycles whose star is on disk
    assert [c.number for c in state.cycles] == [0, 1]
    assert [c.number for c in state.history] == [0, 1, 2]
    assert state.last_cycle is not None and state.last_cycle.number == 2
    assert state.last_cycle_with_star is not None and state.last_cycle_with_star.number == 1
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded is not None and loaded.state == state
    assert [c["number"] for c in json.loads((tmp_path / STATE_NAME).read_text())["cycles"]] == [
        0,
        1,
    ]
    starred = state.with_star(2, particle_count=77)
    assert [c.number for c in starred.cycles] == [0, 1, 2] and not starred.stream_cycles
    assert starred.cycles[-1].particle_count == 77
    assert [c.number for c in starred.without_cycles({1, 2}).history] == [0]


def test_the_history_keeps_a_bounded_number_of_streaming_updates(tmp_path: Path) -> None:
    from live2d_tui.supervisor.streamhistory import forget_old_updates

    state = _state(tmp_path)
    settings = state.settings
    for number in range(2, 40):
        record = replace(_record(number, settings), block_type=BlockType.STREAMING)
        state = state.with_cycle(record, star=number % 10 == 0)
    state, forgotten = forget_old_updates(state, keep=3)
    # non-streaming cycles stay; the newest 3 updates and the newest 3 with a star stay
    assert [c.number for c in state.history] == [0, 1, 10, 20, 30, 37, 38, 39]
    assert forgotten == [n for n in range(2, 40) if n not in {10, 20, 30, 37, 38, 39}]
    assert len(json.dumps(state.to_dict())) < 20_000
