"""Which image renderer the terminal gets, decided once before the app starts.

textual-image probes the terminal when it is imported (DA1 for Sixel, a kitty ``a=q`` query for
TGP) and caches the answer and the cell size. Once Textual runs, its input thread swallows the
terminal's replies, so :func:`prepare_images` must run before ``App.run()``.

Inside tmux the probe is not enough: a tmux built with Sixel answers DA1 with ``4`` whether or
not the *outer* terminal can show Sixel. We therefore also ask tmux what the attached client
supports (``tmux display -p '#{client_termfeatures}'``) and only keep Sixel when ``sixel`` is in
that list.

textual-image draws kitty graphics (TGP) with Unicode placeholders (``U=1``), which kitty has
only from 0.28.0; an older kitty (Debian 12 ships 0.26.5) answers the plain ``a=q`` probe OK but
rejects every placement, and the grid fills with placeholder boxes. Outside tmux we therefore
ask the terminal its name and version (XTVERSION, ``CSI > q``) and do not choose TGP for a kitty
older than that. Inside tmux XTVERSION names tmux, so there the check cannot be made.

Invariants:
- :func:`resolve_image_mode` is pure (all facts are arguments), so every branch is testable.
- The resolved mode is never ``auto``.
- A requested (non-auto) mode is always honoured; only ``auto`` is decided here.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from live2d_tui.config import ImageMode

if TYPE_CHECKING:
    from textual.widget import Widget

TMUX_HINT = (
    "Half-cell images only: for real images use tmux ≥ 3.4 built with sixel plus "
    "`set -ga terminal-features ',*:RGB:sixel'` (sixel terminals), or "
    "`set -g allow-passthrough on` (kitty, ghostty)."
)
"""One line shown when tmux leaves only half-cell images."""

KITTY_PLACEHOLDERS = (0, 28, 0)
"""The first kitty with Unicode placeholders, which textual-image's TGP renderer needs."""
KITTY_HINT = (
    "Half-cell images only: kitty < 0.28 has no Unicode placeholders; update kitty for images."
)
"""One line shown when the kitty is too old for the images."""
_XTVERSION_RE = re.compile(r"\x1bP>\|([^\x1b]*)\x1b\\")
_KITTY_VERSION_RE = re.compile(r"^kitty\((\d+)\.(\d+)\.(\d+)\)")

_XTSMGRAPHICS_REGISTERS_RE = re.compile(r"\x1b\[\?1;0;(\d+)S")
_XTSMGRAPHICS_GEOMETRY_RE = re.compile(r"\x1b\[\?2;0;(\d+);(\d+)S")

ASSUMED_REGISTERS = 256
"""Colour registers of a Sixel terminal that does not say (xterm, foot, WezTerm, mlterm and
Windows Terminal have at least this many)."""

TMUX_PAGE_BYTES = 900_000
"""Sixel bytes a page of images may take inside tmux: tmux before 3.6 drops a sequence over
1 MB (all of a page's images pass through it in one update)."""


@dataclass(frozen=True, slots=True)
class SixelSettings:
    """What the terminal allows a Sixel image (asked once, before the app starts)."""

    levels: int = 101
    """Grey levels per image (:func:`live2d_tui.ui.sixel.grey_levels` of the registers)."""
    max_size: tuple[int, int] | None = None
    """The largest image in pixels (width, height) the terminal draws (xterm: 1000×1000 by
    default, and a larger image is not drawn at all), or None when it does not say."""
    page_bytes: int | None = None
    """The budget of one page's Sixel data (inside tmux), or None."""


_sixel_settings = SixelSettings()


def sixel_settings() -> SixelSettings:
    """The Sixel settings in use (see :func:`prepare_images`)."""
    return _sixel_settings


def set_sixel_settings(settings: SixelSettings) -> None:
    """Use ``settings`` for the Sixel images from now on (tests and :func:`prepare_images`)."""
    global _sixel_settings
    _sixel_settings = settings


def parse_sixel_graphics(answer: str) -> tuple[int | None, tuple[int, int] | None]:
    """Colour registers and the largest image (width, height) from XTSMGRAPHICS answers."""
    registers = _XTSMGRAPHICS_REGISTERS_RE.search(answer)
    geometry = _XTSMGRAPHICS_GEOMETRY_RE.search(answer)
    return (
        int(registers.group(1)) if registers else None,
        (int(geometry.group(1)), int(geometry.group(2))) if geometry else None,
    )


def query_sixel_graphics(timeout: float = 1.0) -> tuple[int | None, tuple[int, int] | None]:
    """Ask the terminal (XTSMGRAPHICS) how many colour registers it has and how large an image
    it draws; (None, None) when it does not answer. Must run before the app starts.

    DA1 follows the questions, so a terminal that ignores them ends the wait at once.
    """
    from textual_image._terminal import TerminalError, capture_until_primary_da

    stream = sys.__stdout__
    if stream is None or not stream.isatty():
        return None, None
    try:
        with capture_until_primary_da(timeout) as response:
            stream.write("\x1b[?1;1;0S\x1b[?2;1;0S\x1b[c")
            stream.flush()
    except (TerminalError, TimeoutError, OSError):
        return None, None
    return parse_sixel_graphics(response.sequence)


def sixel_settings_for(
    registers: int | None, max_size: tuple[int, int] | None, *, in_tmux: bool
) -> SixelSettings:
    """The settings for a terminal's answers (unanswered: :data:`ASSUMED_REGISTERS`)."""
    from live2d_tui.ui.sixel import grey_levels

    return SixelSettings(
        levels=grey_levels(registers or ASSUMED_REGISTERS),
        max_size=max_size if max_size and min(max_size) > 0 else None,
        page_bytes=TMUX_PAGE_BYTES if in_tmux else None,
    )


@dataclass(frozen=True, slots=True)
class ImageChoice:
    """The renderer the app uses and why."""

    mode: ImageMode
    """Never ``auto``."""
    reason: str
    """Why this mode (shown in the help screen and the log)."""
    hint: str = ""
    """A one-line hint for the user, or empty."""


def tmux_client_features(env: Mapping[str, str] | None = None) -> frozenset[str] | None:
    """What the tmux client attached to this pane supports, or None outside tmux.

    Runs ``tmux display -p '#{client_termfeatures}'`` (argv list, 2 s timeout). A failure
    returns an empty set: we then cannot confirm Sixel, so we do not assume it.
    """
    env = os.environ if env is None else env
    if not env.get("TMUX"):
        return None
    try:
        out = subprocess.run(
            ["tmux", "display", "-p", "#{client_termfeatures}"],
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    if out.returncode != 0:
        return frozenset()
    return frozenset(f.strip() for f in out.stdout.strip().split(",") if f.strip())


def resolve_image_mode(
    requested: ImageMode,
    *,
    is_tty: bool,
    in_tmux: bool,
    terminal_sixel: bool,
    terminal_tgp: bool,
    client_features: frozenset[str] | None,
    terminal_version: str | None = None,
) -> ImageChoice:
    """Decide the renderer from the facts gathered by :func:`prepare_images`.

    Args:
        requested: The configured mode (``--images`` or ``[server] images``).
        is_tty: Whether stdout is a terminal.
        in_tmux: Whether ``$TMUX`` is set.
        terminal_sixel: textual-image's DA1 probe answered Sixel.
        terminal_tgp: textual-image's kitty query answered OK.
        client_features: ``#{client_termfeatures}`` of the attached tmux client (None outside).
        terminal_version: The terminal's XTVERSION answer, e.g. ``kitty(0.26.5)`` (None if not
            asked or not answered).
    """
    if requested is not ImageMode.AUTO:
        return ImageChoice(requested, f"--images {requested.value}")
    if not is_tty:
        return ImageChoice(ImageMode.HALFCELL, "stdout is not a terminal")
    if terminal_sixel:
        if not in_tmux:
            return ImageChoice(ImageMode.SIXEL, "the terminal answered DA1 with Sixel")
        if client_features is not None and "sixel" in client_features:
            return ImageChoice(ImageMode.SIXEL, "tmux and its client both support Sixel")
        if not terminal_tgp:
            return ImageChoice(
                ImageMode.HALFCELL,
                "tmux claims Sixel but the attached client does not list it",
                TMUX_HINT,
            )
    if terminal_tgp and kitty_without_placeholders(terminal_version):
        return ImageChoice(
            ImageMode.HALFCELL,
            f"{terminal_version} predates kitty's Unicode placeholders",
            KITTY_HINT,
        )
    if terminal_tgp:
        where = "through tmux passthrough" if in_tmux else "by the terminal"
        return ImageChoice(ImageMode.TGP, f"kitty graphics query answered {where}")
    return ImageChoice(
        ImageMode.HALFCELL,
        "no Sixel or kitty graphics support detected",
        TMUX_HINT if in_tmux else "",
    )


def kitty_without_placeholders(version: str | None) -> bool:
    """Whether an XTVERSION answer names a kitty older than :data:`KITTY_PLACEHOLDERS`."""
    match = _KITTY_VERSION_RE.match(version or "")
    if match is None:
        return False
    return tuple(int(part) for part in match.groups()) < KITTY_PLACEHOLDERS


def query_terminal_version(timeout: float = 1.0) -> str | None:
    """The terminal's XTVERSION answer (``CSI > q``), or None; must run before the app starts.

    DA1 follows the query, so a terminal that ignores XTVERSION ends the wait at once.
    """
    from textual_image._terminal import TerminalError, capture_until_primary_da

    stream = sys.__stdout__
    if stream is None or not stream.isatty():
        return None
    try:
        with capture_until_primary_da(timeout) as response:
            stream.write("\x1b[>q\x1b[c")
            stream.flush()
    except (TerminalError, TimeoutError, OSError):
        return None
    match = _XTVERSION_RE.search(response.sequence)
    return match.group(1) if match else None


def prepare_images(requested: ImageMode) -> ImageChoice:
    """Probe the terminal (before the app starts) and choose the renderer.

    Imports textual-image, whose import runs its one-time probe; then asks tmux about the client.
    """
    from textual_image._terminal import probe_terminal

    caps = probe_terminal()
    is_tty = bool(sys.__stdout__ and sys.__stdout__.isatty())
    in_tmux = bool(os.environ.get("TMUX"))
    ask_version = requested is ImageMode.AUTO and bool(caps.tgp) and is_tty and not in_tmux
    choice = resolve_image_mode(
        requested,
        is_tty=is_tty,
        in_tmux=in_tmux,
        terminal_sixel=bool(caps.sixel),
        terminal_tgp=bool(caps.tgp),
        client_features=tmux_client_features() if in_tmux else None,
        terminal_version=query_terminal_version() if ask_version else None,
    )
    if choice.mode is ImageMode.SIXEL:
        registers, max_size = query_sixel_graphics()
        set_sixel_settings(sixel_settings_for(registers, max_size, in_tmux=in_tmux))
    return choice


def pin_cell_size(width: int, height: int) -> None:
    """Set textual-image's cached cell size (pixels per cell); tests and re-measuring use it.

    textual-image caches its probe result on ``probe_terminal._result`` and offers no setter;
    this keeps its Sixel/TGP capability answers and replaces only the size.
    """
    from textual_image._terminal import CellSize, TerminalCapabilities, probe_terminal

    old = getattr(probe_terminal, "_result", None)
    caps = TerminalCapabilities(
        CellSize(width, height),
        sixel=bool(old.sixel) if old else False,
        tgp=bool(old.tgp) if old else False,
    )
    probe_terminal._result = caps  # type: ignore[attr-defined]


def cell_size() -> tuple[int, int]:
    """The cell size in pixels (width, height) textual-image uses."""
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return int(size.width), int(size.height)


def remeasure_cell_size() -> tuple[int, int]:
    """Re-read the cell size with ``TIOCGWINSZ`` (safe while Textual runs) and cache it.

    Terminals that report no pixel size keep the previous value.
    """
    stream = sys.__stdout__
    try:
        if stream is None or not stream.isatty():
            return cell_size()
        packed = fcntl.ioctl(stream.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
    except (OSError, ValueError):
        return cell_size()
    rows, cols, px_w, px_h = struct.unpack("HHHH", packed)
    if rows and cols and px_w and px_h:
        pin_cell_size(px_w // cols, px_h // rows)
    return cell_size()


def image_widget_class(mode: ImageMode) -> type[Widget]:
    """The textual-image widget class for a resolved mode."""
    from textual_image import widget as tiw

    classes: dict[ImageMode, Any] = {
        ImageMode.SIXEL: tiw.SixelImage,
        ImageMode.TGP: tiw.TGPImage,
        ImageMode.HALFCELL: tiw.HalfcellImage,
        ImageMode.UNICODE: tiw.UnicodeImage,
        ImageMode.AUTO: tiw.Image,
    }
    cls: type[Widget] = classes[mode]
    return cls


def make_image_widget(
    mode: ImageMode, *, id: str | None = None, classes: str = "", max_bytes: int | None = None
) -> Widget:
    """A new image widget for ``mode``; Sixel draws greys with every level the terminal's
    registers allow (:mod:`live2d_tui.ui.sixel`), in at most ``max_bytes`` when given."""
    if mode is ImageMode.SIXEL:
        from live2d_tui.ui.sixel import GreySixelImage

        levels = sixel_settings().levels
        widget: Widget = GreySixelImage(levels=levels, max_bytes=max_bytes, id=id, classes=classes)
        return widget
    cls = image_widget_class(mode)
    return cls(id=id, classes=classes)
