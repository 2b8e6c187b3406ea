"""Running per-class statistics of the whole classification, updated block by block.

Our engine's rules need, from the whole current star, the members of each class and the
:data:`~live2d_tui.formats.engine_rules.CORE_DROP` quantile of each class's scores
(:mod:`live2d_tui.formats.engine_rules`). Reading the whole star at every update would cost O(N), so
the streaming runner keeps these numbers here and changes them by the rows of the blocks an
update refines: a revisited block's previous rows are taken out, its new rows put in.

Scores are written to stars with two decimals, so each class's scores are held as counts of
their values in hundredths; from those the quantile is computed exactly as ``np.quantile``
computes it from the rows themselves (linear interpolation between order statistics). The
size of this table is bounded by the classes × the distinct score values, not by N.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_writer
from live2d_tui.formats.cistem_star import StarRows
from live2d_tui.formats.engine_rules import CORE_DROP, CORE_MIN

FORMAT = "live2d-stream-stats"
SCALE = 100
"""Scores are kept in hundredths (the stars' precision)."""

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class StatsError(ValueError):
    """The statistics are inconsistent with the rows taken out (a bug or a damaged file)."""


@dataclass
class ClassStats:
    """Members, used members and score distributions of ``k`` classes."""

    k: int
    members: I64
    """(k+1,) rows with |class| = c (index 0: no class)."""
    used: I64
    """(k+1,) rows with class = +c (index 0: class 0 or negative)."""
    score_class: I64
    """Classes of the (class, score) table, sorted with :attr:`score_key`."""
    score_key: I64
    """Scores × :data:`SCALE`."""
    score_count: I64

    @classmethod
    def empty(cls, k: int) -> ClassStats:
        none = np.zeros(0, dtype=np.int64)
        zeros = np.zeros(k + 1, dtype=np.int64)
        return cls(k, zeros, zeros.copy(), none, none.copy(), none.copy())

    @property
    def total(self) -> int:
        """Rows counted."""
        return int(self.members.sum())

    def add(self, rows: StarRows, sign: int = 1) -> None:
        """Count ``rows`` in (``sign`` = 1) or out (−1)."""
        labels = np.asarray(rows["best_class"], dtype=np.int64)
        absolute = np.abs(labels)
        inside = absolute <= self.k
        if not np.all(inside):
            raise StatsError(f"a row has class {int(absolute.max())} of only {self.k}")
        self.members += sign * np.bincount(absolute, minlength=self.k + 1)
        positive = np.where(labels > 0, labels, 0)
        self.used += sign * np.bincount(positive, minlength=self.k + 1)
        if np.any(self.members < 0) or np.any(self.used < 0):
            raise StatsError("more rows taken out of a class than it holds")
        chosen = labels > 0
        keys = np.rint(np.asarray(rows["score"][chosen], dtype=np.float64) * SCALE)
        self._merge(labels[chosen], keys.astype(np.int64), sign)

    def _merge(self, classes: I64, keys: I64, sign: int) -> None:
        if len(classes) == 0:
            return
        both_class = np.concatenate([self.score_class, classes])
        both_key = np.concatenate([self.score_key, keys])
        both_count = np.concatenate([self.score_count, np.full(len(classes), sign, np.int64)])
        pairs = np.stack([both_class, both_key], axis=1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        summed = np.bincount(inverse.ravel(), weights=both_count, minlength=len(unique))
        counts = np.rint(summed).astype(np.int64)
        if np.any(counts < 0):
            raise StatsError("a score taken out of a class that never held it")
        keep = counts > 0
        self.score_class = unique[keep, 0].astype(np.int64)
        self.score_key = unique[keep, 1].astype(np.int64)
        self.score_count = counts[keep]

    def counts(self) -> F64 | None:
        """Memberships as :func:`live2d_tui.formats.engine_rules.memberships` gives them."""
        members = self.members[1:]
        if members.sum() == 0:
            return None
        return members.astype(np.float64)

    def quantile(self, c: int, q: float) -> float:
        """The ``q`` quantile of the scores of the rows with class +c (``np.quantile``'s
        linear method); NaN when there are none."""
        mine = self.score_class == c
        values = self.score_key[mine] / SCALE
        counts = self.score_count[mine]
        n = int(counts.sum())
        if n == 0:
            return float("nan")
        ends = np.cumsum(counts)  # the order statistics i < ends[j] have values[j]
        h = (n - 1) * q
        low = int(np.floor(h))
        high = min(low + 1, n - 1)
        a = float(values[np.searchsorted(ends, low, side="right")])
        b = float(values[np.searchsorted(ends, high, side="right")])
        t = h - low
        # numpy's lerp: exact at both ends
        return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t

    def median_spread(self, c: int) -> tuple[float, float]:
        """The median of class +c's scores and their spread, 1.4826 × the median absolute
        deviation (the standard deviation of a normal distribution; robust: a minority of
        another view's particles in the class barely moves either). NaN when there are none."""
        mine = self.score_class == c
        values = self.score_key[mine] / SCALE
        counts = self.score_count[mine]
        if counts.sum() == 0:
            return float("nan"), float("nan")
        median = self.quantile(c, 0.5)
        deviation = np.abs(values - median)
        order = np.argsort(deviation, kind="stable")
        ends = np.cumsum(counts[order])
        middle = int(np.searchsorted(ends, (ends[-1] + 1) // 2))
        return median, 1.4826 * float(deviation[order][min(middle, len(order) - 1)])

    def core_thresholds(self) -> F64:
        """(k+1,) as :func:`live2d_tui.formats.engine_rules.core_thresholds` gives them."""
        out = np.full(self.k + 1, -np.inf)
        for c in range(1, self.k + 1):
            if self.used[c] >= CORE_MIN:
                out[c] = self.quantile(c, CORE_DROP)
        return out

    def save(self, path: Path) -> None:
        with atomic_writer(Path(path), "wb") as handle:
            np.savez(
                handle,
                format=np.array(FORMAT),
                k=np.array(self.k),
                members=self.members,
                used=self.used,
                score_class=self.score_class,
                score_key=self.score_key,
                score_count=self.score_count,
            )

    @classmethod
    def load(cls, path: Path) -> ClassStats:
        try:
            with np.load(Path(path), allow_pickle=False) as archive:
                if str(archive["format"]) != FORMAT:
                    raise StatsError(f"{path} is not a streaming statistics file")
                return cls(
                    int(archive["k"]),
                    *(
                        np.asarray(archive[name], dtype=np.int64)
                        for name in ("members", "used", "score_class", "score_key", "score_count")
                    ),
                )
        except (OSError, ValueError, KeyError) as exc:
            if isinstance(exc, StatsError):
                raise
            raise StatsError(f"cannot read streaming statistics {path}: {exc}") from None
