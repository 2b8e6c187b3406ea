"""Orchestration overhead of one cycle: 32 refine2d jobs + merge2d of a program that exits at once.

The "program" is the strict fake cisTEM of the tests (stdlib only: it checks the answers, writes
its star rows and a tiny dump, prints the termination line and exits). The benchmark runs

1. one refinement cycle through :class:`CycleRunner` (input star, 32 jobs, merge2d, join,
   pixel-size stamping, counts, atomic install), timed end to end;
2. the very same 33 program runs (replayed answer lists, same slot count) through a bare asyncio
   subprocess pool, with no runner logic: the cost of the programs themselves;

and reports the difference of the minima as the orchestration overhead (goal: < 1 s), plus the
CPU time the runner's own process spent on the cycle (insensitive to other load).

Usage: ``.venv/bin/python benchmarks/bench_cycle.py [--particles 3200] [--jobs 32]
[--slots N] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live2d_tui.classify.runner import CycleRunner  # noqa: E402
from live2d_tui.classify.schedule import plan_job  # noqa: E402
from live2d_tui.config import JobSettings, available_cpus  # noqa: E402
from tests.classify.conftest import FAKE, fake_programs, make_dataset  # noqa: E402


async def replay(records: list[dict[str, object]], cwd: Path, slots: int) -> float:
    """Run the recorded programs with their answers through a bare semaphore pool."""
    semaphore = asyncio.Semaphore(slots)

    async def one(record: dict[str, object]) -> None:
        answers = record["answers"]
        assert isinstance(answers, list)
        async with semaphore:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(FAKE),
                str(record["program"]),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                cwd=cwd,
            )
            await proc.communicate("".join(f"{a}\n" for a in answers).encode())

    start = time.perf_counter()
    refines = [r for r in records if r["program"] == "refine2d"]
    merges = [r for r in records if r["program"] == "merge2d"]
    async with asyncio.TaskGroup() as group:
        for record in refines:
            group.create_task(one(record))
    for record in merges:
        await one(record)
    return time.perf_counter() - start


async def bench(particles: int, jobs: int, slots: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "session"
        dataset = make_dataset(folder, count=particles, box=16)
        state = Path(tmp) / "state"
        state.mkdir()
        os.environ["FAKE_STATE"] = str(state)
        settings = JobSettings(class_number=10, mask_radius=15.0, run_count_startup=2)
        plan = plan_job(settings, last_cycle_number=None)
        runner = CycleRunner(folder, fake_programs(), pool_size=slots, jobs_per_cycle=jobs)
        await runner.run_cycle(plan.cycles[0], dataset.inputs(), settings)  # the seed classes
        (state / "runs.jsonl").unlink()
        start, cpu_start = time.perf_counter(), time.process_time()
        result = await runner.run_cycle(plan.cycles[1], dataset.inputs(previous=0), settings)
        cycle, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        assert result.process_count == jobs and result.particle_count == particles
        records = [json.loads(line) for line in (state / "runs.jsonl").read_text().splitlines()]
        os.environ.pop("FAKE_STATE")
        programs = await replay(records, folder, slots)
        return cycle, programs, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=3200)
    parser.add_argument("--jobs", type=int, default=32)
    parser.add_argument("--slots", type=int, default=available_cpus())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cycles, programs, cpus = [], [], []
    for _ in range(args.repeat):
        cycle, program, cpu = asyncio.run(bench(args.particles, args.jobs, args.slots))
        cycles.append(cycle)
        programs.append(program)
        cpus.append(cpu)
    # the machine may be shared: the minimum of each series is the least disturbed estimate
    overhead = min(cycles) - min(programs)
    print(
        f"cycle of {args.jobs} jobs + merge2d, {args.particles} particles, {args.slots} slots, "
        f"{args.repeat} runs (min / median)"
    )
    print(f"  cycle through CycleRunner : {min(cycles):.3f} / {statistics.median(cycles):.3f} s")
    print(
        f"  same programs, bare pool  : {min(programs):.3f} / {statistics.median(programs):.3f} s"
    )
    print(f"  orchestration overhead    : {overhead:.3f} s wall (min − min; goal < 1 s)")
    print(f"  runner CPU time per cycle : {min(cpus):.3f} / {statistics.median(cpus):.3f} s")


if __name__ == "__main__":
    main()
