"""Schedules against hand-computed tables (docs/architecture.md#jobs-and-schedules)."""

from __future__ import annotations

import pytest

from live2d_tui.classify.schedule import plan_job, startup_ramp
from live2d_tui.config import ClassificationType, ConfigError, JobSettings
from live2d_tui.events import BlockType

SEED_RAMP = [
    40.00, 37.71, 35.43, 33.14, 30.86, 28.57, 26.29, 24.00,
    21.71, 19.43, 17.14, 14.86, 12.57, 10.29, 8.00,
]  # fmt: skip


def test_default_ramp_matches_the_seed_table() -> None:
    assert [round(v, 2) for v in startup_ramp(40, 8, 15)] == SEED_RAMP


def test_ramp_keeps_decimals_and_exact_end_points() -> None:
    ramp = startup_ramp(37.5, 7.5, 4)
    assert ramp == pytest.approx([37.5, 27.5, 17.5, 7.5])
    assert ramp[0] == 37.5 and ramp[-1] == 7.5


def test_single_startup_cycle_runs_at_the_final_limit() -> None:
    assert startup_ramp(40, 8, 1) == [8.0]


def test_ramp_rejects_nonsense() -> None:
    with pytest.raises(ConfigError):
        startup_ramp(40, 8, 0)
    with pytest.raises(ConfigError):
        startup_ramp(0, 8, 3)


def test_abinit_from_scratch_numbers_seed_startup_refinement() -> None:
    plan = plan_job(JobSettings(), last_cycle_number=None)
    assert plan.kind is ClassificationType.ABINIT
    numbers = [c.number for c in plan.cycles]
    assert numbers == list(range(21))
    seed = plan.cycles[0]
    assert seed.block_type is BlockType.RANDOM_SEED and seed.class_number == 50
    assert seed.high_res_limit == 40.0
    startup = plan.cycles[1:16]
    assert all(c.block_type is BlockType.STARTUP and c.class_number == 0 for c in startup)
    assert [round(c.high_res_limit, 2) for c in startup] == SEED_RAMP
    refine = plan.cycles[16:]
    assert [c.block_type for c in refine] == [BlockType.REFINEMENT] * 5
    assert all(c.high_res_limit == 8.0 for c in refine)
    assert [c.index_in_job for c in plan.cycles] == list(range(1, 22))
    assert {c.cycles_in_job for c in plan.cycles} == {21}
    assert [c.index_in_block for c in startup] == list(range(1, 16))


def test_abinit_fraction_per_class_then_all() -> None:
    plan = plan_job(JobSettings(), last_cycle_number=None)
    # K × ppc = 50 × 300 = 15 000
    assert plan.cycles[1].fraction(150_000) == pytest.approx(0.1)
    assert plan.cycles[1].fraction(10_000) == 1.0
    assert plan.cycles[0].fraction(30_000) == pytest.approx(0.5)
    assert plan.cycles[-1].fraction(150_000) == 1.0
    with pytest.raises(ValueError):
        plan.cycles[1].fraction(0)


def test_particles_per_class_setting_changes_the_fraction() -> None:
    settings = JobSettings(class_number=20, particles_per_class=1000)
    plan = plan_job(settings, last_cycle_number=None)
    assert plan.cycles[3].fraction(100_000) == pytest.approx(0.2)


def test_seeded_continues_numbering_with_all_particles() -> None:
    settings = JobSettings(classification_type=ClassificationType.SEEDED)
    plan = plan_job(settings, last_cycle_number=20)
    assert plan.kind is ClassificationType.SEEDED
    assert [c.number for c in plan.cycles] == list(range(21, 41))
    assert all(c.class_number == 0 for c in plan.cycles)
    assert all(c.fraction(10**6) == 1.0 for c in plan.cycles)
    assert [round(c.high_res_limit, 2) for c in plan.cycles[:15]] == SEED_RAMP
    assert all(c.block_type is BlockType.REFINEMENT for c in plan.cycles[15:])


def test_refine_runs_refinement_cycles_only() -> None:
    settings = JobSettings(classification_type=ClassificationType.REFINE, run_count_refine=3)
    plan = plan_job(settings, last_cycle_number=7)
    assert [(c.number, c.block_type, c.high_res_limit) for c in plan.cycles] == [
        (8, BlockType.REFINEMENT, 8.0),
        (9, BlockType.REFINEMENT, 8.0),
        (10, BlockType.REFINEMENT, 8.0),
    ]


def test_no_previous_cycle_or_forced_means_abinit() -> None:
    settings = JobSettings(classification_type=ClassificationType.REFINE)
    assert plan_job(settings, last_cycle_number=None).kind is ClassificationType.ABINIT
    forced = plan_job(settings, last_cycle_number=4, force_abinit=True)
    assert forced.kind is ClassificationType.ABINIT
    assert forced.cycles[0].number == 5
    assert forced.cycles[0].block_type is BlockType.RANDOM_SEED


def test_streaming_plans_no_cycles_only_its_first_number() -> None:
    settings = JobSettings(classification_type=ClassificationType.STREAMING)
    plan = plan_job(settings, last_cycle_number=7)
    assert plan.kind is ClassificationType.STREAMING
    assert plan.cycles == [] and plan.first_number == 8
    # with no classes yet, or a new generation, it is ab initio like every type
    assert plan_job(settings, last_cycle_number=None).kind is ClassificationType.ABINIT
    assert plan_job(settings, last_cycle_number=7, force_abinit=True).first_number == 8


def test_decimal_limits_and_one_startup_cycle() -> None:
    settings = JobSettings(
        high_res_initial=30.5, high_res_final=7.25, run_count_startup=1, run_count_refine=2
    )
    plan = plan_job(settings, last_cycle_number=None)
    assert [c.high_res_limit for c in plan.cycles] == [30.5, 7.25, 7.25, 7.25]
    assert [c.block_type for c in plan.cycles] == [
        BlockType.RANDOM_SEED,
        BlockType.STARTUP,
        BlockType.REFINEMENT,
        BlockType.REFINEMENT,
    ]


def test_zero_refinement_cycles_is_a_valid_abinit() -> None:
    plan = plan_job(JobSettings(run_count_refine=0, run_count_startup=3), last_cycle_number=None)
    assert [c.block_type for c in plan.cycles] == [BlockType.RANDOM_SEED] + [BlockType.STARTUP] * 3


def test_invalid_settings_give_clear_errors() -> None:
    # JobSettings validates in with_changes/from_dict; construct directly to reach plan_job
    bad = JobSettings(high_res_initial=8.0, high_res_final=40.0)
    with pytest.raises(ConfigError, match="high_res_final"):
        plan_job(bad, last_cycle_number=None)
    with pytest.raises(ConfigError, match="run_count_startup"):
        plan_job(JobSettings(run_count_startup=0), last_cycle_number=None)
    with pytest.raises(ConfigError, match="last_cycle_number"):
        plan_job(JobSettings(), last_cycle_number=-1)
