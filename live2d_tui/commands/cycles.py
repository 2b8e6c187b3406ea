"""Finding a completed cycle and its files for the commands that read an output folder
(``quality``, ``export``, ``report``), without changing anything in it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from live2d_tui.results.quality import (
    DEFAULT_CAP,
    CycleQuality,
    estimate_cycle,
    read_cached,
    write_cache,
)
from live2d_tui.supervisor.results import CycleFiles, cycle_files
from live2d_tui.supervisor.state import CycleRecord, SessionState, StateError, peek_state


class CycleNotFound(ValueError):
    """The output folder has no such completed cycle (the message says what there is)."""


@dataclass(frozen=True, slots=True)
class OpenCycle:
    """A completed cycle of an output folder."""

    folder: Path
    state: SessionState
    record: CycleRecord
    files: CycleFiles

    @property
    def mask_radius(self) -> float:
        """The cycle's own mask radius in Å."""
        return float(self.record.settings.get("mask_radius", self.state.settings.mask_radius))


def open_cycle(output_folder: Path, cycle: int | None = None) -> OpenCycle:
    """The cycle ``cycle`` (default: the latest completed one) of ``output_folder``.

    Raises:
        CycleNotFound: no session state, no completed cycle, no such cycle, or its files are
            missing.
    """
    folder = Path(output_folder).expanduser().absolute()
    try:
        state = peek_state(folder)
    except StateError as exc:
        raise CycleNotFound(str(exc)) from None
    if state is None:
        raise CycleNotFound(f"{folder} is not a live2d output folder (no latest_run.json)")
    if not state.cycles:
        raise CycleNotFound(f"{folder} has no completed cycle yet")
    by_number = {c.number: c for c in state.cycles}
    number = state.cycles[-1].number if cycle is None else cycle
    record = by_number.get(number)
    if record is None:
        shown = ", ".join(str(n) for n in sorted(by_number)[-10:])
        raise CycleNotFound(f"{folder} has no completed cycle {number} (latest: {shown})")
    files = cycle_files(folder, record)
    for path in (files.star, files.classes, files.stack):
        if not path.is_file():
            raise CycleNotFound(f"cycle {number}: {path} is missing")
    return OpenCycle(folder, state, record, files)


def cycle_quality(
    opened: OpenCycle, *, compute: bool, cap: int | None = None
) -> CycleQuality | None:
    """The cycle's cached half-set estimate; computed (and cached) when missing and
    ``compute`` is true (blocking)."""
    files = opened.files
    cached = read_cached(opened.folder, files.number, star=files.star, classes=files.classes)
    if cached is not None and (cap is None or cached.cap == cap):
        return cached
    if not compute:
        return None
    result = estimate_cycle(
        files.number,
        files.star,
        files.classes,
        files.stack,
        mask_radius=opened.mask_radius,
        cap=DEFAULT_CAP if cap is None else cap,
    )
    write_cache(opened.folder, result)
    return result
