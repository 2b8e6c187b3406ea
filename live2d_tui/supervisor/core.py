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
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import replace
from pathlib import Path

from live2d_tui.config import JobSettings
from live2d_tui.events import IngestCounts, SessionChanged, SessionStatus
from live2d_tui.paths import output_folder_for, resolve_warp_folder
from live2d_tui.state import JobRecord
from live2d_tui.supervisor.loops import IngestTriggerLoops
from live2d_tui.supervisor.model import SupervisorError, SupervisorSnapshot
from live2d_tui.supervisor.session import Session, close_session, open_session

SETTLE_PASSES = 12
"""At most this many ingest passes (≥ 1 s apart) before ``--once`` starts its job."""


class Supervisor(IngestTriggerLoops):
    """The live classification of one Warp session (see the module docstring)."""

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
        if self._session is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self._open(
            self._warp_folder,
            self._output_folder,
            resume=True,
            reguess=False,
            automatic=automatic,
        )
        self._tasks = [
            asyncio.create_task(self._ingest_loop(), name="live2d-ingest"),
            asyncio.create_task(self._trigger_loop(), name="live2d-trigger"),
        ]

    async def close(self, abort_running: bool = False) -> None:
        """End the loops and release the output folder.

        Args:
            abort_running: Abort a running job (it will not resume). When False, the running
                cycle is ended but the job stays recorded as interrupted, so the next start
                continues it at that cycle (if automatic jobs and ``resume_automatic`` are on).
        """
        if self._closing:
            return
        self._closing = True
        if self.job_running:
            self._keep_job_on_cancel = not abort_running
            await self._cancel_job()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._session is not None:
            await self._save()
            await close_session(self._session, self._ds_lock)
            self._session = None

    async def start_job_now(
        self, settings: JobSettings | None = None, *, continue_automatic: bool = True
    ) -> None:
        """Start a job now with ``settings`` (or the staged ones).

        Args:
            settings: New staged settings (validated) or ``None`` to keep the staged ones.
            continue_automatic: When the job ends, keep running automatic jobs (the original's
                behaviour); ``live2d run --once`` passes False.

        Raises:
            SupervisorError: a job is already running, or the settings are invalid.
        """
        self._refuse_while_running("start a job")
        # No await until the job task exists: the trigger loop must not start one meanwhile.
        if settings is not None:
            self._stage_now(settings)
        self._stop_requested = False
        self.session.state = replace(
            self.session.state, automatic=continue_automatic, consecutive_failures=0
        )
        self._launch_new_job(automatic=continue_automatic)

    async def start_automatic(self, settings: JobSettings | None = None) -> None:
        """Turn automatic jobs on: wait for enough particles, then run jobs one after another.

        Raises:
            SupervisorError: a job is running, or the settings are invalid.
        """
        self._refuse_while_running("start automatic jobs")
        if settings is not None:
            await self._stage(settings)
        self._stop_requested = False
        state = self.session.state
        self.session.state = replace(state, consecutive_failures=0, automatic=True)
        self._retry_at = None
        await self._set_status(SessionStatus.WAITING, "automatic jobs on")
        self._log("Automatic jobs on: waiting for new particles")
        self._trigger_wake.set()

    async def stop(self) -> None:
        """Stop all jobs: the running cycle finishes, then the job ends; automatic jobs stop."""
        await self._set_automatic(False)
        self._retry_at = None
        if self.job_running:
            self._stop_requested = True
            await self._set_status(SessionStatus.STOPPING, "stop requested")
            self._log("Stop requested: the job ends after the running cycle")
            return
        if self.session.state.job is not None:
            self.session.state = replace(self.session.state, job=None)
        await self._set_status(SessionStatus.STOPPED, "stopped by the user")
        self._log("Automatic jobs stopped")

    async def abort(self) -> None:
        """Abort now: the running cycle is terminated and its partial outputs removed."""
        await self._set_automatic(False)
        self._retry_at = None
        if self.job_running:
            self._keep_job_on_cancel = False
            self._log("Abort requested: terminating the running cycle")
            await self._cancel_job()
        else:
            self.session.state = replace(self.session.state, job=None)
            await self._set_status(SessionStatus.STOPPED, "aborted by the user")

    async def update_settings(self, settings: JobSettings) -> None:
        """Stage new job settings for the next job.

        Raises:
            SupervisorError: a job is running, or the settings are invalid.
        """
        self._refuse_while_running("change the settings")
        await self._stage(settings)
        self._trigger_wake.set()

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
        old = self._session
        if old is not None:
            await self._set_automatic(False)
            await self._set_status(SessionStatus.STOPPED, "changing Warp folder")
            self._log(f"Changing Warp folder to {warp}")
        await self._open(warp, out, resume=False, reguess=True, previous=old)
        self._warp_folder, self._output_folder = warp, out

    async def force_reimport(self) -> None:
        """Re-import every particle into a fresh stack generation (for a damaged stack).

        The next job is ab initio. Refused while a job runs.
        """
        self._refuse_while_running("re-import the particles")
        session = self.session
        await asyncio.to_thread(self._with_dataset, session.dataset.request_reimport)
        session.state = replace(session.state, next_run_new_particles=True, force_abinit=True)
        await self._save()
        self._log("Full re-import requested: the stack is rebuilt; the next job is ab initio")
        self._ingest_wake.set()

    async def ingest_now(self, *, settle: bool = False) -> IngestCounts | None:
        """Run an ingest pass now; with ``settle`` (``--once``), repeat until a pass after the
        first finds nothing new and nothing settling (stability needs two looks ≥ 1 s apart; at
        most :data:`SETTLE_PASSES`)."""
        for index in range(SETTLE_PASSES if settle else 1):
            report = await self._ingest_once()
            if not settle:
                break
            quiet = report is not None and not report.pending and not report.particles_appended
            if index >= 1 and quiet:
                break
            await asyncio.sleep(1.05)
        return self._counts

    async def wait_job(self) -> None:
        """Return when no job task runs (at once when none does)."""
        task = self._job_task
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    def snapshot(self) -> SupervisorSnapshot:
        """The current view of the session (immutable)."""
        session = self.session
        state = session.state
        job = self._job if self.job_running else None
        return SupervisorSnapshot(
            status=self._status,
            warp_folder=session.warp_folder,
            output_folder=session.output_folder,
            session_name=state.session_name,
            microscope_name=self.config.server.microscope_name,
            settings=state.settings,
            automatic=state.automatic,
            cycles=state.cycles,
            ingest=self._counts,
            warp=session.warp_summary(),
            engine=session.programs.describe(),
            pool_size=self.config.server.effective_pool_size(),
            job_kind=self._job_kind if job else None,
            job_cycle=self._current.index_in_job if job and self._current else 0,
            job_cycles=job.cycles_total if job else 0,
            running_cycle_number=self._current.number if job and self._current else None,
            last_error=state.last_error,
            next_trigger=self._next_trigger,
        )

    async def _open(
        self,
        warp: Path,
        out: Path,
        *,
        resume: bool,
        reguess: bool,
        previous: Session | None = None,
        automatic: bool | None = None,
    ) -> None:
        session = await asyncio.to_thread(
            open_session,
            self.config,
            warp,
            out,
            log=self._log_threadsafe,
            publish=self._publish_threadsafe,
            reguess_mask=reguess,
        )
        if previous is not None:
            await self._save()  # the previous session's state, before the swap
        self._session = session  # no await since the save: nothing runs on a half swap
        if previous is not None:
            await close_session(previous, self._ds_lock)
        self._report, self._counts = None, None
        self._job, self._job_kind, self._current = None, None, None
        self._retry_at = None
        for note in session.notes:
            self._log(note)
        for warning in session.warnings:
            self._error(warning)
        self._generation = session.dataset.generation
        if session.state.next_run_new_particles:
            # the original's documented remedy for a damaged stack (set in latest_run.json by
            # hand, or a re-import interrupted by a crash): rebuild the stack at the first look
            await asyncio.to_thread(self._with_dataset, session.dataset.request_reimport)
            session.state = replace(session.state, force_abinit=True)
            self._log(
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
                self._log(
                    f"Continuing the interrupted {job.kind.label} job at cycle "
                    f"{job.next_cycle_number} ({job.cycles_done} of {job.cycles_total} done)"
                )
                status = SessionStatus.WAITING
                resume_job = job
                if automatic is False:  # this run's mode wins: no automatic job after this one
                    resume_job = replace(job, automatic=False)
                    state = replace(state, job=resume_job, automatic=False)
                    self._log("No automatic jobs after it (this run runs one job)")
            else:
                why = (
                    "automatic jobs were off"
                    if not state.automatic
                    else "resume_automatic is off"
                    if resume
                    else "the Warp folder was changed"
                )
                self._log(
                    f"An interrupted {job.kind.label} job ({job.cycles_done} of "
                    f"{job.cycles_total} cycles done) was not continued ({why}); "
                    "start a job to continue from the last completed cycle"
                )
                state = replace(state, job=None, automatic=False)
        elif state.automatic and resume and self.config.server.resume_automatic:
            if automatic is False:
                state = replace(state, automatic=False)
                self._log("Automatic jobs were on: not restored (this run runs one job)")
            else:
                status = SessionStatus.WAITING
        else:
            state = replace(state, automatic=False)
        session.state = state
        await self._set_status(status, "session opened", force=True)
        await asyncio.to_thread(self._write_pointer, warp, out)
        self.bus.publish(SessionChanged(warp_folder=str(warp), output_folder=str(out)))
        if resume_job is not None:
            self._launch(resume_job)  # at once: start() returns with the job running
        self._ingest_wake.set()
