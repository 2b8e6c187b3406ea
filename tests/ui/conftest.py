"""Determinism for UI tests: half-cell images, a pinned 10×20 cell size, closed stdin,
no cursor blink, fixed animation level."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .ui_helpers import copy_session, run_one_job, simulate


@pytest.fixture(autouse=True)
def _deterministic_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEXTUAL_CELL_WIDTH", "10")
    monkeypatch.setenv("TEXTUAL_CELL_HEIGHT", "20")
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    from live2d_tui.ui import images

    images.pin_cell_size(10, 20)
    yield


@pytest.fixture(scope="session")
def finished_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Warp session whose output folder holds one finished job (built once per test run)."""
    home = tmp_path_factory.mktemp("fixture_home")
    old = os.environ.get("LIVE2D_HOME")
    os.environ["LIVE2D_HOME"] = str(home)
    try:
        warp = simulate(tmp_path_factory.mktemp("finished") / "warp")
        asyncio.run(run_one_job(warp))
    finally:
        if old is None:
            os.environ.pop("LIVE2D_HOME", None)
        else:
            os.environ["LIVE2D_HOME"] = old
    return warp


@pytest.fixture(scope="session")
def fresh_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Warp session never classified."""
    return simulate(tmp_path_factory.mktemp("fresh") / "warp", micrographs=3)


@pytest.fixture
def session_copy(finished_session: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`finished_session` for one test."""
    return copy_session(finished_session, tmp_path / "warp")
