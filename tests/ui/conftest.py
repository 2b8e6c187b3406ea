"""Determinism for UI tests: half-cell images, a pinned 10×20 cell size, closed stdin,
no cursor blink, fixed animation level."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _deterministic_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEXTUAL_CELL_WIDTH", "10")
    monkeypatch.setenv("TEXTUAL_CELL_HEIGHT", "20")
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    from live2d_tui.ui import images

    images.pin_cell_size(10, 20)
    yield
