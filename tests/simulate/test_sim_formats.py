"""The simulated session's files read back as Warp's: MRC strict, XML, STAR layout, truth."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.simulate.documents import PARTICLE_COLUMNS
from live2d_tui.simulate.truth import load_truth

MODEL = "BoxNet2Mask_20180918"


def read_warp_star(path: Path) -> tuple[list[str], list[list[str]]]:
    """Parse a Warp star, asserting Warp's exact header layout."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[:4] == ["", "data_", "", "loop_"], lines[:4]
    labels: list[str] = []
    i = 4
    while lines[i].startswith("_"):
        name, number = lines[i].split()
        assert number == f"#{len(labels) + 1}"
        labels.append(name[1:])
        i += 1
    assert text.endswith("\n")
    rows = [ln.split() for ln in lines[i:] if ln.strip()]
    assert all(len(r) == len(labels) for r in rows)
    return labels, rows


def column(labels: list[str], rows: list[list[str]], name: str) -> list[str]:
    j = labels.index(name)
    return [r[j] for r in rows]


def test_small_session_files_read_back(small_warp_session: Path) -> None:
    folder = small_warp_session
    # settings: UTF-16LE with BOM, parses as XML with the keys readers need
    raw = (folder / "previous.settings").read_bytes()
    assert raw[:2] == b"\xff\xfe"
    root = ET.fromstring(raw)
    assert root.tag == "Settings"
    assert root.find("./Param[@Name='PixelSizeX']").get("Value") == "3"  # type: ignore[union-attr]
    picking = {p.get("Name"): p.get("Value") for p in root.iter("Param")}
    wanted = "BoxSize Diameter ModelPath DoExport Invert Normalize BinTimes Voltage Cs Amplitude"
    for key in [*wanted.split(), "MinimumScore", "ResolutionMax"]:
        assert key in picking, key
    assert root.find("./Picking/Param[@Name='BoxSize']").get("Value") == "64"  # type: ignore[union-attr]

    labels, rows = read_warp_star(folder / f"goodparticles_{MODEL}.star")
    assert set(PARTICLE_COLUMNS) <= set(labels)
    assert 200 <= len(rows) <= 400
    names = column(labels, rows, "rlnImageName")
    assert len(set(names)) == len(names)
    assert set(column(labels, rows, "rlnMagnification")) == {"10000.0"}
    assert set(column(labels, rows, "rlnDetectorPixelSize")) == {"3.00000"}
    assert all(
        m.endswith(".tif") and "/" not in m for m in column(labels, rows, "rlnMicrographName")
    )

    stacks: dict[str, int] = {}
    for name in names:
        index, stack = name.split("@")
        assert (
            len(index) == 7 and stack.startswith("particles/") and stack.endswith(f"_{MODEL}.mrcs")
        )
        stacks[stack] = max(stacks.get(stack, 0), int(index))
    assert len(stacks) == 6
    for stack, count in stacks.items():
        path = folder / stack
        assert mrcfile.validate(str(path), print_file=io.StringIO())
        with mrcfile.open(path) as mrc:  # strict mode
            assert mrc.header.mode == 2 and mrc.header.nsymbt == 0
            assert mrc.data.shape == (count, 64, 64)
            assert mrc.voxel_size.x == pytest.approx(3.0)
            data = np.asarray(mrc.data, dtype=np.float64)
        assert path.stat().st_size == 1024 + 64 * 64 * count * 4
        # Warp normalisation: outside Diameter/2 mean 0, σ 1
        y, x = np.indices((64, 64))
        outside = np.hypot(x - 32, y - 32) > 25
        assert np.allclose(data[:, outside].mean(axis=1), 0.0, atol=1e-4)
        assert np.allclose(data[:, outside].std(axis=1), 1.0, atol=1e-3)
        root_name = Path(stack).name.removesuffix(f"_{MODEL}.mrcs")
        xml = ET.fromstring((folder / f"{root_name}.xml").read_bytes())
        assert xml.get("UnselectManual") == "null"
        assert xml.find("./OptionsParticlesExport/Param[@Name='BoxSize']") is not None
        ml, mr = read_warp_star(folder / "matching" / f"{root_name}_{MODEL}.star")
        assert ml == ["rlnCoordinateX", "rlnCoordinateY", "rlnMicrographName",
                      "rlnAutopickFigureOfMerit"]  # fmt: skip
        assert len(mr) == count

    # running windows and the all table agree with goodparticles when nothing is filtered
    for other in ("allparticles", "goodparticles_last10000", "allparticles_last10000"):
        assert read_warp_star(folder / f"{other}_{MODEL}.star")[1] == rows
    # no temporary file left behind
    assert not list(folder.glob("*.star_*"))

    truth = load_truth(folder / "truth")
    assert set(truth.names) == set(names)
    assert set(np.unique(truth.view)) <= {0, 1, 2, 3}
    index = truth.index()
    du = np.array([float(v) for v in column(labels, rows, "rlnDefocusU")])
    assert np.array_equal(truth.defocus_u[[index[n] for n in names]], du)
    with mrcfile.open(folder / "truth" / "references.mrcs") as mrc:
        assert mrc.data.shape == (4, 64, 64)


def test_deterministic_for_a_seed(make_warp_session) -> None:  # type: ignore[no-untyped-def]
    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "session.json"  # holds the folder's own path
        }

    options = {"micrographs": 3, "particles_per_micrograph": 20, "seed": 7}
    a, b = make_warp_session(**options), make_warp_session(**options)
    c = make_warp_session(**{**options, "seed": 8})
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_cli_writes_a_session(tmp_path: Path) -> None:
    out = tmp_path / "session"
    result = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "simulate", str(out), "--micrographs", "2",
         "--particles-per-micrograph", "10", "--seed", "3", "--quiet"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 micrographs" in result.stdout
    assert (out / f"goodparticles_{MODEL}.star").exists()
    assert (out / "truth" / "phantom.json").exists()


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "simulate", str(tmp_path / "x"), "--box", "15"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "box" in result.stderr


def test_star_text_is_laid_out_like_warp_star_save() -> None:
    from live2d_tui.formats.warp_star import star_text

    # Star.Save: "\n", "data_<name>\n", "\n", "loop_\n", "_label #n\n"…, then each field
    # right-aligned to (column width + 2)
    rows = [["1.00", "0000001@a.mrcs"], ["123.45", "0000002@bb.mrcs"]]
    text = star_text(["rlnCoordinateX", "rlnImageName"], rows)
    assert text == (
        "\ndata_\n\nloop_\n_rlnCoordinateX #1\n_rlnImageName #2\n"
        "    1.00   0000001@a.mrcs\n  123.45  0000002@bb.mrcs\n"
    )
    assert star_text(["a"], []) == "\ndata_\n\nloop_\n_a #1\n"
