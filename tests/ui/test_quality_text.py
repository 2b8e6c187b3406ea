"""The grid's and class view's words for quality and selection."""

from __future__ import annotations

from live2d_tui.results.quality import ClassQuality, CycleQuality
from live2d_tui.results.selection import Mark, Selection
from live2d_tui.ui.quality_text import class_detail_line, figure_text, mark_of


def test_marks_and_figures() -> None:
    sel = Selection(cycle=3, marks={1: Mark("good", 3), 2: Mark(None, 1, 0.1, True, "bad")})
    assert [mark_of(sel, k) for k in (1, 2, 3)] == ["good", "unreviewed", None]
    assert mark_of(None, 1) is None
    good = ClassQuality(1, 1200, 1100, 1000, 4.214, 6.43)
    none = ClassQuality(2, 30, 30, 0, 1.0, None, "fewer than 50 used particles")
    assert figure_text(good) == "6.4Å" and figure_text(none) == "–"
    assert figure_text(None, pending=True) == "…" and figure_text(None) == ""
    q = CycleQuality(3, 64, 3.0, 90.0, 1000, 2400, (good, none))
    assert class_detail_line(q, 1, False) == (
        "1,200 members · 1,100 used · 50.0% of 2,400 · mean score 4.21 · half-set 6.4 Å "
        "(FRC 0.143, from 1,000 of 1,100 used)"
    )
    assert class_detail_line(q, 2, False).endswith(
        "no half-set figure: fewer than 50 used particles"
    )
    assert class_detail_line(None, 1, True) == "half-set estimate: being computed"


def test_nyquist_figure_and_results_note() -> None:
    from live2d_tui.results.cycle_results import CycleResults
    from live2d_tui.ui.quality_text import results_note

    at_limit = ClassQuality(1, 900, 900, 900, 3.0, 6.0, "", (1.0, 0.9, 0.8))
    assert figure_text(at_limit, pixel_size=3.0) == "≤6.0Å"
    assert figure_text(at_limit, pixel_size=2.0) == "6.0Å"
    q = CycleQuality(3, 64, 3.0, 90.0, 1000, 900, (at_limit,))
    assert "half-set ≤ 6.0 Å" in class_detail_line(q, 1, False)
    assert "never below 0.143 up to Nyquist" in class_detail_line(q, 1, False)
    sel = Selection(cycle=3, marks={1: Mark("good", 3), 2: Mark(None, 1, 0.1, True, "bad")})
    note = results_note(CycleResults(3, q, sel))
    assert note.startswith("✓ 1 · ? 1 · half-set Å from ≤ 1,000 per class, none under 50 used")
    assert results_note(CycleResults(3, None, Selection(3))) == "half-set Å: not yet"
