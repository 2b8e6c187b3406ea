"""The job runner: a job's cycles one after another, with stop, abort, retry and failure.

A job is described by a persisted :class:`~live2d_tui.supervisor.state.JobRecord` (settings, the
``last_cycle_number`` its plan was made from, the next cycle to run), so the same code starts a
job, retries it after a failure and continues it after a crash: it rebuilds the plan with
``plan_job`` and skips the cycles already completed.

Invariants: at most one job task; a cycle's record is saved (with the job's next cycle) before
``CycleFinished`` is published; a cancelled job (abort) leaves earlier cycles intact; after
:data:`~live2d_tui.supervisor.triggers.MAX_CONSECUTIVE_FAILURES` failures in a row automatic
jobs stop with status *failed*.

:class:`JobRunner` knows the session store and the shared context only. It runs each cycle
through the open session's cycle runner (:meth:`~live2d_tui.classify.runner.CycleRunner.run_cycle`;
where the programs run is that runner's executor's business), and tells whoever starts jobs
through two callbacks: a job began, and another job may start now (a job ended, or a failed
job's back-off ran out).

A streaming job (``classification_type = "streaming"``) has no plan of cycles: its task runs a
:class:`~live2d_tui.supervisor.streamjob.StreamJob`, whose updates the trigger loop starts
through :attr:`JobRunner.stream` as particles arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

from live2d_tui.classify.runner import CycleFailed, CycleInputs, CycleResult
from live2d_tui.classify.schedule import CyclePlan, plan_job
from live2d_tui.classify.streaming.runner import StreamError
from live2d_tui.config import ClassificationType, ConfigError, JobSettings
from live2d_tui.events import (
    BlockType,
    CycleFinished,
    CycleStarted,
    JobEnd,
    JobFinished,
    SessionStatus,
    job_position,
)
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobs import JobOutcome, describe_failure, record_from_result
from live2d_tui.supervisor.model import SupervisorError
from live2d_tui.supervisor.session import Session, remove_partial_outputs
from live2d_tui.supervisor.state import CycleRecord, JobRecord, now_iso
from live2d_tui.supervisor.store import SessionStore
from live2d_tui.supervisor.streamhistory import adopt_committed_update
from live2d_tui.supervisor.streamjob import (
    GenerationChanged,
    StreamJob,
    ensure_last_star,
    stream_of,
)
from live2d_tui.supervisor.triggers import MAX_CONSECUTIVE_FAILURES, retry_delay


def _nothing() -> None:
    return None


class JobRunner:
    """Runs the supervisor's jobs, one at a time (see the module docstring)."""

    def __init__(
        self,
        ctx: SupervisorContext,
        store: SessionStore,
        *,
        on_start: Callable[[], None] = _nothing,
        on_ready: Callable[[], None] = _nothing,
    ) -> None:
        """A runner with no job.

        Args:
            ctx: The shared context.
            store: The session store; each job's progress is saved there.
            on_start: Called when a job's task begins.
            on_ready: Called when another job may start: a job ended, or the back-off of a
                failed automatic job ran out (it is retried when the caller launches it again).
        """
        self.ctx = ctx
        self.store = store
        self._on_start = on_start
        self._on_ready = on_ready
        self._job_task: asyncio.Task[None] | None = None
        self._job: JobRecord | None = None
        self._job_kind: ClassificationType | None = None
        self._current: CyclePlan | None = None
        self._stop_requested = False
        self._keep_job_on_cancel = False
        self._retry_at: float | None = None
        self._closing = False
        self._stream: StreamJob | None = None

    @property
    def running(self) -> bool:
        """A job task exists (running or stopping)."""
        return self._job_task is not None and not self._job_task.done()

    @property
    def job(self) -> JobRecord | None:
        """The running job's record (``None`` when no job runs)."""
        return self._job if self.running else None

    @property
    def kind(self) -> ClassificationType | None:
        """The macro of the running job's plan (the last job's after it ended)."""
        return self._job_kind

    @property
    def current(self) -> CyclePlan | None:
        """The cycle running now (a streaming job's running update)."""
        if self._stream is not None:
            return self._stream.current
        return self._current

    @property
    def stream(self) -> StreamJob | None:
        """The running streaming job (``None`` when no streaming job runs)."""
        return self._stream if self.running else None

    @property
    def retry_at(self) -> float | None:
        """Loop time after which a failed automatic job may be retried (``None``: no retry)."""
        return self._retry_at

    @property
    def closing(self) -> bool:
        """:meth:`close` was called (the trigger loop starts no more jobs)."""
        return self._closing

    def reset(self) -> None:
        """Forget the last job's progress and any pending retry (another session was opened)."""
        self._job, self._job_kind, self._current = None, None, None
        self._retry_at = None

    def cancel_retry(self) -> None:
        """Drop a pending retry of a failed job."""
        self._retry_at = None

    def request_stop(self) -> None:
        """End the running job after its running cycle (a streaming job: after its running
        update, at once between updates)."""
        self._stop_requested = True
        if self._stream is not None:
            self._stream.request_stop()

    async def abort(self) -> None:
        """Terminate the running cycle: the job ends and will not resume."""
        self._keep_job_on_cancel = False
        self.ctx.log("Abort requested: terminating the running cycle")
        await self._cancel_job()

    async def close(self, abort_running: bool) -> None:
        """The supervisor closes: end the running cycle; with ``abort_running`` the job ends,
        otherwise it stays recorded and continues at its next cycle on the next start."""
        self._closing = True
        if self.running:
            self._keep_job_on_cancel = not abort_running
            await self._cancel_job()

    async def wait(self) -> None:
        """Return when no job task runs (at once when none does)."""
        task = self._job_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    def launch_new(self, *, automatic: bool, generation: int) -> None:
        """Plan a new job from the staged settings and start its task.

        Synchronous on purpose: no other task can start a job between the check that none runs
        and the creation of this one (the job task saves the state first).

        Args:
            automatic: The job belongs to automatic jobs (it may be retried after a failure).
            generation: The dataset's current stack generation: a job after a new one starts ab
                initio.

        Raises:
            SupervisorError: a job is already running, or the settings cannot be planned.
        """
        session = self.store.session
        state = session.state
        settings = state.settings
        last = state.last_cycle
        force = state.force_abinit or (last is not None and last.generation != generation)
        try:
            plan = plan_job(
                settings, last_cycle_number=last.number if last else None, force_abinit=force
            )
        except ConfigError as exc:
            raise SupervisorError(f"cannot plan the job: {exc}") from None
        problem = self.store.mask_problem(settings)  # staged before Warp changed the box
        if problem:
            self.ctx.log(f"{problem} (the job runs with it)", "warning")
        # the job's own settings name the macro that actually runs (ab initio when forced), so
        # every cycle record says truthfully how it was made
        own = settings.to_dict() | {"classification_type": plan.kind.value}
        job = JobRecord(
            kind=plan.kind,
            settings=own,
            base_cycle_number=last.number if last else None,
            force_abinit=force,
            cycles_total=len(plan.cycles),  # 0: a streaming job, open-ended
            next_cycle_number=plan.first_number,
            automatic=automatic,
            started=now_iso(),
        )
        session.state = replace(state, job=job, force_abinit=False)
        self.launch(job)

    def launch(self, job: JobRecord) -> None:
        """Start the task of ``job`` (new, retried, or continued at its next cycle).

        Raises:
            SupervisorError: a job is already running.
        """
        if self.running:
            raise SupervisorError("a job is already running")
        self._job = job
        self._stop_requested = False
        self._retry_at = None
        self._job_task = asyncio.create_task(self._job_main(job), name="live2d-job")

    async def _cancel_job(self) -> None:
        task = self._job_task
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _job_main(self, job: JobRecord) -> None:
        session = self.store.session
        self._on_start()
        outcome: JobOutcome
        try:
            await self.store.set_status(SessionStatus.RUNNING, f"{job.kind.label} job")
            if job.kind is ClassificationType.STREAMING:
                self._job_kind = job.kind
                self._stream = StreamJob(
                    self.ctx, self.store, job, self._inputs, publish_job=self._set_job
                )
                outcome = await self._stream.run()
            else:
                outcome = await self._run_cycles(session, job)
        except asyncio.CancelledError:
            await self._after_cancel(session)
            raise
        except GenerationChanged:
            outcome = JobOutcome(success=False, message="new stack generation", retry=False)
            session.state = replace(session.state, force_abinit=True)
        except (CycleFailed, OSError, ConfigError, ValueError, StreamError) as exc:
            outcome = JobOutcome(
                success=False,
                message=describe_failure(exc, session.output_folder),
                retry=True,
            )
        finally:
            self._current = None
        self._stream = None
        await self._finish_job(session, outcome)

    def _set_job(self, job: JobRecord) -> None:
        self._job = job

    async def _run_cycles(self, session: Session, job: JobRecord) -> JobOutcome:
        settings = job.job_settings()
        plan = plan_job(
            settings, last_cycle_number=job.base_cycle_number, force_abinit=job.force_abinit
        )
        self._job_kind = plan.kind
        if plan.cycles and plan.cycles[0].block_type is not BlockType.RANDOM_SEED:
            # the job starts from the latest classes: their star must be on disk (a streaming
            # update writes it only when due)
            await ensure_last_star(self.store, stream_of(session.runner), self.ctx.log)
        for cycle in plan.cycles:
            if cycle.number < job.next_cycle_number:
                continue
            if self._stop_requested:
                return JobOutcome(success=True, message="stopped by the user", stopped=True)
            job = session.state.job or job
            record = await self._run_one(session, job, cycle, settings)
            job = replace(
                job,
                next_cycle_number=cycle.number + 1,
                cycles_done=job.cycles_done + 1,
                attempts=0,
            )
            self._job = job
            session.state = replace(
                session.state.with_cycle(record), job=job, consecutive_failures=0, last_error=""
            )
            if plan.kind is ClassificationType.ABINIT and record.block_type is BlockType.STARTUP:
                # A successful ab initio (its classes exist) switches the next job to streaming
                # (stream_after_abinit) or, as in the original, to seeded.
                staged = session.state.settings
                if staged.classification_type is ClassificationType.ABINIT:
                    after = "streaming" if staged.stream_after_abinit else "seeded"
                    session.state = replace(
                        session.state,
                        settings=staged.with_changes(classification_type=after),
                    )
            await self.store.save()
            self.ctx.bus.publish(CycleFinished(number=record.number, success=True))
            self.ctx.log(_cycle_summary(record))
        return JobOutcome(success=True, message=f"{plan.kind.label} job finished")

    async def _run_one(
        self, session: Session, job: JobRecord, cycle: CyclePlan, settings: JobSettings
    ) -> CycleRecord:
        self._current = cycle
        previous = session.state.last_cycle_with_star
        if cycle.block_type is BlockType.RANDOM_SEED:
            previous = None
        inputs, rows, generation = await asyncio.to_thread(
            self.store.with_dataset, lambda: self._inputs(previous)
        )
        if previous is not None and previous.generation != generation:
            raise GenerationChanged  # the previous classes belong to another stack
        self.ctx.bus.publish(
            CycleStarted(
                number=cycle.number,
                block_type=cycle.block_type,
                index_in_job=cycle.index_in_job,
                cycles_in_job=cycle.cycles_in_job,
                high_res_limit=cycle.high_res_limit,
                particle_count=len(inputs.active_positions),
                fraction_used=cycle.fraction(len(inputs.active_positions)),
            )
        )
        self.ctx.log(
            f"Cycle {cycle.number} started ({cycle.block_type.label}, "
            f"{job_position(cycle.index_in_job, cycle.cycles_in_job)}): "
            f"{len(inputs.active_positions):,} particles, "
            f"high-res limit {cycle.high_res_limit:.1f} Å"
        )
        try:
            result: CycleResult = await session.runner.run_cycle(cycle, inputs, settings)
        except (CycleFailed, OSError) as exc:
            self.ctx.bus.publish(
                CycleFinished(number=cycle.number, success=False, message=str(exc))
            )
            raise
        except asyncio.CancelledError:
            self.ctx.bus.publish(
                CycleFinished(number=cycle.number, success=False, message="aborted")
            )
            raise
        return record_from_result(result, cycle, settings, generation=generation, input_rows=rows)

    def _inputs(self, previous: CycleRecord | None) -> tuple[CycleInputs, int, int]:
        """Build a cycle's inputs from the dataset (runs in a thread, under the dataset lock)."""
        dataset = self.store.session.dataset
        nz = dataset.particle_count()
        positions = dataset.active_positions(up_to=nz)
        if len(positions) == 0:
            raise ValueError("no active particles to classify yet")
        ws = dataset.warp_settings
        if ws is None:
            raise ValueError("Warp's previous.settings could not be read (pixel size unknown)")
        out = self.store.session.output_folder
        inputs = CycleInputs(
            stack_path=dataset.stack_path,
            nz=nz,
            dataset_star=dataset.star_path,
            active_positions=positions,
            previous_star=out / f"{previous.name}.star" if previous else None,
            previous_classes=out / f"{previous.name}.mrc" if previous else None,
            pixel_size=ws.pixel_size,
        )
        return inputs, nz, dataset.generation

    async def _after_cancel(self, session: Session) -> None:
        # Belt and braces: a process spawned (or a SLURM job submitted) at the very moment of
        # cancellation may have escaped the runner's clean-up; the registries, the environment
        # marker and the SLURM jobs' comments find it.
        ended = await asyncio.to_thread(session.runner.end_orphans, self.ctx.log_threadsafe)
        if ended:
            self.ctx.log(f"Ended {ended} leftover program run(s)")
        if self._stream is not None:
            # an abort during an update's commit completes it: record that update
            stream = self._stream.stream
            await asyncio.to_thread(stream.recover)
            session.state, note = adopt_committed_update(
                session.state,
                stream,
                generation=self._stream.generation,
                stack=session.dataset.stack_path,
            )
            if note:
                self.ctx.log(note)
            self._stream = None
        completed = {c.number for c in session.state.history}
        await asyncio.to_thread(remove_partial_outputs, session.output_folder, completed)
        keep = self._keep_job_on_cancel
        if keep:
            self.ctx.log(
                "Closing: the running cycle was ended; the job continues at the next start"
            )
        else:
            session.state = replace(session.state, job=None, automatic=False)
            self.ctx.log("Job aborted; results of earlier cycles are intact")
        self._job = None
        if not self._closing:
            await self.store.set_status(SessionStatus.STOPPED, "aborted")
        else:
            await self.store.save()
        if not keep:
            self.ctx.bus.publish(JobFinished(success=False, message="aborted", end=JobEnd.ABORTED))

    async def _finish_job(self, session: Session, outcome: JobOutcome) -> None:
        # JobFinished is published last, with no await after it: a subscriber reacting to it
        # sees the job task done (commands refused "while a job is running" are allowed).
        state = session.state
        job = state.job
        self._job = None
        if outcome.success:
            session.state = replace(state, job=None, consecutive_failures=0)
            self.ctx.log(outcome.message)
            automatic = state.automatic and not self._stop_requested and not outcome.stopped
            await self.store.set_automatic(automatic)
            await self.store.set_status(
                SessionStatus.WAITING if automatic else SessionStatus.STOPPED, outcome.message
            )
            self._on_ready()
            end = JobEnd.STOPPED if outcome.stopped else JobEnd.FINISHED
            self.ctx.bus.publish(JobFinished(success=True, message=outcome.message, end=end))
            return
        failures = state.consecutive_failures + (1 if outcome.retry else 0)
        session.state = replace(state, consecutive_failures=failures, last_error=outcome.message)
        if not outcome.retry:  # not a failure: a new generation ends the job cleanly
            session.state = replace(session.state, job=None)
            self.ctx.log(f"Job ended: {outcome.message}; the next job starts ab initio")
            await self.store.set_status(
                SessionStatus.WAITING if state.automatic else SessionStatus.STOPPED, outcome.message
            )
            self._on_ready()
            self.ctx.bus.publish(
                JobFinished(success=False, message=outcome.message, end=JobEnd.ENDED)
            )
            return
        self.ctx.error(f"Job failed: {outcome.message}")
        retry = (
            state.automatic
            and not self._stop_requested
            and job is not None
            and failures < MAX_CONSECUTIVE_FAILURES
        )
        if retry and job is not None:
            delay = retry_delay(failures, self.ctx.config.server.retry_seconds)
            assert self.ctx.loop is not None
            self._retry_at = self.ctx.loop.time() + delay
            session.state = replace(session.state, job=replace(job, attempts=job.attempts + 1))
            self.ctx.log(
                f"Retrying in {delay:.0f} s (attempt {failures + 1} of {MAX_CONSECUTIVE_FAILURES})"
            )
            await self.store.set_status(SessionStatus.WAITING, "retry after a failure")
            asyncio.get_running_loop().call_later(delay + 0.01, self._on_ready)
            return
        session.state = replace(session.state, job=None)
        if state.automatic and not self._stop_requested:
            session.state = replace(session.state, automatic=False)
            await self.store.set_status(
                SessionStatus.FAILED,
                f"{failures} failures in a row; automatic jobs stopped (see the last error)",
            )
        else:
            await self.store.set_automatic(False)
            await self.store.set_status(
                SessionStatus.STOPPED, "the job failed (see the last error)"
            )
        self.ctx.bus.publish(JobFinished(success=False, message=outcome.message, end=JobEnd.FAILED))


def _cycle_summary(record: CycleRecord) -> str:
    classes = record.particle_count_per_class[1:]
    if record.block_type is BlockType.RANDOM_SEED:
        # no particle belongs to a class yet: counting members would say "0 of K populated"
        return (
            f"Cycle {record.number} (random start) finished in {record.duration_seconds:.0f} s: "
            f"{len(classes)} starting classes, each the average of a random subset of "
            f"{record.particle_count:,} particles; particles join classes from the next cycle"
        )
    nonempty = sum(1 for c in classes if c > 0)
    return (
        f"Cycle {record.number} finished in {record.duration_seconds:.0f} s: "
        f"{record.particle_count:,} particles, {nonempty} of {len(classes)} classes populated, "
        f"{record.fraction_used:.0%} of the particles used, "
        f"high-res limit {record.high_res_limit:.1f} Å"
    )
