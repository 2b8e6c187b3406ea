"""The live job supervisor: ingest keeps following Warp, triggers start jobs, jobs run cycles.

One :class:`Supervisor` owns one output folder (an exclusive lock) and runs three asyncio tasks:

- the **ingest loop** polls the Warp folder (in a thread) every ``interval`` seconds, always —
  while waiting, between cycles and during a cycle (new particles join at the next cycle);
- the **trigger loop** checks, after every ingest and every ``interval``, whether an automatic
  job should start (:mod:`live2d_tui.supervisor.triggers`) or a failed one be retried;
- at most one **job task** runs the cycles of a job plan through the cycle runner.

Invariants: never two jobs at once; every state change is persisted atomically before the event
announcing it is published; the state on disk always describes the running job precisely enough
to continue it at its next cycle after a crash; commands that cannot be carried out raise
:class:`SupervisorError` with a message for the user, and nothing the supervisor runs in the
background raises into the caller — failures become :class:`ErrorRaised` events and log lines.

Events are published on the event loop's thread only (callbacks from worker threads are
forwarded with ``call_soon_threadsafe``).

The supervisor is made of parts that share one
:class:`~live2d_tui.supervisor.context.SupervisorContext` (settings, event bus, loop, log), and
:class:`Supervisor` is their façade — the public commands, the session's opening and closing:

- :class:`~live2d_tui.supervisor.store.SessionStore`: the open session, its state, saving
  before publishing, the status, the last-session pointer;
- :class:`~live2d_tui.supervisor.loops.IngestLoop` and
  :class:`~live2d_tui.supervisor.loops.TriggerLoop`: the two loops above;
- :class:`~live2d_tui.supervisor.jobrunner.JobRunner`: the job task (cycles, stop, abort, retry
  and back-off), and a streaming job's updates
  (:class:`~live2d_tui.supervisor.streamjob.StreamJob`);
- :class:`~live2d_tui.supervisor.results.ResultsWorker`: after each cycle, the per-class
  half-set estimate and the carried class selection, in a separate idle-priority process.
- :class:`~live2d_tui.supervisor.monitor.HealthMonitor`: the session's health (the Session tab's
  series, prepared in a worker thread) and the alerts, with their hook.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from live2d_tui.config import ClassificationType, Config, JobSettings
from live2d_tui.events import Alert, EventBus, IngestCounts, SessionChanged, SessionStatus
from live2d_tui.health import SessionHealth
from live2d_tui.paths import output_folder_for, read_last_session, resolve_warp_folder
from live2d_tui.results.cycle_results import CycleResults
from live2d_tui.results.export import ExportError, ExportRequest, ExportSummary
from live2d_tui.results.quality import read_cached
from live2d_tui.results.selection import Selection, SelectionError, change_selection, rule_marks
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobrunner import JobRunner
from live2d_tui.supervisor.loops import IngestLoop, TriggerLoop
from live2d_tui.supervisor.model import SupervisorError, SupervisorSnapshot
from live2d_tui.supervisor.monitor import HealthMonitor
from live2d_tui.supervisor.results import (
    ResultsWorker,
    class_count,
    cycle_files,
    cycle_links,
    export_classes,
    read_results,
    report_target,
    write_cycle_report,
)
from live2d_tui.supervisor.session import Session, open_session
from live2d_tui.supervisor.state import CycleRecord, JobRecord
from live2d_tui.supervisor.store import SessionStore

SETTLE_PASSES = 12
"""At most this many ingest passes (≥ 1 s apart) before ``--once`` starts its job."""


class Supervisor:
    """The live classification of one Warp session (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        warp_folder: Path | None = None,
        output_folder: Path | None = None,
        bus: EventBus | None = None,
    ) -> None:
        """Prepare a supervisor; :meth:`start` opens the session.

        Args:
            config: Server settings and the default job settings of new sessions.
            warp_folder: The Warp folder; ``None`` reopens the last session.
            output_folder: ``--out``; ``None`` applies the one output-folder rule.
            bus: Where events go (a new bus when ``None``).

        Raises:
            SupervisorError: no Warp folder given and no last session known.
        """
        self._ctx = SupervisorContext(config, bus or EventBus())
        if warp_folder is None:
            last = read_last_session()
            if last is None:
                raise SupervisorError("no Warp folder given and no last session to reopen")
            warp_folder = last.warp_folder
            output_folder = output_folder or last.output_folder
        self._warp_folder = Path(warp_folder).expanduser().absolute()
        self._output_folder = output_folder_for(self._warp_folder, config.server, output_folder)
        self._store = SessionStore(self._ctx)
        # The trigger loop comes last (it reads the ingest loop and starts jobs); the job runner
        # and the ingest loop reach it through these callbacks.
        self._jobs = JobRunner(
            self._ctx,
            self._store,
            on_start=lambda: self._triggers.job_started(),
            on_ready=lambda: self._triggers.wake(),
        )
        self._ingest = IngestLoop(
            self._ctx, self._store, after_pass=lambda: self._triggers.after_ingest()
        )
        self._triggers = TriggerLoop(self._ctx, self._store, self._ingest, self._jobs)
        # after each successful cycle: the per-class estimate and carried selection, in a
        # separate idle-priority process
        self._results = ResultsWorker(self._ctx)
        self._marks_lock = asyncio.Lock()
        """One change of class marks at a time: each returns the marks after it, in order."""
        self._monitor = HealthMonitor(self._ctx, self._store, self._jobs)
        self._ctx.bus.subscribe(self._monitor.on_event)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def config(self) -> Config:
        """Server settings and the default job settings of new sessions."""
        return self._ctx.config

    @property
    def bus(self) -> EventBus:
        """Where the supervisor's events go."""
        return self._ctx.bus

    @property
    def session(self) -> Session:
        """The open session (after :meth:`start`)."""
        return self._store.session

    @property
    def status(self) -> SessionStatus:
        """The current status."""
        return self._store.status

    @property
    def output_folder(self) -> Path:
        """The output folder in use."""
        return self._output_folder

    @property
    def health(self) -> SessionHealth | None:
        """The Session tab's latest series (``None`` before the first scan)."""
        return self._monitor.health

    @property
    def alerts(self) -> list[Alert]:
        """The alerts raised and not ended, oldest first."""
        return sorted(self._monitor.book.active.values(), key=lambda a: a.time)

    @property
    def job_running(self) -> bool:
        """A job task exists (running or stopping)."""
        return self._jobs.running

    def _refuse_while_running(self, what: str) -> None:
        if self.job_running:
            raise SupervisorError(
                f"cannot {what} while a job is running: stop it (after this cycle) or abort it "
                "first"
            )

    async def start(self, *, automatic: bool | None = None) -> None:
        """Lock the output folder, reload or recover the session, start ingest and triggers.

        Resumes an interrupted automatic job (``resume_automatic``) at its next cycle.

        Args:
            automatic: The saved mode (None) or one the caller chose for this run: False
                (``live2d run --once``) restores no automatic jobs; an interrupted automatic
                job is still continued, and nothing starts after it.

        Raises:
            SupervisorError: the lock is held, the folder is not a Warp folder, the state cannot
                be recovered, or the engine is missing.
        """
        if self._store.current is not None:
            return
        self._ctx.attach_loop()
        await self._open(
            self._warp_folder,
            self._output_folder,
            resume=True,
            reguess=False,
            automatic=automatic,
        )
        self._tasks = [
            asyncio.create_task(self._ingest.run(), name="live2d-ingest"),
            asyncio.create_task(self._triggers.run(), name="live2d-trigger"),
            asyncio.create_task(self._monitor.run(), name="live2d-health"),
        ]

    async def close(self, abort_running: bool = False) -> None:
        """End the loops and release the output folder.

        Args:
            abort_running: Abort a running job (it will not resume). When False, the running
                cycle is ended but the job stays recorded as interrupted, so the next start
                continues it at that cycle (if automatic jobs and ``resume_automatic`` are on).
        """
        if self._jobs.closing:
            return
        await self._jobs.close(abort_running)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._results.close()
        await self._monitor.close()
        await self._store.close()

    async def start_job_now(
        self, settings: JobSettings | None = None, *, continue_automatic: bool = True
    ) -> None:
        """Start a job now with ``settings`` (or the staged ones).

        Args:
            settings: New staged settings (validated) or ``None`` to keep the staged ones.
            continue_automatic: When the job ends, keep running automatic jobs (the original's
                behaviour); ``live2d run --once`` passes False.

        A streaming job that runs is stopped first (after its running update; its full star
        is written) when the new job is of another type, so a seeded or refinement job can be
        started at any time; a streaming job after it starts afresh from its result.

        Raises:
            SupervisorError: a job is already running, or the settings are invalid.
        """
        wanted = (settings or self.session.state.settings).classification_type
        if self._jobs.stream is not None and wanted is not ClassificationType.STREAMING:
            await self._store.set_automatic(False)
            self._jobs.request_stop()
            self._ctx.log(
                f"Stopping streaming to run a {wanted.label} job (after the running update)"
            )
            await self._jobs.wait()
        self._refuse_while_running("start a job")
        # No await until the job task exists: the trigger loop must not start one meanwhile.
        if settings is not None:
            self._store.stage_now(settings)
        self.session.state = replace(
            self.session.state, automatic=continue_automatic, consecutive_failures=0
        )
        self._jobs.launch_new(automatic=continue_automatic, generation=self._ingest.generation)

    async def start_automatic(self, settings: JobSettings | None = None) -> None:
        """Turn automatic jobs on: wait for enough particles, then run jobs one after another.

        Raises:
            SupervisorError: a job is running, or the settings are invalid.
        """
        self._refuse_while_running("start automatic jobs")
        if settings is not None:
            await self._store.stage(settings)
        state = self.session.state
        self.session.state = replace(state, consecutive_failures=0, automatic=True)
        self._jobs.cancel_retry()
        await self._store.set_status(SessionStatus.WAITING, "automatic jobs on")
        self._ctx.log("Automatic jobs on: waiting for new particles")
        self._triggers.wake()

    async def stop(self) -> None:
        """Stop all jobs: the running cycle finishes, then the job ends; automatic jobs stop."""
        await self._store.set_automatic(False)
        self._jobs.cancel_retry()
        if self.job_running:
            self._jobs.request_stop()
            await self._store.set_status(SessionStatus.STOPPING, "stop requested")
            if self._jobs.stream is not None:
                self._ctx.log(
                    "Stop requested: streaming ends after the running update (at once when "
                    "none runs) and writes the full star"
                )
            else:
                self._ctx.log("Stop requested: the job ends after the running cycle")
            return
        if self.session.state.job is not None:
            self.session.state = replace(self.session.state, job=None)
        await self._store.set_status(SessionStatus.STOPPED, "stopped by the user")
        self._ctx.log("Automatic jobs stopped")

    async def abort(self) -> None:
        """Abort now: the running cycle is terminated and its partial outputs removed."""
        await self._store.set_automatic(False)
        self._jobs.cancel_retry()
        if self.job_running:
            await self._jobs.abort()
        else:
            self.session.state = replace(self.session.state, job=None)
            await self._store.set_status(SessionStatus.STOPPED, "aborted by the user")

    async def update_settings(self, settings: JobSettings) -> None:
        """Stage new job settings for the next job.

        Raises:
            SupervisorError: a job is running, or the settings are invalid.
        """
        self._refuse_while_running("change the settings")
        await self._store.stage(settings)
        self._triggers.wake()

    async def change_warp_folder(self, name_or_path: str) -> None:
        """Work on another Warp folder (a session name under ``warp_prefix`` or a path).

        The mask radius is guessed again from the new folder's particle diameter; automatic jobs
        are off afterwards.

        Raises:
            SupervisorError: a job is running, or the folder cannot be opened (the current
                session then stays open).
        """
        self._refuse_while_running("change the Warp folder")
        try:
            warp = resolve_warp_folder(name_or_path, self.config.server)
        except ValueError as exc:
            raise SupervisorError(str(exc)) from None
        out = output_folder_for(warp, self.config.server)
        if out == self._output_folder:
            if warp != self._warp_folder:
                raise SupervisorError(f"{warp} maps to the output folder already in use ({out})")
            return
        if self._store.current is not None:
            await self._store.set_automatic(False)
            await self._store.set_status(SessionStatus.STOPPED, "changing Warp folder")
            self._ctx.log(f"Changing Warp folder to {warp}")
        await self._open(warp, out, resume=False, reguess=True)
        self._warp_folder, self._output_folder = warp, out

    async def force_reimport(self) -> None:
        """Re-import every particle into a fresh stack generation (for a damaged stack).

        The next job is ab initio. Refused while a job runs.
        """
        self._refuse_while_running("re-import the particles")
        session = self.session
        await asyncio.to_thread(self._store.with_dataset, session.dataset.request_reimport)
        session.state = replace(session.state, next_run_new_particles=True, force_abinit=True)
        await self._store.save()
        self._ctx.log("Full re-import requested: the stack is rebuilt; the next job is ab initio")
        self._ingest.wake()

    async def ingest_now(self, *, settle: bool = False) -> IngestCounts | None:
        """Run an ingest pass now; with ``settle`` (``--once``), repeat until a pass after the
        first finds nothing new and nothing settling (stability needs two looks ≥ 1 s apart; at
        most :data:`SETTLE_PASSES`)."""
        for index in range(SETTLE_PASSES if settle else 1):
            report = await self._ingest.ingest_once()
            if not settle:
                break
            quiet = report is not None and not report.pending and not report.particles_appended
            if index >= 1 and quiet:
                break
            await asyncio.sleep(1.05)
        return self._triggers.counts

    def request_quality(self, cycle: int) -> None:
        """Compute the per-class half-set estimate of ``cycle`` in the background (after the
        one running now, if any); :class:`~live2d_tui.events.ClassQualityReady` follows."""
        self._results.request(cycle)

    # ------------------------------------------------------------------ a cycle's results

    def _completed(self, number: int) -> CycleRecord:
        record = next((c for c in self.session.state.cycles if c.number == number), None)
        if record is None:
            raise SupervisorError(f"there is no completed cycle {number}")
        return record

    async def cycle_results(self, number: int) -> CycleResults:
        """A completed cycle's cached estimate and its marks (carried ones included).

        Raises:
            SupervisorError: no such cycle, or its selection file cannot be read.
        """
        record = self._completed(number)
        cycles = self.session.state.cycles
        try:
            return await asyncio.to_thread(read_results, self.output_folder, record, cycles)
        except SelectionError as exc:
            raise SupervisorError(str(exc)) from None

    async def change_marks(
        self, number: int, change: Callable[[Selection], Selection]
    ) -> CycleResults:
        """Apply a user's change to a completed cycle's marks and save them
        (``cycle_<N>.selection.json``, atomically, under the selection lock).

        Raises:
            SupervisorError: no such cycle, or the file cannot be read or written.
        """
        record = self._completed(number)
        cycles = self.session.state.cycles
        links = cycle_links(cycles)

        def apply() -> CycleResults:
            change_selection(self.output_folder, number, links, change)
            return read_results(self.output_folder, record, cycles)

        try:
            async with self._marks_lock:
                return await asyncio.to_thread(apply)
        except (SelectionError, OSError) as exc:
            message = f"the class marks of cycle {number} were not saved: {exc}"
            raise SupervisorError(message) from None

    async def toggle_mark(self, number: int, class_number: int) -> CycleResults:
        """One class of a completed cycle: unmarked → good → bad → unmarked (see
        :meth:`change_marks`)."""
        if not 1 <= class_number <= class_count(self._completed(number)):
            raise SupervisorError(f"cycle {number} has no class {class_number}")
        return await self.change_marks(number, lambda s: s.toggled(class_number))

    async def select_by_rules(
        self, number: int, *, min_members: int | None, better_than: float | None
    ) -> CycleResults:
        """Mark every class of a completed cycle good when it meets each rule given (at least
        ``min_members`` members, a half-set figure finer than ``better_than`` Å), else bad.

        Raises:
            SupervisorError: no rule, no such cycle, or the marks cannot be saved.
        """
        record = self._completed(number)
        if min_members is None and better_than is None:
            raise SupervisorError("give at least one rule (minimum members, resolution)")
        results = await self.cycle_results(number)
        counts = record.particle_count_per_class
        classes = [
            (k, counts[k] if k < len(counts) else 0, results.figure(k))
            for k in range(1, class_count(record) + 1)
        ]
        marks = rule_marks(classes, min_members=min_members, better_than=better_than)
        return await self.change_marks(number, lambda s: s.with_marks(dict(marks)))

    async def export(self, number: int, request: ExportRequest) -> ExportSummary:
        """Export classes of a completed cycle into the output folder's ``exports/`` under a
        new name (:func:`~live2d_tui.supervisor.results.export_classes`); warnings are logged
        and in the summary.

        Raises:
            SupervisorError: nothing to export, or a file cannot be read or written.
        """
        record = self._completed(number)

        def run() -> ExportSummary:
            return export_classes(self.output_folder, record, self.session.warp_folder, request)

        try:
            summary = await asyncio.to_thread(run)
        except (ExportError, OSError, ValueError) as exc:
            raise SupervisorError(f"export of cycle {number}: {exc}") from None
        for warning in summary.warnings:
            self._ctx.log(f"Export: {warning}", "warning")
        self._ctx.log(summary.line())
        return summary

    async def report(self, number: int) -> Path:
        """Write a completed cycle's report PNG into ``exports/`` under a new name, with the
        figures computed so far; returns its path.

        Raises:
            SupervisorError: a file cannot be read or written.
        """
        record = self._completed(number)
        cycles = self.session.state.cycles
        name = self.session.state.session_name

        def run() -> Path:
            files = cycle_files(self.output_folder, record)
            folder = self.output_folder
            quality = read_cached(folder, number, star=files.star, classes=files.classes)
            target = report_target(self.output_folder, number)
            write_cycle_report(self.output_folder, name, record, cycles, quality, target)
            return target

        try:
            target = await asyncio.to_thread(run)
        except (ExportError, SelectionError, OSError, ValueError) as exc:
            raise SupervisorError(f"report of cycle {number}: {exc}") from None
        self._ctx.log(f"Wrote the report of cycle {number} to {target}")
        return target

    async def wait_job(self) -> None:
        """Return when no job task runs (at once when none does)."""
        await self._jobs.wait()

    def snapshot(self) -> SupervisorSnapshot:
        """The current view of the session (immutable)."""
        session = self.session
        state = session.state
        job = self._jobs.job
        current = self._jobs.current
        return SupervisorSnapshot(
            status=self._store.status,
            warp_folder=session.warp_folder,
            output_folder=session.output_folder,
            session_name=state.session_name,
            microscope_name=self.config.server.microscope_name,
            settings=state.settings,
            automatic=state.automatic,
            cycles=state.history,
            ingest=self._triggers.counts,
            warp=session.warp_summary(),
            engine=session.programs.describe(),
            pool_size=self.config.server.effective_pool_size(),
            job_kind=self._jobs.kind if job else None,
            job_cycle=current.index_in_job if job and current else 0,
            job_cycles=job.cycles_total if job else 0,
            running_cycle_number=current.number if job and current else None,
            last_error=state.last_error,
            next_trigger=self._triggers.next_trigger,
            stream=stream.state_event() if (stream := self._jobs.stream) is not None else None,
        )

    async def _open(
        self,
        warp: Path,
        out: Path,
        *,
        resume: bool,
        reguess: bool,
        automatic: bool | None = None,
    ) -> None:
        session = await asyncio.to_thread(
            open_session,
            self.config,
            warp,
            out,
            log=self._ctx.log_threadsafe,
            publish=self._ctx.publish_threadsafe,
            reguess_mask=reguess,
        )
        await self._store.switch_to(session)  # the previous session is saved, then closed
        self._results.switch_to(out)
        self._ingest.reset(session.dataset.generation)
        self._triggers.reset()
        self._jobs.reset()
        for note in session.notes:
            self._ctx.log(note)
        for warning in session.warnings:
            self._ctx.error(warning)
        if session.state.next_run_new_particles:
            # the original's documented remedy for a damaged stack (set in latest_run.json by
            # hand, or a re-import interrupted by a crash): rebuild the stack at the first look
            await asyncio.to_thread(self._store.with_dataset, session.dataset.request_reimport)
            session.state = replace(session.state, force_abinit=True)
            self._ctx.log(
                "A full re-import was requested: the stack is rebuilt; the next job is ab initio"
            )
        state = session.state
        status = SessionStatus.STOPPED
        resume_job: JobRecord | None = None
        if state.status is SessionStatus.FAILED and not state.job:
            status = SessionStatus.FAILED
        if state.job is not None:
            job = state.job
            if resume and state.automatic and self.config.server.resume_automatic:
                self._ctx.log(
                    f"Continuing the interrupted {job.kind.label} job at cycle "
                    f"{job.next_cycle_number} ({job.cycles_done} of {job.cycles_total} done)"
                )
                status = SessionStatus.WAITING
                resume_job = job
                if automatic is False:  # this run's mode wins: no automatic job after this one
                    resume_job = replace(job, automatic=False)
                    state = replace(state, job=resume_job, automatic=False)
                    self._ctx.log("No automatic jobs after it (this run runs one job)")
            else:
                why = (
                    "automatic jobs were off"
                    if not state.automatic
                    else "resume_automatic is off"
                    if resume
                    else "the Warp folder was changed"
                )
                self._ctx.log(
                    f"An interrupted {job.kind.label} job ({job.cycles_done} of "
                    f"{job.cycles_total} cycles done) was not continued ({why}); "
                    "start a job to continue from the last completed cycle"
                )
                state = replace(state, job=None, automatic=False)
        elif state.automatic and resume and self.config.server.resume_automatic:
            if automatic is False:
                state = replace(state, automatic=False)
                self._ctx.log("Automatic jobs were on: not restored (this run runs one job)")
            else:
                status = SessionStatus.WAITING
        else:
            state = replace(state, automatic=False)
        session.state = state
        await self._store.set_status(status, "session opened", force=True)
        await asyncio.to_thread(self._store.write_pointer, warp, out)
        self.bus.publish(SessionChanged(warp_folder=str(warp), output_folder=str(out)))
        if resume_job is not None:
            self._jobs.launch(resume_job)  # at once: start() returns with the job running
        self._ingest.wake()
