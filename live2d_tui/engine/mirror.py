"""Separating a class that averages a view with its opposite (a "mirror blend").

The projection along −d of a particle is the mirror image of its projection along d, turned in
plane; for a chiral particle it matches no in-plane pose of the d projection. At 40 Å the two
still look alike, so a random start can put both into one class, and later rounds keep them
there: the class average is then their blend, symmetric about some axis, and no other class is
a better home for either group. On the harder simulated session (continuous orientations, 50
classes) 4 classes of 50 ended as such blends, at FRC0.5 17-24 Å, against 7.7-10 Å for most.

Once the limit is ``refine2d.FINE_RESOLUTION`` or finer (where views differ in detail), each
round looks for at most one blend:

1. every class's :class:`~.references.MirrorAxis` (how close its average is to its own mirror
   image, at the working limit); classes from :data:`MIRROR_CORRELATION` up are candidates,
   most symmetric first, at most :data:`MAX_TRIES` a round;
2. the candidate's members are split on what the reflection turns over
   (:func:`.split.split_members` with ``reflection``), and the halves are averaged;
3. the split is kept only when the halves are two different images (aligned correlation under
   the copy threshold) and each is closer to the other's mirror image than to the other
   (by :data:`MIRROR_MARGIN`): a blend of P and its mirror splits into P and mirror(P); a class
   that is merely symmetric (a side view of a symmetric particle, a round blob) splits into two
   copies of itself and is left alone;
4. the second half goes into an empty slot, or else into the slot of the class most like another
   class (the smaller of the most alike pair, compared to :data:`REDUNDANCY_RESOLUTION`), whose
   members go to their next-best classes.

Everything is a deterministic function of the star, stack and references, so every job of a
cycle does the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from live2d_tui.engine.references import aligned_similarity, filled, mirror, mirror_axes
from live2d_tui.engine.split import MIN_SPLIT_MEMBERS, SplitSource, half_averages, split_members

MIRROR_CORRELATION = 0.85
"""Aligned correlation of a class with its own mirror image from which it is a candidate. On the
harder session at 8 Å: the blends 0.86-0.96; other classes mostly under 0.83, a few to 0.86."""
MIRROR_MARGIN = 0.05
"""How much closer each half must be to the other's mirror image than to the other."""
MAX_TRIES = 2
"""Candidates split per round (each reads up to ``split.SPLIT_SAMPLE`` members)."""
MIRROR_STEP = 5.0
"""Degrees between the rotations tried when comparing a class with its mirror image."""
REDUNDANCY_RESOLUTION = 16.0
"""Å: classes are compared up to here (or the working limit, if coarser) to choose the slot."""


@dataclass(frozen=True)
class MirrorSplit:
    """A blend cut into its view (kept in ``parent``) and the opposite view (into ``slot``)."""

    parent: int
    slot: int
    members: int
    fraction_to_slot: float
    symmetry: float
    """The parent's correlation with its own mirror image."""
    halves: float
    """Aligned correlation of the two halves with each other."""
    freed_members: int
    """Members of the class emptied to make room (0 when the slot was empty)."""


def separate_mirror_blend(
    references: npt.NDArray[np.float32],
    counts: npt.NDArray[np.float64],
    source: SplitSource,
    *,
    pixel: float,
    band: tuple[float, float],
    copy_correlation: float,
) -> MirrorSplit | None:
    """Find and separate at most one blend (module docstring) in ``references`` (in place),
    updating ``counts``; ``band`` is (low, high) Å with high the working limit."""
    box = references.shape[-1]
    axes = mirror_axes(references, pixel, band, step=MIRROR_STEP)
    ranked = sorted(
        (
            (-axis.correlation, i)
            for i, axis in enumerate(axes)
            if axis is not None
            and axis.correlation >= MIRROR_CORRELATION
            and counts[i] >= 2 * MIN_SPLIT_MEMBERS
        ),
    )
    for _, parent in ranked[:MAX_TRIES]:
        axis = axes[parent]
        assert axis is not None
        split = split_members(box, parent, references[parent], source, reflection=axis)
        if split is None:
            continue
        halves = half_averages(split, box, source)
        if halves is None:
            continue
        keep, give = halves
        pair = np.stack([keep, give])
        plain = float(aligned_similarity(pair, np.array([0]), pixel, band)[0, 1])
        flipped_pair = np.stack([keep, mirror(give)])
        flipped = float(aligned_similarity(flipped_pair, np.array([0]), pixel, band)[0, 1])
        if plain >= copy_correlation or flipped < plain + MIRROR_MARGIN:
            continue
        slot, freed = _free_slot(references, counts, parent, pixel, band)
        share = float(split.side.mean())
        total = counts[parent]
        references[parent], references[slot] = keep, give
        counts[parent], counts[slot] = total * (1.0 - share), total * share
        return MirrorSplit(parent, slot, int(total), share, axis.correlation, plain, freed)
    return None


def _free_slot(
    references: npt.NDArray[np.float32],
    counts: npt.NDArray[np.float64],
    parent: int,
    pixel: float,
    band: tuple[float, float],
) -> tuple[int, int]:
    """(slot, members it held): an empty slot, or else the smaller class of the most alike
    pair (not ``parent``), emptied."""
    live = filled(references)
    empty = np.flatnonzero(~live)
    if len(empty):
        return int(empty[0]), 0
    others = np.flatnonzero(live & (np.arange(len(references)) != parent))
    low, high = band
    similarity = aligned_similarity(
        references, others, pixel, (low, max(high, REDUNDANCY_RESOLUTION)), step=MIRROR_STEP
    )[:, others]
    row, col = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    a, b = int(others[row]), int(others[col])
    slot = a if (counts[a], a) < (counts[b], b) else b
    freed = int(counts[slot])
    references[slot] = 0.0
    counts[slot] = 0.0
    return slot, freed
