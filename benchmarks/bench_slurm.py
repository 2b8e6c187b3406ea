"""Per-cycle overhead of the SLURM executor against the local one, on the same small session.

One dataset, one seed cycle (local), then the same startup cycle run ``--repeat`` times with each
executor, alternating (local, slurm, local, slurm...) so both see the same machine. Every program
run is wrapped in a tiny shell script that stamps the wall-clock moment its program starts and
ends into its log, so the overheads are measured from the programs' own start and end:

- **submission → all running**: from the first refine2d run handed to the executor (for SLURM:
  just before its ``sbatch``) to the moment the last refine2d program of the cycle started;
- **last end → published**: from the moment the last refine2d program ended to
  ``run_cycle`` returning with the cycle's files installed (it includes merge2d and the join,
  identical work for both executors; merge2d runs locally, the SLURM executor's default);
- the cycle's whole wall time.

Needs a SLURM that answers (``.ci/slurm-up``); ``--jobs`` should not exceed the node's CPUs, or
"all running" measures the queue. ``--engine builtin`` (default) runs the built-in engine;
``instant`` the two shell stand-ins of ``bench_cycle.py``, which do no work.

Usage: ``flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_slurm.py [--jobs 2]
[--particles 400] [--repeat 5] [--poll 5] [--engine builtin|instant]``
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_cycle import MERGE2D, REFINE2D  # noqa: E402

from live2d_tui.classify.engines import EnginePrograms, resolve_engine  # noqa: E402
from live2d_tui.classify.executors import Executor, RunOutcome, RunSpec, RunState  # noqa: E402
from live2d_tui.classify.executors.local import LocalExecutor  # noqa: E402
from live2d_tui.classify.executors.slurm import SlurmExecutor  # noqa: E402
from live2d_tui.classify.executors.slurm_cli import SlurmSettings, slurm_answers  # noqa: E402
from live2d_tui.classify.runner import CycleRunner  # noqa: E402
from live2d_tui.classify.schedule import plan_job  # noqa: E402
from live2d_tui.config import EngineKind, JobSettings, ServerConfig  # noqa: E402
from tests.classify.conftest import fake_programs, make_dataset  # noqa: E402

STAMP = r"""#!/bin/sh
echo "LIVE2D_BENCH_START $(date +%s.%N)"
"$@"
rc=$?
echo "LIVE2D_BENCH_END $(date +%s.%N)"
exit $rc
"""
_STAMP = re.compile(r"LIVE2D_BENCH_(START|END) (\d+\.\d+)")


class FirstCall:
    """An executor that notes when the first refine2d run was handed to it."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.first: float | None = None

    @property
    def slots(self) -> int:
        return self.inner.slots

    @property
    def threads(self) -> int:
        return self.inner.threads

    async def run(
        self,
        spec: RunSpec,
        on_output: Callable[[str], None],
        on_state: Callable[[RunState], None] | None = None,
    ) -> RunOutcome:
        if self.first is None and "refine2d" in spec.name:
            self.first = time.time()
        return await self.inner.run(spec, on_output, on_state)


def stamped(programs: EnginePrograms, stamp: Path) -> EnginePrograms:
    return EnginePrograms(
        programs.kind, [str(stamp), *programs.refine2d], [str(stamp), *programs.merge2d]
    )


async def one_cycle(
    folder: Path, runner: CycleRunner, executor: FirstCall, dataset: object, settings: JobSettings
) -> tuple[float, float, float]:
    plan = plan_job(settings, last_cycle_number=None)
    cycle = plan.cycles[1]
    cycle_dir = folder / "cycles" / f"cycle_{cycle.number}"
    before = set(cycle_dir.glob("refine2d_*.log")) if cycle_dir.exists() else set()
    executor.first = None
    started = time.time()
    await runner.run_cycle(cycle, dataset.inputs(previous=0), settings)  # type: ignore[attr-defined]
    published = time.time()
    logs = [p for p in cycle_dir.glob("refine2d_*.log") if p not in before]
    starts: list[float] = []
    ends: list[float] = []
    for log in logs:
        for kind, value in _STAMP.findall(log.read_text(errors="replace")):
            (starts if kind == "START" else ends).append(float(value))
    assert executor.first is not None and len(starts) == len(logs) == len(ends)
    return max(starts) - executor.first, published - max(ends), published - started


async def bench(args: argparse.Namespace) -> dict[str, list[tuple[float, float, float]]]:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        base = Path(tmp)
        bindir = base / "bin"
        bindir.mkdir()
        for name, text in (("stamp", STAMP), ("refine2d", REFINE2D), ("merge2d", MERGE2D)):
            (bindir / name).write_text(text)
            (bindir / name).chmod(0o755)
        if args.engine == "instant":
            inner = EnginePrograms(
                EngineKind.CISTEM, [str(bindir / "refine2d")], [str(bindir / "merge2d")]
            )
        else:
            inner = resolve_engine(ServerConfig(engine=EngineKind.BUILTIN))
        programs = stamped(inner, bindir / "stamp")
        settings = JobSettings(
            class_number=5, mask_radius=30.0, run_count_startup=2, particles_per_class=40
        )
        results: dict[str, list[tuple[float, float, float]]] = {"local": [], "slurm": []}
        runners: dict[str, tuple[Path, CycleRunner, FirstCall, object]] = {}
        seed_plan = plan_job(settings, last_cycle_number=None)
        for kind in ("local", "slurm"):
            dataset = make_dataset(base / kind, count=args.particles, box=32)
            folder = dataset.folder
            # the instant stand-ins cannot make random classes: the fake cisTEM seeds them
            seeds = fake_programs() if args.engine == "instant" else programs
            seeder = CycleRunner(folder, seeds, pool_size=1, jobs_per_cycle=1)
            await seeder.run_cycle(seed_plan.cycles[0], dataset.inputs(), settings)
            if kind == "local":
                executor = FirstCall(LocalExecutor(args.jobs, niceness=0))
            else:
                slurm = SlurmSettings(poll_seconds=args.poll, max_jobs=args.jobs)
                executor = FirstCall(SlurmExecutor(slurm, folder))
            runner = CycleRunner(
                folder,
                programs,
                pool_size=args.jobs,
                jobs_per_cycle=args.jobs,
                niceness=0,
                executor=executor,
                merge2d_local=True,
            )
            runners[kind] = (folder, runner, executor, dataset)
        for _ in range(args.repeat):
            for kind in ("local", "slurm"):
                folder, runner, executor, dataset = runners[kind]
                results[kind].append(await one_cycle(folder, runner, executor, dataset, settings))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="refine2d runs per cycle")
    parser.add_argument("--particles", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--poll", type=float, default=5.0, help="slurm_poll_seconds")
    parser.add_argument("--engine", choices=("builtin", "instant"), default="builtin")
    parser.add_argument("--tmp", default=None, help="where the session goes (the nodes' view)")
    args = parser.parse_args()
    problem = slurm_answers()
    if problem:
        sys.exit(f"bench_slurm: no SLURM answers ({problem}); start one with .ci/slurm-up")
    results = asyncio.run(bench(args))

    def show(values: list[float]) -> str:
        return f"{min(values):6.2f} / {statistics.median(values):6.2f} s"

    print(
        f"cycle of {args.jobs} refine2d runs + merge2d (local), {args.engine} engine, "
        f"{args.particles} particles, slurm_poll_seconds {args.poll:g}, "
        f"{args.repeat} cycles each (min / median)"
    )
    print(f"{'':28}{'local':>17}{'slurm':>17}{'slurm − local (median)':>26}")
    for i, label in enumerate(("submission → all running", "last end → published", "cycle")):
        local = [r[i] for r in results["local"]]
        slurm = [r[i] for r in results["slurm"]]
        extra = statistics.median(slurm) - statistics.median(local)
        print(f"{label:28}{show(local):>17}{show(slurm):>17}{extra:>24.2f} s")


if __name__ == "__main__":
    main()
