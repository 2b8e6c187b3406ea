"""The cycle runner: one classification cycle = J refine2d program runs → merge2d → joined star.

A cycle (docs/architecture.md#a-cycle-step-by-step):

1. builds its input star from the dataset (:mod:`~live2d_tui.classify.inputs`);
2. a **seed** cycle runs one refine2d in random-start mode (K classes, ``/dev/null`` star);
   any other cycle splits the input rows into J contiguous, balanced (±1 row), non-empty slices,
   one per program run, passed to refine2d as the stack positions of their first and last rows,
   in dump mode;
3. runs the program runs through an executor (by default the local pool: at most ``pool_size``
   at once; or SLURM, :mod:`~live2d_tui.classify.executors.slurm`), all inside one
   ``asyncio.TaskGroup`` so no program run outlives its cycle; a failed program run is retried
   once inside its own task, so its siblings keep running;
4. runs ``merge2d`` on the dumps while it joins the per-run stars (each must hold exactly its
   slice of the input rows; CTF columns are restored from the input so phase shift stays in
   degrees) and writes the joined star to scratch: merge2d uses one core, so the join costs
   the cycle no wall time (a failed join stops merge2d); then it stamps
   the real pixel size into the class averages and moves ``cycle_<N>.mrc`` and
   ``cycle_<N>.star`` into the output folder atomically — only when everything succeeded.

The details live in :mod:`~live2d_tui.classify.attempt` (one attempt's program runs and scratch
names) and :mod:`~live2d_tui.classify.assemble` (blocking file work). Cancelling
:meth:`CycleRunner.run_cycle` aborts: every program run's process group is ended and reaped before
the cancellation propagates, scratch files are removed, and earlier cycles are untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from live2d_tui.classify.assemble import CycleFailed, CycleResult, split_rows
from live2d_tui.classify.attempt import AttemptContext, CycleAttempt
from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.executors import Executor
from live2d_tui.classify.executors.local import LocalExecutor
from live2d_tui.classify.executors.slurm import SlurmExecutor
from live2d_tui.classify.executors.slurm_jobs import end_slurm_orphans
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.procs import TERM_GRACE_SECONDS, ProcessRegistry, end_orphans
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import JobSettings
from live2d_tui.events import Event

__all__ = [
    "CycleFailed",
    "CycleInputs",
    "CycleResult",
    "CycleRunner",
    "split_rows",
]


def _ignore(_: object) -> None:
    return None


class CycleRunner:
    """Runs cycles of one output folder (see the module docstring)."""

    def __init__(
        self,
        output_folder: Path,
        programs: EnginePrograms,
        *,
        pool_size: int,
        jobs_per_cycle: int,
        niceness: int = 10,
        watchdog_seconds: float = 600.0,
        publish: Callable[[Event], None] = _ignore,
        log: Callable[[str], None] = _ignore,
        executor: Executor | None = None,
        grace_seconds: float = TERM_GRACE_SECONDS,
        merge2d_local: bool = False,
    ) -> None:
        """Create a runner.

        Args:
            output_folder: Session output folder (cycle files land here; program runs work in it).
            programs: The refine2d/merge2d pair.
            pool_size: Program runs at once (local executor slots).
            jobs_per_cycle: J, the refine2d program runs a cycle is split into (capped at the
                particle count).
            niceness: nice level of the program runs.
            watchdog_seconds: A program run whose CPU time stops growing this long is ended as hung.
            publish: Receives :class:`~live2d_tui.events.CycleProgress` events (on the loop).
            log: Receives session-log lines (summaries, failures), on the loop.
            executor: Runs the program runs; default a :class:`LocalExecutor` of ``pool_size``
                slots.
            grace_seconds: Wait between SIGTERM and SIGKILL when a program run is ended.
            merge2d_local: Run merge2d on the local pool even when ``executor`` is another one
                (e.g. refine2d on SLURM, merge2d here).
        """
        if pool_size < 1 or jobs_per_cycle < 1:
            raise ValueError("pool_size and jobs_per_cycle must be ≥ 1")
        self.output_folder = Path(output_folder).resolve()
        self.programs = programs
        self.jobs_per_cycle = jobs_per_cycle
        self.registry = ProcessRegistry(self.output_folder)
        local = LocalExecutor(
            pool_size,
            registry=self.registry,
            marker_folder=self.output_folder,
            niceness=niceness,
            watchdog_seconds=watchdog_seconds,
            grace_seconds=grace_seconds,
        )
        self.executor: Executor = executor or local
        self.merge_executor: Executor = local if merge2d_local else self.executor
        self.publish = publish
        self.log = log

    def attempt_context(self) -> AttemptContext:
        """What a cycle attempt uses of this runner."""
        return AttemptContext(
            output_folder=self.output_folder,
            programs=self.programs,
            jobs_per_cycle=self.jobs_per_cycle,
            executor=self.executor,
            publish=self.publish,
            log=self.log,
            merge_executor=self.merge_executor,
        )

    def end_orphans(self, log: Callable[[str], None]) -> int:
        """End the program runs a previous supervisor of this folder left behind: its SLURM jobs
        (when this runner uses SLURM or the folder records SLURM jobs) and its local processes,
        then remove the scratch files of interrupted attempts; return how many were ended.

        Blocking (waits until SLURM reports cancelled jobs ended): call it from a thread, and
        only while no cycle of this folder runs (at start-up, after an abort).
        """
        slurm = any(isinstance(e, SlurmExecutor) for e in (self.executor, self.merge_executor))
        cancelled = end_slurm_orphans(self.output_folder, log, configured=slurm)
        return cancelled + end_orphans(self.output_folder, log)

    async def run_cycle(
        self, plan: CyclePlan, inputs: CycleInputs, settings: JobSettings
    ) -> CycleResult:
        """Run one cycle; write ``cycle_<N>.mrc``/``.star`` only on success.

        Raises:
            CycleFailed: Inputs are unusable, a file cannot be written, or a program failed
                twice; the message says why (also logged, with the program's last lines).
            asyncio.CancelledError: The cycle was aborted (all program runs ended, scratch removed).
        """
        attempt = CycleAttempt(self.attempt_context(), plan, inputs, settings)
        try:
            return await attempt.run()
        except CycleFailed as exc:
            failure = exc
        except (OSError, ValueError) as exc:  # unreadable inputs, bad answers, a full disk...
            failure = CycleFailed(f"cycle {plan.number}: {exc}")
        finally:
            attempt.stop_publishing()
            attempt.remove_scratch()
        self.log(f"Cycle {plan.number} failed: {failure.message}")
        for line in failure.last_lines:
            self.log(f"    {line}")
        raise failure
