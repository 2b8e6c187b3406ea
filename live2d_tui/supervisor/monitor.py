"""The health monitor: the Session tab's data and the alerts, as one part of the supervisor.

:class:`HealthMonitor` runs a loop beside ingest and triggers:

- every few seconds (at most every ``interval``) it looks at the output folder's free space, in a
  thread, and at the CPU time of the running cycle;
- every :func:`scan_seconds` (a quarter of ``stall_minutes``, between ``interval`` and 30 s), and
  after a cycle, on a new session or after an ingest pass that saw more movies or particles
  (so the particle table's counts reach the tab as soon as ingest has read it), a **scan** in
  a worker thread reads the movie XML that are new or changed
  (:class:`~live2d_tui.warp.catalog.MovieCatalog`), takes the particle table's movies, builds
  the series of :mod:`live2d_tui.health` and publishes them
  (:class:`~live2d_tui.events.HealthUpdated`). The event loop only receives the result: the
  scan's cost (a directory listing, a ``stat`` per XML, a parse per new XML and a few numpy passes)
  never runs on it, and one scan runs at a time;
- it feeds the rules of :mod:`.alerts` and publishes what they decide.

Where each alert goes: a line in the session log (level ``alert``; its end ``Alert ended: …``),
the :class:`~live2d_tui.events.AlertRaised` / :class:`~live2d_tui.events.AlertCleared` events
(the UI turns them into notifications, ``live2d run`` prints the log line) and the configured
command hook (:class:`~live2d_tui.notify.hook.HookRunner`, in the background).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from live2d_tui import disk
from live2d_tui.events import (
    AlertCleared,
    AlertKind,
    AlertLevel,
    AlertRaised,
    BlockType,
    CycleFinished,
    CycleStarted,
    Event,
    HealthUpdated,
    IngestCounts,
    JobFinished,
    SessionChanged,
    SessionStatus,
    StatusChanged,
)
from live2d_tui.health import CycleClasses, MovieArrays, SessionHealth, prepare_health
from live2d_tui.notify.hook import HookRunner, alert_payload
from live2d_tui.supervisor import alerts
from live2d_tui.supervisor.alerts import (
    AlertBook,
    DiskWatch,
    Flow,
    RunningCycle,
    Sighting,
    StallWatch,
)
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobrunner import JobRunner
from live2d_tui.supervisor.session import Session
from live2d_tui.supervisor.state import CycleRecord
from live2d_tui.supervisor.store import SessionStore
from live2d_tui.supervisor.triggers import MAX_CONSECUTIVE_FAILURES
from live2d_tui.warp.catalog import MovieCatalog, MovieEntry
from live2d_tui.warp.source import TableView

MAX_SCAN_SECONDS = 30.0
"""Longest time between two scans of the movie XML."""
JOB_KINDS = (AlertKind.JOB_FINISHED, AlertKind.JOB_STOPPED, AlertKind.JOB_FAILED)


def scan_seconds(interval: float, stall_minutes: float) -> float:
    """Time between scans: a quarter of the stall time, at least ``interval``, at most 30 s."""
    return max(interval, min(MAX_SCAN_SECONDS, stall_minutes * 60.0 / 4))


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one scan found (made in a worker thread)."""

    health: SessionHealth
    sighting: Sighting
    times: dict[str, float]
    errors: int


def movie_arrays(movies: Sequence[MovieEntry], view: TableView | None) -> MovieArrays:
    """The per-movie inputs of :func:`~live2d_tui.health.prepare_health`: a movie's verdict is
    known when the table was written after a later movie was processed."""
    n = len(movies)
    if n == 0:
        return MovieArrays.empty()
    time = np.fromiter((m.time for m in movies), dtype=np.float64, count=n)
    nan = float("nan")
    resolution = np.fromiter(
        (m.ctf.resolution if m.ctf and m.ctf.resolution is not None else nan for m in movies),
        dtype=np.float64,
        count=n,
    )
    defocus = np.fromiter(
        (m.ctf.defocus if m.ctf and m.ctf.defocus is not None else nan for m in movies),
        dtype=np.float64,
        count=n,
    )
    counts = view.counts if view is not None else {}
    particles = np.fromiter((counts.get(m.root, 0) for m in movies), dtype=np.int64, count=n)
    in_table = particles > 0
    if view is None:
        known = np.zeros(n, dtype=bool)
    else:
        written_before = time[time <= view.time]
        decided_until = float(written_before.max()) if written_before.size else -np.inf
        known = time < decided_until
    return MovieArrays(time, resolution, defocus, particles, in_table, known)


def cycle_classes(cycles: Sequence[CycleRecord]) -> list[CycleClasses]:
    """The class populations' inputs from the cycle history."""
    return [
        CycleClasses(
            number=c.number,
            generation=c.generation,
            seed=c.block_type is BlockType.RANDOM_SEED,
            members=c.particle_count_per_class,
        )
        for c in cycles
    ]


def run_scan(catalog: MovieCatalog, session: Session, cycles: Sequence[CycleRecord]) -> ScanResult:
    """One scan (blocking: a worker thread). The particle table is read without the dataset
    lock: :meth:`~live2d_tui.dataset.ingest.Dataset.table_view` only takes a reference to an
    accepted snapshot, which is never changed."""
    scan = catalog.scan()
    view = session.dataset.table_view()
    arrays = movie_arrays(scan.movies, view)
    decided = arrays.verdict_known
    kept = frozenset(
        m.root for m, keep in zip(scan.movies, decided & arrays.in_table, strict=True) if keep
    )
    rejected = frozenset(
        m.root for m, out in zip(scan.movies, decided & ~arrays.in_table, strict=True) if out
    )
    newest = max(scan.movies, key=lambda m: m.time, default=None)
    health = prepare_health(arrays, cycle_classes(cycles), table_name=view.name if view else "")
    return ScanResult(
        health=health,
        sighting=Sighting(
            new=scan.new,
            kept=kept,
            rejected=rejected,
            latest=(newest.root, newest.time) if newest else None,
        ),
        times={m.root: m.time for m in scan.movies},
        errors=len(scan.errors),
    )


class HealthMonitor:
    """The Session tab's data and the alerts (see the module docstring)."""

    def __init__(self, ctx: SupervisorContext, store: SessionStore, jobs: JobRunner) -> None:
        """A monitor that has not looked yet; subscribe :meth:`on_event` to the bus."""
        server = ctx.config.server
        self.ctx = ctx
        self.store = store
        self.jobs = jobs
        self.book = AlertBook()
        self.hooks = HookRunner(
            server.alert_hook,
            timeout=server.alert_hook_timeout,
            cwd=None,
            log=lambda text, level: self.ctx.log(text, level),
        )
        self.health: SessionHealth | None = None
        """The latest series published."""
        self._catalog: MovieCatalog | None = None
        self._session: Session | None = None
        self._stall = StallWatch()
        self._disk = DiskWatch()
        self._automatic_since: float | None = None
        self._running: RunningCycle | None = None
        self._scan: asyncio.Task[None] | None = None
        self._disk_check: asyncio.Task[None] | None = None
        self._rescan = True
        self._wake = asyncio.Event()
        self._last_scan = -1e18
        self._ingested: tuple[int, int] | None = None
        """Movies seen and particles in the stack at the last ingest pass."""

    # ------------------------------------------------------------------ wiring

    def on_event(self, event: Event) -> None:
        """React to the supervisor's own events (on the loop's thread)."""
        match event:
            case SessionChanged():
                self.reset()
            case CycleStarted() as started:
                self._running = RunningCycle(
                    number=started.number,
                    high_res_limit=started.high_res_limit,
                    particles=started.particle_count,
                    fraction=started.fraction_used,
                    seed=started.block_type is BlockType.RANDOM_SEED,
                )
            case CycleFinished(number=number, success=success):
                self._running = None
                if success:
                    self._judge_cycle(number)
                self._rescan = True  # the class populations changed
                self._wake.set()
            case JobFinished() as finished:
                self._running = None
                self._job_ended(finished)
            case IngestCounts() as counts:
                ingested = (counts.micrographs_seen, counts.particles_total)
                if ingested != self._ingested:  # the table changed: its counts are news
                    self._ingested = ingested
                    self._rescan = True
                    self._wake.set()
            case StatusChanged(status=SessionStatus.RUNNING):
                for kind in JOB_KINDS:
                    self._clear(kind, "a new job started", notify=False)
            case _:
                pass

    def reset(self) -> None:
        """Another session was opened: forget what was seen; the alerts of the previous one end
        without a log line or a hook (they belong to the other session)."""
        for cleared in self.book.clear_all():
            self.ctx.bus.publish(cleared)
        session = self.store.current
        self._session = session
        self._catalog = MovieCatalog(session.dataset.xml_folders) if session else None
        self.hooks.cwd = session.output_folder if session else None
        self._stall = StallWatch()
        self._disk = DiskWatch()
        self._automatic_since = None
        self._running = None
        self._ingested = None
        self._rescan = True
        self._wake.set()

    async def close(self) -> None:
        """Stop the loop's work and let the last hooks finish (briefly)."""
        for task in (self._scan, self._disk_check):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.hooks.close()

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """The loop (a task until cancelled)."""
        server = self.ctx.config.server
        tick = min(server.interval, 5.0)
        every = scan_seconds(server.interval, server.stall_minutes)
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self._follow_automatic(now)
            if self._rescan or now - self._last_scan >= every:
                self._start_scan(now)
            self._start_disk_check()
            self._judge_running()
            self._judge_flow(loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), tick)
            self._wake.clear()

    def _follow_automatic(self, now: float) -> None:
        session = self.store.current
        automatic = (
            session is not None
            and session.state.automatic
            and self.store.status is not SessionStatus.FAILED
        )
        if automatic and self._automatic_since is None:
            self._automatic_since = now
        elif not automatic:
            self._automatic_since = None

    def _start_scan(self, now: float) -> None:
        session, catalog = self.store.current, self._catalog
        if session is None or catalog is None or session is not self._session:
            return
        if self._scan is not None and not self._scan.done():
            return
        self._rescan = False
        self._last_scan = now
        cycles = session.state.cycles
        self._scan = asyncio.create_task(self._scan_once(catalog, session, cycles))

    async def _scan_once(
        self, catalog: MovieCatalog, session: Session, cycles: Sequence[CycleRecord]
    ) -> None:
        try:
            result = await asyncio.to_thread(run_scan, catalog, session, cycles)
        except Exception as exc:  # one bad scan must not end the monitor
            self.ctx.log(f"Session health: scan failed: {type(exc).__name__}: {exc}", "warning")
            return
        if session is not self.store.current or catalog is not self._catalog:
            return  # another session was opened meanwhile
        now = asyncio.get_running_loop().time()
        self._stall.observe(now, result.sighting, result.times)
        if result.health != self.health:
            self.health = result.health
            self.ctx.bus.publish(HealthUpdated(result.health))
        self._judge_flow(now)

    def _start_disk_check(self) -> None:
        session = self.store.current
        margin = self.ctx.config.server.disk_alert_gb
        if session is None or margin <= 0:
            return
        if self._disk_check is not None and not self._disk_check.done():
            return  # a slow filesystem: one look at a time
        self._disk_check = asyncio.create_task(self._check_disk(session))

    async def _check_disk(self, session: Session) -> None:
        try:
            free = await asyncio.to_thread(disk.free_bytes, session.output_folder)
        except OSError:
            return
        if session is not self.store.current:
            return
        server = self.ctx.config.server
        margin = server.disk_alert_gb * 1e9
        self._disk.sample(asyncio.get_running_loop().time(), free)
        if free < margin:
            self._raise(
                AlertKind.DISK_LOW,
                AlertLevel.WARNING,
                self._disk.low_text(free, server.disk_alert_gb, server.min_free_gb),
            )
        elif free >= margin * alerts.DISK_CLEAR_FACTOR:
            self._clear(
                AlertKind.DISK_LOW,
                f"The output folder's disk has room again: {free / 1e9:.1f} GB free",
                notify=True,
            )

    # ------------------------------------------------------------------ the rules

    def _judge_flow(self, now: float) -> None:
        stall_seconds = self.ctx.config.server.stall_minutes * 60.0
        flow = self._stall.judge(now, self._automatic_since, stall_seconds)
        stalled = self.book.is_active(AlertKind.WARP_STALLED)
        rejected = self.book.is_active(AlertKind.ALL_REJECTED)
        if flow is Flow.OFF:
            for kind in (AlertKind.WARP_STALLED, AlertKind.ALL_REJECTED):
                self._clear(kind, "automatic jobs are off", notify=False)
            return
        if flow is not Flow.STALLED and stalled:
            self._clear(
                AlertKind.WARP_STALLED,
                f"Warp resumed: {self._stall.since_stall} new movie(s)",
                notify=True,
            )
        if flow is Flow.STALLED:
            self._clear(AlertKind.ALL_REJECTED, "Warp stopped writing movies", notify=False)
            if not stalled:
                self._stall.since_stall = 0
                self._raise(
                    AlertKind.WARP_STALLED, AlertLevel.WARNING, self._stall.stalled_text(now)
                )
        elif flow is Flow.REJECTED:
            table = self.health.table_name if self.health else ""
            self._raise(
                AlertKind.ALL_REJECTED, AlertLevel.WARNING, self._stall.rejected_text(now, table)
            )
        elif rejected:
            kept = self._stall.last_kept[0] if self._stall.last_kept else "a new movie"
            self._clear(
                AlertKind.ALL_REJECTED,
                f"Movies are kept again: {kept} is in the table",
                notify=True,
            )

    def _judge_cycle(self, number: int) -> None:
        session = self.store.current
        if session is None:
            return
        history = session.state.cycles
        record = next((c for c in reversed(history) if c.number == number), None)
        if record is None:
            return
        verdict = alerts.slow_verdict(record, history)
        if verdict is None:
            return
        if verdict.slow:
            self._raise(AlertKind.CYCLE_SLOW, AlertLevel.WARNING, verdict.text)
        else:
            self._clear(AlertKind.CYCLE_SLOW, verdict.text, notify=False)

    def _judge_running(self) -> None:
        session, cycle = self.store.current, self._running
        if session is None or cycle is None or self.book.is_active(AlertKind.CYCLE_SLOW):
            return
        cpu = session.runner.running_cpu_seconds()
        if cpu is None:
            return
        verdict = alerts.running_verdict(cycle, cpu, session.state.cycles)
        if verdict is not None:
            self._raise(AlertKind.CYCLE_SLOW, AlertLevel.WARNING, verdict.text)

    def _job_ended(self, event: JobFinished) -> None:
        session = self.store.current
        if session is None:
            return
        state = session.state
        kind = self.jobs.kind
        decided = alerts.job_alert(
            event,
            kind_label=kind.label if kind else "The",
            last=state.last_cycle,
            failures=min(state.consecutive_failures, MAX_CONSECUTIVE_FAILURES),
        )
        if decided is not None:
            self._raise(*decided)

    # ------------------------------------------------------------------ publishing

    def _raise(self, kind: AlertKind, level: AlertLevel, text: str) -> None:
        raised = self.book.raise_(kind, level, text)
        if raised is None:
            return
        self.ctx.log(text, "alert")
        self.ctx.bus.publish(raised)
        self.hooks.submit(alert_payload(raised, session=self._session_fields()))

    def _clear(self, kind: AlertKind, text: str, *, notify: bool) -> None:
        cleared = self.book.clear(kind, text, notify=notify)
        if cleared is not None:
            self._announce_clear(cleared)

    def _announce_clear(self, cleared: AlertCleared) -> None:
        self.ctx.log(f"Alert ended: {cleared.text}")
        self.ctx.bus.publish(cleared)
        self.hooks.submit(alert_payload(cleared, session=self._session_fields()))

    def _session_fields(self) -> dict[str, str]:
        session = self.store.current
        if session is None:
            return {}
        return {
            "session": session.state.session_name,
            "warp_folder": str(session.warp_folder),
            "output_folder": str(session.output_folder),
        }


__all__ = ["AlertRaised", "HealthMonitor", "ScanResult", "movie_arrays", "run_scan"]
