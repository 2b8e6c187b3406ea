"""Reading the dataset star's new rows from a byte offset, while it grows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from live2d_tui.classify.streaming.startail import StarCursor, cursor_after, read_new_rows
from live2d_tui.formats.cistem_star import (
    CistemStarError,
    append_rows,
    empty_rows,
    format_rows,
    write_star,
)


def rows(first: int, count: int) -> np.ndarray:
    out = empty_rows(count)
    out["position"] = np.arange(first, first + count)
    out["defocus_1"] = 10000.0 + out["position"]
    return out


def test_new_rows_are_read_from_where_the_last_read_stopped(tmp_path: Path) -> None:
    star = tmp_path / "combined_stack.star"
    write_star(star, rows(1, 10), ["every particle"])
    cursor = cursor_after(star, 0)
    got, cursor = read_new_rows(star, cursor, nz=6)
    assert got["position"].tolist() == [1, 2, 3, 4, 5, 6]
    assert cursor == cursor_after(star, 6)
    append_rows(star, rows(11, 5))
    got, cursor = read_new_rows(star, cursor, nz=100)
    assert got["position"].tolist() == list(range(7, 16))
    assert got["defocus_1"][0] == pytest.approx(10007.0)
    same, again = read_new_rows(star, cursor, nz=100)
    assert len(same) == 0 and again == cursor
    # a row being written (no newline yet) is left for the next read
    with star.open("a") as handle:
        handle.write(format_rows(rows(16, 1))[:20])
    got, torn = read_new_rows(star, cursor, nz=100)
    assert len(got) == 0 and torn == cursor
    assert StarCursor.from_dict(cursor.to_dict()) == cursor


def test_a_cursor_that_does_not_fit_the_star_is_refused(tmp_path: Path) -> None:
    star = tmp_path / "s.star"
    write_star(star, rows(1, 10))
    bad = StarCursor(cursor_after(star, 3).offset, 5)
    with pytest.raises(CistemStarError, match="does not continue"):
        read_new_rows(star, bad, nz=10)
    with pytest.raises(CistemStarError, match="no complete row"):
        cursor_after(star, 11)
