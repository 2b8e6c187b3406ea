"""Dataset end-to-end on hand-made Warp folders: the ledger's rules, generations, recovery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live2d_tui.config import ParticleSource
from live2d_tui.dataset.ingest import Dataset, IngestError, IngestReport
from live2d_tui.warp.settings import read_warp_settings

from .check import check_active_match_sources, check_consistent, ledger_ranges, relion_rows
from .warpfake import MODEL, WarpFolder, mrc_bytes


def settle(ds: Dataset, polls: int = 2) -> IngestReport:
    """Poll until nothing is pending (settle_seconds=0 needs two looks per file)."""
    report = ds.poll()
    for _ in range(polls):
        report = ds.poll()
    return report


def open_ds(warp: WarpFolder, out: Path, **kw: object) -> Dataset:
    return Dataset(warp.root, out, settle_seconds=0.0, **kw)  # type: ignore[arg-type]


def sources(warp: WarpFolder) -> dict[str, np.ndarray]:
    return {warp.stack_rel(r): d for r, d in warp.micrographs.items()}


def test_ingest_appends_complete_micrographs_with_ctf(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 4, seed=1, phase=35.0)
    warp.write_micrograph("b", 3, seed=2)
    warp.write_star(["a", "b"])
    ds = open_ds(warp, tmp_path / "out")
    report = settle(ds)
    assert (report.micrographs_seen, report.micrographs_ingested) == (2, 2)
    assert (report.particles_active, report.particles_total) == (7, 7)
    check_active_match_sources(ds, sources(warp))
    star = check_consistent(ds)
    assert star.dtype == np.float32
    from live2d_tui.formats.cistem_star import read_star

    rows = read_star(ds.star_path)
    assert rows["phase_shift"][:4].tolist() == [35.0] * 4
    assert rows["defocus_1"][4] == 15000.0 and rows["defocus_2"][5] == 14001.0
    assert rows["pixel_size"][0] == 2.0 and rows["voltage"][0] == 300.0
    rel = relion_rows(ds.relion_star_path)
    assert rel[5][1] == f"0000002@particles/b_{MODEL}.mrcs"
    assert rel[5][2] == "b.tif"
    text = ds.relion_star_path.read_text()
    assert "data_optics" in text and "_rlnImageOriginalName #2" in text
    assert ds.warp_settings is not None and ds.warp_settings.box_size == 32
    ds.close()


def test_nothing_read_before_the_star_is_stable(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2)
    warp.write_star(["a"])
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=3600.0)
    for _ in range(3):
        report = ds.poll()
        assert report.particles_total == 0 and report.pending  # settling: look again soon
    ds.close()
    ds = open_ds(warp, tmp_path / "out2")
    first, second, third, quiet = ds.poll(), ds.poll(), ds.poll(), ds.poll()
    assert first.pending and second.pending and not third.pending and not quiet.pending
    assert (second.particles_total, third.particles_appended, quiet.particles_total) == (0, 2, 2)
    ds.close()


def test_gone_unselected_and_returning_micrographs(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    for i, r in enumerate("abc"):
        warp.write_micrograph(r, 2 + i, seed=i)
    warp.write_star(list("abc"))
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    assert ds.active_count() == 9
    warp.write_star(["a", "c"])  # b vanished (Warp's filter)
    report = settle(ds)
    assert (report.particles_active, report.particles_total, report.micrographs_inactive) == (
        6,
        9,
        1,
    )
    assert ds.active_positions().tolist() == [1, 2, 6, 7, 8, 9]
    warp.write_star(["a", "b", "c"])  # back
    assert settle(ds).particles_active == 9
    assert ds.particle_count() == 9  # nothing appended twice
    ds.close()
    # allparticles keeps rows of unselected movies; the XML flag excludes them
    warp.write_star(list("abc"), kind="allparticles")
    warp.set_unselect("c", "True")
    ds = open_ds(warp, tmp_path / "out2", source=ParticleSource.ALL)
    settle(ds)
    assert ds.active_count() == 5
    warp.set_unselect("c", "null")
    warp.write_star(list("abc"), kind="allparticles")
    assert settle(ds).particles_active == 9
    check_active_match_sources(ds, sources(warp))
    ds.close()


def test_reprocessed_micrograph_gets_a_new_range(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 3, seed=1)
    warp.write_micrograph("b", 2, seed=2)
    warp.write_star(["a", "b"])
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    warp.write_micrograph("a", 4, seed=9)  # reprocessed: new count and content
    warp.write_star(["a", "b"])
    report = settle(ds)
    assert report.particles_total == 9 and report.particles_active == 6
    ranges = ledger_ranges(tmp_path / "out")
    assert [(r[0].split("/")[-1][0], r[1], r[3], r[4]) for r in ranges] == [
        ("a", 1, 0, 0),
        ("b", 4, 1, 1),
        ("a", 6, 1, 1),
    ]
    check_active_match_sources(ds, sources(warp))
    ds.close()


def test_incomplete_stack_is_deferred_until_complete(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    data = warp.write_micrograph("a", 4, seed=1)
    full = (warp.root / warp.stack_rel("a")).read_bytes()
    (warp.root / warp.stack_rel("a")).write_bytes(full[: 1024 + 2 * 32 * 32 * 4])
    warp.write_star(["a"])
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=0.0, log=messages.append)
    report = settle(ds, 3)
    assert report.micrographs_deferred == 1 and report.pending and report.particles_total == 0
    (warp.root / warp.stack_rel("a")).write_bytes(full)
    report = settle(ds)
    assert report.particles_total == 4 and not report.pending
    check_active_match_sources(ds, {warp.stack_rel("a"): data})
    ds.close()


def test_malformed_stack_is_named_and_nothing_earlier_changes(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2, seed=1)
    warp.write_star(["a"])
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=0.0, log=messages.append)
    settle(ds)
    warp.write_micrograph("b", 2, seed=2)
    bad = warp.root / warp.stack_rel("b")
    bad.write_bytes(b"\x07" * 2000)  # garbage header
    warp.write_star(["a", "b"])
    report = settle(ds)
    assert report.micrographs_deferred == 1 and report.particles_total == 2
    assert any(str(bad) in m for m in messages)
    check_active_match_sources(ds, {warp.stack_rel("a"): warp.micrographs["a"]})
    ds.close()


def test_invert_false_is_sign_flipped_and_float16_converted(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w", warp2=True)
    warp.write_settings(invert=False)
    warp.write_micrograph("a", 3, seed=1, invert=False, mode=12)
    warp.write_star(["a"])
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    check_active_match_sources(ds, sources(warp), flip={warp.stack_rel("a"): True})
    ds.close()


def test_box_change_starts_a_new_generation_and_flags_ab_initio(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2, seed=1)
    warp.write_star(["a"])
    messages: list[str] = []
    ds = open_ds(warp, tmp_path / "out", log=messages.append)
    settle(ds)
    assert ds.generation == 0 and not ds.consume_abinitio_flag()
    old_stack = ds.stack_path
    warp.write_settings(box=48)
    warp.write_micrograph("b", 3, seed=2, box=48)
    warp.write_star(["a", "b"])
    settle(ds, 3)  # the pass after the switch re-diffs every micrograph against generation 1
    assert ds.generation == 1 and ds.stack_path == tmp_path / "out/generation_1/combined_stack.mrcs"
    assert ds.particle_count() == 3  # only b: a (box 32) waits for reprocessing
    assert sum("new dataset generation 1" in m for m in messages) == 1
    assert sum("1 micrograph(s)" in m and "box=32" in m for m in messages) == 1
    assert ds.consume_abinitio_flag() and not ds.consume_abinitio_flag()
    assert old_stack.exists() and check_consistent(ds).shape == (3, 48, 48)
    # a changed picking threshold alone is not a new generation
    warp.write_micrograph("a", 2, seed=1, box=48)
    warp.write_star(["a", "b"])
    settle(ds)
    assert ds.generation == 1 and ds.active_count() == 5
    ds.close()


def test_request_reimport_builds_a_fresh_generation(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2, seed=1)
    warp.write_micrograph("b", 2, seed=2)
    warp.write_star(["a", "b"])
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    ds.request_reimport()
    settle(ds, 3)
    assert ds.generation == 1 and ds.particle_count() == 4
    assert ds.consume_abinitio_flag()
    check_active_match_sources(ds, sources(warp))
    ds.close()


def test_reopen_resumes_and_repairs_a_torn_tail(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 3, seed=1)
    warp.write_star(["a"])
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    ds.close()
    # simulate a crash after data, header and star rows but before the ledger commit
    with open(ds.stack_path, "ab") as f:
        f.write(b"\0" * 32 * 32 * 4 * 2 + b"\1" * 100)
    with open(ds.star_path, "a") as f:
        f.write("       4    0.00 torn")
    with open(ds.relion_star_path, "a") as f:
        f.write("0000004@combined_stack.mrcs 0000001@x\n")
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=0.0, log=messages.append)
    assert any("recovered" in m for m in messages)
    check_consistent(ds)
    warp.write_micrograph("b", 2, seed=2)
    warp.write_star(["a", "b"])
    settle(ds)
    check_active_match_sources(ds, sources(warp))
    ds.close()


def test_not_a_warp_folder_and_export_off_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not a Warp folder"):
        Dataset(tmp_path, tmp_path / "out")
    warp = WarpFolder(tmp_path / "w")
    warp.write_settings(export=False)
    with pytest.raises(IngestError, match="particle export is off"):
        Dataset(warp.root, tmp_path / "out")
    assert read_warp_settings(warp.root).export_enabled is False


def test_torn_settings_mid_session_keeps_the_previous(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2)
    warp.write_star(["a"])
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=0.0, log=messages.append)
    path = warp.root / "previous.settings"
    path.write_bytes(path.read_bytes()[:300])
    settle(ds)
    assert ds.warp_settings is not None and ds.warp_settings.box_size == 32
    assert any("previous.settings" in m and "keeping the previous" in m for m in messages)
    assert ds.particle_count() == 2
    ds.close()


def test_low_disk_space_stops_appending_with_a_message(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2)
    warp.write_star(["a"])
    ds = open_ds(warp, tmp_path / "out", min_free_gb=1e9)
    report = settle(ds)
    assert report.particles_total == 0
    assert any("GB free" in m and "nothing was written" in m for m in report.messages)
    ds.close()


def test_stack_readable_by_mrcfile_while_appending(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2, seed=1)
    warp.write_star(["a"])
    ds = open_ds(warp, tmp_path / "out")
    settle(ds)
    before = check_consistent(ds).copy()
    warp.write_micrograph("b", 5, seed=2)
    warp.write_star(["a", "b"])
    settle(ds)
    after = check_consistent(ds)
    np.testing.assert_array_equal(after[:2], before)
    (warp.root / "particles" / "x.mrcs").write_bytes(mrc_bytes(before, 2.0))
    ds.close()


def test_torn_movie_xml_defers_that_micrograph_with_a_message(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 2, seed=1)
    warp.write_micrograph("b", 3, seed=2)
    xml = warp.root / "b.xml"
    xml.write_bytes(xml.read_bytes()[:200])
    warp.write_star(["a", "b"])
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=0.0, log=messages.append)
    report = settle(ds)
    assert report.particles_total == 2 and report.micrographs_deferred == 1 and report.pending
    assert any(str(xml) in m and "deferred" in m for m in messages)
    warp.set_unselect("b", "null")  # Warp finishes writing it
    assert settle(ds).particles_total == 5
    check_active_match_sources(ds, sources(warp))
    ds.close()


def test_a_long_deferred_micrograph_is_named_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("live2d_tui.dataset.ingest.DEFER_LOG_SECONDS", 0.0)
    warp = WarpFolder(tmp_path / "w")
    warp.write_micrograph("a", 4, seed=1)
    stack = warp.root / warp.stack_rel("a")
    stack.write_bytes(stack.read_bytes()[:2000])  # Warp still writing it
    warp.write_star(["a"])
    messages: list[str] = []
    ds = Dataset(warp.root, tmp_path / "out", settle_seconds=3600.0, log=messages.append)
    # accept the table at once, but keep the stack unsettled
    ds._warp._table._tracker.min_interval = 0.0
    for _ in range(4):
        ds.poll()
    named = [m for m in messages if m.startswith("deferred for") and str(stack) in m]
    assert len(named) == 1 and "being written" in named[0]
    ds.close()
