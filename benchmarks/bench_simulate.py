"""Particles per second written by the simulator (Warp 1 layout, float32 stacks).

Runs :func:`simulate_session` end to end (phantom projection, CTF, noise, normalisation, stacks,
per-movie XML and picks, the all/goodparticles rewrite after every movie, truth files) into a
temporary folder and reports particles per second of wall time. The all/goodparticles rewrite
after each movie grows with the session (Warp's own behaviour), so the figure is for the given
session size. CPU seconds of the process are reported too: on a busy machine wall time mostly
measures the neighbours, and multi-threaded OpenBLAS degrades badly when the cores are
oversubscribed, so for a stable figure run it with ``OPENBLAS_NUM_THREADS=1``.

Usage: ``OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_simulate.py [--box 128]
[--pixel-size 1.5] [--micrographs 20] [--particles-per-micrograph 100] [--repeat 3] [--warp2]
[--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live2d_tui.simulate import SimulationOptions, simulate_session  # noqa: E402


def run_once(opts: SimulationOptions) -> tuple[int, float, float]:
    """(particles written, wall seconds, CPU seconds) of one simulated session in a fresh
    temporary folder."""
    with tempfile.TemporaryDirectory(prefix="bench_simulate_") as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        summary = simulate_session(Path(tmp) / "session", opts)
        return summary.particles, time.perf_counter() - start, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--box", type=int, default=128)
    parser.add_argument("--pixel-size", type=float, default=1.5)
    parser.add_argument("--diameter", type=float, default=170.0)
    parser.add_argument("--micrographs", type=int, default=20)
    parser.add_argument("--particles-per-micrograph", type=int, default=100)
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warp2", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    opts = SimulationOptions(
        micrographs=args.micrographs,
        particles_per_micrograph=args.particles_per_micrograph,
        box=args.box,
        pixel_size=args.pixel_size,
        diameter=args.diameter,
        snr=0.05,
        views=args.views,
        seed=1,
        warp2=args.warp2,
    )
    runs = [run_once(opts) for _ in range(args.repeat)]
    particles = runs[0][0]
    rates = [n / seconds for n, seconds, _ in runs]
    cpu_rates = [n / cpu for n, _, cpu in runs]
    result = {
        "box": args.box,
        "pixel_size": args.pixel_size,
        "micrographs": args.micrographs,
        "particles": particles,
        "seconds": [round(s, 3) for _, s, _ in runs],
        "cpu_seconds": [round(c, 3) for _, _, c in runs],
        "particles_per_cpu_second_median": round(statistics.median(cpu_rates), 1),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "particles_per_second_median": round(statistics.median(rates), 1),
        "particles_per_second_best": round(max(rates), 1),
        "warp2": args.warp2,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{particles} particles at {args.box} px ({args.micrographs} micrographs, "
            f"{'Warp 2' if args.warp2 else 'Warp 1'}): median "
            f"{result['particles_per_second_median']:.0f} particles/s, best "
            f"{result['particles_per_second_best']:.0f} particles/s; median "
            f"{result['particles_per_cpu_second_median']:.0f} particles per CPU-second "
            f"(runs: {', '.join(f'{s:.2f} s' for _, s, _ in runs)}; load "
            f"{result['load_average_1min']}, OPENBLAS_NUM_THREADS="
            f"{result['openblas_threads']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
