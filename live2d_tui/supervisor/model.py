"""The supervisor's public value types: its error and its immutable snapshot for views."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.events import IngestCounts, SessionStatus
from live2d_tui.supervisor.state import CycleRecord


class SupervisorError(RuntimeError):
    """A command cannot be carried out; the message says why and what to do (never a traceback)."""


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
    """Cycles in the running job (0 when no job runs)."""
    running_cycle_number: int | None
    last_error: str
    next_trigger: str
    """When the next automatic job starts (or why it does not)."""

    @property
    def job_progress_text(self) -> str:
        """``cycle x of y`` or an empty string."""
        return f"cycle {self.job_cycle} of {self.job_cycles}" if self.job_cycles else ""
