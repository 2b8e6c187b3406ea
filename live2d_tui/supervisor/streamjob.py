"""The streaming job: an open-ended job whose cycles are streaming updates.

A job of type ``streaming`` (:class:`StreamJob`, run by the
:class:`~live2d_tui.supervisor.jobrunner.JobRunner`'s job task) works like this:

- **Start.** It continues the stream in ``stream/`` when that stream's last update is the
  session's newest cycle, with the same settings and stack; otherwise it starts a new stream
  from the newest cycle (:meth:`~live2d_tui.classify.streaming.runner.StreamRunner.start`), whose
  first update refines every particle once. So a seeded or refinement job run in between
  makes the next streaming job start afresh from that job's result.
- **Updates.** The trigger loop counts the active particles ingested after the stream's last
  update (:meth:`StreamJob.refresh`) and wakes the job when ``stream_batch`` of them wait, or
  fewer when none has arrived for a while
  (:func:`~live2d_tui.supervisor.triggers.check_stream_trigger`). The job runs one update at a
  time; particles that arrive while an update runs are taken by the next one. Each update is
  a cycle: ``CycleStarted``, progress, ``CycleFinished``, a record in the history. Between
  updates the status stays *running* (the job is alive); :class:`~live2d_tui.events.StreamState`
  says whether an update runs and how many particles wait.
- **History.** An update whose full star was due is recorded in ``cycles`` (its ``.mrc`` and
  ``.star`` are on disk, as ``warp_to_cistem`` needs); the others in ``stream_cycles`` (class
  averages only). After each update the streaming cycles beyond ``stream_keep_cycles`` (and as
  many with a star) are forgotten: records, cycle files and program logs
  (:func:`~live2d_tui.classify.streaming.history.cycles_to_forget`), so ``latest_run.json``
  and the disk stay bounded however long the session runs.
- **Stop** ends the job after the running update (at once between updates) and writes the
  full star of the last update, so the session's newest cycle has both files again. **Abort**
  cancels the running update: the previous cycle stays the newest, its star not written (a
  later job writes it when it needs it: :func:`ensure_last_star`). A job started without
  automatic jobs (``live2d run --once``) runs one update now, whatever waits, then stops.
- **A crash** leaves the job recorded; the next start ends orphaned runs, lets the stream
  remove the files of an update that never committed (``StreamRunner.recover``), records an
  update that committed before the session's state was saved (:func:`adopt_committed_update`),
  and continues the job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.classify.streaming.index import StreamIndexError
from live2d_tui.classify.streaming.runner import (
    StreamError,
    StreamResult,
    StreamRunner,
    StreamSummary,
    UpdateStart,
    settings_key,
)
from live2d_tui.events import BlockType, CycleFinished, CycleStarted, StreamState
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobs import JobOutcome
from live2d_tui.supervisor.state import CycleRecord, JobRecord
from live2d_tui.supervisor.store import SessionStore
from live2d_tui.supervisor.streamhistory import (
    forget_old_updates,
    record_from_update,
    remove_cycle_files,
)

InputsFor = Callable[[CycleRecord | None], tuple[CycleInputs, int, int]]
"""Builds a cycle's inputs from the dataset, with the previous cycle's files: (inputs, stack
rows, dataset generation). Blocking: called in a thread, under the dataset lock."""


class GenerationChanged(Exception):
    """The dataset moved to a new stack generation: the classes no longer fit the stack."""


def stream_of(session_runner: CycleRunner) -> StreamRunner:
    """The stream of the session's output folder."""
    return StreamRunner(session_runner)


async def ensure_last_star(
    store: SessionStore, stream: StreamRunner, log: Callable[[str], None]
) -> CycleRecord | None:
    """The newest cycle whose star is on disk, writing the star of the newest cycle first when
    it is a streaming update without one and the stream still holds it (O(N), once).

    A job that starts from the latest classes reads the latest cycle's star; a streaming update
    writes it only when due, so a job after an aborted stream (or a crash) asks for it here.
    """
    session = store.session
    state = session.state
    last = state.last_cycle
    if last is None or state.has_star(last.number):
        return last
    try:
        index = stream.state()
    except StreamIndexError as exc:
        log(f"The streaming state cannot be read ({exc})")
        index = None
    if index is not None and index.cycle == last.number:
        positions = await asyncio.to_thread(
            store.with_dataset, lambda: session.dataset.active_positions()
        )
        star = await stream.write_full_star(positions)
        if star is not None and star.cycle == last.number:
            session.state = session.state.with_star(last.number, star.rows)
            await store.save()
            log(f"Wrote the full star of cycle {last.number} ({star.rows:,} particles)")
            return session.state.last_cycle_with_star
    fallback = state.last_cycle_with_star
    log(
        f"Cycle {last.number} has no full star and the stream cannot write it; "
        + (f"going on from cycle {fallback.number}" if fallback else "no cycle has a star")
    )
    return fallback


class StreamJob:
    """One streaming job (see the module docstring); made and run by the job runner."""

    def __init__(
        self,
        ctx: SupervisorContext,
        store: SessionStore,
        job: JobRecord,
        inputs_for: InputsFor,
        *,
        publish_job: Callable[[JobRecord], None],
    ) -> None:
        """A streaming job that has not begun.

        Args:
            ctx: The shared context.
            store: The session store (the state is saved there after each update).
            job: The job's record (kind streaming).
            inputs_for: Builds a cycle's inputs (see :data:`InputsFor`).
            publish_job: Told the job's record after each change (the job runner keeps it).
        """
        self.ctx = ctx
        self.store = store
        self.job = job
        self.settings = job.job_settings()
        self.inputs_for = inputs_for
        self.publish_job = publish_job
        self.stream = stream_of(store.session.runner)
        self.current: CyclePlan | None = None
        """The update running now."""
        self.summary: StreamSummary | None = None
        self.waiting = 0
        self.newest_ingested: float | None = None
        self.generation = -1
        self._arrived_at = time.monotonic()
        """When the particles waiting last grew (or the stream began)."""
        self._take_fewer = False
        self._stop = False
        self._wake = asyncio.Event()
        self._published: StreamState | None = None

    @property
    def updating(self) -> bool:
        """An update runs now."""
        return self.current is not None

    @property
    def batch(self) -> int:
        """Active particles that start an update."""
        return self.settings.stream_batch

    @property
    def cursor(self) -> int:
        """The last stack position the stream's classes cover (0 before it began)."""
        return self.summary.cursor_position if self.summary is not None else 0

    def request_stop(self) -> None:
        """End after the running update (at once when none runs)."""
        self._stop = True
        self._wake.set()

    @property
    def idle_seconds(self) -> float:
        """Seconds since the particles waiting last grew (0 when none waits)."""
        return time.monotonic() - self._arrived_at if self.waiting > 0 else 0.0

    def wake(self, *, take_fewer: bool = False) -> None:
        """Enough particles wait: run an update (after the running one, if any);
        ``take_fewer``: with fewer than ``stream_batch`` (none arrived for a while)."""
        if take_fewer:
            self._take_fewer = True
        self._wake.set()

    def state_event(self) -> StreamState | None:
        """The state to show (``None`` before the stream began)."""
        summary = self.summary
        if summary is None:
            return None
        return StreamState(
            cycle=summary.cycle,
            updating=self.updating,
            blocks=summary.blocks,
            particles=summary.particles,
            waiting=self.waiting,
            batch=self.batch,
            newest_ingested=self.newest_ingested,
            pass_number=summary.pass_number,
            pass_done=summary.pass_done,
            dump_bytes=summary.dump_bytes,
            dump_budget_bytes=int(self.settings.stream_dump_gb * 1e9),
            full_star_cycle=summary.full_star_cycle,
        )

    def publish_state(self, *, force: bool = False) -> None:
        """Publish :class:`StreamState` when it changed."""
        event = self.state_event()
        if event is not None and (force or event != self._published):
            self._published = event
            self.ctx.bus.publish(event)

    async def refresh(self) -> int:
        """Count the particles waiting for the next update and the ingest time of the newest
        one in the classes (in a thread, under the dataset lock); publish the state when it
        changed. Returns the particles waiting."""
        if self.summary is None:
            return 0
        dataset = self.store.session.dataset
        cursor = self.cursor

        def count() -> tuple[int, float | None]:
            return dataset.active_count_after(cursor), dataset.appended_at(cursor)

        before = self.waiting
        self.waiting, self.newest_ingested = await asyncio.to_thread(self.store.with_dataset, count)
        if self.waiting > before:
            self._arrived_at = time.monotonic()
        self.publish_state()
        return self.waiting

    # ------------------------------------------------------------------ the job

    async def run(self) -> JobOutcome:
        """Begin or continue the stream, run updates as particles arrive, end on stop (or
        after one update for a job without automatic jobs).

        Raises:
            GenerationChanged: The stack generation changed (the job ends; the next is ab
                initio).
            CycleFailed, OSError, StreamError, ValueError: An update failed (a job failure).
        """
        await self._begin()
        once = not self.job.automatic
        while not self._stop:
            self._wake.clear()
            take_fewer, self._take_fewer = self._take_fewer, False
            result = await self._update(force=once or take_fewer)
            if once and result is not None:
                break
            if result is None and not self._stop:
                await self._wake.wait()
        await self._finish()
        if once and not self._stop:
            return JobOutcome(success=True, message="streaming update done")
        return JobOutcome(success=True, message="streaming stopped", stopped=True)

    async def _begin(self) -> None:
        session = self.store.session
        log = self.ctx.log
        settings = self.settings
        _, _, generation = await asyncio.to_thread(
            self.store.with_dataset, lambda: self.inputs_for(None)
        )
        self.generation = generation
        try:
            index = self.stream.state()
        except StreamIndexError as exc:
            log(f"The streaming state cannot be read ({exc}); a new stream starts")
            index = None
        last = session.state.last_cycle
        if (
            index is not None
            and last is not None
            and index.cycle == last.number
            and index.key == settings_key(settings)
            and Path(index.stack) == session.dataset.stack_path
            and last.generation == generation
        ):
            self.summary = await asyncio.to_thread(self.stream.summary)
            log(
                f"Streaming continues from cycle {index.cycle}: {index.particles:,} particles "
                f"in {len(index.blocks):,} blocks"
            )
        else:
            base = await ensure_last_star(self.store, self.stream, log)
            if base is None:
                raise StreamError("streaming needs classes: run an ab initio job first")
            if base.generation != generation:
                raise GenerationChanged
            inputs, _, _ = await asyncio.to_thread(
                self.store.with_dataset, lambda: self.inputs_for(base)
            )
            await self.stream.start(base.number, inputs, settings)
            self.summary = await asyncio.to_thread(self.stream.summary)
            self.job = replace(self.job, base_cycle_number=base.number)
            session.state = replace(session.state, job=self.job)
            self.publish_job(self.job)
            await self.store.save()
        await self.refresh()
        self.publish_state(force=True)

    async def _update(self, *, force: bool) -> StreamResult | None:
        session = self.store.session
        inputs, rows, generation = await asyncio.to_thread(
            self.store.with_dataset, lambda: self.inputs_for(None)
        )
        if generation != self.generation:
            raise GenerationChanged
        last = session.state.last_cycle
        number = 0 if last is None else last.number + 1
        update = self.job.cycles_done + 1
        limit = float(self.settings.high_res_final)

        def started(plan: UpdateStart) -> None:
            self.current = CyclePlan(
                number=number,
                block_type=BlockType.STREAMING,
                index_in_job=update,
                cycles_in_job=0,
                high_res_limit=limit,
                class_number=0,
                fraction_rule="all",
            )
            refined = plan.new_particles + plan.revisited_particles
            self.ctx.bus.publish(
                CycleStarted(
                    number=number,
                    block_type=BlockType.STREAMING,
                    index_in_job=update,
                    cycles_in_job=0,
                    high_res_limit=limit,
                    particle_count=refined,
                )
            )
            self.ctx.log(
                f"Cycle {number} started (streaming update {update}): "
                f"{plan.new_particles:,} new and {plan.revisited_particles:,} revisited "
                f"particles, high-res limit {limit:.1f} Å"
            )
            self.publish_state()

        try:
            result = await self.stream.update(
                number, inputs, self.settings, force=force, on_start=started
            )
        except BaseException as exc:
            if self.current is not None:
                message = "aborted" if isinstance(exc, asyncio.CancelledError) else str(exc)
                self.ctx.bus.publish(CycleFinished(number=number, success=False, message=message))
            raise
        finally:
            self.current = None
        if result is None:
            return None
        record = record_from_update(
            result,
            settings=self.settings,
            update=update,
            high_res_limit=limit,
            generation=generation,
            input_rows=rows,
        )
        self.job = replace(self.job, next_cycle_number=number + 1, cycles_done=update, attempts=0)
        self.publish_job(self.job)
        state = session.state.with_cycle(record, star=result.star_path is not None)
        state = replace(state, job=self.job, consecutive_failures=0, last_error="")
        state, forgotten = forget_old_updates(state, self.settings.stream_keep_cycles)
        session.state = state
        await self.store.save()
        if forgotten:
            await asyncio.to_thread(remove_cycle_files, session.output_folder, forgotten)
        self.summary = await asyncio.to_thread(self.stream.summary)
        self.ctx.bus.publish(CycleFinished(number=number, success=True))
        self.ctx.log(_update_summary(record, result))
        if forgotten:
            self.ctx.log(
                f"History: forgot streaming cycle(s) {_ranges(forgotten)} "
                f"(keeping {self.settings.stream_keep_cycles} and as many with a full star)"
            )
        await self.refresh()
        self.publish_state(force=True)
        return result

    async def _finish(self) -> None:
        """Write the full star of the last update (the newest cycle gets both files)."""
        session = self.store.session
        last = session.state.last_cycle
        if last is None or session.state.has_star(last.number):
            return
        await ensure_last_star(self.store, self.stream, self.ctx.log)
        self.summary = await asyncio.to_thread(self.stream.summary)
        self.publish_state()


def _update_summary(record: CycleRecord, result: StreamResult) -> str:
    classes = record.particle_count_per_class[1:]
    nonempty = sum(1 for c in classes if c > 0)
    star = "with its full star" if result.star_path else "class averages only"
    return (
        f"Cycle {record.number} (streaming update {record.cycle_number_in_block}) finished in "
        f"{record.duration_seconds:.0f} s: {result.particle_count:,} particles in the classes "
        f"(positions up to {result.cursor_position:,}; {result.new_particles:,} new, "
        f"{result.revisited_particles:,} revisited), {nonempty} of {len(classes)} classes "
        f"populated; {star}"
    )


def _ranges(numbers: list[int]) -> str:
    """``3-7, 9`` for [3, 4, 5, 6, 7, 9]."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)
