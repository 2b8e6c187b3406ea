"""The options of one simulated Warp session, as one frozen, validated dataclass.

Every quantity a scenario depends on is here, so a scenario is fully described by its options
(and reproducible from them: the same options give byte-identical files, apart from the hazards
whose effect is inherently timed in live mode). Hazards are off by default; each one is a single
field, mirrored by one ``live2d simulate`` switch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Self

DEFAULT_MODEL = "BoxNet2Mask_20180918"
"""BoxNet model name Warp ships; W1 names files with it (a folder, so no extension)."""

CHANGED_MODEL = "BoxNet2_20180602"
"""Model used after a mid-session model change."""


@dataclass(frozen=True, kw_only=True)
class SimulationOptions:
    """Everything that defines a simulated session.

    Sizes are those of the exported particle stacks (binned pixels); the unbinned pixel size
    written to ``previous.settings`` is ``pixel_size / 2**bin_times``.
    """

    micrographs: int = 5
    """Number of movies (micrographs) processed."""
    particles_per_micrograph: int = 40
    """Mean particles picked per micrograph (each micrograph draws ±25 % around it)."""
    box: int = 64
    """Extraction box in binned pixels (``Picking/BoxSize``)."""
    pixel_size: float = 3.0
    """Binned pixel size of the stacks, Å."""
    bin_times: float = 0.0
    """``Import/BinTimes`` (binning exponent)."""
    diameter: float = 150.0
    """``Picking/Diameter`` in Å: normalisation radius is diameter/2; the phantom spans about
    this much."""
    snr: float = 0.1
    """var(CTF-modulated clean image over the whole box) / σ²(noise)."""
    views: int = 4
    """K discrete true views (Fibonacci directions, ±``view_jitter`` degrees); 0 = uniformly
    random orientations (view id −1)."""
    view_jitter: float = 2.0
    """Uniform jitter of rot and tilt around each discrete view, degrees."""
    max_shift: float = 2.0
    """Largest |origin| of a particle, pixels (uniform in the disc)."""
    bfactor: float = 0.0
    """B-factor envelope applied to every image (and to the reference projections), Å²."""
    seed: int = 0
    """Seed of every random draw of the session."""
    phantom_seed: int = 0
    """Seed of the phantom's layout (the 'protein'); independent of ``seed``."""
    rate: float = 0.0
    """Live mode: seconds between movies (0 = write everything at once)."""
    voltage: float = 300.0
    """Acceleration voltage, kV."""
    cs: float = 2.7
    """Spherical aberration, mm."""
    amplitude_contrast: float = 0.07
    """Amplitude contrast fraction."""
    defocus_min: float = 0.8
    """Smallest micrograph defocus, µm."""
    defocus_max: float = 2.5
    """Largest micrograph defocus, µm."""
    model: str = DEFAULT_MODEL
    """BoxNet model name (``Picking/ModelPath``); W2 strips an extension from it."""
    warp2: bool = False
    """Write Warp 2's variant: UTF-8 settings/XML, float16 (mode 12) stacks."""
    processing_folder: str | None = None
    """Warp 2 only: a subfolder (relative to OUT) that receives every output but the settings."""

    # --- hazards (all off by default) -------------------------------------------------------
    vanishing: float = 0.0
    """Fraction of micrographs that fail Warp's filters (CTF resolution worse than
    ``Filter/ResolutionMax``): they appear in goodparticles once and vanish at the next rewrite."""
    unselect_later: float = 0.0
    """Fraction of micrographs whose XML gets ``UnselectManual="True"`` two movies later."""
    reprocess: float = 0.0
    """Fraction of micrographs reprocessed two movies later with a different particle count."""
    late_stacks: bool = False
    """Write half of each stack, rewrite the stars naming it, then finish the stack."""
    star_gap: float = 0.0
    """Seconds the goodparticles/allparticles files stay missing between delete and move (Warp's
    replacement always has this window; this widens it)."""
    torn_star: bool = False
    """Before each goodparticles rewrite, publish a version cut in the middle of a row."""
    torn_settings: bool = False
    """Rewrite ``previous.settings`` every movie, non-atomically, first with a truncated body."""
    change_box_at: int | None = None
    """From this micrograph index (0-based) on, the box grows by a quarter (even size)."""
    change_model_at: int | None = None
    """From this micrograph index on, the BoxNet model is :data:`CHANGED_MODEL`."""
    change_binning_at: int | None = None
    """From this micrograph index on, ``BinTimes`` grows by 1 (pixel size doubles)."""
    invert: bool = True
    """``Picking/Invert``; False writes protein-black stacks."""
    phase_plate: bool = False
    """Volta phase plate data: phase shifts of 30–110° (``rlnPhaseShift`` in degrees)."""
    rejected_from: int | None = None
    """From this micrograph index (0-based) on, every micrograph fails Warp's CTF filter (a
    stretch of thick ice): it is in goodparticles once, like a ``vanishing`` one, and then
    never again."""
    rejected_until: int | None = None
    """The first micrograph index after the rejected stretch (``None``: to the end)."""

    # --- the clock -------------------------------------------------------------------------
    start_time: float | None = None
    """Stamp each movie's files (XML, stack, picks) with the time Warp would have processed it:
    ``start_time + index × movie_seconds`` (seconds since the epoch), so a session written at
    once has a realistic, reproducible timeline. ``None``: the files keep the time they were
    written at."""
    movie_seconds: float = 60.0
    """Seconds between two movies on that stamped timeline."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.micrographs < 0:
            problems.append("micrographs must be ≥ 0")
        if self.particles_per_micrograph < 1:
            problems.append("particles_per_micrograph must be ≥ 1")
        if self.box < 16 or self.box % 2:
            problems.append("box must be an even number ≥ 16")
        if self.pixel_size <= 0:
            problems.append("pixel_size must be > 0")
        if self.diameter <= 0 or self.diameter / self.pixel_size >= self.box:
            problems.append("diameter must be > 0 and smaller than the box (in Å)")
        if self.snr <= 0:
            problems.append("snr must be > 0")
        if self.seed < 0 or self.phantom_seed < 0:
            problems.append("seed and phantom_seed must be ≥ 0")
        if self.views < 0:
            problems.append("views must be ≥ 0")
        if self.rate < 0 or self.star_gap < 0:
            problems.append("rate and star_gap must be ≥ 0")
        if not 0 < self.defocus_min <= self.defocus_max:
            problems.append("need 0 < defocus_min ≤ defocus_max")
        for name in ("vanishing", "unselect_later", "reprocess"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be a fraction in [0, 1]")
        if self.rejected_from is not None and self.rejected_from < 0:
            problems.append("rejected_from must be ≥ 0")
        if self.rejected_until is not None and self.rejected_from is None:
            problems.append("rejected_until needs rejected_from")
        if (
            self.rejected_until is not None
            and self.rejected_from is not None
            and self.rejected_until <= self.rejected_from
        ):
            problems.append("rejected_until must be after rejected_from")
        if not self.movie_seconds > 0:
            problems.append("movie_seconds must be > 0")
        if self.processing_folder is not None and not self.warp2:
            problems.append("processing_folder needs warp2 (Warp 1 writes next to the movies)")
        if not self.model or "/" in self.model or "\\" in self.model:
            problems.append("model must be a plain name")
        if problems:
            raise ValueError("; ".join(problems))

    def with_changes(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (for the truth folder's record of the scenario)."""
        return dataclasses.asdict(self)
