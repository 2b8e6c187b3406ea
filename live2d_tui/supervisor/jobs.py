"""Small pure helpers of the job runner: cycle records from results, failure wording."""

from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass
from pathlib import Path

from live2d_tui.classify.runner import CycleFailed, CycleResult
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import JobSettings
from live2d_tui.supervisor.state import CycleRecord

LOW_SPACE_BYTES = 64 * 1024 * 1024
"""Below this much free space a failure is reported as a full disk (64 MB: less than one cycle's
class averages and star at typical sizes)."""


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """How a job ended."""

    success: bool
    message: str
    retry: bool = False
    """A failure that counts towards the consecutive-failure limit (and may be retried)."""
    stopped: bool = False
    """Ended early because the user asked to stop."""


def record_from_result(
    result: CycleResult,
    plan: CyclePlan,
    settings: JobSettings,
    *,
    generation: int,
    input_rows: int,
) -> CycleRecord:
    """The history record of a completed cycle, with its own copy of the settings.

    ``settings.class_number`` is the number of classes in the cycle's ``.mrc`` (not the staged
    value, which seeded and refinement jobs ignore), so importers read the right slice count.
    """
    own = settings.to_dict()
    own["class_number"] = int(result.class_count)
    duration = (result.finished - result.started).total_seconds()
    return CycleRecord(
        name=f"cycle_{result.number}",
        number=int(result.number),
        block_type=result.block_type,
        cycle_number_in_block=plan.index_in_block,
        high_res_limit=float(result.high_res_limit),
        particle_count=int(result.particle_count),
        process_count=int(result.process_count),
        particle_count_per_class=tuple(int(v) for v in result.members),
        used_per_class=tuple(int(v) for v in result.used),
        fraction_used=float(result.fraction_used),
        settings=own,
        time=result.finished.astimezone().isoformat(timespec="seconds"),
        duration_seconds=round(max(0.0, duration), 3),
        generation=generation,
        input_rows=input_rows,
    )


def disk_note(folder: Path) -> str:
    """`` (N MB free on its disk)`` for messages, or an empty string."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" ({free / 1e6:.0f} MB free on its disk)"


def _disk_full(exc: BaseException, folder: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in {errno.ENOSPC, errno.EDQUOT}:
        return True
    text = str(exc).lower()
    if "no space left" in text or "disk quota" in text or "disk is full" in text:
        return True
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
    except OSError:
        return False


def describe_failure(exc: BaseException, folder: Path) -> str:
    """One line saying what went wrong, naming a full disk when that is the cause."""
    if isinstance(exc, CycleFailed):
        text = str(exc)
        tail = [line for line in exc.last_lines if line.strip()][-3:]
        if tail:
            text += " | " + " | ".join(line.strip() for line in tail)
    elif isinstance(exc, OSError):
        text = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    if _disk_full(exc, folder):
        try:
            free = shutil.disk_usage(folder).free / 1e6
            where = f" ({free:.0f} MB free)"
        except OSError:
            where = ""
        text = (
            f"the disk holding {folder} is full{where}: {text}. Earlier cycles and the session "
            "state are intact; free some space, then start the job again"
        )
    return text
