"""The 22-column cisTEM star: layout cisTEM's reader accepts, round trip, validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live2d_tui.formats.cistem_star import (
    COLUMNS,
    CistemStarError,
    append_rows,
    empty_rows,
    header_text,
    read_star,
    write_star,
)


def _rows(n: int) -> np.ndarray:
    rows = empty_rows(n)
    rows["position"] = np.arange(1, n + 1)
    rows["defocus_1"] = 15000.5
    rows["defocus_2"] = 14000.25
    rows["defocus_angle"] = 33.3
    rows["phase_shift"] = 90.0
    rows["pixel_size"] = 1.2345
    rows["voltage"] = 300
    rows["best_class"] = np.arange(n) % 3 - 1
    return rows


def test_header_labels_are_followed_by_a_space_and_numbered() -> None:
    text = header_text(["Written by live2d"])
    labels = [line for line in text.splitlines() if line.startswith("_")]
    assert len(labels) == 22
    assert labels[0] == "_cisTEMPositionInStack #1"
    assert labels[-1] == "_cisTEMBest2DClass #22"
    assert [line.split()[0][1:] for line in labels] == [c.label for c in COLUMNS]
    with pytest.raises(ValueError, match="data_"):
        header_text(["/srv/data_x/run"])


def test_round_trip_and_append_without_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.star"
    rows = _rows(5)
    write_star(path, rows[:3])
    append_rows(path, rows[3:])
    text = path.read_text()
    body = text.split("#    POS", 1)[1].splitlines()[1:]
    assert len(body) == 5 and all(line.strip() for line in body)
    back = read_star(path)
    assert back["position"].tolist() == [1, 2, 3, 4, 5]
    assert np.allclose(back["phase_shift"], 90.0)  # degrees stay degrees
    assert back["best_class"].tolist() == rows["best_class"].tolist()
    assert np.allclose(back["pixel_size"], 1.2345)


def test_a_torn_last_row_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.star"
    write_star(path, _rows(4))
    with open(path, "a") as handle:
        handle.write("       5    0.00")
    with pytest.raises(CistemStarError, match="line"):
        read_star(path)


def test_missing_required_column_and_bad_numbers_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.star"
    path.write_text("data_\nloop_\n_cisTEMPositionInStack #1\n1\n")
    with pytest.raises(CistemStarError, match="Defocus1"):
        read_star(path)
    write_star(path, _rows(2))
    path.write_text(path.read_text().replace("15000.5", "nan(x)", 1))
    with pytest.raises(CistemStarError, match=r"bad\.star"):
        read_star(path)
