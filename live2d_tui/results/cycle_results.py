"""One cycle's figures and marks together, as views show them: the cached half-set estimate
(or none yet) and the class selection (carried marks included)."""

from __future__ import annotations

from dataclasses import dataclass

from live2d_tui.results.quality import ClassQuality, CycleQuality
from live2d_tui.results.selection import Selection

MarkName = str
"""``good``, ``bad`` or ``unreviewed``."""


@dataclass(frozen=True, slots=True)
class CycleResults:
    """A cycle's estimate and selection."""

    cycle: int
    quality: CycleQuality | None
    """``None``: not computed yet (or computed from other versions of the cycle's files)."""
    selection: Selection

    def mark(self, class_number: int) -> MarkName | None:
        """``good``, ``bad``, ``unreviewed`` or ``None`` for a class (1-based)."""
        found = self.selection.marks.get(class_number)
        if found is None:
            return None
        return "unreviewed" if found.unreviewed else found.mark

    def marks(self) -> dict[int, MarkName]:
        """0-based slice → mark, for every marked class (what the montage frames)."""
        out: dict[int, MarkName] = {}
        for k in self.selection.marks:
            mark = self.mark(k)
            if mark is not None:
                out[k - 1] = mark
        return out

    def class_quality(self, class_number: int) -> ClassQuality | None:
        """A class's figures (``None`` before the estimate)."""
        return None if self.quality is None else self.quality.by_class().get(class_number)

    def figure(self, class_number: int) -> float | None:
        """A class's half-set figure in Å, or ``None``."""
        found = self.class_quality(class_number)
        return None if found is None else found.resolution

    def figures(self) -> dict[int, float | None] | None:
        """0-based slice → figure (``None`` without one), or ``None`` before the estimate."""
        if self.quality is None:
            return None
        return {c.class_number - 1: c.resolution for c in self.quality.classes}
