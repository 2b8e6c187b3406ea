"""The two background loops: ingest (follow Warp) and triggers (start automatic jobs).

Ingest runs every ``interval`` seconds whatever the status — while waiting, between cycles and
during a cycle (a cycle reads the stack only up to the size it saw at its start, so appends are
safe); new particles join at the next cycle. The trigger loop checks after every ingest pass and
every ``interval`` whether an automatic job should start or a failed one be retried.

:class:`IngestLoop` knows the session store only: after each pass it hands over to whoever was
given as ``after_pass``. :class:`TriggerLoop` reads the ingest loop's last report and starts jobs
through the :class:`~live2d_tui.supervisor.jobrunner.JobRunner`; the rules themselves are the
pure functions of :mod:`~live2d_tui.supervisor.triggers`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace

from live2d_tui.config import ClassificationType
from live2d_tui.dataset.ingest import IngestError, IngestReport
from live2d_tui.events import IngestCounts, SessionStatus
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobrunner import JobRunner
from live2d_tui.supervisor.jobs import disk_note
from live2d_tui.supervisor.model import SupervisorError
from live2d_tui.supervisor.store import SessionStore
from live2d_tui.supervisor.triggers import (
    MAX_CONSECUTIVE_FAILURES,
    TriggerCheck,
    check_stream_trigger,
    check_trigger,
)

PENDING_RECHECK_SECONDS = 0.2
"""Next look while Warp's files are still settling. A file is read once its (size, mtime) has
stayed the same for the settle time (1 s); the stability tracker keeps when a signature was first
seen, so looking more often does not restart that clock: it sees a rewrite, and then the end of
the settle time, within 0.2 s. Looks 1.1 s apart needed the table to stay unchanged for 1.1 s
*after* the look that first saw it, so a table Warp rewrites every 1.2–1.5 s was mostly caught
by the next rewrite and read seconds late (or, at one movie a second, not at all until Warp
stopped). A look at settling files costs a few ``stat`` calls."""


def next_look(interval: float, pending: bool) -> float:
    """Seconds until the next ingest pass: ``interval``, or sooner while files settle."""
    return min(interval, PENDING_RECHECK_SECONDS) if pending else interval


class IngestLoop:
    """Follows the Warp folder: one ingest pass every ``interval`` seconds (see the module
    docstring)."""

    def __init__(
        self, ctx: SupervisorContext, store: SessionStore, *, after_pass: Callable[[], None]
    ) -> None:
        """An ingest loop that has not looked yet.

        Args:
            ctx: The shared context.
            store: The session store (its session's dataset is polled, under its lock).
            after_pass: Called after each pass that produced a report.
        """
        self.ctx = ctx
        self.store = store
        self._after_pass = after_pass
        self._report: IngestReport | None = None
        self._generation = 0
        self._last_ingest_error = ""
        self._ingest_wake = asyncio.Event()

    @property
    def report(self) -> IngestReport | None:
        """The last pass's report (``None`` before the first pass of this session)."""
        return self._report

    @property
    def generation(self) -> int:
        """The dataset's stack generation as of the last pass."""
        return self._generation

    def reset(self, generation: int) -> None:
        """Forget the last report (another session was opened, at ``generation``)."""
        self._report = None
        self._generation = generation

    def wake(self) -> None:
        """Look now rather than at the end of the interval."""
        self._ingest_wake.set()

    async def run(self) -> None:
        """The loop (a task until cancelled)."""
        interval = self.ctx.config.server.interval
        while True:
            report = await self.ingest_once()
            # files still settling: look again soon (see PENDING_RECHECK_SECONDS)
            wait = next_look(interval, report is not None and report.pending)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ingest_wake.wait(), wait)
            self._ingest_wake.clear()

    async def ingest_once(self) -> IngestReport | None:
        """One pass now: poll the dataset (in a thread), log, note a new generation, then hand
        over to ``after_pass``. Never raises: a failed pass is reported once and returns ``None``.
        """
        session = self.store.current
        if session is None:
            return None

        def work() -> tuple[IngestReport, int, bool] | None:
            if self.store.current is not session:
                return None  # the Warp folder changed: this dataset is being closed
            dataset = session.dataset
            return dataset.poll(), dataset.generation, dataset.consume_abinitio_flag()

        try:
            result = await asyncio.to_thread(self.store.with_dataset, work)
        except IngestError as exc:
            message = f"Ingest failed: {exc}"
            if message != self._last_ingest_error:
                self._last_ingest_error = message
                self.ctx.error(message)
            return None
        except Exception as exc:  # the loop must outlive any one bad pass (disk, sqlite, file)
            message = (
                f"Ingest failed: {type(exc).__name__}: {exc}{disk_note(session.output_folder)}; "
                "retrying at the next look"
            )
            if message != self._last_ingest_error:
                self._last_ingest_error = message
                self.ctx.error(message)
            return None
        if result is None or session is not self.store.current:
            return None  # the Warp folder changed while this pass ran
        report, generation, new_generation = result
        self._last_ingest_error = ""
        self._report, self._generation = report, generation
        # report.messages already reached the log through the dataset's log callback
        if report.particles_appended:
            self.ctx.log(
                f"Ingested {report.particles_appended:,} new particles: "
                f"{report.particles_active:,} active of {report.particles_total:,} in the stack, "
                f"from {report.micrographs_ingested} micrograph(s)"
            )
        if new_generation or report.new_generation:
            session.state = replace(session.state, force_abinit=True)
            await self.store.save()
            self.ctx.log(
                f"Stack generation {generation} started: the next job starts ab initio "
                "(earlier classes do not fit the new stack)"
            )
        if session.state.next_run_new_particles and report.particles_appended:
            session.state = replace(session.state, next_run_new_particles=False)
            await self.store.save()
        self._after_pass()
        return report


class TriggerLoop:
    """Starts automatic jobs and retries failed ones (see the module docstring); owns the ingest
    counts shown to the user and the text saying when the next job starts."""

    def __init__(
        self, ctx: SupervisorContext, store: SessionStore, ingest: IngestLoop, jobs: JobRunner
    ) -> None:
        """A trigger loop over ``ingest``'s reports, starting jobs through ``jobs``."""
        self.ctx = ctx
        self.store = store
        self.ingest = ingest
        self.jobs = jobs
        self._counts: IngestCounts | None = None
        self._next_trigger = ""
        self._trigger_wake = asyncio.Event()

    @property
    def counts(self) -> IngestCounts | None:
        """The ingest counts last published."""
        return self._counts

    @property
    def next_trigger(self) -> str:
        """When the next automatic job starts (or why it does not)."""
        return self._next_trigger

    def reset(self) -> None:
        """Forget the counts (another session was opened)."""
        self._counts = None

    def wake(self) -> None:
        """Check now rather than at the end of the interval."""
        self._trigger_wake.set()

    def job_started(self) -> None:
        """A job's task began."""
        self._next_trigger = "A job is running"

    def after_ingest(self) -> None:
        """An ingest pass ended: publish its counts and check at once."""
        self.publish_counts()
        self._trigger_wake.set()

    def publish_counts(self) -> TriggerCheck | None:
        """Publish the ingest counts (when they changed); return the trigger check they hold."""
        report = self.ingest.report
        session = self.store.current
        if report is None or session is None:
            return None
        stream = self.jobs.stream
        if stream is not None:
            check = check_stream_trigger(
                batch=stream.batch,
                waiting=stream.waiting,
                updating=stream.updating,
                idle_seconds=stream.idle_seconds,
            )
        else:
            check = check_trigger(
                session.state.settings,
                active=report.particles_active,
                stack_rows=report.particles_total,
                generation=self.ingest.generation,
                last_cycle=session.state.last_cycle,
            )
        self._update_next_trigger(check.text)
        counts = IngestCounts(
            micrographs_seen=report.micrographs_seen,
            micrographs_ingested=report.micrographs_ingested,
            micrographs_deferred=report.micrographs_deferred,
            micrographs_inactive=report.micrographs_inactive,
            particles_active=report.particles_active,
            particles_total=report.particles_total,
            particles_new=check.particles_new,
            next_threshold=check.threshold,
        )
        if counts != self._counts:
            self._counts = counts
            self.ctx.bus.publish(counts)
        return check

    def _update_next_trigger(self, check_text: str) -> None:
        state = self.store.session.state
        if self.jobs.stream is not None:
            text = check_text
        elif self.jobs.running:
            text = "A job is running"
        elif self.store.status is SessionStatus.FAILED:
            text = "Automatic jobs stopped after repeated failures"
        elif not state.automatic:
            text = f"Automatic jobs off. {check_text}"
        elif self.jobs.retry_at is not None and state.job is not None and self.ctx.loop is not None:
            wait = max(0.0, self.jobs.retry_at - self.ctx.loop.time())
            text = (
                f"Retrying the job in {wait:.0f} s "
                f"(attempt {state.consecutive_failures + 1} of {MAX_CONSECUTIVE_FAILURES})"
            )
        else:
            text = check_text
        self._next_trigger = text

    async def run(self) -> None:
        """The loop (a task until cancelled)."""
        interval = self.ctx.config.server.interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger_wake.wait(), interval)
            self._trigger_wake.clear()
            try:
                await self.check()
            except SupervisorError as exc:
                self.ctx.error(str(exc))

    async def check(self) -> None:
        """Start an automatic job when its trigger is met, or retry a failed one when due; wake
        the streaming job when enough particles wait for its next update."""
        session = self.store.current
        if session is None or self.jobs.closing:
            return
        stream = self.jobs.stream
        if stream is not None:
            await stream.refresh()
            check = self.publish_counts()
            if check is not None and check.ready and self.jobs.stream is stream:
                stream.wake(take_fewer=check.particles_new < check.threshold)
            return
        if self.jobs.running:
            return
        state = session.state
        check = self.publish_counts()
        if not state.automatic or self.store.status is SessionStatus.FAILED:
            return
        if state.job is not None:
            assert self.ctx.loop is not None
            if self.jobs.retry_at is None or self.ctx.loop.time() >= self.jobs.retry_at:
                self.jobs.launch(state.job)
            return
        if check is not None and check.ready:
            if state.settings.classification_type is ClassificationType.STREAMING:
                self.ctx.log(f"Starting an automatic job: {check.text.lower()}")
            else:
                self.ctx.log(
                    f"Starting an automatic job: {check.particles_new:,} particles ≥ "
                    f"{check.threshold:,}"
                )
            self.jobs.launch_new(automatic=True, generation=self.ingest.generation)
