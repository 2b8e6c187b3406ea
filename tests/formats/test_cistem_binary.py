"""cisTEM's binary ``.cistem`` parameter files: the layout refine2d reads for answer #2."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.formats.cistem_binary import (
    IDENTIFIERS,
    is_binary_star,
    read_binary_star,
    write_binary_star,
)
from live2d_tui.formats.cistem_star import CistemStarError, empty_rows


def _rows(count: int = 5) -> np.ndarray:
    rng = np.random.default_rng(1)
    rows = empty_rows(count)
    rows["position"] = np.arange(1, count + 1)
    rows["psi"] = rng.uniform(0, 360, count)
    rows["x_shift"] = rng.normal(0, 3, count)
    rows["defocus_1"] = rng.uniform(8000, 25000, count)
    rows["defocus_2"] = rows["defocus_1"] - 300.0
    rows["phase_shift"] = 90.0  # degrees in our rows
    rows["pixel_size"] = 1.5
    rows["voltage"] = 300.0
    rows["best_class"] = np.arange(count) % 3 - 1  # negative: unused this round
    rows["logp"] = -1234
    return rows


def test_round_trip_keeps_every_column(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "input.cistem"
    write_binary_star(path, rows)
    # 8-byte header, 22 × 9-byte column descriptions, then 22 four-byte values a line
    assert path.stat().st_size == 8 + 22 * 9 + 5 * 22 * 4
    back = read_binary_star(path)
    for name in rows.dtype.names or ():
        np.testing.assert_allclose(back[name], rows[name], rtol=1e-6, atol=1e-4, err_msg=name)
    assert is_binary_star(path) and not is_binary_star(tmp_path / "x.star")


def test_phase_shift_is_radians_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "input.cistem"
    write_binary_star(path, _rows(1))
    ident, _ = IDENTIFIERS["phase_shift"]
    columns = struct.unpack_from("<i", path.read_bytes(), 0)[0]
    order = [struct.unpack_from("<qB", path.read_bytes(), 8 + 9 * i)[0] for i in range(columns)]
    value = struct.unpack_from("<f", path.read_bytes(), 8 + 9 * columns + 4 * order.index(ident))
    assert value[0] == pytest.approx(np.pi / 2)


def _handmade(path: Path, tail: bytes = b"") -> None:
    """Two lines with cisTEM columns we use, a string column and a column from the future."""
    columns = [(1, 9), (16777216, 8), (4, 3), (1 << 40, 6), (134217728, 2)]
    data = struct.pack("<ii", len(columns), 2)
    data += b"".join(struct.pack("<qB", *c) for c in columns)
    for position, name, psi, extra, best in ((7, b"a.mrcs", 10.5, 1.0, 3), (8, b"", 20.0, 2.0, -2)):
        data += struct.pack("<I", position) + struct.pack("<i", len(name)) + name
        data += struct.pack("<f", psi) + struct.pack("<d", extra) + struct.pack("<i", best)
    path.write_bytes(data + tail)


def test_unknown_and_string_columns_are_skipped_and_missing_ones_default(tmp_path: Path) -> None:
    path = tmp_path / "gui.cistem"
    _handmade(path)
    rows = read_binary_star(path)
    assert rows["position"].tolist() == [7, 8]
    assert rows["psi"].tolist() == [10.5, 20.0]
    assert rows["best_class"].tolist() == [3, -2]
    assert rows["sigma"].tolist() == [10.0, 10.0] and rows["occupancy"].tolist() == [100.0] * 2


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (4, "too short"),
        (20, "cut inside its 5 column descriptions"),
        (-3, "cut short inside line 2"),
    ],
)
def test_a_truncated_file_is_a_clear_error(tmp_path: Path, cut: int, message: str) -> None:
    path = tmp_path / "gui.cistem"
    _handmade(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CistemStarError, match=message):
        read_binary_star(path)


def test_a_fixed_width_file_cut_short_or_too_long_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "input.cistem"
    write_binary_star(path, _rows(3))
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    with pytest.raises(CistemStarError, match="cut short: 3 lines of 88 bytes"):
        read_binary_star(path)
    path.write_bytes(data + b"\0\0")
    with pytest.raises(CistemStarError, match="2 bytes after the last of 3 lines"):
        read_binary_star(path)
    _handmade(path, tail=b"\0")
    with pytest.raises(CistemStarError, match="1 bytes after the last of 2 lines"):
        read_binary_star(path)


def test_an_unknown_type_code_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.cistem"
    path.write_bytes(struct.pack("<ii", 1, 1) + struct.pack("<qB", 4, 42) + b"\0" * 4)
    with pytest.raises(CistemStarError, match="unknown type code 42"):
        read_binary_star(path)
