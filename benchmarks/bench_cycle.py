"""Orchestration overhead of one cycle: 32 refine2d program runs + merge2d of programs that exit
at once.

The programs are two tiny POSIX shell scripts written by this benchmark (they exist only to
measure the runner): ``refine2d`` reads its 25 answers, copies the star rows of its range with
``awk``, writes a one-byte dump and prints the termination line; ``merge2d`` reads its 3 answers
and copies the seed classes. So the cycle's wall time is almost all orchestration: building and
writing the input star, validating 33 answer lists, spawning through ``nice``, logging, judging,
merging, joining and checking the stars, stamping and installing the results.

Reported (min and median of ``--repeat`` runs; the minimum is the least disturbed on a shared
machine): the cycle's wall time, the runner process's own CPU time, and the programs' CPU time
(children rusage), with the goal < 1 s of wall time at the default size.

Usage: ``.venv/bin/python benchmarks/bench_cycle.py [--particles 3200] [--jobs 32]
[--slots N] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live2d_tui.classify.engines import EnginePrograms  # noqa: E402
from live2d_tui.classify.runner import CycleRunner  # noqa: E402
from live2d_tui.classify.schedule import plan_job  # noqa: E402
from live2d_tui.config import EngineKind, JobSettings, available_cpus  # noqa: E402
from tests.classify.conftest import fake_programs, make_dataset  # noqa: E402

REFINE2D = r"""#!/bin/sh
i=0
while [ $i -lt 25 ]; do
    i=$((i + 1)); IFS= read -r answer; eval "a$i=\$answer"
done
awk -v first="$a7" -v last="$a8" '
    NF == 22 && $1 ~ /^[0-9]+$/ { if ($1 >= first && $1 <= last) print; next }
    { print }' "$a2" > "$a4"
printf x > "$a24"
echo "Refine2D: Normal termination"
"""

MERGE2D = r"""#!/bin/sh
IFS= read -r output; IFS= read -r seed; IFS= read -r count
cp cycle_0.mrc "$output"
echo "Merge2D: Normal termination"
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def bench(particles: int, jobs: int, slots: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        dataset = make_dataset(folder, count=particles, box=16)
        bindir = Path(tmp) / "bin"
        bindir.mkdir()
        for name, text in (("refine2d", REFINE2D), ("merge2d", MERGE2D)):
            (bindir / name).write_text(text)
            (bindir / name).chmod(0o755)
        instant = EnginePrograms(
            EngineKind.CISTEM, [str(bindir / "refine2d")], [str(bindir / "merge2d")]
        )
        settings = JobSettings(class_number=10, mask_radius=15.0, run_count_startup=2)
        plan = plan_job(settings, last_cycle_number=None)
        seeder = CycleRunner(folder, fake_programs(), pool_size=1, jobs_per_cycle=1)
        await seeder.run_cycle(plan.cycles[0], dataset.inputs(), settings)  # the seed classes
        runner = CycleRunner(folder, instant, pool_size=slots, jobs_per_cycle=jobs)
        children_start = children_cpu()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), settings)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        programs = children_cpu() - children_start
        assert result.process_count == jobs and result.particle_count == particles
        return wall, cpu, programs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=3200)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--slots", type=int, default=available_cpus())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    walls, cpus, programs = [], [], []
    for _ in range(args.repeat):
        wall, cpu, program = asyncio.run(bench(args.particles, args.jobs, args.slots))
        walls.append(wall)
        cpus.append(cpu)
        programs.append(program)

    def show(values: list[float]) -> str:
        return f"{min(values):.3f} / {statistics.median(values):.3f} s"

    print(
        f"cycle of {args.jobs} instant refine2d jobs + merge2d, {args.particles} particles, "
        f"{args.slots} slots, {args.repeat} runs (min / median)"
    )
    print(f"  cycle wall time (goal < 1 s) : {show(walls)}")
    print(f"  runner process CPU time      : {show(cpus)}")
    print(f"  programs' CPU time (33 runs) : {show(programs)}")


if __name__ == "__main__":
    main()
