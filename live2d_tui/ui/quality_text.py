"""Words and marks for a class's quality and selection, as the grid labels and the class view
show them (pure functions; the views call them)."""

from __future__ import annotations

from live2d_tui.results.cycle_results import CycleResults
from live2d_tui.results.quality import ClassQuality, CycleQuality
from live2d_tui.results.selection import Selection

MARK_SYMBOLS = {"good": "✓", "bad": "✗", "unreviewed": "?"}
"""Beside a class number: selected, rejected, unreviewed (the colours say it too, where the
terminal shows them; the symbols keep it in every image mode and in grey)."""

MARK_STYLES = {"good": "bold green", "bad": "bold red", "unreviewed": "bold yellow"}


def mark_of(selection: Selection | None, class_number: int) -> str | None:
    """``good``, ``bad``, ``unreviewed`` or ``None`` for a class (1-based)."""
    if selection is None:
        return None
    found = selection.marks.get(class_number)
    if found is None:
        return None
    return "unreviewed" if found.unreviewed else found.mark


def at_nyquist(resolution: float, pixel_size: float) -> bool:
    """The curve never fell below the threshold: the figure is the Nyquist limit (2 pixels)."""
    return resolution <= 2.0 * pixel_size * (1 + 1e-6)


def figure_text(
    quality: ClassQuality | None, *, pending: bool = False, pixel_size: float | None = None
) -> str:
    """A class's figure in a few characters: ``6.4Å``, ``≤6.0Å`` (at Nyquist, given the
    pixel size), ``–`` (none), ``…`` (being computed)."""
    if quality is None:
        return "…" if pending else ""
    if quality.resolution is None:
        return "–"
    if pixel_size is not None and at_nyquist(quality.resolution, pixel_size):
        return f"≤{quality.resolution:.1f}Å"
    return f"{quality.resolution:.1f}Å"


def class_detail_line(quality: CycleQuality | None, class_number: int, pending: bool) -> str:
    """The class view's figures: members, used, fraction, mean score, the half-set figure."""
    if quality is None:
        return "half-set estimate: being computed" if pending else "half-set estimate: none yet"
    found = quality.by_class().get(class_number)
    if found is None:
        return "half-set estimate: none for this class"
    score = "–" if found.mean_score is None else f"{found.mean_score:.2f}"
    if found.resolution is not None:
        sampled = (
            f", from {found.sampled:,} of {found.used:,} used" if found.sampled < found.used else ""
        )
        nyquist = at_nyquist(found.resolution, quality.pixel_size)
        limit = ", never below 0.143 up to Nyquist" if nyquist else ""
        bound = "≤ " if nyquist else ""
        figure = f"half-set {bound}{found.resolution:.1f} Å (FRC 0.143{sampled}{limit})"
    else:
        figure = f"no half-set figure: {found.reason}"
    return (
        f"{found.members:,} members · {found.used:,} used · "
        f"{quality.fraction(class_number):.1%} of {quality.particles:,} · mean score {score} · "
        f"{figure}"
    )


def results_note(results: CycleResults | None) -> str:
    """The grid header's words on marks and figures: ``✓ 3 ✗ 2 ? 1 · half-set Å from ≤ 1,000
    per class, none under 50 used`` (the member cap said on screen)."""
    if results is None:
        return "half-set Å: not yet"
    selection = results.selection
    counts = [
        f"{MARK_SYMBOLS[name]} {len(found)}"
        for name, found in (
            ("good", selection.good),
            ("bad", selection.bad),
            ("unreviewed", selection.unreviewed),
        )
        if found
    ]
    quality = results.quality
    figures = (
        "half-set Å: not yet"
        if quality is None
        else f"half-set Å from ≤ {quality.cap:,} per class, none under {quality.min_used} used"
    )
    return " · ".join([*counts, figures])
