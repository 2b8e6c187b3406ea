"""Replaying a simulated session into a live folder (the freshness benchmark's feed)."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.warp_star import star_text
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.simulate import documents as docs
from live2d_tui.simulate.replay import (
    ReplayError,
    ReplayMovie,
    _GrowingTable,
    replay_session,
)

OPTS = SimulationOptions(
    micrographs=6, particles_per_micrograph=9, box=48, pixel_size=4.0, views=3, seed=5
)


def read_stack(path: Path) -> np.ndarray:
    with mrcfile.open(path, permissive=True) as mrc:
        return np.array(mrc.data)


def test_growing_table_matches_star_text_as_widths_change() -> None:
    rng = np.random.default_rng(0)
    table = _GrowingTable()
    rows: list[list[str]] = []
    widened = 0
    for step in range(12):
        # values whose width grows now and then, so the whole table is re-aligned
        new = [
            [str(int(rng.integers(0, 10 ** (1 + step // 4))))] * len(docs.PARTICLE_COLUMNS)
            for _ in range(3)
        ]
        before = list(table.widths)
        rows += new
        table.add(new)
        widened += table.widths != before
        assert table.text() == star_text(docs.PARTICLE_COLUMNS, rows)
        assert table.window_text(5) == star_text(docs.PARTICLE_COLUMNS, rows[-5:])
    assert widened >= 2  # the re-alignment path ran, not only the append path


def test_replay_publishes_the_simulated_session_movie_by_movie(tmp_path: Path) -> None:
    source, live = tmp_path / "source", tmp_path / "live"
    simulate_session(source, OPTS)
    seen: list[tuple[int, str]] = []
    expected: list[list[str]] = []

    def on_movie(index: int, movie: ReplayMovie) -> None:
        # after each movie the good table lists exactly the movies so far, as the simulator
        # wrote it at that point, and the movie's stack is whole
        expected.extend(movie.rows)
        model = movie.stack.removeprefix(movie.root + "_").removesuffix(".mrcs")
        good = (live / f"goodparticles_{model}.star").read_text()
        assert good == star_text(docs.PARTICLE_COLUMNS, expected)
        stack = f"particles/{movie.stack}"
        assert (live / stack).read_bytes() == (source / stack).read_bytes()
        seen.append((index, movie.root))

    summary = replay_session(source, live, 0.01, on_movie=on_movie)
    assert [i for i, _ in seen] == list(range(OPTS.micrographs))
    assert summary.movies == OPTS.micrographs and summary.particles == len(expected)
    assert set(summary.listed_at) == {p.name for p in (source / "particles").glob("*.mrcs")}
    # the final tables equal the simulator's byte for byte
    for star in sorted(source.glob("*particles*.star")):
        assert (live / star.name).read_bytes() == star.read_bytes()
    # ingested, the replayed session gives the same particles as the simulated one
    datasets = []
    for folder in (source, live):
        ds = Dataset(folder, tmp_path / f"out_{folder.name}", settle_seconds=0.1)
        ds.poll_until_settled(30, interval=0.2)
        datasets.append(ds)
    a, b = datasets
    assert a.particle_count() == b.particle_count() == len(expected)
    np.testing.assert_array_equal(a.active_positions(), b.active_positions())
    np.testing.assert_array_equal(read_stack(a.stack_path), read_stack(b.stack_path))
    assert a.star_path.read_text() == b.star_path.read_text()
    for ds in datasets:
        ds.close()


def test_replay_refuses_a_session_with_hazards_and_a_folder_in_use(tmp_path: Path) -> None:
    hazards = SimulationOptions(micrographs=4, particles_per_micrograph=5, box=64, vanishing=0.5)
    simulate_session(tmp_path / "hazards", hazards)
    with pytest.raises(ReplayError, match="without hazards"):
        replay_session(tmp_path / "hazards", tmp_path / "live", 0.0)
    assert not (tmp_path / "live").exists()
    simulate_session(tmp_path / "plain", OPTS)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "previous.settings").write_text("x")
    with pytest.raises(ReplayError, match="already holds a session"):
        replay_session(tmp_path / "plain", tmp_path / "busy", 0.0)
