"""A PNG report of a cycle's classes: one tile per class with its number, members and half-set
figure under it, selected classes framed green, rejected ones red, unreviewed ones amber (and
marked ✓, ✗, ? beside the number, so the marks survive printing in grey).

For a notebook, an e-mail or a facility log: a title line names the session and the cycle, and
a footer says what the resolution figures are. Every class shares one intensity scale
(percentiles over the non-empty classes), so brightness compares between classes; an empty class
is a dark tile with a cross.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from live2d_tui.results.quality import CycleQuality
from live2d_tui.results.selection import Selection

TILE = 160
"""Pixels of a class image in the report."""

COLUMNS = 8
FRAME = 4
"""Width of a mark's frame, pixels."""

GREEN, RED, AMBER = (46, 160, 67), (207, 34, 46), (212, 140, 0)
BACKGROUND, TEXT, DIM = (255, 255, 255), (20, 20, 20), (110, 110, 110)
PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True, slots=True)
class ReportClass:
    """What one tile shows."""

    number: int
    image: npt.NDArray[np.float32]
    members: int
    figure: float | None
    mark: str | None
    """``good``, ``bad``, ``unreviewed`` or ``None``."""


def classes_for_report(
    averages: npt.NDArray[np.float32],
    members: Sequence[int],
    quality: CycleQuality | None,
    selection: Selection | None,
) -> list[ReportClass]:
    """One :class:`ReportClass` per slice (``members[k]`` is class k's, index 0 unassigned)."""
    figures = {} if quality is None else {c.class_number: c.resolution for c in quality.classes}
    out = []
    for k in range(1, averages.shape[0] + 1):
        mark: str | None = None
        if selection is not None:
            found = selection.marks.get(k)
            if found is not None:
                mark = "unreviewed" if found.unreviewed else found.mark
        count = members[k] if k < len(members) else 0
        out.append(ReportClass(k, averages[k - 1], count, figures.get(k), mark))
    return out


def _scale(classes: Sequence[ReportClass]) -> tuple[float, float]:
    images = [c.image for c in classes if c.members > 0 and float(np.ptp(c.image)) > 0]
    if not images:
        return 0.0, 1.0
    pixels = np.concatenate([i.reshape(-1) for i in images])
    low, high = (float(v) for v in np.percentile(pixels, PERCENTILES))
    return low, high if high > low else low + 1.0


def _tile(image: npt.NDArray[np.float32], scale: tuple[float, float], empty: bool) -> Image.Image:
    if empty:
        tile = Image.new("L", (TILE, TILE), 24)
        draw = ImageDraw.Draw(tile)
        draw.line((0, 0, TILE, TILE), fill=90)
        draw.line((0, TILE, TILE, 0), fill=90)
        return tile
    low, high = scale
    grey = np.clip((image.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255)
    return Image.fromarray(grey.astype(np.uint8), mode="L").resize(
        (TILE, TILE), Image.Resampling.BICUBIC
    )


FONT_FILES = ("DejaVuSans.ttf", "NotoSans-Regular.ttf", "LiberationSans-Regular.ttf")
"""Fonts with Å, ✓ and ✗, found in the system's font folders when installed."""

ASCII = str.maketrans({"Å": "A", "✓": "+", "✗": "x", "–": "-", "—": "-", "…": "..."})
"""What the text becomes with Pillow's built-in font, which lacks those characters."""

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def fonts() -> tuple[Font, Font, bool]:
    """(label font, small font, whether they have Å, ✓ and ✗)."""
    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, 15), ImageFont.truetype(name, 12), True
        except OSError:
            continue
    return ImageFont.load_default(size=15), ImageFont.load_default(size=12), False


def render_report(classes: Sequence[ReportClass], title: str, footer: str) -> Image.Image:
    """The report image (RGB)."""
    font, small, unicode = fonts()

    def text(value: str) -> str:
        return value if unicode else value.translate(ASCII)

    title, footer = text(title), text(footer)
    columns = max(1, min(COLUMNS, len(classes)))
    rows = max(1, -(-len(classes) // columns))
    pad, label_h, head = 10, 40, 36
    cell_w, cell_h = TILE + 2 * pad, TILE + label_h + pad
    width = columns * cell_w + pad
    footer_lines = _wrap(footer, small, width - 2 * pad)
    height = head + rows * cell_h + 16 * len(footer_lines) + 2 * pad
    page = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(page)
    draw.text((pad, pad), title, fill=TEXT, font=font)
    scale = _scale(classes)
    colours = {"good": GREEN, "bad": RED, "unreviewed": AMBER}
    symbols = {"good": " ✓", "bad": " ✗", "unreviewed": " ?"}
    for i, c in enumerate(classes):
        r, col = divmod(i, columns)
        x, y = pad + col * cell_w + pad, head + r * cell_h
        empty = c.members <= 0 or float(np.ptp(c.image)) == 0.0
        page.paste(_tile(c.image, scale, empty).convert("RGB"), (x, y))
        if c.mark in colours:
            draw.rectangle(
                (x - FRAME, y - FRAME, x + TILE + FRAME - 1, y + TILE + FRAME - 1),
                outline=colours[c.mark],
                width=FRAME,
            )
        figure = "–" if c.figure is None else f"{c.figure:.1f} Å"
        label = f"#{c.number}{symbols.get(c.mark or '', '')}  {c.members:,}"
        draw.text((x, y + TILE + FRAME + 2), text(label), fill=TEXT, font=font)
        draw.text((x, y + TILE + FRAME + 21), text(figure), fill=DIM if c.figure is None else TEXT,
                  font=small)  # fmt: skip
    for n, line in enumerate(footer_lines):
        draw.text((pad, head + rows * cell_h + pad + 16 * n), line, fill=DIM, font=small)
    return page


def _wrap(text: str, font: Font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines():
        line = ""
        for word in paragraph.split():
            trial = f"{line} {word}".strip()
            if font.getlength(trial) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def write_report(image: Image.Image, target: Path) -> None:
    """Save the PNG atomically (temporary file beside it, then rename)."""
    from live2d_tui.atomic import atomic_writer

    with atomic_writer(Path(target), "wb") as handle:
        image.save(handle, format="PNG")
