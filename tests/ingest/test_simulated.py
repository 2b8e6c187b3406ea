"""Ingest against the simulator in live mode with every hazard switched on."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.formats.warp_star import parse_warp_star
from live2d_tui.simulate import SimulationOptions, SimulationSummary, simulate_session
from live2d_tui.warp.movie import read_movie_xml

from .check import check_active_match_sources, ledger_ranges

HAZARDS = {
    "vanishing": 0.25,
    "unselect_later": 0.25,
    "reprocess": 0.25,
    "late_stacks": True,
    "star_gap": 0.3,
    "torn_star": True,
    "torn_settings": True,
}


SETTLE = 0.3
"""Stability window used here: shorter than the simulator's rate, so ingest happens live."""


def run_live(
    opts: SimulationOptions, folder: Path, out: Path, during: list[int] | None = None
) -> tuple[Dataset, SimulationSummary]:
    """Run the simulator in a thread while polling; then poll until everything settled.
    ``during`` receives the stack size seen at each poll while the simulator runs."""
    result: list[SimulationSummary] = []
    thread = threading.Thread(target=lambda: result.append(simulate_session(folder, opts)))
    thread.start()
    ds: Dataset | None = None
    messages: list[str] = []
    try:
        while thread.is_alive():
            if ds is None and (folder / "previous.settings").exists():
                try:
                    ds = Dataset(folder, out, log=messages.append, settle_seconds=SETTLE)
                except Exception:  # settings may be torn at the very start
                    ds = None
            elif ds is not None:
                ds.poll()
                if during is not None:
                    during.append(ds.particle_count())
            time.sleep(0.2)
    finally:
        thread.join()
    if ds is None:
        ds = Dataset(folder, out, log=messages.append, settle_seconds=SETTLE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = ds.poll()
        if ds.snapshot_loaded and not report.pending and report.micrographs_seen:
            # two more passes so the final rewrite is seen as stable and applied
            time.sleep(SETTLE + 0.1)
            ds.poll()
            time.sleep(SETTLE + 0.1)
            report = ds.poll()
            if not report.pending:
                break
        time.sleep(0.5)
    return ds, result[0]


def expected_sources(
    summary: SimulationSummary, invert: bool, box: int | None = None
) -> dict[str, np.ndarray]:
    """Stack path → the particles that must be active: the final goodparticles snapshot minus
    micrographs whose XML says UnselectManual=True (optionally only one box size)."""
    proc = summary.output_folder
    table = parse_warp_star(summary.goodparticles.read_bytes(), "final")
    out: dict[str, np.ndarray] = {}
    for stack, rows in table.micrographs.items():
        root = Path(stack).name.rsplit("_", 2)[0]
        xml = next(p for p in (proc / f"{root}.xml", summary.folder / f"{root}.xml") if p.exists())
        if read_movie_xml(xml).unselect_manual:
            continue
        header = read_header(proc / stack)
        if box is not None and header.nx != box:
            continue
        out[stack] = read_slices(proc / stack, header, rows.indices, flip=not invert)
    return out


@pytest.mark.parametrize(
    "warp2",
    [pytest.param(False, marks=pytest.mark.slow), True],
    ids=["warp1", "warp2-processing-folder"],
)
def test_live_session_with_every_hazard(tmp_path: Path, warp2: bool) -> None:
    opts = SimulationOptions(
        micrographs=8 if warp2 else 14,
        particles_per_micrograph=12,
        box=32,
        pixel_size=3.0,
        diameter=60.0,
        rate=0.8,
        seed=3,
        invert=False,
        warp2=warp2,
        processing_folder="processing" if warp2 else None,
        **HAZARDS,  # type: ignore[arg-type]
    )
    during: list[int] = []
    ds, summary = run_live(opts, tmp_path / "warp", tmp_path / "out", during)
    assert summary.vanished and summary.unselected and summary.reprocessed
    assert 0 < during[len(during) // 2] < ds.particle_count()  # ingested live, not at the end
    sources = expected_sources(summary, invert=False)
    flip = dict.fromkeys(sources, False)  # sources were already flipped to protein white
    check_active_match_sources(ds, sources, flip)
    active = {r[0] for r in ledger_ranges(ds.output_folder) if r[3]}
    assert active == set(sources)
    # a stack is appended once unless Warp reprocessed it (never half-written, then again)
    ranges = ledger_ranges(ds.output_folder)
    reprocessed = set(summary.reprocessed)
    for stack in {r[0] for r in ranges}:
        count = sum(1 for r in ranges if r[0] == stack)
        root = Path(stack).name.rsplit("_", 2)[0]
        assert count == 1 or root in reprocessed, stack
    ds.close()


def test_live_box_and_model_change_start_a_new_generation(tmp_path: Path) -> None:
    opts = SimulationOptions(
        micrographs=6,
        particles_per_micrograph=10,
        box=32,
        pixel_size=3.0,
        diameter=60.0,
        rate=0.8,
        seed=4,
        change_box_at=2,
        change_model_at=4,
        torn_settings=True,
    )
    ds, summary = run_live(opts, tmp_path / "warp", tmp_path / "out")
    assert ds.generation == 1
    assert ds.consume_abinitio_flag()
    assert ds.stack_path.parent.name == "generation_1"
    sources = expected_sources(summary, invert=True, box=40)
    check_active_match_sources(ds, sources)
    assert {r[0] for r in ledger_ranges(ds.output_folder) if r[3]} == set(sources)
    ds.close()
