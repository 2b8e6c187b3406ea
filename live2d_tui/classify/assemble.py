"""Blocking file work of a cycle: input checks, the split into program runs, star joining,
installing results.

Everything here runs in a worker thread (``asyncio.to_thread``) or is pure. The rules:

- program runs get contiguous, balanced (±1 row), non-empty slices of the input rows
  (:func:`split_rows`, cisTEM's ``FirstLastParticleForJob``);
- each program run's star must hold exactly its slice of the input rows, in order; the joined star
  has exactly the input rows, and its CTF columns are the input's (refine2d writes phase shift back
  in radians; the input has degrees) — :func:`join_stars`;
- the class averages get the real pixel size and are checked against box and K before both
  files are moved into place atomically (:func:`install`); a failure leaves neither file.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from live2d_tui.atomic import fsync_dir
from live2d_tui.classify.inputs import CycleInputError, CycleInputs
from live2d_tui.events import BlockType
from live2d_tui.formats.cistem_star import (
    CTF_FIELDS,
    CistemStarError,
    StarRows,
    parse_star_text,
    write_star,
)
from live2d_tui.formats.mrc import read_shape, stamp_pixel_size

LAST_LINES = 50
"""Lines of a failing program run's log quoted in the session log and in :class:`CycleFailed`."""


class CycleFailed(Exception):
    """A cycle could not complete; earlier cycles are untouched.

    Attributes:
        message: What failed, for the session log and the UI.
        last_lines: The failing program's last lines (empty when no program ran).
    """

    def __init__(self, message: str, last_lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.last_lines = list(last_lines or [])


class RunFailed(Exception):
    """One program failed twice (raised inside its task; the runner turns it into CycleFailed)."""

    def __init__(self, message: str, last_lines: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.last_lines = last_lines


@dataclass(frozen=True)
class CycleResult:
    """A completed cycle; its files are in place when this is returned."""

    number: int
    block_type: BlockType
    high_res_limit: float
    classes_path: Path
    star_path: Path
    particle_count: int
    """Rows of the cycle's star."""
    class_count: int
    """K: slices of the class averages."""
    members: list[int]
    """Per class, |class| = k (index 0 = unassigned)."""
    used: list[int]
    """Per class, class = +k: used this round (index 0 = unassigned)."""
    fraction_used: float
    started: datetime
    finished: datetime
    process_count: int
    occupancy: list[float] = field(default_factory=list)
    """merge2d's likelihood-weighted class occupancy in %, index k-1 = class k (if printed)."""


def split_rows(count: int, jobs: int) -> list[tuple[int, int]]:
    """Balanced contiguous row ranges ``[start, end)``: min(program runs, count) ranges, sizes ±1.

    The first ``count mod J`` ranges get one row more (cisTEM's ``FirstLastParticleForJob``).
    """
    if count < 1 or jobs < 1:
        raise ValueError(f"need ≥ 1 row and ≥ 1 program run (got {count} rows, {jobs} runs)")
    jobs = min(jobs, count)
    base, extra = divmod(count, jobs)
    ranges: list[tuple[int, int]] = []
    start = 0
    for j in range(jobs):
        end = start + base + (1 if j < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges


def check_files(inputs: CycleInputs, seed_classes: int | None) -> tuple[int, int]:
    """Check the stack (and, unless seeding, the reference classes); return (box, K).

    Args:
        inputs: The cycle's inputs.
        seed_classes: K of a random-seed cycle, or ``None`` for a refinement against classes.
    """
    stack = read_shape(inputs.stack_path, check_size=False)
    nx, ny, nz = stack.nx, stack.ny, stack.nz
    if nx != ny:
        raise CycleInputError(f"{inputs.stack_path}: particles are not square ({nx}×{ny})")
    if nz < inputs.nz:
        raise CycleInputError(f"{inputs.stack_path}: {nz} slices, the cycle expects {inputs.nz}")
    if not inputs.pixel_size > 0:
        raise CycleInputError(f"pixel size must be > 0 Å (got {inputs.pixel_size})")
    if seed_classes is not None:
        return nx, seed_classes
    if inputs.previous_classes is None:
        raise CycleInputError("a refinement cycle needs the previous cycle's class averages")
    classes = read_shape(inputs.previous_classes)
    if (classes.nx, classes.ny) != (nx, ny):
        raise CycleInputError(
            f"{inputs.previous_classes}: box {classes.nx}×{classes.ny} differs from the stack's "
            f"{nx}×{ny} (a new stack generation needs a new ab initio job)"
        )
    return nx, classes.nz


def join_stars(input_rows: StarRows, parts: list[tuple[Path, int, int]]) -> StarRows:
    """The cycle's rows from the program runs' stars ``(path, first, last)``, in program run order.

    Raises:
        CistemStarError: A program run's star is unreadable or does not hold exactly its slice.
    """
    positions = input_rows["position"]
    joined_parts: list[StarRows] = []
    offset = 0
    for j, (path, first, last) in enumerate(parts, start=1):
        part = parse_star_text(path.read_text(encoding="utf-8"), str(path))
        want = int(np.count_nonzero((positions >= first) & (positions <= last)))
        expected = positions[offset : offset + want]
        if len(part) != want or not np.array_equal(part["position"], expected):
            raise CistemStarError(
                f"{path.name}: program run {j} wrote {len(part)} rows, expected exactly the {want} "
                f"input rows at positions {first}–{last}"
            )
        offset += want
        joined_parts.append(part)
    joined = np.concatenate(joined_parts) if joined_parts else input_rows[:0].copy()
    if len(joined) != len(input_rows):
        raise CistemStarError(f"joined star has {len(joined)} rows, input {len(input_rows)}")
    for name in CTF_FIELDS:  # refine2d writes phase shift back in radians
        joined[name] = input_rows[name]
    return joined


def join_and_write(
    input_rows: StarRows, parts: list[tuple[Path, int, int]], star_tmp: Path, comment: str
) -> StarRows:
    """:func:`join_stars`, written (durably) to ``star_tmp`` for :func:`install`."""
    rows = join_stars(input_rows, parts)
    write_star(star_tmp, rows, [comment])
    return rows


def install(
    output_folder: Path,
    number: int,
    classes_tmp: Path,
    star_tmp: Path,
    *,
    box: int,
    class_count: int,
    pixel_size: float,
) -> tuple[Path, Path]:
    """Check and stamp the class averages, then move them and the cycle's star (written to
    ``star_tmp`` in the same file system) into place as ``cycle_<N>.mrc``/``.star``.

    Raises:
        CycleInputError: The averages do not have the expected box and K.
        OSError: A write failed (neither file is left in place).
    """
    shape = read_shape(classes_tmp)
    if (shape.nx, shape.ny, shape.nz) != (box, box, class_count):
        raise CycleInputError(
            f"class averages are {shape.nx}×{shape.ny}×{shape.nz}, "
            f"expected {box}×{box}×{class_count}"
        )
    stamp_pixel_size(classes_tmp, pixel_size)
    classes_path = output_folder / f"cycle_{number}.mrc"
    star_path = output_folder / f"cycle_{number}.star"
    classes_tmp.replace(classes_path)
    try:
        star_tmp.replace(star_path)
    except BaseException:
        with contextlib.suppress(OSError):
            classes_path.unlink()
        raise
    fsync_dir(output_folder)
    return classes_path, star_path


def occupancies(text: str) -> list[float]:
    """merge2d's ``Class = k, average occupancy = x`` values, in class order."""
    values: list[float] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Class =") and "average occupancy" in stripped:
            with contextlib.suppress(ValueError, IndexError):
                values.append(float(stripped.rsplit("=", 1)[1]))
    return values


def count_lines(
    number: int, members: list[int], used: list[int], occupancy: list[float]
) -> list[str]:
    """Session-log lines with the per-class member counts (and occupancies), 10 per line."""
    lines = [
        f"Cycle {number}: {sum(members) - members[0]} assigned, {members[0]} unassigned, "
        f"{sum(used) - used[0]} used this round"
    ]
    per_line = 10
    for start in range(1, len(members), per_line):
        cells = []
        for k in range(start, min(len(members), start + per_line)):
            occ = f" ({occupancy[k - 1]:.1f}%)" if k - 1 < len(occupancy) else ""
            cells.append(f"{k}: {members[k]}{occ}")
        lines.append(f"Cycle {number} members: " + ", ".join(cells))
    return lines


def tail(path: Path, count: int = LAST_LINES) -> list[str]:
    """The last ``count`` non-blank lines of a log (progress-bar redraws split on ``\\r``)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return lines[-count:]
