"""Exports: the RELION 2D pose equation checked with RELION's own transform written out here,
and the round trip on a real classified session (starfile reads it, every image reference is
its row's particle, from another working directory too; counts; inactive particles absent;
cisTEM star accepted by live2d-refine2d and the strict fake cisTEM; nothing overwritten and the
session untouched)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import starfile
from scipy import ndimage

from live2d_tui.dataset.ledger import Ledger
from live2d_tui.formats import relion_star
from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.results.export import (
    ExportError,
    ExportRequest,
    ExportSource,
    export_cycle,
    parse_classes,
)
from live2d_tui.simulate.warp_writer import write_stack

from .refine_helpers import refine_accepts

BOX, PX = 64, 2.0


def chiral(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """An analytic image without symmetry (positions in pixels from the centre)."""
    blobs = [(0.0, 0.0, 9.0, 1.0), (12.0, 3.0, 4.0, 0.8), (-5.0, 11.0, 3.0, 0.6), (4, -9, 2.5, 0.9)]
    return sum(a * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * s * s)) for bx, by, s, a in blobs)


def grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.indices((BOX, BOX), dtype=np.float64)
    return x - BOX // 2, y - BOX // 2


def relion_apply(image: np.ndarray, psi: float, origin_x: float, origin_y: float) -> np.ndarray:
    """``relion_stack_create --apply_transformation`` (src/apps/stack_create.cpp): A =
    rotation2DMatrix(psi) = [[c, −s], [s, c]] with translation R(psi)·origin (pixels), applied by
    applyGeometry(IS_NOT_INV) (src/transformations.h): out(p) = in(A⁻¹·p), coordinates about
    (N/2, N/2), x the fast axis."""
    a = np.deg2rad(psi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = rot @ np.array([origin_x, origin_y])
    inverse = np.linalg.inv(rot)
    x, y = grid()
    px = inverse[0, 0] * (x - t[0]) + inverse[0, 1] * (y - t[1])
    py = inverse[1, 0] * (x - t[0]) + inverse[1, 1] * (y - t[1])
    return ndimage.map_coordinates(image, [py + BOX // 2, px + BOX // 2], order=3, mode="constant")


def test_relion_alignment_columns_align_particles_to_their_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 12
    psi = rng.uniform(0, 360, n)
    shift = rng.uniform(-4, 4, (n, 2))  # pixels: cisTEM refine2d's x/y shift ÷ pixel size
    x, y = grid()
    # cisTEM refine2d's convention (docs/conventions.md), written out: P(q) = A(R(psi)·(q + s))
    particles = []
    for a, (sx, sy) in zip(np.deg2rad(psi), shift, strict=True):
        qx, qy = x + sx, y + sy
        particles.append(chiral(np.cos(a) * qx - np.sin(a) * qy, np.sin(a) * qx + np.cos(a) * qy))
    stack = tmp_path / "combined_stack.mrcs"
    write_stack(stack, np.asarray(particles, np.float32), PX, float16=False)
    rows = empty_rows(n)
    rows["position"] = np.arange(1, n + 1)
    rows["psi"], rows["x_shift"], rows["y_shift"] = psi, shift[:, 0] * PX, shift[:, 1] * PX
    rows["best_class"] = 1
    rows["defocus_1"] = rows["defocus_2"] = 15000.0
    write_star(tmp_path / "cycle_5.star", rows)
    rel = tmp_path / "combined_stack_relion.star"
    relion_star.create(rel, relion_star.Optics(PX, BOX, 300.0, 2.7, 0.07))
    values = np.tile([100.0, 200.0, 15000.0, 15000.0, 0.0, 0.0], (n, 1))
    relion_star.append_text(
        rel,
        [relion_star.format_rows(1, "combined_stack.mrcs", "particles/m.mrcs", "m.tif",
                                 np.arange(1, n + 1), values)],
    )  # fmt: skip
    source = ExportSource(5, tmp_path / "cycle_5.star", stack, rel, np.arange(1, n + 1))
    target = tmp_path / "aligned.star"
    export_cycle(source, ExportRequest(classes=(1,), alignment=True), target)
    table = starfile.read(target)["particles"]
    reference = chiral(x, y)
    for i, row in table.iterrows():
        slot, path = row["rlnImageName"].split("@")
        image = read_slices(Path(path), read_header(Path(path)), np.array([int(slot)]))[0]
        ox, oy = row["rlnOriginXAngst"] / PX, row["rlnOriginYAngst"] / PX
        aligned = relion_apply(image.astype(np.float64), row["rlnAnglePsi"], ox, oy)
        inner = np.hypot(x, y) < 24
        assert np.corrcoef(aligned[inner], reference[inner])[0, 1] > 0.99, i
        # the other sign of the shifts (cisTEM's 3D exporter's) does not align them
        flipped = relion_apply(image.astype(np.float64), row["rlnAnglePsi"], -ox, -oy)
        if np.hypot(ox, oy) > 1.5:
            assert np.corrcoef(flipped[inner], reference[inner])[0, 1] < 0.95, i
        assert row["rlnClassNumber"] == 1


def test_warp_stack_warnings_and_refusals(tmp_path: Path) -> None:
    rows = empty_rows(3)
    rows["position"] = [1, 2, 3]
    rows["best_class"] = [1, 1, 2]
    rows["defocus_1"] = rows["defocus_2"] = 15000.0
    write_star(tmp_path / "cycle_2.star", rows)
    write_stack(
        tmp_path / "combined_stack.mrcs", np.zeros((3, 8, 8), np.float32), PX, float16=False
    )
    rel = tmp_path / "combined_stack_relion.star"
    relion_star.create(rel, relion_star.Optics(PX, 8, 300.0, 2.7, 0.07))
    values = np.tile([1.0, 2.0, 15000.0, 15000.0, 0.0, 0.0], (3, 1))
    relion_star.append_text(
        rel, [relion_star.format_rows(1, "combined_stack.mrcs", "particles/m.mrcs", "m.tif",
                                      np.arange(1, 4), values)],
    )  # fmt: skip
    source = ExportSource(
        2, tmp_path / "cycle_2.star", tmp_path / "combined_stack.mrcs", rel,
        np.array([1, 3]), warp_folder=tmp_path / "warp", warp_inverted=False, warp_float16=True,
    )  # fmt: skip
    said: list[str] = []
    summary = export_cycle(
        source, ExportRequest(classes=(1,), warp_stacks=True), tmp_path / "w.star",
        on_warning=said.append,
    )  # fmt: skip
    assert summary.particles == 1 and summary.micrographs == 1  # position 2 is inactive
    assert len(said) == 2 and "Invert=False" in said[0] and "float16" in said[1]
    assert summary.warnings == tuple(said)
    table = starfile.read(tmp_path / "w.star")["particles"]
    assert table["rlnImageName"].tolist() == [f"0000001@{tmp_path / 'warp' / 'particles/m.mrcs'}"]
    for request, message in [
        (ExportRequest(classes=(1,), format="cistem", alignment=True), "RELION"),
        (ExportRequest(classes=(1,), stack=True, warp_stacks=True), "exclude"),
        (ExportRequest(classes=(3,)), "no active particles"),
    ]:
        with pytest.raises(ExportError, match=message):
            export_cycle(source, request, tmp_path / "x.star")
    assert not (tmp_path / "x.star").exists() and not list(tmp_path.glob(".*.tmp"))


def digest(folder: Path) -> dict[str, str]:
    """Content hash of every file of the session (the exports folder aside)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "exports" not in p.parts and not p.name.endswith(("-shm", "-wal"))
    }


def live2d(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live2d_tui", *args], capture_output=True, text=True, cwd=cwd,
        timeout=300,
    )  # fmt: skip


def check_images(star: Path, stack_of: dict[int, np.ndarray], cwd: Path) -> None:
    """Every image reference of a RELION export, resolved from ``cwd``, holds the pixels of
    the particle whose Warp name the row carries."""
    table = starfile.read(star)["particles"]
    here = Path.cwd()
    os.chdir(cwd)
    try:
        for _, row in table.iterrows():
            slot, path = row["rlnImageName"].split("@")
            image = read_slices(Path(path), read_header(Path(path)), np.array([int(slot)]))[0]
            np.testing.assert_array_equal(image, stack_of[row["rlnImageOriginalName"]])
    finally:
        os.chdir(here)


def test_export_round_trip(session_copy: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = session_copy
    # Warp later drops one micrograph: its particles must not be exported
    ledger = Ledger(out / "ledger.sqlite")
    dropped = sorted(ledger.ranges)[0]
    first, rows_dropped = ledger.ranges[dropped].first, ledger.ranges[dropped].rows
    ledger.set_active([dropped], False)
    ledger.close()
    before = digest(out)
    cycle = read_star(out / "cycle_3.star")
    members = np.abs(cycle["best_class"])
    active = ~np.isin(cycle["position"], np.arange(first, first + rows_dropped))
    expected = int((np.isin(members, [1, 3]) & active).sum())
    combined = read_slices(out / "combined_stack.mrcs", read_header(out / "combined_stack.mrcs"),
                           np.arange(1, len(cycle) + 1))  # fmt: skip
    names = [r[1] for r in relion_star.particle_rows(
        out / "combined_stack_relion.star", range(1, len(cycle) + 1))[1].values()]  # fmt: skip
    by_name = dict(zip(names, combined, strict=True))

    done = live2d("export", str(out), "--classes", "1,3", "--format", "relion")
    assert done.returncode == 0, done.stderr
    star = out / "exports" / "cycle_3_classes_1-3_relion.star"
    assert done.stdout.startswith(f"Exported {expected:,} particles from ")
    assert str(star) in done.stdout and "(classes 1,3)" in done.stdout
    data = starfile.read(star)
    assert set(data) == {"optics", "particles"}
    assert data["optics"]["rlnImagePixelSize"].tolist() == [3.0]
    table = data["particles"]
    assert len(table) == expected
    assert not any(n.endswith(f"{dropped}") for n in table["rlnImageOriginalName"])  # inactive
    assert all(Path(n.split("@")[1]).is_absolute() for n in table["rlnImageName"])
    umask = os.umask(0o022)
    os.umask(umask)
    assert star.stat().st_mode & 0o777 == 0o666 & ~umask  # shared results follow the umask
    check_images(star, by_name, tmp_path)  # absolute paths: any working directory
    # again: a new name, never the old one overwritten; the session is untouched
    again = live2d("export", str(out), "--classes", "1,3", "--format", "relion", "--alignment")
    assert again.returncode == 0 and "cycle_3_classes_1-3_relion_2.star" in again.stdout
    assert "rlnAnglePsi" in starfile.read(out / "exports" / "cycle_3_classes_1-3_relion_2.star")[
        "particles"
    ]  # fmt: skip
    refused = live2d("export", str(out), "--classes", "1", "--format", "relion", "--to", str(star))
    assert refused.returncode == 2 and "never overwrites" in refused.stderr
    # a new stack of only these particles, paths relative to a project folder
    project = tmp_path / "project"
    project.mkdir()
    own = tmp_path / "own" / "picked.star"
    own.parent.mkdir()
    made = live2d("export", str(out), "--classes", "1,3", "--format", "relion", "--stack",
                  "--to", str(own), "--relative-to", str(project))  # fmt: skip
    assert made.returncode == 0, made.stderr
    stack = own.with_suffix(".mrcs")
    assert read_header(stack).nz == expected
    assert all(
        n.split("@")[1] == "../own/picked.mrcs"
        for n in starfile.read(own)["particles"]["rlnImageName"]
    )
    check_images(own, by_name, project)
    # Warp's own stacks
    warped = live2d("export", str(out), "--classes", "1,3", "--format", "relion", "--warp-stacks")
    assert warped.returncode == 0, warped.stderr
    warp_star = next((out / "exports").glob("cycle_3_classes_1-3_relion_3.star"))
    for _, row in starfile.read(warp_star)["particles"].iterrows():
        slot, path = row["rlnImageName"].split("@")
        assert Path(path).is_absolute() and Path(path).parent.name == "particles"
        image = read_slices(Path(path), read_header(Path(path)), np.array([int(slot)]))[0]
        np.testing.assert_allclose(image, by_name[row["rlnImageOriginalName"]], atol=1e-6)
    assert digest(out) == before


def test_cistem_export_is_read_by_refine2d_and_the_strict_fake(
    session_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = session_copy
    target = tmp_path / "picked.star"
    done = live2d("export", str(out), "--cycle", "3", "--classes", "2", "--format", "cistem",
                  "--stack", "--to", str(target))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_star(target)
    cycle = read_star(out / "cycle_3.star")
    assert len(rows) == int((np.abs(cycle["best_class"]) == 2).sum())
    assert rows["position"].tolist() == list(range(1, len(rows) + 1))
    stack = target.with_suffix(".mrcs")
    assert read_header(stack).nz == len(rows)
    wrong = live2d("export", str(out), "--classes", "2", "--format", "cistem", "--alignment")
    assert wrong.returncode == 2 and "RELION" in wrong.stderr
    refine_accepts(target, stack, out / "cycle_3.mrc", tmp_path)


def test_export_refuses_what_it_cannot_do(session_copy: tuple[Path, Path]) -> None:
    _, out = session_copy
    bad = live2d("export", str(out), "--classes", "9", "--format", "relion")
    assert bad.returncode == 2 and "no class 9" in bad.stderr
    none = live2d("export", str(out), "--selected", "--format", "relion")
    assert none.returncode == 2 and "no class marked good" in none.stderr
    with pytest.raises(ExportError, match="class number"):
        parse_classes("1,x")
    assert not (out / "exports").exists() or not any((out / "exports").iterdir())
