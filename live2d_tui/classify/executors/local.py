"""The local executor: an asyncio subprocess pool on this machine, bounded by a semaphore.

Each program run is one single-threaded process (``OMP_NUM_THREADS=1`` and friends; refine2d's
threads answer is 1 too), started from an argv list (never a shell string) through ``nice -n
<level>`` so the UI and ingest stay responsive, as the leader of a new session
(``start_new_session=True``) so one signal reaches everything it spawned. stdin is a pipe (cisTEM's
scripted mode), stdout and stderr go to the program run's log file and to a callback for progress.

Invariants:
- at most ``slots`` program runs at once (an ``asyncio.Semaphore``; the runner's task group may
  hold more program runs than slots);
- every started process is reaped before :meth:`LocalExecutor.run` returns or re-raises: a
  cancelled run terminates its group (SIGTERM → bounded wait → SIGKILL) first;
- a running program run is in the process registry (:mod:`~live2d_tui.classify.procs`) and carries
  the output folder's marker in its environment, so a restarted supervisor can end it;
- the watchdog ends a program run whose CPU time (``/proc/<pid>/stat``) has not grown for
  ``watchdog_seconds``. Silence is not a hang: cisTEM block-buffers stdout on a pipe and merge2d
  prints nothing until it ends.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

from live2d_tui.classify.executors import RunOutcome, RunSpec, RunState
from live2d_tui.classify.procs import (
    MARKER_ENV,
    TERM_GRACE_SECONDS,
    ProcessRegistry,
    cpu_seconds,
    signal_group,
)

THREAD_ENV: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}
"""One thread per program run: the pool size is the parallelism."""

_READ_SIZE = 1 << 16


def _ignore_state(_: RunState) -> None:
    return None


class LocalExecutor:
    """Runs program runs as local subprocesses, at most ``slots`` at once."""

    def __init__(
        self,
        slots: int,
        *,
        registry: ProcessRegistry | None = None,
        marker_folder: Path | None = None,
        niceness: int = 10,
        watchdog_seconds: float = 600.0,
        grace_seconds: float = TERM_GRACE_SECONDS,
    ) -> None:
        """Create the pool.

        Args:
            slots: Program runs that may run at the same time (≥ 1).
            registry: Where running program runs are recorded for crash recovery.
            marker_folder: The output folder named in each program run's environment marker.
            niceness: nice level added to each program run (0 = none).
            watchdog_seconds: A program run whose CPU time does not grow for this long is ended.
            grace_seconds: Wait between SIGTERM and SIGKILL when ending a program run.
        """
        if slots < 1:
            raise ValueError(f"slots must be ≥ 1 (got {slots})")
        if watchdog_seconds <= 0:
            raise ValueError(f"watchdog_seconds must be > 0 (got {watchdog_seconds})")
        self._slots = slots
        self._semaphores: dict[int, asyncio.Semaphore] = {}
        self._registry = registry
        self._marker = str(Path(marker_folder).resolve()) if marker_folder else None
        self._niceness = niceness
        self._watchdog = watchdog_seconds
        self._grace = grace_seconds
        self._nice = shutil.which("nice") if niceness else None

    @property
    def slots(self) -> int:
        """How many program runs go on at the same time."""
        return self._slots

    @property
    def threads(self) -> int:
        """One thread per program run: the pool size is the parallelism."""
        return 1

    def _argv(self, spec: RunSpec) -> list[str]:
        if self._nice is not None:
            return [self._nice, "-n", str(self._niceness), *spec.argv]
        return list(spec.argv)

    def _env(self, spec: RunSpec) -> dict[str, str]:
        env = {**os.environ, **THREAD_ENV, **spec.env}
        if self._marker is not None:
            env[MARKER_ENV] = self._marker
        return env

    async def run(
        self,
        spec: RunSpec,
        on_output: Callable[[str], None],
        on_state: Callable[[RunState], None] | None = None,
    ) -> RunOutcome:
        """Run one program run when a slot is free (see :class:`.Executor`)."""
        notify = on_state or _ignore_state
        notify(RunState.QUEUED)
        async with self._semaphore():
            return await self._run(spec, on_output, notify)

    def _semaphore(self) -> asyncio.Semaphore:
        """The slots of the running event loop (a runner may outlive one ``asyncio.run``)."""
        loop = id(asyncio.get_running_loop())
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            self._semaphores = {loop: asyncio.Semaphore(self._slots)}
            semaphore = self._semaphores[loop]
        return semaphore

    async def _run(
        self, spec: RunSpec, on_output: Callable[[str], None], notify: Callable[[RunState], None]
    ) -> RunOutcome:
        # a local log file: opening it and appending chunks costs microseconds (page cache)
        log = open(spec.log_path, "wb")  # noqa: ASYNC230, SIM115
        try:
            if shutil.which(spec.argv[0]) is None:  # `nice` would hide this behind exit 127
                message = f"cannot start {spec.argv[0]}: not an executable program"
                log.write(f"{message}\n".encode())
                return RunOutcome(None, spec.log_path, start_error=message)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *self._argv(spec),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    cwd=spec.cwd,
                    env=self._env(spec),
                    start_new_session=True,
                )
            except OSError as exc:
                message = f"cannot start {spec.argv[0]}: {exc}"
                log.write(f"{message}\n".encode())
                return RunOutcome(None, spec.log_path, start_error=message)
            notify(RunState.RUNNING)
            try:
                if self._registry is not None:
                    self._registry.add(proc.pid, spec.name)
                if self._nice is None and self._niceness:
                    # no `nice` program: renice right after the start instead
                    with contextlib.suppress(OSError):
                        os.setpriority(os.PRIO_PROCESS, proc.pid, self._niceness)
                hung = await self._supervise(proc, spec, log, on_output)
            except BaseException:
                try:
                    await asyncio.shield(self._terminate(proc))
                finally:
                    if proc.returncode is None:
                        signal_group(proc.pid, signal.SIGKILL)
                raise
            finally:
                if self._registry is not None:
                    self._registry.remove(proc.pid)
            return RunOutcome(proc.returncode, spec.log_path, hung=hung)
        finally:
            log.close()

    async def _supervise(
        self,
        proc: asyncio.subprocess.Process,
        spec: RunSpec,
        log: object,
        on_output: Callable[[str], None],
    ) -> bool:
        """Feed stdin, stream output, watch CPU time; return whether the watchdog fired."""
        assert proc.stdin is not None and proc.stdout is not None
        write = log.write  # type: ignore[attr-defined]
        hung = False
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(spec.stdin_text.encode())
            await proc.stdin.drain()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.close()

        async def watchdog() -> None:
            nonlocal hung
            poll = min(5.0, self._watchdog / 5)
            last_cpu: float | None = None
            last_change = time.monotonic()
            while proc.returncode is None:
                await asyncio.sleep(poll)
                cpu = cpu_seconds(proc.pid)
                if cpu is None:
                    return
                now = time.monotonic()
                if cpu != last_cpu:
                    last_cpu, last_change = cpu, now
                elif now - last_change >= self._watchdog:
                    hung = True
                    write(
                        f"\n[live2d] no CPU time used for {self._watchdog:.0f} s: "
                        "treating the program run as hung and ending it\n".encode()
                    )
                    await self._terminate(proc)
                    return

        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        dog = asyncio.create_task(watchdog(), name=f"watchdog {spec.name}")
        try:
            while True:
                chunk = await proc.stdout.read(_READ_SIZE)
                if not chunk:
                    break
                write(chunk)
                text = decoder.decode(chunk)
                if text:
                    on_output(text)
            tail = decoder.decode(b"", final=True)
            if tail:
                on_output(tail)
            await proc.wait()
        finally:
            dog.cancel()
            await asyncio.wait([dog])  # never swallows a cancellation of this task
        return hung

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the program run's group, wait up to the grace time, SIGKILL, reap."""
        if proc.returncode is not None:
            return
        signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._grace)
            return
        except TimeoutError:
            pass
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
