"""Atomic writes leave the old content or the new, never a torn file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from live2d_tui.atomic import atomic_write_json, atomic_write_text, atomic_writer


def test_replace_and_no_temp_files_left(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failure_midway_keeps_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "state.txt"
    atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic_writer(path) as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["state.txt"]
