"""Wording of the UI, as pure functions of core data (no Textual), so it is unit-tested and the
same words appear wherever a cycle or a session is described.
"""

from __future__ import annotations

from collections.abc import Sequence

from live2d_tui.events import BlockType, IngestCounts, SessionStatus
from live2d_tui.supervisor import CycleRecord, OutputFolderInUse, SupervisorError


def short_time(iso: str) -> str:
    """``2026-11-26T09:12:33+00:00`` → ``2026-11-26 09:12`` (the original showed time[:16])."""
    return iso.replace("T", " ")[:16] if iso else "—"


SEED_NOTE = "each class averages a random subset; particles join classes from the next cycle"
"""What the random start's classes are, and why they have no members."""


def is_seed(record: CycleRecord) -> bool:
    """The job's random start: classes from random subsets, no particle assigned yet."""
    return record.block_type is BlockType.RANDOM_SEED


def cycle_choice(record: CycleRecord) -> str:
    """One line of the cycle picker: ``cycle N · kind · particles · high-res limit · time``."""
    return (
        f"cycle {record.number} · {record.block_type.label} · "
        f"{record.particle_count:,} particles · {record.high_res_limit:.1f} Å · "
        f"{short_time(record.time)}"
    )


def cycle_metadata(record: CycleRecord, *, latest: bool, newer: int = 0) -> str:
    """The metadata line above the grid. Whether newer cycles exist and are not followed comes
    right after the cycle number, so a narrow grid never cuts it off."""
    head = f"Cycle {record.number}"
    if latest:
        head += " · latest"
    elif newer:
        head += f" · {newer} newer (press f to follow)"
    if is_seed(record):
        return (
            f"{head} · {record.block_type.label}: {SEED_NOTE} · "
            f"{record.particle_count:,} particles · {short_time(record.time)}"
        )
    text = (
        f"{head} · {record.block_type.label} · {record.particle_count:,} particles · "
        f"high res {record.high_res_limit:.1f} Å · {short_time(record.time)}"
    )
    if record.fraction_used < 1.0:
        text += f" · {record.fraction_used:.0%} of particles used"
    return text


def members_per_slice(record: CycleRecord, n_classes: int) -> list[int]:
    """Members of each slice (``counts[k]`` for class ``k + 1``); missing entries count 0."""
    per_class = list(record.particle_count_per_class)
    return [per_class[k + 1] if k + 1 < len(per_class) else 0 for k in range(n_classes)]


def class_caption(record: CycleRecord, index: int, counts: Sequence[int]) -> str:
    """Caption of the detail view: class, members and their fraction of the assigned particles."""
    head = f"Cycle {record.number} · class {index + 1} of {len(counts)}"
    if is_seed(record):
        return f"{head} · {record.block_type.label}: {SEED_NOTE}"
    count = counts[index] if index < len(counts) else 0
    assigned = sum(counts)
    fraction = count / assigned if assigned else 0.0
    return f"{head} · {count:,} members · {fraction:.1%} of {assigned:,} assigned"


def waiting_message(
    status: SessionStatus, ingest: IngestCounts | None, threshold: int, next_trigger: str
) -> str:
    """What the Classes tab says before the first cycle: what will happen and when."""
    have = ingest.particles_active if ingest else 0
    lines = ["No classes yet."]
    if status is SessionStatus.RUNNING:
        lines.append(f"The first job is running on {have:,} particles; classes appear here when")
        lines.append("its first cycle finishes (progress in Job Output, key 2).")
    elif status is SessionStatus.WAITING:
        lines.append(f"First job at {threshold:,} particles — {have:,} so far.")
    else:
        lines.append(f"First job at {threshold:,} particles — {have:,} so far, once automatic")
        lines.append("jobs are on (a). g starts a job now.")
    if next_trigger and status is SessionStatus.FAILED:
        lines.append(next_trigger)
    return "\n".join(lines)


def open_failed_message(exc: SupervisorError) -> str:
    """What the session panel says when the session could not be opened, and what to do."""
    if isinstance(exc, OutputFolderInUse):
        return (
            f"⚠ The output folder {exc.folder} is in use by {exc.holder}.\n\n"
            "One live2d works on an output folder at a time. To watch that session, attach to "
            "its tmux session (tmux attach). To take it over, stop that live2d (q there), then "
            "start this one again. Or quit (q) and start with --out OTHER_FOLDER."
        )
    return f"⚠ {exc}\n\nPress w to choose another Warp folder."


def empty_classes_note(empty: int, classes: int) -> str:
    """Why some tiles are crossed out (empty string when none is), for the grid's header."""
    if not empty:
        return ""
    return f"{empty} of {classes} classes empty (crossed): no particle fits them best"
