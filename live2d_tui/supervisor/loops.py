"""The two background loops: ingest (follow Warp) and triggers (start automatic jobs).

Ingest runs every ``interval`` seconds whatever the status — while waiting, between cycles and
during a cycle (a cycle reads the stack only up to the size it saw at its start, so appends are
safe); new particles join at the next cycle. The trigger loop checks after every ingest pass and
every ``interval`` whether an automatic job should start or a failed one be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from live2d_tui.dataset.ingest import IngestError, IngestReport
from live2d_tui.events import IngestCounts, SessionStatus
from live2d_tui.supervisor.jobloop import JobLoop
from live2d_tui.supervisor.jobs import disk_note
from live2d_tui.supervisor.model import SupervisorError
from live2d_tui.supervisor.triggers import (
    MAX_CONSECUTIVE_FAILURES,
    TriggerCheck,
    check_trigger,
)

PENDING_RECHECK_SECONDS = 1.1
"""Next look when Warp's files are still settling (stability needs two looks ≥ 1 s apart)."""


class IngestTriggerLoops(JobLoop):
    """Ingest and trigger loops of the supervisor."""

    async def _ingest_loop(self) -> None:
        interval = self.config.server.interval
        while True:
            report = await self._ingest_once()
            # files still settling: look again as soon as stability can be judged (≥ 1 s)
            wait = min(interval, PENDING_RECHECK_SECONDS) if report and report.pending else interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ingest_wake.wait(), wait)
            self._ingest_wake.clear()

    async def _ingest_once(self) -> IngestReport | None:
        session = self._session
        if session is None:
            return None

        def work() -> tuple[IngestReport, int, bool] | None:
            with self._ds_lock:
                if self._session is not session:
                    return None  # the Warp folder changed: this dataset is being closed
                dataset = session.dataset
                return dataset.poll(), dataset.generation, dataset.consume_abinitio_flag()

        try:
            result = await asyncio.to_thread(work)
        except IngestError as exc:
            message = f"Ingest failed: {exc}"
            if message != self._last_ingest_error:
                self._last_ingest_error = message
                self._error(message)
            return None
        except Exception as exc:  # the loop must outlive any one bad pass (disk, sqlite, file)
            message = (
                f"Ingest failed: {type(exc).__name__}: {exc}{disk_note(session.output_folder)}; "
                "retrying at the next look"
            )
            if message != self._last_ingest_error:
                self._last_ingest_error = message
                self._error(message)
            return None
        if result is None or session is not self._session:
            return None  # the Warp folder changed while this pass ran
        report, generation, new_generation = result
        self._last_ingest_error = ""
        self._report, self._generation = report, generation
        # report.messages already reached the log through the dataset's log callback
        if report.particles_appended:
            self._log(
                f"Ingested {report.particles_appended:,} new particles: "
                f"{report.particles_active:,} active of {report.particles_total:,} in the stack, "
                f"from {report.micrographs_ingested} micrograph(s)"
            )
        if new_generation or report.new_generation:
            session.state = replace(session.state, force_abinit=True)
            await self._save()
            self._log(
                f"Stack generation {generation} started: the next job starts ab initio "
                "(earlier classes do not fit the new stack)"
            )
        if session.state.next_run_new_particles and report.particles_appended:
            session.state = replace(session.state, next_run_new_particles=False)
            await self._save()
        self._publish_counts()
        self._trigger_wake.set()
        return report

    def _publish_counts(self) -> TriggerCheck | None:
        """Publish the ingest counts (when they changed); return the trigger check they hold."""
        report = self._report
        if report is None or self._session is None:
            return None
        check = check_trigger(
            self._session.state.settings,
            active=report.particles_active,
            stack_rows=report.particles_total,
            generation=self._generation,
            last_cycle=self._session.state.last_cycle,
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
            self.bus.publish(counts)
        return check

    def _update_next_trigger(self, check_text: str) -> None:
        state = self.session.state
        if self.job_running:
            text = "A job is running"
        elif self._status is SessionStatus.FAILED:
            text = "Automatic jobs stopped after repeated failures"
        elif not state.automatic:
            text = f"Automatic jobs off. {check_text}"
        elif self._retry_at is not None and state.job is not None and self._loop is not None:
            wait = max(0.0, self._retry_at - self._loop.time())
            text = (
                f"Retrying the job in {wait:.0f} s "
                f"(attempt {state.consecutive_failures + 1} of {MAX_CONSECUTIVE_FAILURES})"
            )
        else:
            text = check_text
        self._next_trigger = text

    async def _trigger_loop(self) -> None:
        interval = self.config.server.interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trigger_wake.wait(), interval)
            self._trigger_wake.clear()
            try:
                await self._check_trigger()
            except SupervisorError as exc:
                self._error(str(exc))

    async def _check_trigger(self) -> None:
        session = self._session
        if session is None or self.job_running or self._closing:
            return
        state = session.state
        check = self._publish_counts()
        if not state.automatic or self._status is SessionStatus.FAILED:
            return
        if state.job is not None:
            assert self._loop is not None
            if self._retry_at is None or self._loop.time() >= self._retry_at:
                self._launch(state.job)
            return
        if check is not None and check.ready:
            self._log(
                f"Starting an automatic job: {check.particles_new:,} particles ≥ "
                f"{check.threshold:,}"
            )
            self._launch_new_job(automatic=True)
