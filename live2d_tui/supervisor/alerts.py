"""The alert rules: when each alert fires, when it ends, and its one line. Pure bookkeeping; the
health monitor (:mod:`.monitor`) feeds them and publishes what they decide.

Each alert kind is raised at most once until its condition ends (:class:`AlertBook`):

- **Warp stalled** / **every new movie rejected** (:class:`StallWatch`), only while automatic
  jobs are on. Time is measured on *our* clock, from when a scan first saw something, never from
  file times (the Warp PC's clock may be minutes off): a movie is *new* when its XML is first
  seen; it is *kept* once the particle table holds it and Warp has decided on it (the table was
  written after a later movie was processed: a new movie is in goodparticles before its filter
  verdict). Stalled: no new movie for ``stall_minutes`` (counted from when automatic jobs were
  turned on at the earliest). Rejected: movies keep coming, but none has been kept for
  ``stall_minutes`` and Warp has decided against at least :data:`MIN_REJECTED` new ones since
  the last kept one (without a particle table accepted by ingest there is no verdict, and no
  such alert). Stalled wins over rejected. Either ends, with a notice, when a movie arrives or
  is kept again.
- **Disk low** (:class:`DiskWatch`): less than ``disk_alert_gb`` free on the output folder's
  disk; the time left is until ingest pauses (``min_free_gb``), at the rate free space fell over
  the last hour (at least two minutes of samples). Ends, with a notice, above the margin plus
  5 %, so a disk hovering at the margin does not flap.
- **Cycle slow** (:func:`slow_verdict`, :func:`running_verdict`): a cycle's particle-passes per
  CPU-second fell below a third of the median of the last five cycles at the same
  high-resolution limit, with the same number of classes, in the same dataset generation (the
  things that legitimately change the cost of a pass), when at least two such cycles exist and
  the extra CPU time is at least :data:`SLOW_MIN_EXCESS_SECONDS`. CPU time leaves out a run's
  wait for a slot or in a cluster's queue. A running cycle is judged too: once the CPU time it has
  used exceeds three times what the whole cycle should need, it is most likely spinning (a hang
  the watchdog, which watches for CPU time that stops growing, cannot see). Ends quietly when a
  later cycle runs at its usual speed.
- **Job failed / stopped / finished** (:func:`job_alert`): when a job ends for good (a failure
  that will be retried is not an end). Ends quietly when the next job starts.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from live2d_tui.events import (
    Alert,
    AlertCleared,
    AlertKind,
    AlertLevel,
    AlertRaised,
    BlockType,
    JobEnd,
    JobFinished,
)
from live2d_tui.supervisor.state import CycleRecord, now_iso

MIN_REJECTED = 2
"""Movies Warp decided against since the last kept one before "every new movie is rejected" may
fire."""
SLOW_FACTOR = 3.0
"""A cycle this many times slower than its reference is "much slower"."""
SLOW_REFERENCES = 5
"""Earlier cycles whose median is the reference."""
SLOW_MIN_REFERENCES = 2
SLOW_MIN_EXCESS_SECONDS = 60.0
"""CPU seconds a slow cycle must have used beyond its reference's need: tiny cycles, dominated
by program start-up, never alert."""
DISK_WINDOW_SECONDS = 3600.0
"""Free-space samples kept for the rate (the last hour)."""
DISK_MIN_SPAN_SECONDS = 120.0
DISK_CLEAR_FACTOR = 1.05


class AlertBook:
    """The alerts raised and not yet ended: each kind at most once."""

    def __init__(self) -> None:
        self._active: dict[AlertKind, Alert] = {}

    @property
    def active(self) -> dict[AlertKind, Alert]:
        """The raised alerts by kind (a copy)."""
        return dict(self._active)

    def is_active(self, kind: AlertKind) -> bool:
        """An alert of ``kind`` is raised."""
        return kind in self._active

    def raise_(self, kind: AlertKind, level: AlertLevel, text: str) -> AlertRaised | None:
        """Raise an alert of ``kind`` unless one is raised already (``None`` then)."""
        if kind in self._active:
            return None
        alert = Alert(kind=kind, level=level, text=text, time=now_iso())
        self._active[kind] = alert
        return AlertRaised(alert)

    def clear(self, kind: AlertKind, text: str, *, notify: bool) -> AlertCleared | None:
        """End the alert of ``kind`` if one is raised (``None`` otherwise)."""
        alert = self._active.pop(kind, None)
        if alert is None:
            return None
        return AlertCleared(alert=alert, text=text, time=now_iso(), notify=notify)

    def clear_all(self) -> list[AlertCleared]:
        """End every alert quietly (another session was opened)."""
        return [
            cleared
            for kind in list(self._active)
            if (cleared := self.clear(kind, "another session was opened", notify=False))
        ]


def clock(epoch: float) -> str:
    """``14:02`` (local time) for seconds since the epoch."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%H:%M")


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 20 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class Flow(StrEnum):
    """What Warp's output looks like to :class:`StallWatch`."""

    OFF = "off"
    """Automatic jobs are off: nothing is judged."""
    FLOWING = "flowing"
    STALLED = "stalled"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Sighting:
    """One scan's news for :class:`StallWatch`."""

    new: Sequence[str]
    """Movies seen for the first time."""
    kept: frozenset[str]
    """Movies the particle table holds with Warp's verdict known."""
    rejected: frozenset[str]
    """Movies Warp has decided on that the particle table does not hold."""
    latest: tuple[str, float] | None
    """The newest movie (root, time on Warp's clock)."""


class StallWatch:
    """Is Warp still producing movies, and does it keep any? (See the module docstring.)"""

    def __init__(self) -> None:
        self.primed = False
        self.last_movie_at = 0.0
        self.last_kept_at = 0.0
        self.since_kept = 0
        """Movies newly rejected since the last newly kept one."""
        self.since_stall = 0
        self.kept: frozenset[str] = frozenset()
        self.rejected: frozenset[str] = frozenset()
        self.latest: tuple[str, float] | None = None
        self.last_kept: tuple[str, float] | None = None

    def observe(self, now: float, sighting: Sighting, times: dict[str, float]) -> None:
        """Take in one scan made at ``now`` (loop time); ``times`` maps roots to Warp times."""
        if not self.primed:  # what exists already is the baseline, not news
            self.primed = True
            self.last_movie_at = self.last_kept_at = now
            self.kept = sighting.kept
            self.rejected = sighting.rejected
            self.latest = sighting.latest
            return
        if sighting.new:
            self.last_movie_at = now
            self.since_stall += len(sighting.new)
            self.latest = sighting.latest
        self.since_kept += len(sighting.rejected - self.rejected)
        self.rejected = sighting.rejected
        newly = sighting.kept - self.kept
        self.kept = sighting.kept
        if newly:
            self.last_kept_at = now
            self.since_kept = 0
            root = max(newly, key=lambda r: times.get(r, 0.0))
            self.last_kept = (root, times.get(root, 0.0))

    def judge(self, now: float, automatic_since: float | None, stall_seconds: float) -> Flow:
        """The flow at ``now``; ``automatic_since`` is when automatic jobs were turned on."""
        if automatic_since is None or not self.primed:
            return Flow.OFF
        if now - max(self.last_movie_at, automatic_since) >= stall_seconds:
            return Flow.STALLED
        if (
            now - max(self.last_kept_at, automatic_since) >= stall_seconds
            and self.since_kept >= MIN_REJECTED
        ):
            return Flow.REJECTED
        return Flow.FLOWING

    def stalled_text(self, now: float) -> str:
        """The line of the stall alert."""
        waited = duration(now - self.last_movie_at)
        last = f" (the last, {self.latest[0]}, at {clock(self.latest[1])})" if self.latest else ""
        return f"Warp has stalled: no new movie for {waited}{last}"

    def rejected_text(self, now: float, table: str) -> str:
        """The line of the every-movie-rejected alert."""
        kept = (
            f"; the last kept was {self.last_kept[0]}, at {clock(self.last_kept[1])}"
            if self.last_kept
            else ""
        )
        return (
            f"Every new movie is rejected: {self.since_kept} movies in "
            f"{duration(now - self.last_kept_at)}, none kept in {table or 'the particle table'}"
            f"{kept}"
        )


class DiskWatch:
    """Free-space samples of the output folder's disk, for the rate it fills at."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, free: int) -> None:
        """Record ``free`` bytes at loop time ``now``; samples older than an hour go."""
        self.samples.append((now, free))
        while self.samples and now - self.samples[0][0] > DISK_WINDOW_SECONDS:
            self.samples.popleft()

    def rate(self) -> float | None:
        """Bytes per second the free space falls at, over the samples kept (``None``: not
        measured yet, or not falling)."""
        if len(self.samples) < 2:
            return None
        (t0, f0), (t1, f1) = self.samples[0], self.samples[-1]
        if t1 - t0 < DISK_MIN_SPAN_SECONDS or f1 >= f0:
            return None
        return (f0 - f1) / (t1 - t0)

    def low_text(self, free: int, margin_gb: float, min_free_gb: float) -> str:
        """The line of the disk alert."""
        rate = self.rate()
        if rate is None:
            when = "; it is not filling now"
        else:
            left = max(0.0, free - min_free_gb * 1e9) / rate
            when = (
                f"; at the current rate ({rate * 3600 / 1e9:.1f} GB/h) ingest pauses "
                f"(at {min_free_gb:g} GB) in about {duration(left)}"
            )
        return (
            f"Disk nearly full: {free / 1e9:.1f} GB free where the output folder is "
            f"(alert below {margin_gb:g} GB){when}"
        )


def _matches(a: CycleRecord, limit: float, classes: int, generation: int) -> bool:
    return (
        abs(a.high_res_limit - limit) < 0.005
        and int(a.settings.get("class_number", 0)) == classes
        and a.generation == generation
    )


def reference_rate(
    history: Sequence[CycleRecord],
    *,
    limit: float,
    classes: int,
    generation: int,
    before: int,
) -> float | None:
    """The median particle-passes per CPU-second of the last :data:`SLOW_REFERENCES` cycles
    numbered below ``before`` at ``limit`` with ``classes`` classes in ``generation`` (``None``
    with fewer than :data:`SLOW_MIN_REFERENCES`)."""
    rates = [
        rate
        for record in history
        if record.number < before
        and _matches(record, limit, classes, generation)
        and (rate := record.passes_per_cpu_second) is not None
    ][-SLOW_REFERENCES:]
    if len(rates) < SLOW_MIN_REFERENCES:
        return None
    return statistics.median(rates)


@dataclass(frozen=True, slots=True)
class SlowVerdict:
    """How a cycle's speed compares with its reference."""

    slow: bool
    rate: float
    """Its particle-passes per CPU-second (for a running cycle: what it achieves so far)."""
    reference: float
    text: str


def slow_verdict(record: CycleRecord, history: Sequence[CycleRecord]) -> SlowVerdict | None:
    """Judge a completed cycle against earlier ones (``None``: nothing to compare)."""
    rate = record.passes_per_cpu_second
    if rate is None or record.cpu_seconds is None:
        return None
    classes = int(record.settings.get("class_number", 0))
    reference = reference_rate(
        history,
        limit=record.high_res_limit,
        classes=classes,
        generation=record.generation,
        before=record.number,
    )
    if reference is None:
        return None
    needed = record.particle_count * record.fraction_used / reference
    slow = rate * SLOW_FACTOR < reference and record.cpu_seconds - needed >= SLOW_MIN_EXCESS_SECONDS
    text = (
        f"Cycle {record.number} ran {reference / rate:.1f}× slower than earlier cycles at "
        f"{record.high_res_limit:.1f} Å: {rate:,.0f} against {reference:,.0f} particles per "
        "CPU-second (a hang, or a failing or overloaded machine)"
        if slow
        else f"Cycle {record.number} ran at the usual speed: {rate:,.0f} particles per "
        f"CPU-second at {record.high_res_limit:.1f} Å"
    )
    return SlowVerdict(slow=slow, rate=rate, reference=reference, text=text)


@dataclass(frozen=True, slots=True)
class RunningCycle:
    """The cycle running now, as its start announced it."""

    number: int
    high_res_limit: float
    particles: int
    fraction: float
    seed: bool


def running_verdict(
    cycle: RunningCycle, cpu_seconds: float, history: Sequence[CycleRecord]
) -> SlowVerdict | None:
    """Judge a running cycle by the CPU time it has used so far (``None``: nothing to compare,
    or not slow yet)."""
    if cycle.seed or not history:
        return None
    last = history[-1]
    classes = int(last.settings.get("class_number", 0))
    reference = reference_rate(
        history,
        limit=cycle.high_res_limit,
        classes=classes,
        generation=last.generation,
        before=cycle.number,
    )
    if reference is None:
        return None
    needed = cycle.particles * cycle.fraction / reference
    if cpu_seconds <= SLOW_FACTOR * needed or cpu_seconds - needed < SLOW_MIN_EXCESS_SECONDS:
        return None
    return SlowVerdict(
        slow=True,
        rate=cycle.particles * cycle.fraction / cpu_seconds,
        reference=reference,
        text=(
            f"Cycle {cycle.number} is running much slower than earlier cycles at "
            f"{cycle.high_res_limit:.1f} Å: it has used {cpu_seconds / needed:.1f}× the CPU time "
            "they needed for a whole cycle (a hang the watchdog cannot see, or a failing machine)"
        ),
    )


def job_alert(
    event: JobFinished, *, kind_label: str, last: CycleRecord | None, failures: int
) -> tuple[AlertKind, AlertLevel, str] | None:
    """The alert for a job's end (``None`` for a new dataset generation, which is no alert)."""
    after = (
        f" after cycle {last.number} ({last.particle_count:,} particles, "
        f"{int(last.settings.get('class_number', 0))} classes at {last.high_res_limit:.1f} Å)"
        if last is not None
        else ""
    )
    message = " ".join(event.message.split())
    if len(message) > 200:
        message = message[:199] + "…"
    match event.outcome:
        case JobEnd.FINISHED:
            return AlertKind.JOB_FINISHED, AlertLevel.INFO, f"{kind_label} job finished{after}"
        case JobEnd.STOPPED:
            return AlertKind.JOB_STOPPED, AlertLevel.INFO, f"{kind_label} job stopped{after}"
        case JobEnd.ABORTED:
            return (
                AlertKind.JOB_STOPPED,
                AlertLevel.WARNING,
                f"{kind_label} job aborted; earlier cycles are intact",
            )
        case JobEnd.FAILED:
            tries = f" after {failures} attempts" if failures > 1 else ""
            return AlertKind.JOB_FAILED, AlertLevel.ERROR, f"Job failed{tries}: {message}"
        case JobEnd.ENDED:
            return None


def is_seed(block_type: BlockType) -> bool:
    """A random-seed cycle (aligns nothing: no speed to judge)."""
    return block_type is BlockType.RANDOM_SEED
