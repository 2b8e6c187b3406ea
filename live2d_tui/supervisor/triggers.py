"""When the next automatic job starts: pure functions of the counts, the settings and the history.

Rules (issue 6, item 4):

- The **first** job of a dataset generation starts when the active particles reach
  ``particle_count_initial``.
- A **later** job starts when ``particle_count_update`` particles were appended to the stack after
  the input of the last completed cycle was built (``CycleRecord.input_rows``), so particles a
  job already absorbed between its cycles are not counted twice.
- With the staged type **streaming**, a later job (the streaming job) starts at once: it waits
  for particles itself. While it runs, an **update** starts when ``stream_batch`` active
  particles were ingested after the stream's last update, or when fewer wait but none has
  arrived for :data:`STREAM_IDLE_SECONDS` (the end of a session, a pause of the microscope:
  the last particles are not left out of the classes) (:func:`check_stream_trigger`).
- A failed automatic job is retried after ``retry_seconds × 2^(attempt−1)``; after
  :data:`MAX_CONSECUTIVE_FAILURES` failures in a row automatic jobs stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.supervisor.state import CycleRecord

MAX_CONSECUTIVE_FAILURES = 3
STREAM_IDLE_SECONDS = 300.0
"""A streaming update takes fewer than ``stream_batch`` waiting particles once no new particle
has arrived for this long."""
"""Failures in a row after which automatic jobs stop (status *failed*): no endless re-runs."""
MAX_RETRY_SECONDS = 1800.0
"""Cap of the back-off between retries (half an hour)."""


@dataclass(frozen=True, slots=True)
class TriggerCheck:
    """The outcome of one trigger check."""

    ready: bool
    particles_new: int
    """Active particles (first job) or particles appended since the last cycle's input."""
    threshold: int
    first_job: bool
    text: str
    """What the user sees, e.g. ``Next job after 50,000 new particles (12,000 so far)``."""


def check_trigger(
    settings: JobSettings,
    *,
    active: int,
    stack_rows: int,
    generation: int,
    last_cycle: CycleRecord | None,
) -> TriggerCheck:
    """Whether enough particles arrived to start the next automatic job.

    Args:
        settings: The staged job settings (thresholds).
        active: Active particles in the current stack.
        stack_rows: Rows in the current stack (active or not).
        generation: The current dataset generation.
        last_cycle: The newest completed cycle, if any.
    """
    if last_cycle is None or last_cycle.generation != generation:
        threshold = settings.particle_count_initial
        return TriggerCheck(
            ready=active >= threshold,
            particles_new=active,
            threshold=threshold,
            first_job=True,
            text=f"First job at {threshold:,} active particles ({active:,} now)",
        )
    if settings.classification_type is ClassificationType.STREAMING:
        return TriggerCheck(
            ready=active > 0,
            particles_new=0,
            threshold=0,
            first_job=False,
            text=f"Streaming starts from cycle {last_cycle.number}",
        )
    threshold = settings.particle_count_update
    new = max(0, stack_rows - last_cycle.input_rows)
    return TriggerCheck(
        ready=new >= threshold and active > 0,
        particles_new=new,
        threshold=threshold,
        first_job=False,
        text=f"Next job after {threshold:,} new particles ({new:,} so far)",
    )


def check_stream_trigger(
    *,
    batch: int,
    waiting: int,
    updating: bool,
    idle_seconds: float = 0.0,
    idle_limit: float | None = None,
) -> TriggerCheck:
    """Whether the streaming job should run its next update: ``batch`` (``stream_batch``)
    active particles ingested after its last update, or at least one that waited while no new
    particle arrived for ``idle_limit`` seconds (:data:`STREAM_IDLE_SECONDS`; ``idle_seconds``:
    since the last arrival); and no update running (one that runs takes the particles that
    arrive meanwhile next time). ``particles_new < threshold`` on a ready check means the
    update must take fewer than a batch."""
    limit = STREAM_IDLE_SECONDS if idle_limit is None else idle_limit
    flush = 0 < waiting < batch and idle_seconds >= limit
    if updating:
        text = f"Streaming: an update is running; {waiting:,} particles wait for the next"
    elif flush:
        text = (
            f"Streaming: no new particle for {idle_seconds / 60:.0f} min; the next update "
            f"takes the {waiting:,} waiting"
        )
    else:
        text = f"Streaming: next update at {batch:,} new particles ({waiting:,} so far)"
    return TriggerCheck(
        ready=(waiting >= batch or flush) and not updating,
        particles_new=waiting,
        threshold=batch,
        first_job=False,
        text=text,
    )


def retry_delay(attempt: int, base_seconds: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): doubling, capped."""
    return min(MAX_RETRY_SECONDS, base_seconds * 2.0 ** max(0, attempt - 1))
