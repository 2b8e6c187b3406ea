"""Benchmark of the built-in engine on a simulated session of the reference run's shape.

Reference (issue 5): 5,890 particles, 96 px at 2.0 Å, 12 discrete views, SNR 0.05, defocus
0.8–2.5 µm, 160 Å phantom; ab initio with 20 classes, 10 startup cycles 40 → 8 Å + 3 refinement
cycles at 8 Å, two refine2d dump jobs + merge2d per cycle on 2 cores.

Pipeline: ``simulate_session`` → ``Dataset.poll`` (combined stack + cisTEM star, as the program
ingests) → ``CycleRunner`` with the built-in engine (pool 2, 2 jobs per cycle), cycle after
cycle as the supervisor runs them. Per cycle it records wall time, the children's CPU time
(``RUSAGE_CHILDREN``), particle-passes per CPU-second (particles processed / children CPU) and
pool utilisation (children CPU / (wall × cores)) and the runner's own CPU time
(``RUSAGE_SELF``: what the pool's cores spend on the runner rather than the jobs); at the end it
scores the classes against the simulator's truth with the simulator's scorer
(``live2d_tui.simulate.score.score_classes``: purity, ARI, views recovered, FRC 0.5 against the
true projections, half-set FRC 0.143).

Usage::

    .venv/bin/python benchmarks/bench_engine.py --work /tmp/bench_engine [--small]

``--small`` runs the quick shape of the tests (1,000 particles, 64 px at 3 Å, 4 views, SNR 0.1);
``--hard`` runs the harder reference session (19,920 particles, 128 px at 1.5 Å, continuous
orientations, SNR 0.05, 50 classes, 15 startup + 5 refinement cycles; cisTEM: 35 min, FRC0.5
median 8.35 Å, half-set FRC0.143 median 6.9 Å, 190 passes/CPU-s at 40 Å and 46 at 8 Å);
``--hard-jobs 2000`` times single 2,000-particle jobs at 40 Å and 8 Å on the harder reference's
geometry (128 px at 1.5 Å, continuous orientations, 50 classes).
Results are printed and written to ``<work>/engine_results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live2d_tui.classify.engines import builtin_programs
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import JobSettings
from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.simulate.score import original_names_from_relion_star, score_classes

FULL = {
    "micrographs": 95,
    "particles_per_micrograph": 62,
    "box": 96,
    "pixel_size": 2.0,
    "diameter": 160.0,
    "snr": 0.05,
    "views": 12,
    "defocus_min": 0.8,
    "defocus_max": 2.5,
}
SMALL = {
    "micrographs": 25,
    "particles_per_micrograph": 40,
    "box": 64,
    "pixel_size": 3.0,
    "diameter": 150.0,
    "snr": 0.1,
    "views": 4,
}

HARD = {
    "micrographs": 64,
    "particles_per_micrograph": 62,
    "box": 128,
    "pixel_size": 1.5,
    "diameter": 160.0,
    "snr": 0.05,
    "views": 0,
    "defocus_min": 0.8,
    "defocus_max": 2.5,
}
"""The harder reference's geometry (128 px at 1.5 Å, continuous orientations) with fewer
particles: ``--hard-jobs`` times single refine2d jobs on it, not a whole run."""

HARD_FULL = {**HARD, "micrographs": 240, "particles_per_micrograph": 83}
"""The harder reference session itself: 240 × 83 = 19,920 particles (``--hard``)."""


# ---------------------------------------------------------------- running


def prepare(work: Path, shape: dict[str, float], seed: int) -> Dataset:
    """Simulate the session (once) and ingest it into ``work/out``."""
    session = work / "session"
    if not (session / "truth").exists():
        opts = SimulationOptions(seed=seed, **shape)  # type: ignore[arg-type]
        simulate_session(session, opts)
    dataset = Dataset(session, work / "out", settle_seconds=0.0)
    dataset.poll_until_settled(30.0, interval=0.1)
    return dataset


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """CPU time of this process: the cycle runner's own work (star writes, joins, installs,
    reading the programs' output), which the pool's cores share with the jobs."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_cycles(
    dataset: Dataset, settings: JobSettings, pool: int, jobs: int, log: list[str]
) -> list[dict[str, float]]:
    runner = CycleRunner(
        dataset.output_folder,
        builtin_programs(),
        pool_size=pool,
        jobs_per_cycle=jobs,
        niceness=0,
        log=log.append,
    )
    plan = plan_job(settings, last_cycle_number=None)
    positions = dataset.active_positions()
    previous: int | None = None
    logged = 0
    out: list[dict[str, float]] = []
    folder = dataset.output_folder
    pixel = float(read_star(dataset.star_path)["pixel_size"][0])
    for cycle in plan.cycles:
        inputs = CycleInputs(
            stack_path=dataset.stack_path,
            nz=dataset.particle_count(),
            dataset_star=dataset.star_path,
            active_positions=positions,
            previous_star=None if previous is None else folder / f"cycle_{previous}.star",
            previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
            pixel_size=pixel,
        )
        cpu0, own0, wall0 = children_cpu(), own_cpu(), time.monotonic()
        result = await runner.run_cycle(cycle, inputs, settings)
        wall = time.monotonic() - wall0
        cpu = children_cpu() - cpu0
        own = own_cpu() - own0
        processed = len(positions) * (result.fraction_used if cycle.class_number == 0 else 0)
        row = {
            "cycle": cycle.number,
            "high_res": cycle.high_res_limit,
            "seed": cycle.class_number,
            "wall_s": wall,
            "children_cpu_s": cpu,
            "particles": len(positions),
            "fraction": result.fraction_used,
            "passes_per_cpu_s": processed / cpu if cpu > 0 and processed else 0.0,
            "pool_utilisation": cpu / (wall * pool) if wall > 0 else 0.0,
            "runner_cpu_s": own,
            "load_average_1min": os.getloadavg()[0],
        }
        out.append(row)
        print(
            f"cycle {cycle.number:2d}  hi {cycle.high_res_limit:6.2f} Å  wall {wall:6.1f} s  "
            f"cpu {cpu:6.1f} s  passes/cpu-s {row['passes_per_cpu_s']:7.1f}  "
            f"util {row['pool_utilisation']:.2f}  runner cpu {own:4.2f} s  "
            f"load {row['load_average_1min']:.1f}",
            flush=True,
        )
        for line in log[logged:]:
            if " done in " in line:  # the runner's split: refine2d jobs, merge2d, join
                print(f"          {line}", flush=True)
        logged = len(log)
        previous = cycle.number
    return out


def _refine_lines(
    first: int, last: int, high: float, classes_in: str, k: int, out_classes: str, dump: str
) -> list[str]:
    return [
        "combined_stack.mrcs", "combined_stack.star", classes_in, "/dev/null", out_classes,
        str(k), str(first), str(last), "1.0", str(HARD["pixel_size"]), "96", "300", str(high),
        "15", "49.5", "1.0", "2", "Yes", "Yes", "No", "No", "Yes",
        "No" if k else "Yes", dump, "1",
    ]  # fmt: skip


def hard_jobs(work: Path, seed: int, count: int) -> list[dict[str, float]]:
    """Time one refine2d job of ``count`` particles at 40 Å and at 8 Å on the hard geometry
    (K = 50 random-start references, mask 96 Å, step 15°, range 49.5 Å): CPU of the process."""
    import subprocess

    dataset = prepare(work, HARD, seed)
    folder = dataset.output_folder
    refs = str(work / "seed50.mrc")
    runs = [("seed", 0, 0, 40.0, "/dev/null", 50, refs)]
    runs += [(f"{h:g} A", 1, count, h, refs, 0, "/dev/null") for h in (40.0, 8.0)]
    out: list[dict[str, float]] = []
    for label, first, last, high, classes_in, k, out_classes in runs:
        lines = _refine_lines(first, last, high, classes_in, k, out_classes, str(work / "d.dat"))
        cpu0 = children_cpu()
        result = subprocess.run(
            [sys.executable, "-m", "live2d_tui.engine.refine2d"], input="\n".join(lines) + "\n",
            capture_output=True, text=True, cwd=folder, check=True,
        )  # fmt: skip
        assert "Refine2D: Normal termination" in result.stdout
        cpu = children_cpu() - cpu0
        row = {"job": label, "cpu_s": cpu, "passes_per_cpu_s": count / cpu if not k else 0.0}
        print(row, flush=True)
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_engine"))
    shapes = parser.add_mutually_exclusive_group()
    shapes.add_argument("--small", action="store_true")
    shapes.add_argument("--hard", action="store_true", help="the harder reference session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--startup", type=int, default=None, help="default 10 (--hard: 15)")
    parser.add_argument("--refine", type=int, default=None, help="default 3 (--hard: 5)")
    parser.add_argument("--classes", type=int, default=None)
    parser.add_argument(
        "--hard-jobs",
        type=int,
        default=0,
        metavar="N",
        help="only time single jobs of N particles on the hard geometry",
    )
    args = parser.parse_args()
    if args.hard_jobs:
        args.work.mkdir(parents=True, exist_ok=True)
        rows = hard_jobs(args.work, args.seed, args.hard_jobs)
        (args.work / "engine_hard_jobs.json").write_text(json.dumps(rows, indent=2))
        return 0
    shape = SMALL if args.small else HARD_FULL if args.hard else FULL
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    dataset = prepare(work, shape, args.seed)
    print(f"dataset: {dataset.particle_count()} particles ({time.monotonic() - t0:.1f} s)")
    classes = args.classes or (4 if args.small else 50 if args.hard else 20)
    settings = JobSettings(
        class_number=classes,
        run_count_startup=args.startup if args.startup is not None else 15 if args.hard else 10,
        run_count_refine=args.refine if args.refine is not None else 5 if args.hard else 3,
        high_res_initial=40.0,
        high_res_final=8.0 if not args.small else 9.0,
        mask_radius=0.6 * shape["diameter"],
        particles_per_class=300,
    )
    log: list[str] = []
    t1 = time.monotonic()
    rows = asyncio.run(run_cycles(dataset, settings, args.pool, args.jobs, log))
    total_wall = time.monotonic() - t1
    last = max(r["cycle"] for r in rows)
    folder = dataset.output_folder
    card = score_classes(
        folder / f"cycle_{last}.mrc",
        folder / f"cycle_{last}.star",
        dataset.stack_path,
        original_names_from_relion_star(dataset.relion_star_path),
        work / "session" / "truth",
        pixel_size=float(read_star(dataset.star_path)["pixel_size"][0]),
    )
    print(card.format())
    field_of_view = card.box * card.pixel_size
    limit_ring = round(field_of_view / settings.high_res_final)
    near_limit = [field_of_view / ring for ring in range(limit_ring - 2, limit_ring + 1)]
    scores = {
        "purity": card.purity,
        "ari": card.ari,
        "views_recovered": card.views_recovered,
        "median_frc05_A": card.median_frc05,
        "weighted_median_frc05_A": card.weighted_median_frc05,
        "median_half_frc0143_A": card.median_half_frc0143,
        "median_pose_frc05_A": card.median_pose_frc05,
        "median_angular_spread_deg": card.median_angular_spread,
        # the classes' mean FRC at the last rings inside the final limit (a class's FRC0.5
        # crossing moves in whole rings; this mean moves continuously, beside the median, which
        # it does not predict: see Scorecard.mean_frc_at)
        "mean_frc_near_limit": {f"{a:.2f}": round(card.mean_frc_at(a), 4) for a in near_limit},
        "classes": len(card.classes),
    }
    summary = {
        "shape": shape,
        "classes": classes,
        "total_wall_s": total_wall,
        "cycles": rows,
        "scores": scores,
        "cpu_count": os.cpu_count(),
    }
    (work / "engine_results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({"total_wall_s": round(total_wall, 1), **scores}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
