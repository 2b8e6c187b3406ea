"""Invariant checks shared by the ingest tests: stack, ledger and both stars agree, and every
active particle's slice equals its source slice."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.cistem_star import read_star


def relion_rows(path: Path) -> list[list[str]]:
    """Data rows of the particles table of combined_stack_relion.star."""
    lines = path.read_text().splitlines()
    start = lines.index("data_particles")
    rows = []
    for line in lines[start:]:
        parts = line.split()
        if len(parts) == 10 and "@" in parts[0]:
            rows.append(parts)
    return rows


def read_stack(path: Path) -> npt.NDArray[np.float32]:
    """The combined stack through mrcfile in strict mode (our header must satisfy it)."""
    assert mrcfile.validate(str(path), print_file=io.StringIO())
    with mrcfile.open(path, permissive=False) as mrc:
        h = mrc.header
        # mrcfile presents a one-slice stack as a 2-D image
        shape = (int(h.nz), int(h.ny), int(h.nx))
        return np.array(mrc.data, dtype=np.float32).reshape(shape)


def check_consistent(ds: Dataset) -> npt.NDArray[np.float32]:
    """Stack NZ = ledger NZ = rows of both stars, positions 1..NZ in order; returns the stack."""
    nz = ds.particle_count()
    if nz == 0 and not ds.stack_path.exists():
        assert ds.active_count() == 0  # nothing ingested yet: no generation, no files
        return np.zeros((0, 1, 1), dtype=np.float32)
    stack = read_stack(ds.stack_path)
    assert stack.shape[0] == nz
    star = read_star(ds.star_path)
    assert star["position"].tolist() == list(range(1, nz + 1))
    rel = relion_rows(ds.relion_star_path)
    assert [r[0] for r in rel] == [f"{i:07d}@combined_stack.mrcs" for i in range(1, nz + 1)]
    ranges = ledger_ranges(ds.output_folder)
    position = 1
    for _stack, first, rows, _active, _current in ranges:  # contiguous, no gaps or overlaps
        assert first == position
        position += rows
    assert position == nz + 1
    text = ds.star_path.read_text()
    assert "\n\n" not in text[text.index("#    POS") :]
    return stack


Range = tuple[str, int, int, int, int]


def ledger_ranges(output: Path, generation: int | None = None) -> list[Range]:
    """(stack, first, rows, active, current) of the ledger (one generation or the last)."""
    db = sqlite3.connect(output / "ledger.sqlite")
    try:
        if generation is None:
            generation = db.execute("SELECT max(generation) FROM generations").fetchone()[0]
        return [
            (str(a), int(b), int(c), int(d), int(e))
            for a, b, c, d, e in db.execute(
                "SELECT stack, first, rows, active, current FROM ranges WHERE generation = ?"
                " ORDER BY first",
                (generation,),
            )
        ]
    finally:
        db.close()


def check_active_match_sources(
    ds: Dataset, sources: dict[str, npt.NDArray[np.float32]], flip: dict[str, bool] | None = None
) -> None:
    """Every active range's slices equal its micrograph's current source data; no micrograph
    has two active ranges; the active positions are exactly the active ranges."""
    stack = check_consistent(ds)
    active = [r for r in ledger_ranges(ds.output_folder) if r[3]]
    stacks = [r[0] for r in active]
    assert len(stacks) == len(set(stacks)), "a micrograph is active twice"
    expected_positions: list[int] = []
    for name, first, rows, _, current in active:
        assert current == 1
        src = sources[name]
        sign = -1.0 if flip and flip.get(name) else 1.0
        assert rows == src.shape[0]
        np.testing.assert_array_equal(stack[first - 1 : first - 1 + rows], sign * src)
        expected_positions += range(first, first + rows)
    assert ds.active_positions().tolist() == sorted(expected_positions)
    assert ds.active_count() == len(expected_positions)
