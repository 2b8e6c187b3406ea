"""What one ingest pass reports, and the error that stops ingest altogether."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(RuntimeError):
    """A problem that prevents ingesting at all (not a Warp folder, export off, corrupt output)."""


@dataclass(slots=True)
class IngestReport:
    """Counts after one pass (what ``live2d ingest`` prints)."""

    micrographs_seen: int = 0
    """Micrographs in the current snapshot of Warp's table."""
    micrographs_ingested: int = 0
    """Micrographs of the snapshot whose current particles are in the stack."""
    micrographs_deferred: int = 0
    """Micrographs of the snapshot waiting for a complete or compatible stack."""
    micrographs_inactive: int = 0
    """Micrographs in the stack whose particles are inactive (gone, unselected, reprocessed)."""
    particles_active: int = 0
    particles_total: int = 0
    """NZ of the current generation's stack (active or not)."""
    particles_appended: int = 0
    """Particles appended in this pass."""
    new_generation: bool = False
    """A new dataset generation started in this pass."""
    messages: list[str] = field(default_factory=list)
    pending: bool = False
    """Work is waiting for files to settle: poll again soon."""
