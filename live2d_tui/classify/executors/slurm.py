"""The SLURM executor: one SLURM job per program run, tracked by polling ``squeue``.

A program run becomes a batch job (:mod:`.slurm_script`) submitted with ``sbatch`` (script on
stdin, the run's log as the job's output, ``--no-requeue``, the ``slurm_*`` settings). At most
``slurm_max_jobs`` of this executor's jobs are in SLURM at once (pending or running); further
runs wait here, counted as queued.

**Polling, not a waiting process per job.** One poller task per event loop asks
``squeue -h -t all -j ID,...`` about every job in flight in *one* call every
``slurm_poll_seconds`` (5 s), whatever the number of jobs: 64 runs cost slurmctld one RPC per
interval, where ``sbatch --wait`` would be 64 processes each polling every 2 s. It also gives the
reason with the state (``TIMEOUT``/``TimeLimit``), which ``sbatch --wait``'s exit status does not
(it returns 0 for a cancelled job), and it survives nothing it need not: a restarted supervisor
finds the jobs by name and comment (:mod:`.slurm_jobs`). Latency stays low where it matters:

- the job's first log line (``[live2d] SLURM job N started``) marks it running as soon as the
  log is read (every 0.5 s), before the next poll;
- the script's ``[live2d] program ended`` line, and any cancellation, switch the poller to
  0.25 s until SLURM reports the job ended.

Forgotten jobs (after ``MinJobAge``) are looked up with ``sacct`` (accounting, else the
``--completion`` log); a job neither knows counts as failed.

**Ending.** A job is done when SLURM reports an ended state. Then the executor reads the end
record the script left (exit status, watchdog, output sizes on the node), waits until each
output is visible here at that size (``slurm_file_wait_seconds``; network filesystems show a
node's files late, and merge2d run here does not wait), and returns. A job SLURM ended itself
(time limit, node failure, out of memory, an administrator's scancel) is reported with SLURM's
state and reason in :attr:`RunOutcome.failure`; the cycle attempt logs it and retries once.
A job pending with a reason it can never outgrow (``PartitionConfig``...) is cancelled and
fails at once.

**Cancelling** a run (abort, quit) scancels its job — one ``scancel`` for every job cancelled in
the same instant — and waits until SLURM reports it ended (at most
:data:`~.slurm_jobs.CANCEL_WAIT_SECONDS`; a job that outlasts that stays in the registry and is
cancelled again at the next start). A submission in flight when the cancellation arrives is
finished first, so its id is known and its job cancelled too.

The hang watchdog runs inside the job script, next to the program: a pending job is never
treated as hung.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live2d_tui.classify.executors import RunOutcome, RunSpec, RunState
from live2d_tui.classify.executors.slurm_cli import (
    ACCOUNTING_DISABLED,
    JobStatus,
    SlurmError,
    SlurmSettings,
    never_starts,
    parse_sacct,
    parse_sbatch,
    parse_squeue_states,
    run_async,
    sacct_argv,
    sbatch_argv,
    scancel_argv,
    squeue_states_argv,
)
from live2d_tui.classify.executors.slurm_jobs import (
    CANCEL_WAIT_SECONDS,
    SlurmRegistry,
    job_comment,
    job_name,
)
from live2d_tui.classify.executors.slurm_script import (
    ENDED_PREFIX,
    HUNG_SUFFIX,
    STARTED_PREFIX,
    EndRecord,
    ScriptSpec,
    end_path,
    parse_end,
    render,
)
from live2d_tui.classify.procs import MARKER_ENV

TAIL_SECONDS = 0.5
"""How often each job's log is read (progress, and the start and end lines)."""
FAST_POLL_SECONDS = 0.25
"""The poll interval while a job is ending or being cancelled."""
FORGOTTEN = "FORGOTTEN"
"""The state of a job neither squeue nor sacct knows any more."""
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def _ignore(_: object) -> None:
    return None


# --------------------------------------------------------------------------- the poller


@dataclass(eq=False)
class _Watch:
    """One job in flight."""

    job_id: int
    notify: Callable[[RunState], None]
    end: asyncio.Future[JobStatus]
    running: bool = False
    hurry: bool = False
    """Its program ended (or it is being cancelled): poll fast."""
    cancel: bool = False
    """scancel it at the next poll."""
    cancel_sent: bool = False
    never_reason: str = ""
    """The pending reason it could never outgrow (it was cancelled for it)."""
    last: JobStatus | None = None

    def mark_running(self) -> None:
        if not self.running:
            self.running = True
            self.notify(RunState.RUNNING)

    def update(self, status: JobStatus) -> None:
        self.last = status
        if status.ended or status.state == FORGOTTEN:
            if not self.end.done():
                self.end.set_result(status)
            return
        if status.running:
            self.mark_running()
        elif status.state == "PENDING" and never_starts(status.reason) and not self.cancel:
            self.never_reason = status.reason
            self.cancel = self.hurry = True


@dataclass(eq=False)
class _Poller:
    """Polls SLURM for every job of one executor on one event loop (see the module docstring)."""

    settings: SlurmSettings
    log: Callable[[str], None]
    watches: dict[int, _Watch] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    outage: str = ""

    def add(self, job_id: int, notify: Callable[[RunState], None]) -> _Watch:
        watch = _Watch(job_id, notify, asyncio.get_running_loop().create_future())
        self.watches[job_id] = watch
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._loop(), name="slurm poller")
        return watch

    def remove(self, watch: _Watch) -> None:
        self.watches.pop(watch.job_id, None)

    def poke(self) -> None:
        self.wake.set()

    async def _loop(self) -> None:
        while self.watches:
            try:
                await self._poll_once()
            except Exception as exc:  # never let the poller die: the runs would wait for ever
                self._trouble(f"polling SLURM failed: {exc!r}")
            for job_id in [i for i, w in self.watches.items() if w.end.done()]:
                del self.watches[job_id]
            if not self.watches:
                break
            fast = any(w.hurry or (w.cancel and not w.end.done()) for w in self.watches.values())
            interval = FAST_POLL_SECONDS if fast else self.settings.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval)
            self.wake.clear()

    async def _poll_once(self) -> None:
        watches = dict(self.watches)
        to_cancel = [w for w in watches.values() if w.cancel and not w.cancel_sent]
        if to_cancel:
            try:
                result = await run_async(scancel_argv([w.job_id for w in to_cancel]))
            except SlurmError as exc:
                self._trouble(str(exc))
            else:
                if "Unable to contact" in result.stderr:
                    self._trouble(f"scancel: {result.message()}")
                else:
                    for watch in to_cancel:
                        watch.cancel_sent = True
        ids = sorted(watches)
        try:
            result = await run_async(squeue_states_argv(ids))
        except SlurmError as exc:
            self._trouble(str(exc))
            return
        if result.returncode == 0:
            statuses = parse_squeue_states(result.stdout)
        elif "Invalid job id" in result.message():
            statuses = {}  # a single id SLURM has forgotten
        else:
            self._trouble(f"squeue: {result.message()}")
            return
        self._recovered(len(ids))
        missing = [i for i in ids if i not in statuses]
        if missing:
            statuses.update(await self._forgotten(missing))
        for job_id, watch in watches.items():
            status = statuses.get(job_id)
            if status is not None:
                watch.update(status)

    async def _forgotten(self, ids: list[int]) -> dict[int, JobStatus]:
        """Final states of jobs slurmctld no longer lists (sacct, then its completion log)."""
        found: dict[int, JobStatus] = {}
        for completion in (False, True):
            try:
                result = await run_async(sacct_argv(ids, completion=completion))
            except SlurmError:
                break
            if result.returncode == 0:
                found = parse_sacct(result.stdout)
                if found or completion:
                    break
            elif ACCOUNTING_DISABLED not in result.message():
                break
        for job_id in ids:
            if job_id not in found:
                found[job_id] = JobStatus(job_id, FORGOTTEN, "SLURM no longer knows the job")
        return found

    def _trouble(self, message: str) -> None:
        if message != self.outage:
            self.outage = message
            self.log(
                f"SLURM does not answer as expected ({message}); still waiting for "
                f"{len(self.watches)} job(s), which keep running"
            )

    def _recovered(self, count: int) -> None:
        if self.outage:
            self.outage = ""
            self.log(f"SLURM answers again; following {count} job(s)")


# --------------------------------------------------------------------------- the executor


class _LogTail:
    """Reads what a job appended to its log since the last read (the node writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.recent = ""
        """The last few hundred characters, to find marker lines split across reads."""

    def read(self, final: bool = False) -> str:
        try:
            # opening anew each time asks a network filesystem for the file's current size
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            data = b""
        self.offset += len(data)
        text = self.decoder.decode(data, final=final)
        self.recent = (self.recent + text)[-400:]
        return text


@dataclass
class _LoopState:
    semaphore: asyncio.Semaphore
    poller: _Poller


class SlurmExecutor:
    """Runs each program run as a SLURM job (see the module docstring)."""

    def __init__(
        self,
        settings: SlurmSettings,
        output_folder: Path,
        *,
        log: Callable[[str], None] = _ignore,
        registry: SlurmRegistry | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        """Create the executor.

        Args:
            settings: The ``slurm_*`` settings.
            output_folder: The session's output folder (named in every job's comment).
            log: Receives session-log lines (SLURM outages, files that appeared late).
            registry: Where submissions are recorded durably; default the folder's.
            environ: The supervisor's environment whose ``LIVE2D_*`` variables reach every job
                (default ``os.environ``, read at each submission).
        """
        self.settings = settings
        self.output_folder = Path(output_folder).resolve()
        self.log = log
        self.registry = registry or SlurmRegistry(self.output_folder)
        self._environ = environ
        self._loops: dict[int, _LoopState] = {}

    @property
    def slots(self) -> int:
        """Jobs in SLURM (pending or running) at once: ``slurm_max_jobs``."""
        return self.settings.max_jobs

    @property
    def threads(self) -> int:
        """Threads per program run: ``slurm_cpus_per_task``."""
        return self.settings.cpus_per_task

    def _state(self) -> _LoopState:
        """The slots and poller of the running event loop (a runner may outlive one loop)."""
        loop = id(asyncio.get_running_loop())
        state = self._loops.get(loop)
        if state is None:
            state = _LoopState(
                asyncio.Semaphore(self.settings.max_jobs), _Poller(self.settings, self.log)
            )
            self._loops = {loop: state}
        return state

    def job_environment(self, spec: RunSpec) -> dict[str, str]:
        """What the job script exports: thread settings, the folder's marker, the supervisor's
        ``LIVE2D_*`` variables (e.g. ``LIVE2D_ENGINE_SEED``) and the run's own."""
        environ = os.environ if self._environ is None else self._environ
        env = {name: str(self.settings.cpus_per_task) for name in THREAD_VARIABLES}
        env.update({k: v for k, v in environ.items() if k.startswith("LIVE2D_")})
        env[MARKER_ENV] = str(self.output_folder)
        env.update(spec.env)
        return {k: v for k, v in env.items() if k.isidentifier()}

    async def run(
        self,
        spec: RunSpec,
        on_output: Callable[[str], None],
        on_state: Callable[[RunState], None] | None = None,
    ) -> RunOutcome:
        """Run one program as a SLURM job when a slot is free (see :class:`.Executor`)."""
        notify = on_state or _ignore
        notify(RunState.QUEUED)
        state = self._state()
        async with state.semaphore:
            return await self._run(spec, on_output, notify, state.poller)

    async def _run(
        self,
        spec: RunSpec,
        on_output: Callable[[str], None],
        notify: Callable[[RunState], None],
        poller: _Poller,
    ) -> RunOutcome:
        log_path = spec.log_path
        await asyncio.to_thread(_prepare, log_path)
        nonce = secrets.token_hex(4)
        script = render(
            ScriptSpec(
                argv=spec.argv,
                answers=spec.stdin_text,
                cwd=spec.cwd,
                log_path=log_path,
                outputs=spec.outputs,
                env=self.job_environment(spec),
                prologue=self.settings.prologue,
                watchdog_seconds=self.settings.watchdog_seconds,
            )
        )
        argv = sbatch_argv(
            self.settings,
            name=job_name(self.output_folder, spec.name),
            comment=job_comment(self.output_folder, spec.name, nonce),
            log_path=log_path,
            cwd=spec.cwd,
        )
        try:
            await _settle(self.registry.intend, nonce, spec.name)
        except asyncio.CancelledError:
            await _finish_despite_cancel(asyncio.to_thread(self.registry.forget, nonce))
            raise
        submission = asyncio.ensure_future(self._submit(argv, script))
        try:
            job_id = await asyncio.shield(submission)
        except asyncio.CancelledError:
            # finish the submission: a job SLURM took must be cancelled, not left running
            await _wait_despite_cancel(submission, None)
            submitted = _result_or_none(submission)
            if submitted is None:
                await _finish_despite_cancel(asyncio.to_thread(self.registry.forget, nonce))
            else:
                await _finish_despite_cancel(
                    asyncio.to_thread(self.registry.record, nonce, submitted)
                )
                await self._cancel(poller.add(submitted, notify), poller, nonce)
            raise
        except SlurmError as exc:
            await _settle(self.registry.forget, nonce)
            message = f"SLURM did not take the job: {exc}"
            await asyncio.to_thread(_append, log_path, f"[live2d] {message}\n")
            return RunOutcome(None, log_path, start_error=message)
        watch = poller.add(job_id, notify)
        tail = _LogTail(log_path)
        try:
            await _settle(self.registry.record, nonce, job_id)
            status = await self._follow(watch, poller, tail, on_output)
        except asyncio.CancelledError:
            await self._cancel(watch, poller, nonce)
            raise
        await _settle(self.registry.forget, nonce)
        outcome = await self._outcome(spec, watch, status)
        text = await asyncio.to_thread(tail.read, True)  # the rest, now visible here
        if text:
            on_output(text)
        return outcome

    async def _submit(self, argv: list[str], script: str) -> int:
        result = await run_async(argv, stdin=script)
        if result.returncode != 0:
            raise SlurmError(f"sbatch: {result.message()}")
        return parse_sbatch(result.stdout)

    async def _follow(
        self, watch: _Watch, poller: _Poller, tail: _LogTail, on_output: Callable[[str], None]
    ) -> JobStatus:
        """Feed the log to ``on_output`` until SLURM reports the job ended."""
        while not watch.end.done():
            text = await asyncio.to_thread(tail.read)
            if text:
                on_output(text)
                if STARTED_PREFIX in tail.recent:
                    watch.mark_running()
                if ENDED_PREFIX in tail.recent and not watch.hurry:
                    watch.hurry = True
                    poller.poke()
            await asyncio.wait([watch.end], timeout=TAIL_SECONDS)
        return watch.end.result()

    async def _cancel(self, watch: _Watch, poller: _Poller, nonce: str) -> None:
        """scancel the job, wait until SLURM reports it ended (bounded), forget it."""
        watch.cancel = watch.hurry = True
        poller.poke()
        await _wait_despite_cancel(watch.end, CANCEL_WAIT_SECONDS)
        if watch.end.done():
            await _finish_despite_cancel(asyncio.to_thread(self.registry.forget, nonce))
        else:
            poller.remove(watch)
            self.log(
                f"SLURM job {watch.job_id} did not end within {CANCEL_WAIT_SECONDS:.0f} s of "
                f"scancel; it stays in {self.registry.path.name} and is cancelled at the next "
                "start"
            )

    async def _outcome(self, spec: RunSpec, watch: _Watch, status: JobStatus) -> RunOutcome:
        log_path = spec.log_path
        job = f"SLURM job {watch.job_id}"
        if watch.never_reason:
            return RunOutcome(
                None,
                log_path,
                start_error=(
                    f"{job} could never start: it was pending with reason {watch.never_reason} "
                    "(the request exceeds what the partition, account or QOS allows: check "
                    "slurm_partition, slurm_cpus_per_task, slurm_memory_mb, "
                    "slurm_time_limit_minutes, slurm_account and slurm_qos); cancelled"
                ),
            )
        program_ended = status.state in {"COMPLETED", "FAILED"}
        wait = self.settings.file_wait_seconds if program_ended else 0.0
        record = await asyncio.to_thread(read_end_record, end_path(log_path), wait)
        if not program_ended:
            return RunOutcome(
                record.returncode if record else None,
                log_path,
                failure=f"{job} ended by SLURM: {status.describe()}",
            )
        if record is None:
            if status.state == "FAILED":
                failure = f"{job} ended by SLURM before its program ended: {status.describe()}"
            else:
                failure = (
                    f"{job} ended ({status.describe()}) but its end record did not appear here "
                    f"within {wait:.0f} s (slurm_file_wait_seconds)"
                )
            return RunOutcome(None, log_path, failure=failure)
        with contextlib.suppress(OSError):
            await asyncio.to_thread(end_path(log_path).unlink)
        if record.start_error:
            return RunOutcome(None, log_path, start_error=record.start_error)
        problem = await self._await_files(job, spec, record)
        return RunOutcome(record.returncode, log_path, hung=record.hung, failure=problem)

    async def _await_files(self, job: str, spec: RunSpec, record: EndRecord) -> str:
        """Wait until each output the node wrote is visible here at that size, and the log at
        least at the size it had when the program ended; '' or why not."""
        expected = {p: record.sizes[p] for p in map(Path, spec.outputs) if p in record.sizes}
        if record.returncode != 0 or record.hung:
            expected = {}  # a failed run's outputs are not used
        at_least = {spec.log_path: record.log_size} if record.log_size > 0 else {}
        if not expected and not at_least:
            return ""
        started = time.monotonic()
        limit = self.settings.file_wait_seconds
        late = await asyncio.to_thread(wait_until_visible, expected, limit, at_least)
        waited = time.monotonic() - started
        if late:
            path, seen = next(iter(late.items()))
            wrote = expected.get(path, at_least.get(path, 0))
            return (
                f"{path.name} of {job} is {seen} bytes here after {waited:.0f} s; the node "
                f"({record.node or '?'}) wrote {wrote} bytes (slurm_file_wait_seconds)"
            )
        if waited >= 1.0:
            self.log(
                f"Waited {waited:.1f} s until the outputs of {job} ({spec.name}) appeared here "
                "at their full size"
            )
        return ""


# --------------------------------------------------------------------------- helpers


async def _wait_despite_cancel(future: asyncio.Future[Any], limit: float | None) -> None:
    """Wait for ``future`` (up to ``limit`` seconds) even if this task is cancelled meanwhile: an
    abort must not return before the jobs it ends have ended."""
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    while not future.done():
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([future], timeout=remaining)


async def _settle[T](func: Callable[..., T], *args: Any) -> T:
    """Run a blocking call in a thread to its end, even if this task is cancelled meanwhile
    (the cancellation is re-raised once the call has ended, so what it wrote is known)."""
    work = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await _wait_despite_cancel(work, None)
        raise


async def _finish_despite_cancel(awaitable: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(awaitable)
    await _wait_despite_cancel(task, None)


def _result_or_none(task: asyncio.Future[int]) -> int | None:
    if task.cancelled() or task.exception() is not None:
        return None
    return task.result()


def _prepare(log_path: Path) -> None:
    """An empty log (created here, with the user's umask; the job appends), no stale records."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb"):
        pass
    for stale in (end_path(log_path), log_path.with_name(log_path.name + HUNG_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _append(path: Path, text: str) -> None:
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def read_end_record(path: Path, wait: float) -> EndRecord | None:
    """The end record at ``path``, waiting up to ``wait`` s for it to appear (blocking)."""
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                record = parse_end(handle.read())
        except OSError:
            record = None
        if record is not None or time.monotonic() >= deadline:
            return record
        with contextlib.suppress(OSError):
            list(path.parent.iterdir())  # a network filesystem revalidates the folder's entries
        time.sleep(pause)
        pause = min(1.0, pause * 2)


def _size_here(path: Path) -> int:
    """The size this machine sees, after opening the file (close-to-open: fresh attributes)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return -1
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def wait_until_visible(
    expected: dict[Path, int], timeout: float, at_least: dict[Path, int] | None = None
) -> dict[Path, int]:
    """Wait until every file of ``expected`` has exactly its size here and every file of
    ``at_least`` at least its size; return the ones that did not, with the size seen here
    (-1: missing). Blocking."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    minimum = at_least or {}
    while True:
        late = {p: s for p in expected if (s := _size_here(p)) != expected[p]}
        late |= {p: s for p in minimum if (s := _size_here(p)) < minimum[p]}
        if not late or time.monotonic() >= deadline:
            return late
        for folder in {p.parent for p in late}:  # a network filesystem revalidates entries
            with contextlib.suppress(OSError):
                list(folder.iterdir())
        time.sleep(pause)
        pause = min(1.0, pause * 2)
