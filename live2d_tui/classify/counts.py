"""Per-class particle counts of a cycle's star.

refine2d writes ``_cisTEMBest2DClass`` as +k for a particle used this round, −|k| for one skipped
by the percent-used draw (its last assignment kept) and 0 for one never assigned
(docs/glossary.md#classes-and-counts; the draw: answer 9 in
docs/protocol.md#refine2d-the-25-answers). We report:

- **members** (what users see): particles whose |class| is k, used this round or not;
- **used**: particles with class +k (what the cisTEM GUI shows);
- index 0 of both lists is the unassigned count (class 0).

The original Live2D counted negatives as unassigned, hiding the members of sub-100 % rounds
(docs/architecture.md#compared-with-the-original-live2d); this module is the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class ClassCounts:
    """Counts per class; index 0 = unassigned, index k = class k."""

    members: list[int]
    used: list[int]

    @property
    def particle_count(self) -> int:
        """All particles counted (the star's rows)."""
        return sum(self.members)


def class_counts(best_class: npt.ArrayLike, class_count: int) -> ClassCounts:
    """Count members (|k|) and used (+k) per class for ``class_count`` classes.

    Raises:
        ValueError: A class number is beyond ``class_count`` (the star does not belong to these
            classes).
    """
    classes = np.asarray(best_class, dtype=np.int64)
    if class_count < 0:
        raise ValueError(f"class_count must be ≥ 0 (got {class_count})")
    magnitude = np.abs(classes)
    if magnitude.size and int(magnitude.max()) > class_count:
        raise ValueError(f"class {int(magnitude.max())} found in a star of {class_count} classes")
    members = np.bincount(magnitude, minlength=class_count + 1)
    used = np.bincount(np.where(classes > 0, classes, 0), minlength=class_count + 1)
    used[0] = members[0]  # index 0 is "unassigned" in both lists
    return ClassCounts(members=[int(v) for v in members], used=[int(v) for v in used])
