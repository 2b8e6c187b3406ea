"""Renderer choice: every branch of the probe decision, and the real tmux client query."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from live2d_tui.config import ImageMode
from live2d_tui.ui.images import (
    KITTY_HINT,
    TMUX_HINT,
    cell_size,
    pin_cell_size,
    resolve_image_mode,
    tmux_client_features,
)


def _resolve(**kw: object) -> tuple[ImageMode, str]:
    facts: dict[str, object] = {
        "is_tty": True,
        "in_tmux": False,
        "terminal_sixel": False,
        "terminal_tgp": False,
        "client_features": None,
    }
    facts.update(kw)
    choice = resolve_image_mode(ImageMode.AUTO, **facts)  # type: ignore[arg-type]
    assert choice.mode is not ImageMode.AUTO
    return choice.mode, choice.hint


def test_forced_mode_is_honoured() -> None:
    for mode in (ImageMode.SIXEL, ImageMode.TGP, ImageMode.HALFCELL, ImageMode.UNICODE):
        choice = resolve_image_mode(
            mode,
            is_tty=False,
            in_tmux=True,
            terminal_sixel=False,
            terminal_tgp=False,
            client_features=frozenset(),
        )
        assert choice.mode is mode


def test_auto_decisions() -> None:
    assert _resolve(is_tty=False)[0] is ImageMode.HALFCELL
    assert _resolve(terminal_sixel=True) == (ImageMode.SIXEL, "")
    assert _resolve(terminal_tgp=True) == (ImageMode.TGP, "")
    assert _resolve() == (ImageMode.HALFCELL, "")
    # a sixel-built tmux claims sixel; the client must confirm it
    assert _resolve(terminal_sixel=True, in_tmux=True, client_features=frozenset({"RGB"})) == (
        ImageMode.HALFCELL,
        TMUX_HINT,
    )
    assert _resolve(
        terminal_sixel=True, in_tmux=True, client_features=frozenset({"RGB", "sixel"})
    ) == (ImageMode.SIXEL, "")
    # kitty behind a sixel-built tmux: TGP through passthrough wins
    assert (
        _resolve(
            terminal_sixel=True, terminal_tgp=True, in_tmux=True, client_features=frozenset({"RGB"})
        )[0]
        is ImageMode.TGP
    )
    assert _resolve(in_tmux=True, client_features=frozenset()) == (ImageMode.HALFCELL, TMUX_HINT)


def test_kitty_before_unicode_placeholders_gets_halfcell() -> None:
    """kitty < 0.28 answers the TGP probe but cannot show textual-image's placements."""
    old = _resolve(terminal_tgp=True, terminal_version="kitty(0.26.5)")
    assert old == (ImageMode.HALFCELL, KITTY_HINT)
    for version in ("kitty(0.28.0)", "kitty(0.35.2)", "ghostty 1.1.3", "WezTerm 2024", None):
        assert _resolve(terminal_tgp=True, terminal_version=version)[0] is ImageMode.TGP
    # a requested mode is still honoured
    forced = resolve_image_mode(
        ImageMode.TGP,
        is_tty=True,
        in_tmux=False,
        terminal_sixel=False,
        terminal_tgp=True,
        client_features=None,
        terminal_version="kitty(0.26.5)",
    )
    assert forced.mode is ImageMode.TGP


def test_pin_cell_size() -> None:
    pin_cell_size(7, 15)
    assert cell_size() == (7, 15)
    pin_cell_size(10, 20)


def test_outside_tmux_no_query() -> None:
    assert tmux_client_features({"PATH": os.environ.get("PATH", "")}) is None


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")
def test_tmux_client_features_from_real_tmux(tmp_path: Path) -> None:
    """Inside a real (detached) tmux server the query runs; a detached server has no client,
    so the feature list is empty and we must not assume sixel."""
    sock = tmp_path / f"t{uuid.uuid4().hex[:6]}"
    subprocess.run(
        ["tmux", "-S", str(sock), "new-session", "-d", "-x", "80", "-y", "24"], check=True
    )
    try:
        env = {**os.environ, "TMUX": f"{sock},1,0"}
        features = tmux_client_features(env)
        assert features is not None
        assert "sixel" not in features
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], check=False)
