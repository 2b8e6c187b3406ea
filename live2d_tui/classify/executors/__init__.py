"""Executors: where a cycle's program runs execute. The runner only knows this interface.

An executor starts one program with an answer list on stdin, streams its output to a log file
(and to a callback, for progress), tells a second callback when the run is queued and when it
runs, and returns how it ended. It bounds its own concurrency, so the runner may hand it more
runs than slots. Cancelling :meth:`Executor.run` must stop the run and wait until it has ended
before the cancellation propagates: no program run outlives its cycle.

Implemented: :class:`~live2d_tui.classify.executors.local.LocalExecutor` (a process pool on this
machine) and :class:`~live2d_tui.classify.executors.slurm.SlurmExecutor` (one SLURM job per
program run; docs/slurm.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol


class RunState(StrEnum):
    """Where a program run is before it ends (its end is :meth:`Executor.run` returning)."""

    QUEUED = "queued"
    """Handed to the executor, not started: waiting for a slot, or pending in SLURM's queue."""
    RUNNING = "running"
    """The program runs (locally, or on a node)."""


@dataclass(frozen=True, slots=True)
class RunSpec:
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
    outputs: tuple[Path, ...] = ()
    """Files the run must leave. An executor whose programs run elsewhere returns only once
    they are visible here at the size they were written with (network filesystem lag)."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended."""

    returncode: int | None
    """Exit status (negative: killed by that signal); ``None`` if it never started."""
    log_path: Path
    hung: bool = False
    """The watchdog ended it: its CPU time stopped growing."""
    start_error: str = ""
    """Why the program could not be started (e.g. not found)."""
    failure: str = ""
    """Why the run failed when its exit status does not say: SLURM ended its job (SLURM's
    state and reason), or its outputs never became visible here."""


class Executor(Protocol):
    """Runs program runs, at most its slot count at once."""

    @property
    def slots(self) -> int:
        """How many program runs run (or are queued at the cluster) at the same time."""
        ...

    @property
    def threads(self) -> int:
        """Threads each program run may use (refine2d's threads answer)."""
        ...

    async def run(
        self,
        spec: RunSpec,
        on_output: Callable[[str], None],
        on_state: Callable[[RunState], None] | None = None,
    ) -> RunOutcome:
        """Run one program to its end; ``on_output`` receives decoded output chunks as they
        arrive, ``on_state`` each change to queued or running.

        Cancellation ends the run (locally: SIGTERM to its process group, bounded wait, SIGKILL,
        reap; SLURM: scancel, then wait until SLURM reports the job ended) and re-raises.
        """
        ...
