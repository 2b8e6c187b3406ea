"""Warp's particle star parsed streaming from a local copy: same table, same validation, the
source's handle held only for the copy, the scratch copy removed, a rewrite during the copy
discarded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live2d_tui.formats.warp_star import (
    WarpTable,
    parse_warp_star,
    parse_warp_star_chunks,
    read_warp_star,
)
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.warp import snapshot
from live2d_tui.warp.snapshot import CopiedSnapshot

from .warpfake import WarpFolder


def _warp(tmp_path: Path, n: int = 6) -> WarpFolder:
    warp = WarpFolder(tmp_path / "warp")
    for i in range(n):
        warp.write_micrograph(f"m{i}", 2 + i, seed=i)
    return warp


def _same(a: WarpTable, b: WarpTable) -> None:
    assert a.rows == b.rows and list(a.micrographs) == list(b.micrographs)
    for stack, rows in a.micrographs.items():
        other = b.micrographs[stack]
        assert rows.micrograph == other.micrograph
        assert rows.indices.tolist() == other.indices.tolist()
        assert np.array_equal(rows.values, other.values, equal_nan=True)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_file_parsed_in_any_chunk_size_gives_the_same_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    warp = _warp(tmp_path)
    text = warp.star_text([f"m{i}" for i in (0, 3, 1, 5, 2, 4)]).encode()
    whole = parse_warp_star(text, "s")
    assert whole.rows == sum(2 + i for i in range(6))
    path = tmp_path / "copy.star"
    path.write_bytes(text)
    monkeypatch.setattr("live2d_tui.formats.warp_star.CHUNK_BYTES", chunk)
    _same(read_warp_star(path, "s"), whole)
    _same(parse_warp_star(text, "s"), whole)


def test_chunks_without_a_capacity_grow_and_give_the_same_table(tmp_path: Path) -> None:
    text = _warp(tmp_path).star_text([f"m{i}" for i in range(6)]).encode()
    pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
    grown = parse_warp_star_chunks(iter(pieces), "s", capacity=0)
    _same(grown, parse_warp_star(text, "s"))
    assert grown.micrographs[next(iter(grown.micrographs))].values.base is not None  # a view


def test_header_only_table_is_valid_and_empty(tmp_path: Path) -> None:
    text = _warp(tmp_path, 1).star_text(["m0"])
    head = "".join(line + "\n" for line in text.splitlines() if "@" not in line)
    path = tmp_path / "empty.star"
    path.write_text(head)
    table = read_warp_star(path)
    assert table.rows == 0 and table.micrographs == {}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[:-1], "no final newline"),
        (lambda t: t[: t.rindex("@") - 3] + "\n", "fields, expected"),
        (lambda t: t[: t.rindex("@") - 3], "no final newline"),
        (lambda t: t.replace("_rlnDefocusV", "_rlnSomethingElse"), "rlnDefocusV is missing"),
        (lambda t: t.replace("15001.0", "15x01.0"), "non-number"),
        (lambda t: t.replace("1@particles", "0@particles", 1), "is not N@stack"),
        (lambda t: "hello\n", "no loop_"),
        (lambda t: "", "no final newline"),
        (lambda t: t.replace("15001.0", "15001.0\xff"), "not a text star file"),
    ],
)
def test_streaming_validation_rejects_incomplete_files(  # type: ignore[no-untyped-def]
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutate, message
) -> None:
    text = mutate(_warp(tmp_path, 2).star_text(["m0", "m1"]))
    path = tmp_path / "bad.star"
    path.write_bytes(text.encode("latin-1") if "\xff" in text else text.encode())
    monkeypatch.setattr("live2d_tui.formats.warp_star.CHUNK_BYTES", 100)
    with pytest.raises(WarpFileError, match=message) as caught:
        read_warp_star(path, "goodparticles_X.star")
    assert "goodparticles_X.star" in str(caught.value)


def test_bad_row_is_named_with_its_line_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _warp(tmp_path).star_text([f"m{i}" for i in range(6)])
    bad = text.replace("@particles/m5", " @particles/m5", 1)
    lineno = bad[: bad.index(" @particles/m5")].count("\n") + 1
    path = tmp_path / "bad.star"
    path.write_text(bad)
    monkeypatch.setattr("live2d_tui.formats.warp_star.CHUNK_BYTES", 33)
    with pytest.raises(WarpFileError, match=f"s: line {lineno} has 15 fields"):
        read_warp_star(path, "s")


def test_a_line_without_end_is_rejected_without_holding_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("live2d_tui.formats.warp_star.MAX_LINE_BYTES", 1000)
    monkeypatch.setattr("live2d_tui.formats.warp_star.CHUNK_BYTES", 100)
    path = tmp_path / "binary.star"
    path.write_bytes(b"x" * 5000 + b"\n")
    with pytest.raises(WarpFileError, match="line 1 is longer than 1000 bytes"):
        read_warp_star(path)


def test_copied_snapshot_parses_a_local_copy_and_removes_it(tmp_path: Path) -> None:
    now = [0.0]
    warp = _warp(tmp_path, 2)
    path = warp.write_star(["m0"])
    scratch = tmp_path / "out"
    seen: list[tuple[Path, str]] = []

    def parse(local: Path, source: str) -> WarpTable:
        seen.append((local, source))
        assert local.parent == scratch and local.read_bytes() == path.read_bytes()
        return read_warp_star(local, source)

    snap = CopiedSnapshot(path, parse, scratch_folder=scratch, clock=lambda: now[0])
    assert snap.poll().settling and not seen  # first look: not stable yet
    now[0] = 1.0
    first = snap.poll()
    assert first.changed and first.value is not None and first.value.rows == 2
    assert seen == [(snap.scratch, str(path))] and not snap.scratch.exists()
    path.write_text(warp.star_text(["m0", "m1"])[:-5])  # torn rewrite
    snap.poll()
    now[0] = 2.0
    torn = snap.poll()
    assert torn.error is not None and str(path) in torn.error  # names the source, not the copy
    assert torn.value is first.value and not snap.scratch.exists()
    path.unlink()
    assert snap.poll().missing and snap.value is first.value
    warp.write_star(["m0", "m1"])
    snap.poll()
    now[0] = 3.0
    assert snap.poll().value.rows == 5  # type: ignore[union-attr]
    assert list(scratch.iterdir()) == []


def test_copied_snapshot_discards_a_copy_the_source_changed_during(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    warp = _warp(tmp_path, 2)
    path = warp.write_star(["m0"])
    snap = CopiedSnapshot(
        path, read_warp_star, scratch_folder=tmp_path / "out", clock=lambda: now[0]
    )
    snap.poll()
    now[0] = 1.0
    real_copy = snapshot.shutil.copyfile

    def copy_then_rewrite(src: Path, dst: Path) -> Path:
        real_copy(src, dst)
        warp.write_star(["m0", "m1"])  # Warp rewrites the table while we copy
        return dst

    monkeypatch.setattr(snapshot.shutil, "copyfile", copy_then_rewrite)
    result = snap.poll()
    assert result.settling and not result.changed and result.value is None
    assert not snap.scratch.exists()
    monkeypatch.setattr(snapshot.shutil, "copyfile", real_copy)
    snap.poll()
    now[0] = 2.0
    assert snap.poll().value.rows == 5  # type: ignore[union-attr]
