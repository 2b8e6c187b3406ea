"""Benchmark of the per-class half-set estimate (``live2d_tui.results.quality``): its cost against
a cycle's, and its figures against the truth of a simulated session.

``cost``: on a finished run at 128 px (the harder reference session of ``bench_engine.py
--hard``), in one run of this script, on the same machine and load:

- the CPU time of the built-in refine2d refining ``--particles`` particles of the cycle against
  its classes at 8 Å and at 40 Å (refinement and early-startup cycles), per particle;
- the CPU time of the estimate of the cycle's classes, per particle it re-averaged;
- the CPU time of reading a cycle star, per row (the estimate reads the whole star);

and extrapolates both to 10^6 particles with K classes and the cap: a cycle costs N × (refine2d
per particle); the estimate costs K × min(cap, N/K) × (estimate per particle) + N × (star read per
row). Reported as the estimate's share of one cycle.

``churn``: the Jaccard overlap of every class's members (classes of ≥ 50 members) between
consecutive cycles of a run (``--cycle`` is the last), the figure the selection's carry-over
compares with ``CHANGED_OVERLAP`` (``live2d_tui.results.selection``).

``truth``: the estimate of every class of a cycle beside the scorer's resolution against the
true projections (FRC 0.5, ``live2d_tui.simulate.score``); reports per class and the median
ratio estimate/truth with its spread (quartiles, range).

Usage::

    flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_quality.py cost \\
        --run RUN --base BASE --cycle 20
    .venv/bin/python benchmarks/bench_quality.py truth --run RUN --base BASE --cycle 20 \\
        --truth SESSION/truth
    .venv/bin/python benchmarks/bench_quality.py churn --run RUN --base BASE --cycle 13

where RUN holds ``cycle_<N>.mrc/.star``, BASE the ``combined_stack.mrcs`` and
``combined_stack_relion.star`` they index. Results are printed and written as JSON to
``--json`` (default ``/tmp/bench_quality_<mode>.json``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live2d_tui.formats.cistem_star import empty_rows, read_star, write_star
from live2d_tui.formats.mrc import read_header
from live2d_tui.results.quality import DEFAULT_CAP, estimate_cycle

MILLION = 1_000_000


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def refine_cpu_per_particle(
    run: Path, base: Path, cycle: int, count: int, high: float, mask: float, work: Path
) -> float:
    """CPU seconds per particle of the built-in refine2d refining particles 1…count of the
    cycle's star against its classes (dump mode, as every non-seed cycle runs it)."""
    header = read_header(run / f"cycle_{cycle}.mrc")
    lines = [
        str(base / "combined_stack.mrcs"), str(run / f"cycle_{cycle}.star"),
        str(run / f"cycle_{cycle}.mrc"), "/dev/null", "/dev/null", "0", "1", str(count), "1.0",
        f"{header.pixel_size:g}", f"{mask:g}", "300", f"{high:g}", "15", "49.5", "1.0", "2",
        "Yes", "Yes", "No", "No", "Yes", "Yes", str(work / "dump.dat"), "1",
    ]  # fmt: skip
    cpu0 = children_cpu()
    result = subprocess.run(
        [sys.executable, "-m", "live2d_tui.engine.refine2d"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "Refine2D: Normal termination" in result.stdout, result.stdout[-2000:]
    return (children_cpu() - cpu0) / count


def star_read_per_row(rows: int, work: Path) -> float:
    """CPU seconds per row of reading a cisTEM star of ``rows`` rows."""
    star = empty_rows(rows)
    star["position"] = np.arange(1, rows + 1)
    path = work / "big.star"
    write_star(path, star)
    t0 = time.process_time()
    read_star(path)
    return (time.process_time() - t0) / rows


def cost(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.process_time()
        quality = estimate_cycle(
            args.cycle,
            args.run / f"cycle_{args.cycle}.star",
            args.run / f"cycle_{args.cycle}.mrc",
            args.base / "combined_stack.mrcs",
            mask_radius=args.mask,
        )
        estimate_cpu = time.process_time() - t0
        sampled = sum(c.sampled for c in quality.classes)
        star_rows = quality.particles
        per_row = star_read_per_row(200_000, work)
        per_estimate = (estimate_cpu - per_row * star_rows) / max(sampled, 1)
        refine = {
            f"{h:g}": refine_cpu_per_particle(
                args.run, args.base, args.cycle, args.particles, h, args.mask, work
            )
            for h in (8.0, 40.0)
        }
    k = len(quality.classes)
    estimate_million = k * min(DEFAULT_CAP, MILLION // k) * per_estimate + MILLION * per_row
    out: dict[str, object] = {
        "box": quality.box,
        "classes": k,
        "cycle_particles": star_rows,
        "estimate_cpu_s": estimate_cpu,
        "estimate_sampled": sampled,
        "estimate_cpu_per_particle_ms": per_estimate * 1e3,
        "star_read_cpu_per_row_us": per_row * 1e6,
        "refine2d_cpu_per_particle_ms": {h: v * 1e3 for h, v in refine.items()},
        "cap": DEFAULT_CAP,
        "estimate_cpu_at_1e6_s": estimate_million,
        "cycle_cpu_at_1e6_s": {h: v * MILLION for h, v in refine.items()},
        "share_of_a_cycle_at_1e6": {h: estimate_million / (v * MILLION) for h, v in refine.items()},
    }
    print(json.dumps(out, indent=2))
    return out


def truth(args: argparse.Namespace) -> dict[str, object]:
    from live2d_tui.simulate.score import original_names_from_relion_star, score_classes

    quality = estimate_cycle(
        args.cycle,
        args.run / f"cycle_{args.cycle}.star",
        args.run / f"cycle_{args.cycle}.mrc",
        args.base / "combined_stack.mrcs",
        mask_radius=args.mask,
    )
    card = score_classes(
        args.run / f"cycle_{args.cycle}.mrc",
        args.run / f"cycle_{args.cycle}.star",
        args.base / "combined_stack.mrcs",
        original_names_from_relion_star(args.base / "combined_stack_relion.star"),
        args.truth,
        pixel_size=quality.pixel_size,
    )
    scored = {c.class_number: c for c in card.classes}
    rows = []
    print(" class  members  estimate  truth FRC0.5  ratio  scorer half-set")
    for c in quality.classes:
        s = scored.get(c.class_number)
        if s is None:
            continue
        ratio = None if c.resolution is None else c.resolution / s.frc05
        rows.append(
            {
                "class": c.class_number,
                "members": c.members,
                "estimate": c.resolution,
                "reason": c.reason,
                "truth_frc05": s.frc05,
                "scorer_half_frc0143": s.half_frc0143,
                "ratio": ratio,
            }
        )
        shown = "-" if c.resolution is None else f"{c.resolution:.2f}"
        print(
            f"{c.class_number:6d} {c.members:8d} {shown:>9} {s.frc05:13.2f} "
            f"{'-' if ratio is None else f'{ratio:.2f}':>6} {s.half_frc0143 or 0:16.2f}"
        )
    ratios = np.array([r["ratio"] for r in rows if r["ratio"] is not None], dtype=float)
    summary = {
        "classes_scored": len(rows),
        "with_figure": len(ratios),
        "median_ratio": float(np.median(ratios)) if len(ratios) else None,
        "quartiles": [float(np.percentile(ratios, q)) for q in (25, 75)] if len(ratios) else None,
        "range": [float(ratios.min()), float(ratios.max())] if len(ratios) else None,
        "correlation": _correlation(rows),
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    return {"classes": rows, "summary": summary}


def churn(args: argparse.Namespace) -> dict[str, object]:
    from live2d_tui.results.selection import CHANGED_OVERLAP, class_overlap, membership

    found = sorted(
        int(p.stem.split("_")[1]) for p in args.run.glob("cycle_*.star") if p.stem[6:].isdigit()
    )
    cycles = [n for n in found if n <= args.cycle]
    members = {n: membership(args.run / f"cycle_{n}.star") for n in cycles}
    rows = []
    for a, b in itertools.pairwise(cycles):
        k = int(max(members[a][1].max(), members[b][1].max()))
        big = [c for c in range(1, k + 1) if int((members[a][1] == c).sum()) >= 50]
        overlaps = np.array([class_overlap(members[a], members[b], c) for c in big])
        if overlaps.size == 0:
            continue
        row = {
            "from": a,
            "to": b,
            "classes": len(big),
            "min": float(overlaps.min()),
            "median": float(np.median(overlaps)),
            "below_threshold": int((overlaps < CHANGED_OVERLAP).sum()),
        }
        rows.append(row)
        print(
            f"{a:3d} -> {b:3d}: {len(big):3d} classes, overlap min {row['min']:.2f}, median "
            f"{row['median']:.2f}, below {CHANGED_OVERLAP}: {row['below_threshold']}"
        )
    return {"threshold": CHANGED_OVERLAP, "pairs": rows}


def _correlation(rows: list[dict[str, object]]) -> float | None:
    """Pearson correlation of the estimate and the truth over the classes with a figure."""
    pairs = [(r["estimate"], r["truth_frc05"]) for r in rows if r["estimate"] is not None]
    if len(pairs) < 3:
        return None
    a, b = np.array(pairs, dtype=float).T
    return float(np.corrcoef(a, b)[0, 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("cost", "truth", "churn"))
    parser.add_argument("--run", type=Path, required=True, help="folder of cycle_<N>.mrc/.star")
    parser.add_argument("--base", type=Path, required=True, help="folder of the combined stack")
    parser.add_argument("--cycle", type=int, required=True)
    parser.add_argument("--truth", type=Path, default=None, help="the session's truth/ folder")
    parser.add_argument("--mask", type=float, default=96.0, help="mask radius, Å (96)")
    parser.add_argument("--particles", type=int, default=2000, help="refine2d job size (2000)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "truth" and args.truth is None:
        parser.error("truth needs --truth")
    modes = {"cost": cost, "truth": truth, "churn": churn}
    result = modes[args.mode](args)
    target = args.json or Path(f"/tmp/bench_quality_{args.mode}.json")
    target.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
