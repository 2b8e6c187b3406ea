r"""Frozen rules: the whole-star inputs of ``live2d-refine2d``, given to it in a side file.

Our refine2d takes a few decisions from its WHOLE input star, not just from the rows it refines
(:mod:`live2d_tui.engine.refine2d`): the class memberships (which classes are emptied as strays
or copies, and whether empty slots are refilled by splits), the score below which a class's
members are left out of its sums (the lowest 30 % of each class), and the particles whose
background gives the noise spectrum. Every job of a cycle reads the same star, so they agree.

A streaming update (:mod:`live2d_tui.classify.streaming`) refines a block of particles from a star
that holds that block only; from it these decisions would differ from block to block and from
what a full cycle decides. So the streaming runner computes them from its running statistics of
the whole classification and names a file holding them in the environment variable
:data:`RULES_ENV`; refine2d then takes them from the file instead of from its star, and does not
split classes (the streaming runner manages the class slots itself). cisTEM's programs ignore
the variable. The file is an uncompressed ``.npz``:

- ``format`` (str): ``"live2d-engine-rules"``; ``version`` (int): :data:`FORMAT_VERSION`;
- ``counts`` (float64, K): members \|Best2DClass\| = k of each class (empty: none assigned);
- ``core_thresholds`` (float64, K+1): at index k, the score below which a member of class k is
  left out of the sums (−inf keeps all);
- ``noise_positions`` (int64, M) and ``noise_pixel_sizes`` (float64, M): the 1-based stack
  positions (and star pixel sizes) whose backgrounds give the noise spectrum.

:func:`rules_from_star` computes the file's content from a star exactly as refine2d computes it
from that star, so a block refined with the rules of the full star gives what a job of a full
cycle over that star gives.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_writer
from live2d_tui.formats.cistem_star import StarRows

RULES_ENV = "LIVE2D_ENGINE_RULES"
"""Names the frozen-rules file for ``live2d-refine2d`` (unset: rules from the input star)."""
FORMAT = "live2d-engine-rules"
FORMAT_VERSION = 1
CORE_DROP = 0.3
"""Fraction of each class's members, the lowest-scoring, left out of its class sums."""
CORE_MIN = 10
"""Classes with fewer members keep them all in their sums (too few to rank)."""
NOISE_SAMPLE = 1000
"""Particles sampled (evenly over the whole star) for the noise power spectrum."""


class RulesError(ValueError):
    """A frozen-rules file is unreadable or not ours."""


def memberships(star: StarRows, k: int) -> npt.NDArray[np.float64] | None:
    """Current membership |Best2DClass| of each of the ``k`` classes in the WHOLE star;
    ``None`` when no particle is assigned yet (the first round after a random start)."""
    members = np.abs(star["best_class"])
    members = members[(members >= 1) & (members <= k)]
    if len(members) == 0:
        return None
    return np.bincount(members - 1, minlength=k).astype(np.float64)


def core_thresholds(star: StarRows, k: int) -> npt.NDArray[np.float64]:
    """(max(k, largest class) + 1,) scores: index c holds the :data:`CORE_DROP` quantile of the
    scores of the star's rows with class +c (−inf for classes with fewer than
    :data:`CORE_MIN` such rows)."""
    assigned = star[star["best_class"] > 0]
    size = max(k, int(assigned["best_class"].max()) if len(assigned) else 0) + 1
    threshold = np.full(size, -np.inf)
    if len(assigned) == 0:
        return threshold
    classes, counts = np.unique(assigned["best_class"], return_counts=True)
    for c in classes[counts >= CORE_MIN]:
        threshold[c] = np.quantile(assigned["score"][assigned["best_class"] == c], CORE_DROP)
    return threshold


def noise_sample(positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Indices into ``positions`` of an even sample of at most :data:`NOISE_SAMPLE`."""
    count = min(NOISE_SAMPLE, len(positions))
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, len(positions) - 1, count).round().astype(np.int64))


@dataclass(frozen=True)
class FrozenRules:
    """The whole-star inputs of one refine2d run (see the module docstring)."""

    counts: npt.NDArray[np.float64] | None
    core_thresholds: npt.NDArray[np.float64]
    noise_positions: npt.NDArray[np.int64]
    noise_pixel_sizes: npt.NDArray[np.float64]

    def core(self, rows: StarRows) -> npt.NDArray[np.bool_]:
        """Which of ``rows`` the class sums take (rows without a class, or of a class beyond
        the thresholds, are all taken)."""
        core = np.ones(len(rows), dtype=bool)
        labels = rows["best_class"]
        inside = (labels > 0) & (labels < len(self.core_thresholds))
        core[inside] = rows["score"][inside] >= self.core_thresholds[labels[inside]]
        return core


def rules_from_star(star: StarRows, k: int) -> FrozenRules:
    """The rules refine2d derives from ``star`` for ``k`` classes."""
    pick = noise_sample(star["position"])
    return FrozenRules(
        counts=memberships(star, k),
        core_thresholds=core_thresholds(star, k),
        noise_positions=np.asarray(star["position"][pick], dtype=np.int64),
        noise_pixel_sizes=np.asarray(star["pixel_size"][pick], dtype=np.float64),
    )


def write_rules(path: Path, rules: FrozenRules) -> None:
    """Write ``rules`` atomically to exactly ``path``."""
    counts = rules.counts if rules.counts is not None else np.zeros(0)
    with atomic_writer(Path(path), "wb") as handle:
        np.savez(
            handle,
            format=np.array(FORMAT),
            version=np.array(FORMAT_VERSION),
            counts=np.asarray(counts, dtype=np.float64),
            core_thresholds=np.asarray(rules.core_thresholds, dtype=np.float64),
            noise_positions=np.asarray(rules.noise_positions, dtype=np.int64),
            noise_pixel_sizes=np.asarray(rules.noise_pixel_sizes, dtype=np.float64),
        )


def read_rules(path: Path) -> FrozenRules:
    """Read a rules file written by :func:`write_rules`; raises :class:`RulesError`."""
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if str(archive["format"]) != FORMAT or int(archive["version"]) != FORMAT_VERSION:
                raise RulesError(f"{path} is not a live2d engine rules file (version 1)")
            counts = np.asarray(archive["counts"], dtype=np.float64)
            return FrozenRules(
                counts=counts if len(counts) else None,
                core_thresholds=np.asarray(archive["core_thresholds"], dtype=np.float64),
                noise_positions=np.asarray(archive["noise_positions"], dtype=np.int64),
                noise_pixel_sizes=np.asarray(archive["noise_pixel_sizes"], dtype=np.float64),
            )
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, RulesError):
            raise
        raise RulesError(f"cannot read rules file {path}: {exc}") from None


def rules_from_environment() -> FrozenRules | None:
    """The rules named by :data:`RULES_ENV`, or ``None`` when it is unset or empty."""
    name = os.environ.get(RULES_ENV, "")
    return read_rules(Path(name)) if name else None
