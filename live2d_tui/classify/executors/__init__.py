"""Executors: where a cycle's jobs run. The runner only knows this interface.

An executor starts one program with an answer list on stdin, streams its output to a log file
(and to a callback, for progress), and returns how it ended. It bounds its own concurrency, so the
runner may hand it more jobs than slots. Cancelling :meth:`Executor.run` must stop the job and
reap it before the cancellation propagates: no job outlives its cycle.

Implemented: :class:`~live2d_tui.classify.executors.local.LocalExecutor` (a process pool on this
machine). A SLURM executor would implement the same method, and report each run's CPU time from
the cluster's accounting, so a cycle's speed leaves out the time its runs waited in the queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One program run."""

    name: str
    """Unique within the cycle, e.g. ``refine2d_3``; used in logs and the process registry."""
    argv: list[str]
    stdin_text: str
    """The answers, one per line, ``\\n``-terminated."""
    log_path: Path
    """Receives the program's stdout and stderr (the echoed banner and answers included)."""
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    """Added to the executor's base environment."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a run ended."""

    returncode: int | None
    """Exit status (negative: killed by that signal); ``None`` if it never started."""
    log_path: Path
    hung: bool = False
    """The watchdog ended it: its CPU time stopped growing."""
    start_error: str = ""
    """Why the program could not be started (e.g. not found)."""
    cpu_seconds: float | None = None
    """CPU time the program used (user + system), ``None`` when unknown. Only time spent
    computing counts: a run's wait for a slot, or for a cluster's queue, does not."""


class Executor(Protocol):
    """Runs jobs, at most its slot count at once."""

    @property
    def slots(self) -> int:
        """How many jobs run at the same time."""
        ...

    async def run(self, spec: JobSpec, on_output: Callable[[str], None]) -> JobOutcome:
        """Run one job to its end; ``on_output`` receives decoded output chunks as they arrive.

        Cancellation ends the job's process group (SIGTERM, bounded wait, SIGKILL), reaps it and
        re-raises.
        """
        ...


@runtime_checkable
class ReportsRunningCpu(Protocol):
    """An executor that can tell the CPU time its runs in progress have used so far (optional:
    it lets a running cycle that spins without progress be noticed before it ends)."""

    def running_cpu_seconds(self) -> float:
        """CPU seconds used so far by the runs that have not ended (0 when none runs)."""
        ...
