"""Warp-side readers: previous.settings (W1/W2), movie XML, particle star, snapshots, mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from live2d_tui.formats.warp_star import VALUE_INDEX, parse_warp_star
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.warp.mounts import filesystem_type, is_network_filesystem, parse_mountinfo
from live2d_tui.warp.movie import parse_movie_xml
from live2d_tui.warp.settings import (
    WarpSettingsMissing,
    parse_warp_settings,
    read_warp_settings,
    resolve_processing_folder,
)
from live2d_tui.warp.snapshot import StabilityTracker, StableSnapshot

from .warpfake import MODEL, WarpFolder, movie_xml, settings_xml


def test_w1_settings_utf16_binned_pixel_size() -> None:
    data = settings_xml(pixel=1.1, bin_times=1.0, box=128, diameter=180)
    assert data[:2] == b"\xff\xfe"
    s = parse_warp_settings(data)
    assert s.warp_version == 1
    assert s.pixel_size == pytest.approx(2.2)
    assert (s.box_size, s.diameter, s.model) == (128, 180.0, MODEL)
    assert s.mask_radius_guess == pytest.approx(108.0)
    assert s.export_enabled and s.invert and s.normalize
    assert (s.voltage, s.cs, s.amplitude_contrast) == (300.0, 2.7, 0.07)


def test_w2_settings_utf8_pixel_key_and_model_without_extension() -> None:
    data = settings_xml(warp2=True, pixel=0.8, bin_times=2.0, model="C:\\boxnet\\Mine.onnx")
    s = parse_warp_settings(data)
    assert s.warp_version == 2
    assert s.pixel_size == pytest.approx(3.2)
    assert s.model == "Mine"
    assert s.model_candidates == ("Mine", "Mine.onnx")


def test_w1_model_keeps_extension() -> None:
    s = parse_warp_settings(settings_xml(model="D:\\models\\BoxNet2.pb"))
    assert s.model == "BoxNet2.pb"


def test_torn_settings_is_an_error_naming_the_file(tmp_path: Path) -> None:
    data = settings_xml()
    with pytest.raises(WarpFileError, match=r"previous\.settings"):
        parse_warp_settings(data[: len(data) // 2], "x/previous.settings")
    with pytest.raises(WarpFileError, match="empty"):
        parse_warp_settings(b"", "previous.settings")


def test_missing_settings_says_not_a_warp_folder(tmp_path: Path) -> None:
    with pytest.raises(WarpSettingsMissing, match="not a Warp folder"):
        read_warp_settings(tmp_path)


def test_processing_folder_resolved_by_last_component(tmp_path: Path) -> None:
    (tmp_path / "proc" / "particles").mkdir(parents=True)
    (tmp_path / "previous.settings").write_bytes(
        settings_xml(warp2=True, processing_folder="E:\\sessions\\x\\proc\\")
    )
    s = read_warp_settings(tmp_path)
    assert resolve_processing_folder(tmp_path, s) == tmp_path / "proc"


def test_movie_xml_flags_and_export_options() -> None:
    info = parse_movie_xml(movie_xml(box=48, pixel=1.5, invert=False, unselect="True"), "m.xml")
    assert info.unselect_manual is True
    assert info.export is not None
    assert (info.export.box_size, info.export.invert) == (48, False)
    assert info.export.pixel_size == pytest.approx(1.5)
    assert parse_movie_xml(movie_xml(), "m.xml").unselect_manual is None
    with pytest.raises(WarpFileError, match=r"m\.xml"):
        parse_movie_xml(movie_xml()[:-30], "m.xml")


def _folder(tmp_path: Path) -> WarpFolder:
    warp = WarpFolder(tmp_path)
    warp.write_micrograph("a", 3, seed=1, phase=42.0)
    warp.write_micrograph("b", 2, seed=2)
    return warp


def test_star_groups_by_micrograph_and_reads_by_name(tmp_path: Path) -> None:
    warp = _folder(tmp_path)
    table = parse_warp_star(warp.star_text(["a", "b"]).encode(), "good.star")
    assert table.rows == 5
    assert list(table.micrographs) == [warp.stack_rel("a"), warp.stack_rel("b")]
    a = table.micrographs[warp.stack_rel("a")]
    assert a.indices.tolist() == [1, 2, 3]
    assert a.micrograph == "a.tif"
    assert a.values[0, VALUE_INDEX["rlnPhaseShift"]] == 42.0
    assert a.values[2, VALUE_INDEX["rlnDefocusU"]] == 15002.0


def test_star_column_order_does_not_matter(tmp_path: Path) -> None:
    warp = _folder(tmp_path)
    lines = warp.star_text(["a"]).splitlines()
    labels = [i for i, line in enumerate(lines) if line.startswith("_")]
    rows = [line.split() for line in lines[labels[-1] + 1 :]]
    names = [lines[i].split()[0] for i in labels]
    order = list(reversed(range(len(names))))
    text = "\ndata_\n\nloop_\n" + "".join(f"{names[j]} #{k + 1}\n" for k, j in enumerate(order))
    text += "".join(" ".join(r[j] for j in order) + "\n" for r in rows)
    table = parse_warp_star(text.encode(), "s")
    assert table.micrographs[warp.stack_rel("a")].values[1, VALUE_INDEX["rlnDefocusU"]] == 15001.0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[:-1], "no final newline"),
        (lambda t: t[: t.rindex("@") - 3] + "\n", "fields, expected"),
        (lambda t: t.replace("_rlnDefocusV", "_rlnSomethingElse"), "rlnDefocusV is missing"),
        (lambda t: t.replace("15001.0", "15x01.0"), "non-number"),
        (lambda t: "hello\n", "no loop_"),
    ],
)
def test_star_validation_rejects_incomplete_files(tmp_path: Path, mutate, message) -> None:  # type: ignore[no-untyped-def]
    warp = _folder(tmp_path)
    with pytest.raises(WarpFileError, match=message):
        parse_warp_star(mutate(warp.star_text(["a", "b"])).encode(), "good.star")


def test_stability_needs_two_looks_min_interval_apart() -> None:
    now = [0.0]
    tracker = StabilityTracker(1.0, clock=lambda: now[0])
    assert not tracker.check("f", (10, 1))
    now[0] = 0.5
    assert not tracker.check("f", (10, 1))
    now[0] = 1.0
    assert tracker.check("f", (10, 1))
    assert not tracker.check("f", (11, 2))  # changed: start again
    now[0] = 2.5
    assert tracker.check("f", (11, 2))
    assert not tracker.check("f", None)


def test_snapshot_keeps_previous_on_invalid_and_survives_vanishing(tmp_path: Path) -> None:
    now = [0.0]
    warp = _folder(tmp_path)
    path = warp.write_star(["a"])
    snap = StableSnapshot(path, parse_warp_star, clock=lambda: now[0])
    assert snap.poll().value is None
    now[0] = 1.0
    first = snap.poll()
    assert first.changed and first.value is not None and first.value.rows == 3
    path.write_text(warp.star_text(["a", "b"])[:-5])  # torn rewrite
    snap.poll()
    now[0] = 2.0
    torn = snap.poll()
    assert torn.error is not None and str(path) in torn.error
    assert torn.value is first.value and not torn.changed
    path.unlink()
    assert snap.poll().missing and snap.value is first.value
    warp.write_star(["a", "b"])
    snap.poll()
    now[0] = 3.0
    assert snap.poll().value.rows == 5  # type: ignore[union-attr]


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:40 / /mnt/warp rw,relatime shared:20 - cifs //pc/share rw,vers=3.0
41 22 0:41 / /mnt/my\\040nfs rw - nfs4 srv:/x rw
"""


def test_network_filesystem_detection_from_mountinfo() -> None:
    assert parse_mountinfo(MOUNTINFO)[2] == ("/mnt/my nfs", "nfs4")
    assert filesystem_type(Path("/mnt/warp/session1"), MOUNTINFO) == "cifs"
    assert is_network_filesystem(Path("/mnt/warp"), MOUNTINFO)
    assert is_network_filesystem(Path("/mnt/my nfs/a"), MOUNTINFO)
    assert not is_network_filesystem(Path("/mnt/warpish"), MOUNTINFO)
    assert filesystem_type(Path("/home/u"), MOUNTINFO) == "ext4"


def test_star_parsed_in_small_chunks_gives_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warp = WarpFolder(tmp_path)
    for i in range(6):
        warp.write_micrograph(f"m{i}", 3 + i, seed=i)
    text = warp.star_text([f"m{i}" for i in (0, 3, 1, 5, 2, 4)]).encode()
    whole = parse_warp_star(text, "s")
    monkeypatch.setattr("live2d_tui.formats.warp_star.CHUNK_BYTES", 150)
    chunked = parse_warp_star(text, "s")
    assert list(chunked.micrographs) == list(whole.micrographs) and chunked.rows == whole.rows
    for stack, rows in whole.micrographs.items():
        assert chunked.micrographs[stack].indices.tolist() == rows.indices.tolist()
        assert (chunked.micrographs[stack].values == rows.values).all()
    bad = text.replace(b"@particles/m5", b" @particles/m5", 1)
    lineno = text[: text.index(b"@particles/m5")].count(b"\n") + 1
    with pytest.raises(WarpFileError, match=f"line {lineno} has 15 fields"):
        parse_warp_star(bad, "s")


def test_star_with_interleaved_micrographs_groups_rows_in_table_order(tmp_path: Path) -> None:
    warp = WarpFolder(tmp_path)
    warp.write_micrograph("a", 3, seed=1)
    warp.write_micrograph("b", 3, seed=2)
    lines = warp.star_text(["a", "b"]).splitlines()
    body = len(lines) - 6
    head, rows = lines[:body], lines[body:]
    mixed = [rows[0], rows[3], rows[1], rows[4], rows[2], rows[5]]
    table = parse_warp_star(("\n".join(head + mixed) + "\n").encode(), "s")
    assert list(table.micrographs) == [warp.stack_rel("a"), warp.stack_rel("b")]
    b = table.micrographs[warp.stack_rel("b")]
    assert b.indices.tolist() == [1, 2, 3]
    assert b.values[:, VALUE_INDEX["rlnDefocusU"]].tolist() == [15000.0, 15001.0, 15002.0]
