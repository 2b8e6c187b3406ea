"""The supervisor's public value types: its error and its immutable snapshot for views."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.events import IngestCounts, SessionStatus, StreamState, job_position
from live2d_tui.supervisor.state import CycleRecord


class SupervisorError(RuntimeError):
    """A command cannot be carried out; the message says why and what to do (never a traceback)."""


class OutputFolderInUse(SupervisorError):
    """Another live2d holds the output folder's lock."""

    def __init__(self, message: str, folder: Path, holder: str) -> None:
        super().__init__(message)
        self.folder = folder
        self.holder = holder
        """``user@host (pid N, since T)``, or a phrase when the holder is unknown."""


@dataclass(frozen=True, slots=True)
class WarpSummary:
    """What Warp's ``previous.settings`` says about the particles."""

    model: str
    pixel_size: float
    """Å per pixel of the particle stacks."""
    box_size: int
    """Box in pixels."""
    diameter: float
    """Particle diameter in Å."""


def mask_radius_problem(mask_radius: float, box_size: int, pixel_size: float) -> str:
    """Why ``mask_radius`` (Å) does not fit a box of ``box_size`` pixels of ``pixel_size`` Å
    (empty when it fits or the box is unknown): a mask wider than half the box masks nothing."""
    if box_size < 1 or not pixel_size > 0:
        return ""
    half = box_size * pixel_size / 2
    if mask_radius <= half:
        return ""
    return (
        f"mask_radius {mask_radius:g} Å is larger than half the particle box "
        f"({half:g} Å: {box_size} px × {pixel_size:g} Å/px ÷ 2); use at most {half:g} Å"
    )


@dataclass(frozen=True, slots=True)
class SupervisorSnapshot:
    """Everything a view shows, at one moment (immutable; take a new one after each event)."""

    status: SessionStatus
    warp_folder: Path
    output_folder: Path
    session_name: str
    microscope_name: str
    settings: JobSettings
    """The staged settings the next job uses."""
    automatic: bool
    """Automatic jobs are on."""
    cycles: tuple[CycleRecord, ...]
    """The history: every completed cycle, with or without its star, by number."""
    ingest: IngestCounts | None
    warp: WarpSummary | None
    engine: str
    """Which refine2d/merge2d pair runs, e.g. ``builtin (live2d-refine2d / live2d-merge2d)``."""
    pool_size: int
    job_kind: ClassificationType | None
    """The macro of the running job."""
    job_cycle: int
    """1-based index of the running cycle in its job (0 when no job runs)."""
    job_cycles: int
    """Cycles in the running job (0 when no job runs, or for a streaming job: open-ended)."""
    running_cycle_number: int | None
    last_error: str
    next_trigger: str
    """When the next automatic job starts (or why it does not); while streaming, when the next
    update starts."""
    stream: StreamState | None = None
    """The running streaming job's state (``None`` when no streaming job runs)."""

    @property
    def job_progress_text(self) -> str:
        """``cycle 10 · 5th of 6 cycles in this job`` (the session's cycle number, then where
        it is in the job), or an empty string."""
        if not self.job_cycles and not self.job_cycle:
            return ""
        position = job_position(self.job_cycle, self.job_cycles)
        if self.running_cycle_number is None:
            return position
        return f"cycle {self.running_cycle_number} · {position}"
