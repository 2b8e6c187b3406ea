"""Atomic writes leave the old content or the new, never a torn file."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from live2d_tui.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    atomic_writer,
    create_temp_file,
)


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


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under this umask (restored afterwards)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    # the rename keeps the temporary file's mode: it must be a new file's, not mkstemp's 0600
    expected = 0o666 & ~umask
    text_file, binary_file = tmp_path / "latest_run.json", tmp_path / "cycle_1.star"
    atomic_write_json(text_file, {"a": 1})
    atomic_write_bytes(binary_file, b"data")
    atomic_write_json(text_file, {"a": 2})  # a replacement gets the same mode
    for path in (text_file, binary_file):
        assert stat.S_IMODE(path.stat().st_mode) == expected, oct(path.stat().st_mode)


def test_temp_files_are_unique_and_new(tmp_path: Path) -> None:
    fds_paths = [create_temp_file(tmp_path, "x.json") for _ in range(20)]
    for fd, _ in fds_paths:
        os.close(fd)
    names = {p.name for _, p in fds_paths}
    assert len(names) == 20
    assert all(n.startswith(".x.json.") and n.endswith(".tmp") for n in names)
