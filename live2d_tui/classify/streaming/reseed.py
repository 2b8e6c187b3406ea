"""Classes for views that appear late: misfits, a small classification of them, free slots.

A view that first appears after the stream's classes exist has no class of its own: its
particles go to the classes most like it and fit them badly. Each update therefore:

1. marks the new particles that score more than :data:`MISFIT_SPREADS` robust standard
   deviations below the median score of their class in the classification so far
   (:func:`misfits`; the median and the median absolute deviation from :mod:`.stats`, which a
   minority of foreign particles in the class barely moves): few of a class's own members, most
   of a foreign view's (simulated session: a late view's particles score 24–26 in the classes
   that took them, those classes' own members 38 ± 3);
2. keeps them in a pool (the stream's ``pool_v<N>.star``); once it holds :data:`POOL_SIZE`
   particles, classifies the pool alone, from scratch, through the same programs (a small ab
   initio job: :data:`POOL_CLASSES` classes, the startup ramp to the final limit), and empties
   the pool;
3. takes each of that job's classes with at least :data:`MIN_MEMBERS` members that is unlike
   every current class (:func:`new_views`: best aligned correlation below
   :data:`NEW_VIEW_SIMILARITY` from :data:`LOW_RES` to :data:`SIMILARITY_RES`, where copies of a
   view agree and different views do not) as a new class, in a free slot (:func:`free_slots`:
   an empty slot, else the smaller of the most alike pair of current classes that are copies of
   one view: aligned correlation ≥ :data:`~live2d_tui.similarity.COPY_CORRELATION`);
4. refines the update's blocks again against the references with the new classes, so their
   particles of the new view move to it at once (the earlier blocks' follow when revisited).

A slot given to a new view is emptied in the running total and marked stale in every block
not refined in this update (its old sums are never subtracted again). Class numbers of the other
classes do not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from live2d_tui.classify.streaming.stats import ClassStats
from live2d_tui.formats.cistem_star import StarRows
from live2d_tui.similarity import COPY_CORRELATION, aligned_similarity, filled

MISFIT_SPREADS = 2.5
"""A new particle scoring this many robust standard deviations below its class's median score
is a misfit (a normal distribution puts 0.6 % of a class's own members there)."""
POOL_SIZE = 150
"""Misfits that start a classification of the pool."""
POOL_LIMIT = 2000
"""The pool keeps at most this many (the newest)."""
POOL_CLASSES = 4
POOL_STARTUP = 8
"""Startup cycles of the pool's classification (the ramp to the final limit)."""
POOL_REFINE = 2
MIN_MEMBERS = 20
"""A class of the pool's classification needs this many members to become a class."""
LOW_RES = 100.0
SIMILARITY_RES = 15.0
"""Å: classes are compared up to this resolution (or the final limit, if coarser): a pool class
of a few dozen particles is clean here, and different views differ (at most 0.79 between the
reference-shaped session's views, copies of one view 0.9 and more)."""
NEW_VIEW_SIMILARITY = 0.85
"""A pool class whose best aligned correlation with the current classes is below this is a new
view."""


def misfits(rows: StarRows, stats: ClassStats) -> npt.NDArray[np.bool_]:
    """Which ``rows`` (newly refined) score more than :data:`MISFIT_SPREADS` robust standard
    deviations below their class's median score in ``stats`` (classes with fewer than 10
    scored members: none)."""
    out = np.zeros(len(rows), dtype=bool)
    labels = np.abs(np.asarray(rows["best_class"], dtype=np.int64))
    for c in np.unique(labels[labels > 0]):
        if c > stats.k or stats.used[c] < 10:
            continue
        median, spread = stats.median_spread(int(c))
        mine = labels == c
        out[mine] = rows["score"][mine] < median - MISFIT_SPREADS * spread
    return out


@dataclass(frozen=True)
class NewView:
    """A class of the pool's classification taken as a new class."""

    pool_class: int
    """0-based class of the pool's classification."""
    members: int
    similarity: float
    """Its best aligned correlation with the current classes."""
    slot: int
    """0-based class slot it takes."""
    replaced: bool
    """The slot held a copy that is emptied (else it was empty)."""


def free_slots(
    averages: npt.NDArray[np.float32],
    counts: npt.NDArray[np.float64],
    pixel: float,
    high: float,
    needed: int,
) -> list[tuple[int, bool]]:
    """Up to ``needed`` slots: (0-based slot, whether it holds a copy to empty), empty slots
    first, then the smaller class of the most alike copies (each larger class gives one)."""
    empty = [(int(k), False) for k in np.flatnonzero(~filled(averages))]
    slots = empty[:needed]
    if len(slots) >= needed:
        return slots
    live = np.flatnonzero(filled(averages))
    if len(live) < 2:
        return slots
    band = (LOW_RES, max(high, SIMILARITY_RES))
    similarity = aligned_similarity(averages, live, pixel, band)[:, live]
    pairs: list[tuple[float, int, int]] = []
    for i, first in enumerate(live):
        for j, second in enumerate(live):
            if j > i and similarity[i, j] >= COPY_CORRELATION:
                pairs.append((float(similarity[i, j]), int(first), int(second)))
    used: set[int] = set()
    for _, a, b in sorted(pairs, reverse=True):
        if a in used or b in used:
            continue
        smaller = a if counts[a] <= counts[b] else b
        slots.append((smaller, True))
        used |= {a, b}
        if len(slots) >= needed:
            break
    return slots


def new_views(
    current: npt.NDArray[np.float32],
    pool_averages: npt.NDArray[np.float32],
    pool_members: npt.NDArray[np.int64],
    pixel: float,
    high: float,
) -> list[tuple[int, int, float]]:
    """The pool classes that are new views, largest first: (0-based pool class, members, best
    similarity to the current classes and to the new views taken before it)."""
    k = len(current)
    stack = np.concatenate([current, pool_averages]).astype(np.float32)
    which = np.arange(k, k + len(pool_averages))
    band = (LOW_RES, max(high, SIMILARITY_RES))
    similarity = aligned_similarity(stack, which, pixel, band)
    taken: list[tuple[int, int, float]] = []
    for c in np.argsort(-pool_members, kind="stable"):
        if pool_members[c] < MIN_MEMBERS or not np.any(pool_averages[c]):
            continue
        against = list(range(k)) + [k + t for t, _, _ in taken]
        best = float(similarity[c, against].max()) if against else -1.0
        if best < NEW_VIEW_SIMILARITY:
            taken.append((int(c), int(pool_members[c]), best))
    return taken
