"""The history of a streaming job: its updates' records, the update a crash left unrecorded,
and the old updates it forgets (:mod:`live2d_tui.supervisor.streamjob` runs the job).

Pure functions of the session state and the stream, except :func:`remove_cycle_files`.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from live2d_tui.classify.streaming import history
from live2d_tui.classify.streaming.index import StreamIndexError
from live2d_tui.classify.streaming.runner import StreamResult, StreamRunner
from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.events import BlockType
from live2d_tui.supervisor.state import CycleRecord, SessionState


def record_from_update(
    result: StreamResult,
    *,
    settings: JobSettings,
    update: int,
    high_res_limit: float,
    generation: int,
    input_rows: int,
) -> CycleRecord:
    """The history record of a streaming update (``update``: its place in the job, 1-based).

    ``particle_count`` is the full star's rows when it wrote one (what ``warp_to_cistem``
    checks), else the particles in the classes.
    """
    own = settings.to_dict()
    own["class_number"] = int(result.class_count)
    duration = (result.finished - result.started).total_seconds()
    return CycleRecord(
        name=f"cycle_{result.number}",
        number=int(result.number),
        block_type=BlockType.STREAMING,
        cycle_number_in_block=update,
        high_res_limit=float(high_res_limit),
        particle_count=int(result.star_rows if result.star_path else result.particle_count),
        process_count=int(result.process_count),
        particle_count_per_class=tuple(int(v) for v in result.members),
        used_per_class=tuple(int(v) for v in result.used),
        fraction_used=1.0,
        settings=own,
        time=result.finished.astimezone().isoformat(timespec="seconds"),
        duration_seconds=round(max(0.0, duration), 3),
        generation=generation,
        input_rows=input_rows,
    )


def adopt_committed_update(
    state: SessionState, stream: StreamRunner, *, generation: int, stack: Path
) -> tuple[SessionState, str]:
    """Record the stream's last update if it committed but the session's state was not saved
    after it (a crash or an abort in between). Returns the state and a note ('' when nothing
    was adopted). The stream's ``cycle_<N>`` files are published by its ``recover``."""
    try:
        index = stream.state()
        summary = stream.summary()
    except (StreamIndexError, OSError, ValueError):
        return state, ""
    if index is None or summary is None or not index.updates:
        return state, ""
    last = state.last_cycle
    if any(c.number == index.cycle for c in state.history):
        return state, ""
    if (last is not None and index.cycle <= last.number) or Path(index.stack) != Path(stack):
        return state, ""
    job = state.job
    source = job.settings if job is not None else state.settings.to_dict()
    own = {**source, "class_number": index.classes}
    star_file = stream.runner.output_folder / f"cycle_{index.cycle}.star"
    star = index.full_star_cycle == index.cycle and star_file.is_file()
    rows = int(index.extra.get("full_star_rows", summary.particles))
    record = CycleRecord(
        name=f"cycle_{index.cycle}",
        number=index.cycle,
        block_type=BlockType.STREAMING,
        cycle_number_in_block=(job.cycles_done + 1) if job is not None else 1,
        high_res_limit=float(index.key.get("high_res", 0.0)),
        particle_count=rows if star else summary.particles,
        process_count=0,
        particle_count_per_class=tuple(summary.members),
        used_per_class=tuple(summary.used),
        settings=own,
        time=datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        generation=generation,
        input_rows=summary.cursor_position,
    )
    state = state.with_cycle(record, star=star)
    if job is not None and job.kind is ClassificationType.STREAMING:
        state = replace(
            state,
            job=replace(
                job,
                next_cycle_number=index.cycle + 1,
                cycles_done=job.cycles_done + 1,
            ),
        )
    return state, (
        f"Streaming update {index.cycle} had committed before the interruption: recorded it"
    )


def forget_old_updates(state: SessionState, keep: int) -> tuple[SessionState, list[int]]:
    """Drop the streaming updates beyond ``keep`` (and beyond ``keep`` with a star) from the
    history; returns the new state and the forgotten cycle numbers (whose files the caller
    deletes after saving the state)."""
    streaming = [c.number for c in state.history if c.block_type is BlockType.STREAMING]
    with_star = [c.number for c in state.cycles if c.block_type is BlockType.STREAMING]
    forget = history.cycles_to_forget(streaming, with_star, keep)
    if not forget:
        return state, []
    return state.without_cycles(set(forget)), forget


def remove_cycle_files(folder: Path, numbers: list[int]) -> None:
    """Delete forgotten cycles' files: ``cycle_<N>.mrc``/``.star`` and ``cycles/cycle_<N>/``
    (their program runs' logs). Blocking."""
    for number in numbers:
        for suffix in (".mrc", ".star"):
            with contextlib.suppress(FileNotFoundError):
                (folder / f"cycle_{number}{suffix}").unlink()
        shutil.rmtree(folder / "cycles" / f"cycle_{number}", ignore_errors=True)
