"""Benchmark of the built-in engine on a simulated session of the reference run's shape.

Reference (issue 5): 5,890 particles, 96 px at 2.0 Å, 12 discrete views, SNR 0.05, defocus
0.8–2.5 µm, 160 Å phantom; ab initio with 20 classes, 10 startup cycles 40 → 8 Å + 3 refinement
cycles at 8 Å, two refine2d dump jobs + merge2d per cycle on 2 cores.

Pipeline: ``simulate_session`` → ``Dataset.poll`` (combined stack + cisTEM star, as the program
ingests) → ``CycleRunner`` with the built-in engine (pool 2, 2 jobs per cycle), cycle after
cycle as the supervisor runs them. Per cycle it records wall time, the children's CPU time
(``RUSAGE_CHILDREN``), particle-passes per CPU-second (particles processed / children CPU) and
pool utilisation (children CPU / (wall × cores)); at the end it scores the classes against the
simulator's truth (purity, ARI, views recovered, FRC 0.5 against the true projections), with
the scorecard of ../shared/reference/simulation-and-scoring.md §7.2 implemented here: partition
measures on the classes with k > 0, and per class the FRC of the average against the clean true
projection of its majority view, aligned over in-plane rotations (5° then 0.5°) and sub-pixel
shifts inside a 0.45·N mask (resolution = first ring below 0.5).

Usage::

    .venv/bin/python benchmarks/bench_engine.py --work /tmp/bench_engine [--small]

``--small`` runs the quick shape of the tests (1,000 particles, 64 px at 3 Å, 4 views, SNR 0.1).
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
from typing import Any

import mrcfile
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.config import EngineKind, JobSettings
from live2d_tui.dataset.cistem_star import read_star
from live2d_tui.dataset.ingest import Dataset
from live2d_tui.engine import numerics as nm
from live2d_tui.imaging import fourier_shift
from live2d_tui.simulate import SimulationOptions, simulate_session

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


# ---------------------------------------------------------------- scoring (§7.2)


def _star_table(path: Path) -> tuple[list[str], list[list[str]]]:
    labels: list[str] = []
    rows: list[list[str]] = []
    in_loop = False
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("data_"):  # a later block (e.g. particles after optics) replaces it
            labels, rows, in_loop = [], [], False
            continue
        if not in_loop:
            in_loop = s.startswith("loop_")
            continue
        if s.startswith("_"):
            labels.append(s.split()[0][1:])
        elif s and not s.startswith("#"):
            rows.append(s.split())
    return labels, rows


def truth_labels(out_folder: Path, session: Path) -> npt.NDArray[np.int64]:
    """True view id of every stack position (index = position − 1)."""
    view_of: dict[str, int] = {}
    for star in (session / "truth" / "particles").glob("*.star"):
        labels, rows = _star_table(star)
        name, view = labels.index("rlnImageName"), labels.index("simViewId")
        for row in rows:
            view_of[row[name]] = int(row[view])
    labels, rows = _star_table(out_folder / "combined_stack_relion.star")
    image, original = labels.index("rlnImageName"), labels.index("rlnImageOriginalName")
    out = np.full(len(rows), -1, dtype=np.int64)
    for row in rows:
        position = int(row[image].split("@")[0])
        out[position - 1] = view_of[row[original]]
    return out


def adjusted_rand_index(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> float:
    """Hubert & Arabie's ARI of two labelings."""
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1))
    np.add.at(table, (ai, bi), 1)

    def comb(x: npt.NDArray[Any]) -> float:
        return float((x * (x - 1) / 2).sum())

    n = len(a)
    index = comb(table)
    expected = comb(table.sum(1)) * comb(table.sum(0)) / (n * (n - 1) / 2)
    maximum = 0.5 * (comb(table.sum(1)) + comb(table.sum(0)))
    return (index - expected) / (maximum - expected) if maximum != expected else 1.0


def frc(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Fourier ring correlation per integer ring (0 .. n//2)."""
    n = a.shape[0]
    fa, fb = np.fft.rfft2(a), np.fft.rfft2(b)
    rings = nm.ring_index(n).ravel()
    w = nm.half_weights(n).ravel()
    num = np.bincount(rings, (w * (fa * np.conj(fb)).real.ravel()))
    da = np.bincount(rings, (w * np.abs(fa).ravel() ** 2))
    db = np.bincount(rings, (w * np.abs(fb).ravel() ** 2))
    out: npt.NDArray[np.float64] = num / np.sqrt(np.maximum(da * db, 1e-30))
    return out[: n // 2 + 1]


def align(average: npt.NDArray[Any], reference: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The reference rotated/shifted to best match the average (max correlation): rotations in
    5° then 0.5° steps, shifts to sub-pixel precision (parabolic peak, exact Fourier shift)."""
    n = average.shape[0]
    fa = np.fft.rfft2(average)

    def best_at(angles: npt.NDArray[np.float64]) -> tuple[float, float, npt.NDArray[Any]]:
        top: tuple[float, float, npt.NDArray[Any]] = (-np.inf, 0.0, np.zeros((n, n)))
        for angle in angles:
            r = nm.rotate_image(reference, float(angle))
            cc = np.fft.irfft2(fa * np.conj(np.fft.rfft2(r)), s=(n, n))
            value = float(cc.max() / (np.linalg.norm(r) + 1e-30))
            if value > top[0]:
                top = (value, float(angle), cc)
        return top

    _, angle, _ = best_at(np.arange(0.0, 360.0, 5.0))
    _, angle, cc = best_at(angle + np.arange(-4.5, 4.75, 0.5))
    k = int(cc.argmax())
    dy, dx = divmod(k, n)

    def sub(left: float, centre: float, right: float) -> float:
        denom = left - 2 * centre + right
        return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5)) if denom < 0 else 0.0

    ox = sub(cc[dy, (dx - 1) % n], cc[dy, dx], cc[dy, (dx + 1) % n])
    oy = sub(cc[(dy - 1) % n, dx], cc[dy, dx], cc[(dy + 1) % n, dx])
    sx = (dx if dx <= n // 2 else dx - n) + ox
    sy = (dy if dy <= n // 2 else dy - n) + oy
    return fourier_shift(nm.rotate_image(reference, angle), sx, sy)


def score_run(
    classes_mrc: Path, cycle_star: Path, dataset: Any, session: Path, *, high_res: float
) -> dict[str, Any]:
    """Scorecard of the final cycle (see the module docstring)."""
    labels_all = truth_labels(dataset.output_folder, session)
    rows = read_star(cycle_star)
    assigned = rows["best_class"] > 0
    cls = rows["best_class"][assigned]
    truth = labels_all[rows["position"][assigned] - 1]
    purity_sum = 0
    views_found: set[int] = set()
    majority: dict[int, int] = {}
    for k in np.unique(cls):
        members = truth[cls == k]
        counts = np.bincount(members)
        purity_sum += int(counts.max())
        majority[int(k)] = int(counts.argmax())
        if counts.max() >= 0.5 * len(members):
            views_found.add(int(counts.argmax()))
    n_views = int(labels_all.max()) + 1
    with mrcfile.open(classes_mrc, permissive=True) as mrc:
        averages = np.asarray(mrc.data, dtype=np.float64)
    with mrcfile.open(session / "truth" / "references.mrcs", permissive=True) as mrc:
        references = np.asarray(mrc.data, dtype=np.float64)
    box = averages.shape[-1]
    pixel = float(rows["pixel_size"][0])
    mask = nm.soft_mask(box, 0.45 * box, 3.0)
    resolutions: dict[int, float] = {}
    for k, view in majority.items():
        average = averages[k - 1] * mask
        ref = align(average, references[view]) * mask
        curve = frc(average, ref)
        below = np.flatnonzero(curve[1:] < 0.5)
        ring = int(below[0]) + 1 if len(below) else box // 2 + 1
        resolutions[k] = box * pixel / max(ring - 1, 1) if ring > 1 else float("inf")
    values = np.array(list(resolutions.values()))
    return {
        "assigned": int(assigned.sum()),
        "classes_used": len(majority),
        "purity": purity_sum / max(len(cls), 1),
        "ari": adjusted_rand_index(cls, truth),
        "views_recovered": f"{len(views_found)}/{n_views}",
        "frc05_median_A": float(np.median(values)) if len(values) else None,
        "frc05_worst_A": float(values.max()) if len(values) else None,
        "frc05_classes_at_limit": int(np.sum(values <= high_res * 1.05)),
        "frc05_per_class_A": {str(k): round(v, 2) for k, v in sorted(resolutions.items())},
    }


# ---------------------------------------------------------------- running


def builtin_programs() -> EnginePrograms:
    """The built-in pair, run as ``python -m`` with this interpreter."""
    return EnginePrograms(
        EngineKind.BUILTIN,
        [sys.executable, "-m", "live2d_tui.engine.refine2d"],
        [sys.executable, "-m", "live2d_tui.engine.merge2d"],
    )


def prepare(work: Path, shape: dict[str, float], seed: int) -> Dataset:
    """Simulate the session (once) and ingest it into ``work/out``."""
    session = work / "session"
    if not (session / "truth").exists():
        opts = SimulationOptions(seed=seed, **shape)  # type: ignore[arg-type]
        simulate_session(session, opts)
    dataset = Dataset(session, work / "out", settle_seconds=0.0)
    last = -1
    for _ in range(50):  # poll until the count is stable (stable-file checks need two passes)
        dataset.poll()
        count = dataset.particle_count()
        if count > 0 and count == last:
            break
        last = count
        time.sleep(0.1)
    return dataset


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
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
        cpu0, wall0 = children_cpu(), time.monotonic()
        result = await runner.run_cycle(cycle, inputs, settings)
        wall = time.monotonic() - wall0
        cpu = children_cpu() - cpu0
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
        }
        out.append(row)
        print(
            f"cycle {cycle.number:2d}  hi {cycle.high_res_limit:6.2f} Å  wall {wall:6.1f} s  "
            f"cpu {cpu:6.1f} s  passes/cpu-s {row['passes_per_cpu_s']:7.1f}  "
            f"util {row['pool_utilisation']:.2f}",
            flush=True,
        )
        previous = cycle.number
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_engine"))
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--startup", type=int, default=10)
    parser.add_argument("--refine", type=int, default=3)
    parser.add_argument("--classes", type=int, default=None)
    args = parser.parse_args()
    shape = SMALL if args.small else FULL
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    dataset = prepare(work, shape, args.seed)
    print(f"dataset: {dataset.particle_count()} particles ({time.monotonic() - t0:.1f} s)")
    classes = args.classes or (4 if args.small else 20)
    settings = JobSettings(
        class_number=classes,
        run_count_startup=args.startup,
        run_count_refine=args.refine,
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
    scores = score_run(
        folder / f"cycle_{last}.mrc",
        folder / f"cycle_{last}.star",
        dataset,
        work / "session",
        high_res=settings.high_res_final,
    )
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
