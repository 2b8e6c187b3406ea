"""Plain dataclass events the headless core publishes; the UI and the headless log printer
subscribe. Nothing here imports Textual: the app turns these into Textual messages in one place.

Lifecycles are named once, as Enums with a docstring under each member.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from live2d_tui.health import SessionHealth

_log = logging.getLogger(__name__)


class SessionStatus(StrEnum):
    """What the supervisor is doing."""

    STOPPED = "stopped"
    """Idle: no job runs and automatic jobs are off (ingest may still follow Warp)."""
    WAITING = "waiting"
    """Automatic jobs are on: waiting until enough new particles have been ingested."""
    RUNNING = "running"
    """A classification job is running."""
    STOPPING = "stopping"
    """Stop requested: the running cycle finishes, then the job ends."""
    FAILED = "failed"
    """Automatic jobs stopped after repeated failures; the reason is in the last error."""

    @property
    def label(self) -> str:
        """The wording a user sees."""
        return {
            SessionStatus.STOPPED: "Ready for new runs",
            SessionStatus.WAITING: "Waiting for new particles",
            SessionStatus.RUNNING: "Running",
            SessionStatus.STOPPING: "Stopping after this cycle",
            SessionStatus.FAILED: "Failed",
        }[self]


class BlockType(StrEnum):
    """Which part of a job a cycle belongs to (the original's ``block_type``)."""

    RANDOM_SEED = "random_seed"
    """Random starting classes (one process, no alignment)."""
    STARTUP = "startup"
    """A cycle of the startup ramp (resolution limit from initial to final)."""
    REFINEMENT = "refinement"
    """A cycle at the final resolution limit with all particles."""
    STREAMING = "streaming"
    """A streaming update: the new particles (and a few revisited blocks) classified against
    the latest classes and folded into them (:mod:`live2d_tui.classify.streaming`)."""

    @property
    def label(self) -> str:
        """The name a user sees (``random_seed`` is the job's random start)."""
        return {
            BlockType.RANDOM_SEED: "random start",
            BlockType.STARTUP: "startup",
            BlockType.REFINEMENT: "refinement",
            BlockType.STREAMING: "streaming update",
        }[self]


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st`` …"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def job_position(index_in_job: int, cycles_in_job: int) -> str:
    """Where a cycle is in its job, worded apart from its session number (``cycle 10``):
    ``5th of 6 cycles in this job``; a streaming job has no planned end (``cycles_in_job`` 0):
    ``5th update of this streaming job``."""
    if cycles_in_job < 1:
        return f"{ordinal(index_in_job)} update of this streaming job"
    return f"{ordinal(index_in_job)} of {cycles_in_job} cycles in this job"


class CycleStage(StrEnum):
    """Where a running cycle is."""

    PREPARING = "preparing"
    """Building the input star and checking inputs."""
    SEEDING = "seeding"
    """Generating random starting classes."""
    NOISE = "noise"
    """refine2d: calculating the noise power spectrum."""
    CLASSIFYING = "classifying"
    """refine2d: aligning particles and accumulating class sums."""
    MERGING = "merging"
    """merge2d: summing the refine2d runs' partial class sums."""
    FINISHING = "finishing"
    """Joining stars, counting classes, writing images and state."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The session status changed."""

    status: SessionStatus
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IngestCounts:
    """Counts after an ingest pass (``live2d ingest`` prints the same)."""

    micrographs_seen: int
    micrographs_ingested: int
    micrographs_deferred: int
    micrographs_inactive: int
    particles_active: int
    particles_total: int
    """Rows in the combined stack (active or not)."""
    particles_new: int = 0
    """Active particles ingested after the input of the last completed cycle was built."""
    next_threshold: int = 0
    """Particles (``particles_new`` or active) needed to start the next automatic job."""


@dataclass(frozen=True, slots=True)
class CycleStarted:
    """A cycle began."""

    number: int
    block_type: BlockType
    index_in_job: int
    """1-based position of this cycle in its job (seed included)."""
    cycles_in_job: int
    high_res_limit: float
    particle_count: int
    fraction_used: float = 1.0
    """The share of the particles refine2d processes this cycle."""


@dataclass(frozen=True, slots=True)
class CycleProgress:
    """Progress of the running cycle, aggregated over its program runs (weighted by rows)."""

    number: int
    stage: CycleStage
    percent: float
    runs_done: int
    """refine2d program runs of the cycle that succeeded."""
    runs_total: int
    """refine2d program runs of the cycle."""
    eta_seconds: float | None = None
    runs_queued: int = 0
    """Program runs (refine2d or merge2d) handed to the executor and not started: waiting for a
    local slot, or pending in SLURM's queue — queued, not hung."""
    runs_running: int = 0
    """Program runs (refine2d or merge2d) running now."""

    def runs_text(self) -> str:
        """``runs 3/8 done, 4 running, 1 queued`` — the counts the UI and the headless log show
        (running and queued only when there are any)."""
        text = f"runs {self.runs_done}/{self.runs_total} done"
        if self.runs_running:
            text += f", {self.runs_running} running"
        if self.runs_queued:
            text += f", {self.runs_queued} queued"
        return text


@dataclass(frozen=True, slots=True)
class StreamState:
    """The streaming job's state: published when it starts, after each update and when the
    particles waiting for the next update change (:mod:`live2d_tui.classify.streaming`)."""

    cycle: int
    """The cycle whose classes are the stream's latest (the last update, or its base cycle)."""
    updating: bool
    """An update is running (it publishes as cycle ``cycle + 1``)."""
    blocks: int
    particles: int
    """Particles in the classes (every block's rows at its last visit)."""
    waiting: int
    """Active particles ingested after the last update's and not in the classes yet."""
    batch: int
    """``stream_batch``: particles that start the next update."""
    newest_ingested: float | None
    """``time.time()`` when the newest particle in the classes was ingested (its age is
    now − this); ``None`` when unknown."""
    pass_number: int
    """The current revisiting pass (1-based): each pass refines every block again."""
    pass_done: int
    """Blocks refined in the current pass (of :attr:`blocks`)."""
    dump_bytes: int
    """Disk taken by the blocks' kept class sums."""
    dump_budget_bytes: int
    """``stream_dump_gb`` in bytes: beyond it neighbouring blocks are fused."""
    full_star_cycle: int
    """The newest cycle whose full star was written (−1: none yet)."""

    def waiting_text(self) -> str:
        """``340 of 1,000 particles for the next update`` (or that one is running)."""
        if self.updating:
            return f"update running; {self.waiting:,} particles waiting"
        return f"{self.waiting:,} of {self.batch:,} particles for the next update"

    def age_text(self, now: float) -> str:
        """``newest particle 3 min old`` (its age since ingest), or an empty string."""
        if self.newest_ingested is None:
            return ""
        return f"newest particle {duration_text(max(0.0, now - self.newest_ingested))} old"

    def summary(self, now: float) -> str:
        """One line for the UI and the headless log."""
        parts = [
            f"{self.particles:,} particles in {self.blocks:,} blocks",
            self.waiting_text(),
            self.age_text(now),
            f"revisit pass {self.pass_number}: {self.pass_done}/{self.blocks} blocks",
            f"sums {self.dump_bytes / 1e9:.2f} of {self.dump_budget_bytes / 1e9:.0f} GB",
        ]
        return "; ".join(part for part in parts if part)


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min``, ``2.5 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True, slots=True)
class CycleFinished:
    """A cycle finished (``success``) or failed/was aborted; files are on disk when this arrives."""

    number: int
    success: bool
    message: str = ""


class JobEnd(StrEnum):
    """How a job ended."""

    FINISHED = "finished"
    """Every cycle of its plan completed."""
    STOPPED = "stopped"
    """The user stopped it: it ended after its running cycle (earlier cycles are complete)."""
    ABORTED = "aborted"
    """The user (or a signal) aborted it: its running cycle was ended and removed."""
    FAILED = "failed"
    """It failed and will not be retried (retries used up, or automatic jobs are off)."""
    ENDED = "ended"
    """A new dataset generation began: its classes no longer fit; the next job is ab initio."""


@dataclass(frozen=True, slots=True)
class JobFinished:
    """A job (seed + startup + refinement cycles) ended (a failure that will be retried does not
    end it)."""

    success: bool
    message: str = ""
    end: JobEnd | None = None
    """How it ended (``None`` from an older publisher: see :attr:`outcome`)."""

    @property
    def outcome(self) -> JobEnd:
        """:attr:`end`, or what ``success`` implies when it is not given."""
        if self.end is not None:
            return self.end
        return JobEnd.FINISHED if self.success else JobEnd.FAILED


@dataclass(frozen=True, slots=True)
class LogLine:
    """A line for the session log and the Job Output view."""

    text: str
    level: str = "info"


@dataclass(frozen=True, slots=True)
class ErrorRaised:
    """Something went wrong that the user must see (also logged)."""

    message: str
    detail: str = ""


class AlertKind(StrEnum):
    """What an alert is about (one alert of each kind at a time)."""

    WARP_STALLED = "warp_stalled"
    """Automatic jobs are on and Warp has written no new movie XML for ``stall_minutes``."""
    ALL_REJECTED = "all_rejected"
    """New movies keep coming, but for ``stall_minutes`` none has stayed in the particle table:
    Warp's filters reject every one (thick ice, drift, a bad grid square)."""
    JOB_FAILED = "job_failed"
    """A job failed and will not be retried."""
    JOB_STOPPED = "job_stopped"
    """A job was stopped or aborted before its plan was done."""
    JOB_FINISHED = "job_finished"
    """A job completed its plan."""
    DISK_LOW = "disk_low"
    """The disk holding the output folder has less than ``disk_alert_gb`` free."""
    CYCLE_SLOW = "cycle_slow"
    """A cycle processed far fewer particles per CPU-second than earlier ones at its limit."""


class AlertLevel(StrEnum):
    """How much an alert needs a person."""

    INFO = "info"
    """Good to know (a job finished)."""
    WARNING = "warning"
    """Worth a look soon (Warp stalled, the disk is filling, a cycle was slow)."""
    ERROR = "error"
    """Something failed (a job failed for good)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person at the microscope should hear about, in one line."""

    kind: AlertKind
    level: AlertLevel
    text: str
    """One line, complete on its own (it may be all a pager shows)."""
    time: str
    """When it was raised: ISO 8601 with the local offset, to the second."""


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """An alert fired (once: it stays raised until its condition ends)."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class AlertCleared:
    """An alert's condition ended."""

    alert: Alert
    """The alert that was raised."""
    text: str
    """One line saying why it ended (e.g. ``Warp resumed: 2 new movies``)."""
    time: str
    """When it ended (ISO 8601 with offset)."""
    notify: bool = False
    """Worth telling a person like the alert itself (Warp resumed, the disk has room again);
    otherwise it is only logged (a finished job's notice is cleared by the next job)."""


@dataclass(frozen=True, slots=True)
class HealthUpdated:
    """New series for the Session tab (prepared in a worker; see :mod:`live2d_tui.health`)."""

    health: SessionHealth


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The supervisor now works on another Warp folder / output folder, or reloaded its state."""

    warp_folder: str
    output_folder: str


@dataclass(frozen=True, slots=True)
class ClassQualityReady:
    """The per-class half-set estimate of a cycle was computed in the background (its
    ``cycle_<N>.quality.json`` is on disk when ``success``), or failed."""

    number: int
    success: bool
    message: str = ""


Event = (
    StatusChanged
    | IngestCounts
    | CycleStarted
    | CycleProgress
    | StreamState
    | CycleFinished
    | JobFinished
    | LogLine
    | ErrorRaised
    | SessionChanged
    | ClassQualityReady
    | AlertRaised
    | AlertCleared
    | HealthUpdated
)


@dataclass
class EventBus:
    """Synchronous fan-out of events to subscribers (called on the publisher's thread/loop)."""

    _subscribers: list[Callable[[Event], None]] = field(default_factory=list)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber; one failing subscriber does not stop others."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken view must not break the core
                _log.exception("event subscriber failed")
