"""Sixel class averages with a fixed grey palette: every grey level Sixel can define.

textual-image's encoder quantises an image with more distinct values than ``colors`` through
Pillow's octree on RGB, which keeps about 16 entries for a grey image: class averages came out
in terraces. Sixel defines a colour register in percent, so a grey ramp has at most 101
distinct levels; we map every pixel onto such a ramp ourselves (a lookup table, no dithering)
and hand textual-image a palette image, which its encoder writes as it is.

The number of levels is the terminal's colour registers less :data:`RESERVED_REGISTERS` (kept
free for coloured marks drawn into the same image, e.g. selected/rejected classes), at most
:data:`PERCENT_LEVELS`. Inside tmux an image may also be given a byte budget: tmux before 3.6
drops a Sixel sequence over 1 MB, so an image that encodes larger is encoded again with fewer
levels until it fits.

We use textual-image's encoder hook (``_image_to_sixels`` of its Sixel widget's inner widget,
meant to be overridden since textual-image 0.12) and its encoder; nothing here writes Sixel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import numpy as np
from PIL import Image
from textual.app import ComposeResult
from textual.widget import Widget
from textual_image._sixel import BackgroundColor, SixelOptions, image_to_sixels
from textual_image.widget import SixelImage
from textual_image.widget.sixel import _ImageSixelImpl, _NoopRenderable

PERCENT_LEVELS = 101
"""Distinct grey levels Sixel can define (registers are set in percent, 0–100)."""

RESERVED_REGISTERS = 8
"""Colour registers left free for coloured marks in the same image."""

MIN_LEVELS = 8
"""Fewest grey levels a byte budget may bring an image down to."""

_ALL_REGISTERS = SixelOptions(colors=256)
"""A palette image with at most this many entries is encoded as it is (no quantisation)."""


def grey_levels(registers: int) -> int:
    """Grey levels for a terminal with ``registers`` colour registers (marks kept free)."""
    return max(2, min(PERCENT_LEVELS, registers - RESERVED_REGISTERS))


def level_percents(levels: int) -> np.ndarray:
    """The Sixel percent (0–100) of each of ``levels`` evenly spaced greys, black to white."""
    return np.rint(np.linspace(0, 100, levels)).astype(np.int64)


def quantise_grey(image: Image.Image, levels: int) -> Image.Image:
    """``image`` as greys mapped onto ``levels`` evenly spaced Sixel percents: a palette image
    (mode P) whose palette entries are exact percents, so no two entries collapse into one
    register and no register is wasted."""
    grey = image.convert("L")
    values = np.arange(256, dtype=np.float64)
    # nearest level; at 101 levels this is Sixel's own rounding of 0-255 to percent
    lut = np.rint(values * (levels - 1) / 255.0).astype(np.uint8)
    indices = Image.fromarray(lut[np.asarray(grey)], mode="L")
    grey_values = np.rint(level_percents(levels) * 255.0 / 100.0).astype(np.uint8)
    palette = np.repeat(grey_values, 3).tolist()
    paletted = indices.convert("P")
    paletted.putpalette(palette + [0] * (768 - len(palette)))
    return paletted


def encode_grey(
    image: Image.Image,
    levels: int,
    *,
    max_bytes: int | None = None,
    background: BackgroundColor | None = None,
) -> str:
    """The Sixel sequence of ``image`` in ``levels`` greys; with ``max_bytes``, fewer levels
    (down to :data:`MIN_LEVELS`) until the sequence fits.

    The size grows slowly with the levels (about as levels^0.4 on noise, the worst case), so
    the next try scales the levels by the overshoot to the power 2.5: one or two more encodes.
    """
    while True:
        data: str = image_to_sixels(quantise_grey(image, levels), _ALL_REGISTERS, background)
        if max_bytes is None or len(data) <= max_bytes or levels <= MIN_LEVELS:
            return data
        scaled = int(levels * (max_bytes / len(data)) ** 2.5)
        levels = max(MIN_LEVELS, min(levels - 1, scaled))


class _GreySixelImpl(_ImageSixelImpl):
    """textual-image's Sixel drawing with our grey encoder (its cache and placement as they are)."""

    def __init__(self, image: Any, levels: int, max_bytes: int | None) -> None:
        super().__init__(image, _ALL_REGISTERS)
        self._levels = levels
        self._max_bytes = max_bytes

    def _image_to_sixels(
        self,
        image: Image.Image,
        sixel_options: SixelOptions | None = None,
        background: BackgroundColor | None = None,
    ) -> str:
        return encode_grey(image, self._levels, max_bytes=self._max_bytes, background=background)


class GreySixelImage(SixelImage, Renderable=_NoopRenderable):
    """textual-image's Sixel widget drawing greys through :func:`encode_grey`."""

    def __init__(
        self,
        image: str | IO[bytes] | Image.Image | None = None,
        *,
        levels: int,
        max_bytes: int | None = None,
        id: str | None = None,
        classes: str | None = None,
        on_error: Callable[[Exception], Widget] | None = None,
    ) -> None:
        super().__init__(image, id=id, classes=classes, on_error=on_error)
        self._levels = levels
        self._max_bytes = max_bytes

    def compose(self) -> ComposeResult:
        yield _GreySixelImpl(self.image, self._levels, self._max_bytes)
