"""The input of a cycle: which particles it classifies, and the star file refine2d reads.

The cycle's input star is built from the dataset at cycle start, never carried forward blindly
(the original appended rows to the previous star and lost a particle per import;
docs/architecture.md#compared-with-the-original-live2d):

- rows: the active particles whose stack position is ≤ the stack's NZ seen at cycle start,
  sorted by position, each exactly once (positions may have gaps: inactive micrographs);
- psi, shifts, class (and the score-related columns occupancy, logP, sigma, score) from the
  previous cycle's star for particles that have them; new particles get class 0 and psi/shifts 0,
  so refine2d searches every class for them;
- the CTF columns (defocus, astigmatism, **phase shift in degrees**, pixel size, kV, Cs,
  amplitude contrast) always afresh from the dataset star: refine2d writes phase shift back in
  radians and would shrink it by 180/π every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.formats.cistem_star import CTF_FIELDS, StarRows, empty_rows, read_star

CARRIED_FIELDS: tuple[str, ...] = (
    "psi",
    "x_shift",
    "y_shift",
    "best_class",
    "occupancy",
    "logp",
    "sigma",
    "score",
)
"""Columns a particle keeps from the previous cycle."""


class CycleInputError(ValueError):
    """The dataset cannot feed this cycle (no particles, a position missing from the star...)."""


@dataclass(frozen=True)
class CycleInputs:
    """What a cycle classifies, as seen at its start."""

    stack_path: Path
    """The combined particle stack (append-only MRC)."""
    nz: int
    """Slices in the stack at cycle start; later appends are ignored by this cycle."""
    dataset_star: Path
    """cisTEM star of every particle in the stack (the source of the CTF columns)."""
    active_positions: npt.NDArray[np.integer]
    """1-based stack positions of the active particles."""
    previous_star: Path | None
    """The previous cycle's star (psi, shifts, classes), or ``None`` for a seed."""
    previous_classes: Path | None
    """The previous cycle's class averages (refinement reference), or ``None`` for a seed."""
    pixel_size: float
    """Pixel size of the stack in Å (stamped into the class averages)."""


def _lookup(rows: StarRows, positions: npt.NDArray[np.int64], source: str) -> StarRows:
    """Rows of ``rows`` at ``positions`` (each must be present exactly once)."""
    star_positions = rows["position"]
    order = np.argsort(star_positions, kind="stable")
    sorted_positions = star_positions[order]
    if len(sorted_positions) == 0:
        raise CycleInputError(f"{source}: the star has no rows")
    index = np.clip(np.searchsorted(sorted_positions, positions), 0, len(sorted_positions) - 1)
    missing = positions[sorted_positions[index] != positions]
    if missing.size:
        more = " ..." if missing.size > 5 else ""
        shown = missing[:5].tolist()
        raise CycleInputError(f"{source}: no row for stack position(s) {shown}{more}")
    result: StarRows = rows[order[index]]
    return result


def select_positions(active_positions: npt.ArrayLike, nz: int) -> npt.NDArray[np.int64]:
    """Sorted unique active positions within the stack's first ``nz`` slices."""
    positions = np.unique(np.asarray(active_positions, dtype=np.int64))
    if positions.size and positions[0] < 1:
        raise CycleInputError(f"stack positions are 1-based (got {int(positions[0])})")
    return positions[positions <= nz]


def build_input_rows(
    dataset_rows: StarRows,
    positions: npt.NDArray[np.int64],
    previous_rows: StarRows | None,
    *,
    dataset_name: str = "dataset star",
) -> StarRows:
    """The cycle's input rows (see the module docstring); pure, for tests and the runner.

    Args:
        dataset_rows: Every particle of the dataset (CTF columns in degrees).
        positions: Sorted unique 1-based positions the cycle uses.
        previous_rows: The previous cycle's rows, or ``None``.
        dataset_name: Names the dataset star in errors.
    """
    if positions.size == 0:
        raise CycleInputError("no active particles within the stack")
    source = _lookup(dataset_rows, positions, dataset_name)
    rows = empty_rows(len(positions))
    rows["position"] = positions
    for name in CTF_FIELDS:
        rows[name] = source[name]
    for name in ("beam_tilt_x", "beam_tilt_y", "image_shift_x", "image_shift_y"):
        rows[name] = source[name]
    if previous_rows is not None and len(previous_rows):
        previous_positions = previous_rows["position"]
        order = np.argsort(previous_positions, kind="stable")
        sorted_previous = previous_positions[order]
        index = np.searchsorted(sorted_previous, positions)
        index = np.clip(index, 0, len(sorted_previous) - 1)
        known = sorted_previous[index] == positions
        carried = previous_rows[order[index[known]]]
        for name in CARRIED_FIELDS:
            rows[name][known] = carried[name]
    return rows


def load_input_rows(inputs: CycleInputs, *, carry: bool = True) -> StarRows:
    """Read the dataset (and previous) star and build the cycle's input rows (blocking).

    Args:
        inputs: The cycle's inputs.
        carry: Take psi, shifts and classes from the previous star. A random-seed cycle passes
            ``False``: new classes owe nothing to an earlier job's assignments.
    """
    positions = select_positions(inputs.active_positions, inputs.nz)
    dataset_rows = read_star(inputs.dataset_star)
    previous = None
    if carry and inputs.previous_star is not None:
        previous = read_star(inputs.previous_star)
    name = str(inputs.dataset_star)
    return build_input_rows(dataset_rows, positions, previous, dataset_name=name)
