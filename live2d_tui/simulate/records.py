"""Records of a simulated session: its events, its summary, and per-movie state.

Kept apart from :mod:`live2d_tui.simulate.session` so the session loop stays readable; also the
deterministic random-stream helper every draw goes through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from live2d_tui.simulate import documents as docs
from live2d_tui.simulate.particles import MicrographCTF, ParticleParams


@dataclass(frozen=True)
class SimEvent:
    """A moment of the simulation a test (or a demo) may want to look at.

    ``kind`` is one of: ``settings_written``, ``settings_torn``, ``stack_partial``,
    ``star_missing``, ``star_torn``, ``movie_done``, ``unselected``, ``reprocessed``,
    ``session_done``. The callback runs synchronously, while the folder is in that state.
    """

    kind: str
    micrograph: int
    """Index of the movie concerned (−1 for session-wide events)."""
    path: Path | None = None


@dataclass
class MovieRecord:
    """One processed movie as the simulated Warp holds it in memory."""

    index: int
    root: str
    geometry: docs.Geometry
    ctf: MicrographCTF
    params: ParticleParams
    bad: bool
    filtered: bool = False
    unselect_manual: bool | None = None
    revision: int = 0
    rows: list[list[str]] | None = None
    """This movie's all/goodparticles rows once formatted (a reprocessed movie is a new record)."""

    @property
    def movie_name(self) -> str:
        return self.root + docs.MOVIE_EXTENSION


@dataclass
class SimulationSummary:
    """What :func:`simulate_session` wrote."""

    folder: Path
    """The folder given (movies and ``previous.settings``)."""
    output_folder: Path
    """Where Warp's outputs are (the folder itself, or W2's processing folder)."""
    truth_dir: Path
    models: list[str] = field(default_factory=list)
    """``<Model>`` names used, in order of first use."""
    micrographs: int = 0
    """Movies processed."""
    particles: int = 0
    """Particle images written (reprocessing counts the new ones too)."""
    good_particles: int = 0
    """Rows of the final ``goodparticles_<Model>.star`` of the last model."""
    stopped: bool = False
    """True when ``stop`` ended the session early."""
    vanished: list[str] = field(default_factory=list)
    """Roots of movies that failed a filter."""
    unselected: list[str] = field(default_factory=list)
    """Roots set to ``UnselectManual="True"`` during the session."""
    reprocessed: list[str] = field(default_factory=list)
    """Roots reprocessed with a different particle count."""

    @property
    def goodparticles(self) -> Path:
        """``goodparticles_<Model>.star`` of the last model."""
        return self.output_folder / f"goodparticles_{self.models[-1]}.star"


def movie_root(index: int) -> str:
    """An EPU-style movie root name, unique per index."""
    seconds = 9 * 3600 + 30 * index
    hh, mm, ss = seconds // 3600 % 24, seconds // 60 % 60, seconds % 60
    return (
        f"FoilHole_{3000000 + 17 * index}_Data_{4000000 + index}_{5000000 + index}"
        f"_20261126_{hh:02d}{mm:02d}{ss:02d}_fractions"
    )


def rng_for(seed: int, index: int, salt: int, revision: int = 0) -> np.random.Generator:
    """The random stream of one purpose (``salt``) for movie ``index`` (−1: session-wide)."""
    return np.random.default_rng(np.random.SeedSequence([seed, index + 1, salt, revision]))


def choose(rng: np.random.Generator, fraction: float, eligible: int) -> set[int]:
    """round(fraction × eligible) indices below ``eligible`` (at least one if fraction > 0)."""
    if fraction <= 0 or eligible <= 0:
        return set()
    count = min(eligible, max(1, round(fraction * eligible)))
    return {int(i) for i in rng.permutation(eligible)[:count]}
