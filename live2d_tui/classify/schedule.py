"""Schedules: which cycles a classification job runs, at which resolution limit and fraction.

Pure functions of the job settings and the number of the last completed cycle; nothing here
touches files or the clock. The three macros are the original Live2D's
(docs/architecture.md#jobs-and-schedules), with its defects fixed
(docs/architecture.md#compared-with-the-original-live2d: decimal limits are kept,
``run_count_startup = 1`` gives the final limit instead of dividing by zero):

- **ab initio**: one random-seed cycle (K classes, single process), then S startup cycles whose
  high-resolution limit ramps linearly from ``high_res_initial`` to ``high_res_final`` (inclusive
  at both ends) using the fraction ``min(1, K × particles_per_class / N)``, then R refinement
  cycles at the final limit with every particle;
- **seeded**: the S startup cycles of the ramp with every particle, from the latest classes;
- **refine**: R cycles at the final limit with every particle, from the latest classes.
- **streaming**: not a macro of cycles but an open-ended job whose cycles are streaming updates,
  planned and run one at a time by :mod:`live2d_tui.classify.streaming` as particles arrive; its
  plan here holds no cycles, only the number its first update gets. With no classes yet it is
  ab initio, like every type.

Invariants: cycle numbers are consecutive and start right after ``last_cycle_number`` (at 0 when
there is none); a job with no previous cycle is always ab initio; the fraction is computed at
cycle start from the particles the cycle actually uses (:meth:`CyclePlan.fraction`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from live2d_tui.config import ClassificationType, ConfigError, JobSettings
from live2d_tui.events import BlockType

FractionRule = Literal["all", "per_class"]


@dataclass(frozen=True, slots=True)
class CyclePlan:
    """One planned cycle of a job."""

    number: int
    """The cycle's number: it writes ``cycle_<number>.mrc`` / ``.star``."""
    block_type: BlockType
    index_in_job: int
    """1-based position in the job (the seed counts)."""
    cycles_in_job: int
    high_res_limit: float
    """High-resolution limit in Å (full precision; decimals are valid)."""
    class_number: int
    """K for a random-seed cycle; 0 for a cycle that refines existing classes."""
    fraction_rule: FractionRule
    """``all``: every particle; ``per_class``: ``min(1, class_target / N)``."""
    class_target: int = 0
    """K × particles-per-class, used by the ``per_class`` rule."""
    index_in_block: int = 1
    """1-based position within its block (seed, startup or refinement)."""

    def fraction(self, particle_count: int) -> float:
        """The fraction of particles refine2d uses this cycle, given N at cycle start.

        Raises:
            ValueError: ``particle_count`` is not positive.
        """
        if particle_count < 1:
            raise ValueError(f"a cycle needs at least one particle (got {particle_count})")
        if self.fraction_rule == "all":
            return 1.0
        return min(1.0, self.class_target / particle_count)


@dataclass(frozen=True, slots=True)
class JobPlan:
    """The cycles of one job, in order."""

    kind: ClassificationType
    """The macro actually run (ab initio when forced or when there is no previous cycle)."""
    cycles: list[CyclePlan]
    """Empty for a streaming job (its updates are planned as particles arrive)."""
    first_number: int
    """Number of the job's first cycle (a streaming job's first update)."""


def startup_ramp(initial: float, final: float, count: int) -> list[float]:
    """High-resolution limits of ``count`` startup cycles, linear from ``initial`` to ``final``.

    ``hi(c) = initial − (initial − final)/(count − 1) · c`` for c = 0…count−1, both ends included;
    a single cycle runs at ``final`` (as the cisTEM GUI does for one round).

    Raises:
        ConfigError: ``count`` < 1 or a limit is not positive.
    """
    if count < 1:
        raise ConfigError(f"the startup ramp needs at least one cycle (got {count})")
    if not (initial > 0 and final > 0):
        raise ConfigError(f"resolution limits must be > 0 Å (got {initial}, {final})")
    if count == 1:
        return [float(final)]
    step = (initial - final) / (count - 1)
    ramp = [float(initial) - step * c for c in range(count)]
    ramp[-1] = float(final)  # exact end point, whatever the rounding of the steps
    return ramp


def plan_job(
    settings: JobSettings, *, last_cycle_number: int | None, force_abinit: bool = False
) -> JobPlan:
    """Plan a job's cycles from the settings and the number of the last completed cycle.

    Args:
        settings: The job settings (validated again here).
        last_cycle_number: Number of the newest completed cycle, or ``None`` when the session has
            none (the job is then ab initio whatever the settings say).
        force_abinit: Run ab initio even though classes exist (a new stack generation, a user's
            request).

    Raises:
        ConfigError: The settings are invalid; the message lists every problem.
    """
    settings.validate()
    if last_cycle_number is not None and last_cycle_number < 0:
        raise ConfigError(f"last_cycle_number must be ≥ 0 (got {last_cycle_number})")
    kind = settings.classification_type
    if last_cycle_number is None or force_abinit:
        kind = ClassificationType.ABINIT
    number = 0 if last_cycle_number is None else last_cycle_number + 1
    if kind is ClassificationType.STREAMING:
        return JobPlan(kind=kind, cycles=[], first_number=number)

    k = settings.class_number
    target = k * settings.particles_per_class
    startup = settings.run_count_startup
    refine = settings.run_count_refine
    specs: list[tuple[BlockType, float, int, FractionRule, int]] = []
    if kind is ClassificationType.ABINIT:
        specs.append((BlockType.RANDOM_SEED, float(settings.high_res_initial), k, "per_class", 1))
        ramp = startup_ramp(settings.high_res_initial, settings.high_res_final, startup)
        specs += [(BlockType.STARTUP, hi, 0, "per_class", i) for i, hi in enumerate(ramp, 1)]
    elif kind is ClassificationType.SEEDED:
        ramp = startup_ramp(settings.high_res_initial, settings.high_res_final, startup)
        specs += [(BlockType.STARTUP, hi, 0, "all", i) for i, hi in enumerate(ramp, 1)]
    final = float(settings.high_res_final)
    specs += [(BlockType.REFINEMENT, final, 0, "all", i) for i in range(1, refine + 1)]

    total = len(specs)
    cycles = [
        CyclePlan(
            number=number + i,
            block_type=block,
            index_in_job=i + 1,
            cycles_in_job=total,
            high_res_limit=hi,
            class_number=classes,
            fraction_rule=rule,
            class_target=target if rule == "per_class" else 0,
            index_in_block=in_block,
        )
        for i, (block, hi, classes, rule, in_block) in enumerate(specs)
    ]
    return JobPlan(kind=kind, cycles=cycles, first_number=number)
