"""The movie catalog: every processed movie from its XML, each file parsed once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from live2d_tui.dataset.ingest import Dataset
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.warp.catalog import MovieCatalog

START = 1_700_000_000.0


def session(tmp_path: Path, **options: object) -> Path:
    folder = tmp_path / "warp"
    base: dict[str, object] = {
        "micrographs": 5,
        "particles_per_micrograph": 8,
        "box": 32,
        "diameter": 60.0,
        "seed": 3,
        "start_time": START,
        "movie_seconds": 120.0,
    }
    simulate_session(folder, SimulationOptions(**{**base, **options}))  # type: ignore[arg-type]
    return folder


def test_scan_reads_each_movie_once_with_its_time_and_ctf(tmp_path: Path) -> None:
    folder = session(tmp_path)
    catalog = MovieCatalog([folder])
    first = catalog.scan()
    assert first.parsed == 5 and len(first.new) == 5 and not first.errors
    times = sorted(m.time for m in first.movies)
    assert times == [START + 120.0 * i for i in range(5)]
    for movie in first.movies:
        assert movie.ctf is not None and movie.ctf.resolution is not None
        assert 0.8 <= (movie.ctf.defocus or 0) <= 2.5 and not movie.unselected
    again = catalog.scan()
    assert again.parsed == 0 and again.new == [] and len(again.movies) == 5


def test_a_rewritten_xml_is_read_again_but_keeps_its_time(tmp_path: Path) -> None:
    folder = session(tmp_path)
    catalog = MovieCatalog([folder])
    movie = min(catalog.scan().movies, key=lambda m: m.time)
    xml = folder / f"{movie.root}.xml"
    text = (
        xml.read_bytes().decode("utf-16").replace('UnselectManual="null"', 'UnselectManual="True"')
    )
    xml.write_bytes(text.encode("utf-16"))
    scan = catalog.scan()
    assert scan.parsed == 1 and scan.new == []
    again = next(m for m in scan.movies if m.root == movie.root)
    assert again.unselected and again.time == movie.time


def test_torn_foreign_and_removed_files(tmp_path: Path) -> None:
    folder = session(tmp_path)
    catalog = MovieCatalog([folder])
    movies = sorted(catalog.scan().movies, key=lambda m: m.time)
    xml = folder / f"{movies[0].root}.xml"
    data = xml.read_bytes()
    xml.write_bytes(data[: len(data) // 2])  # Warp rewriting it in place
    (folder / "notes.xml").write_text('<?xml version="1.0"?><Notes/>')
    (folder / f"{movies[1].root}.xml").unlink()
    scan = catalog.scan()
    assert len(scan.errors) == 1 and movies[0].root in scan.errors[0]
    roots = {m.root for m in scan.movies}
    assert movies[0].root in roots  # the last good reading stays
    assert movies[1].root not in roots and "notes" not in roots
    assert catalog.scan().parsed == 0  # the foreign file is remembered, not re-read


def test_warp2_processing_folder_comes_first(tmp_path: Path) -> None:
    folder = session(tmp_path, warp2=True, processing_folder="proc")
    catalog = MovieCatalog([folder / "proc", folder])
    scan = catalog.scan()
    assert len(scan.movies) == 5 and scan.parsed == 5


def test_table_view_counts_particles_per_movie(tmp_path: Path) -> None:
    folder = session(tmp_path, rejected_from=3)
    dataset = Dataset(folder, tmp_path / "out", settle_seconds=0.0)
    try:
        assert dataset.table_view() is None
        dataset.poll_until_settled(20.0, interval=0.05)
        view = dataset.table_view()
        assert view is not None and view.name.startswith("goodparticles_")
        catalog = MovieCatalog(dataset.xml_folders)
        movies = sorted(catalog.scan().movies, key=lambda m: m.time)
        # the last rewrite dropped the rejected movies 3 and 4
        assert set(view.counts) == {m.root for m in movies[:3]}
        assert sum(view.counts.values()) == dataset.active_count()
        table = folder / view.name
        assert view.time == pytest.approx(os.stat(table).st_mtime)
        assert dataset.table_view() is view  # made once per snapshot
    finally:
        dataset.close()
