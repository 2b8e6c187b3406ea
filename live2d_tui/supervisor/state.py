"""Session state: settings, status, the job plan and the cycle history, in ``latest_run.json``.

The output folder's ``latest_run.json`` is the truth about a session. It is written atomically
(temp file → fsync → rename) after every change, and before each write the current file — which
parsed, because we wrote it — is copied to ``latest_run.json.prev``, so a file damaged by
something outside our control (a full disk on a network share, a hand edit) is recovered from the
previous good copy with a clear message instead of a traceback.

Invariants:

- Every :class:`CycleRecord` carries its **own copy** of the settings it ran with (never a
  reference to the live settings), with ``class_number`` = slices of its ``.mrc``.
- ``cycles`` is sorted by number and only holds completed cycles whose ``.mrc`` **and**
  ``.star`` are on disk (what ``warp_to_cistem`` imports). ``stream_cycles`` holds the streaming
  updates that published class averages only (their full star was not due): ``cycle_<N>.mrc``
  is on disk, ``cycle_<N>.star`` is not. A number is in at most one of the two; together they
  are the session's history (:attr:`SessionState.history`).
- The keys cisTEM's ``warp_to_cistem`` reads — ``cycles[].name/number/particle_count/
  high_res_limit/settings.class_number/settings.mask_radius`` — keep those names and types;
  ``tests/supervisor/test_state.py`` guards them.
- A job that is running (or was interrupted) is described by :class:`JobRecord`: enough to
  rebuild its plan with :func:`live2d_tui.classify.schedule.plan_job` and continue at its next
  cycle.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from live2d_tui.atomic import atomic_write_bytes, atomic_write_json
from live2d_tui.config import ClassificationType, JobSettings
from live2d_tui.events import BlockType, SessionStatus

STATE_NAME = "latest_run.json"
PREV_NAME = "latest_run.json.prev"
SCHEMA_VERSION = 1


class StateError(ValueError):
    """``latest_run.json`` and its previous copy are both unusable."""


def now_iso() -> str:
    """The local time with offset, to the second (the format of every ``time`` field)."""
    return datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class CycleRecord:
    """One completed cycle (files ``<name>.mrc`` / ``<name>.star`` in the output folder)."""

    name: str
    """``cycle_<number>``."""
    number: int
    block_type: BlockType
    cycle_number_in_block: int
    """1-based position in its block (the seed is 1 of 1)."""
    high_res_limit: float
    """High-resolution limit of this cycle, in Å."""
    particle_count: int
    """Rows of its star (the particles it was given)."""
    process_count: int
    """refine2d processes it ran (1 for a random seed)."""
    particle_count_per_class: tuple[int, ...] = ()
    """Members per class: index 0 = unassigned, index i = class i."""
    used_per_class: tuple[int, ...] = ()
    """Particles that contributed to class i in this cycle (index 0 = unused)."""
    fraction_used: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)
    """This cycle's own copy of the job settings (canonical names); ``class_number`` = slices."""
    time: str = ""
    """When it finished (ISO 8601)."""
    duration_seconds: float = 0.0
    generation: int = 0
    """Dataset generation (stack) the cycle classified."""
    input_rows: int = 0
    """Rows of the combined stack when this cycle's input was built (trigger bookkeeping)."""
    cpu_seconds: float | None = None
    """CPU time of the cycle's program runs (``None``: unknown, e.g. a record written before
    it was kept): with the particles processed, the cycle's speed in particle-passes per
    CPU-second, which leaves out time waiting for a slot or in a cluster's queue."""

    @property
    def passes_per_cpu_second(self) -> float | None:
        """Particles processed (particles × fraction used) per CPU-second of the programs;
        ``None`` for a seed cycle (it aligns nothing) or an unknown CPU time."""
        if self.block_type is BlockType.RANDOM_SEED or not self.cpu_seconds:
            return None
        return self.particle_count * self.fraction_used / self.cpu_seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (the original Live2D's keys first)."""
        return {
            "name": self.name,
            "number": self.number,
            "block_type": self.block_type.value,
            "cycle_number_in_block": self.cycle_number_in_block,
            "high_res_limit": self.high_res_limit,
            "particle_count": self.particle_count,
            "process_count": self.process_count,
            "particle_count_per_class": list(self.particle_count_per_class),
            "used_per_class": list(self.used_per_class),
            "fraction_used": self.fraction_used,
            "settings": dict(self.settings),
            "time": self.time,
            "duration_seconds": self.duration_seconds,
            "generation": self.generation,
            "input_rows": self.input_rows,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read a record written by :meth:`to_dict` (or by the original Live2D)."""
        number = int(data["number"])
        return cls(
            name=str(data.get("name", f"cycle_{number}")),
            number=number,
            block_type=BlockType(str(data.get("block_type", BlockType.STARTUP.value))),
            cycle_number_in_block=int(data.get("cycle_number_in_block", 1)),
            high_res_limit=float(data.get("high_res_limit", 0.0)),
            particle_count=int(data.get("particle_count", 0)),
            process_count=int(data.get("process_count", 1)),
            particle_count_per_class=tuple(
                int(v) for v in data.get("particle_count_per_class", [])
            ),
            used_per_class=tuple(int(v) for v in data.get("used_per_class", [])),
            fraction_used=float(data.get("fraction_used", 1.0)),
            settings=dict(data.get("settings", {})),
            time=str(data.get("time", "")),
            duration_seconds=float(data.get("duration_seconds", 0.0)),
            generation=int(data.get("generation", 0)),
            input_rows=int(data.get("input_rows", 0)),
            cpu_seconds=None if data.get("cpu_seconds") is None else float(data["cpu_seconds"]),
        )


@dataclass(frozen=True, kw_only=True)
class JobRecord:
    """The running (or interrupted) job: enough to rebuild its plan and continue it."""

    kind: ClassificationType
    """The macro the job runs (after forcing ab initio where needed)."""
    settings: dict[str, Any]
    """The job's own copy of the settings (canonical names)."""
    base_cycle_number: int | None
    """``last_cycle_number`` given to ``plan_job`` (``None``: no cycles before the job)."""
    force_abinit: bool
    cycles_total: int
    next_cycle_number: int
    """The first cycle of the plan not completed yet."""
    cycles_done: int = 0
    automatic: bool = True
    """Continue with automatic jobs when this job ends (``--once`` sets False)."""
    started: str = ""
    attempts: int = 0
    """Failed attempts of this job so far (reset by a completed cycle)."""

    def job_settings(self) -> JobSettings:
        """The settings as a validated model."""
        return JobSettings.from_dict(self.settings, ignore_unknown=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "kind": self.kind.value,
            "settings": dict(self.settings),
            "base_cycle_number": self.base_cycle_number,
            "force_abinit": self.force_abinit,
            "cycles_total": self.cycles_total,
            "next_cycle_number": self.next_cycle_number,
            "cycles_done": self.cycles_done,
            "automatic": self.automatic,
            "started": self.started,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read a record written by :meth:`to_dict`."""
        base = data.get("base_cycle_number")
        return cls(
            kind=ClassificationType(str(data["kind"])),
            settings=dict(data["settings"]),
            base_cycle_number=None if base is None else int(base),
            force_abinit=bool(data.get("force_abinit", False)),
            cycles_total=int(data["cycles_total"]),
            next_cycle_number=int(data["next_cycle_number"]),
            cycles_done=int(data.get("cycles_done", 0)),
            automatic=bool(data.get("automatic", True)),
            started=str(data.get("started", "")),
            attempts=int(data.get("attempts", 0)),
        )


@dataclass(frozen=True, kw_only=True)
class SessionState:
    """Everything ``latest_run.json`` holds (immutable; change with :func:`dataclasses.replace`)."""

    warp_folder: str
    output_folder: str
    session_name: str = ""
    settings: JobSettings = field(default_factory=JobSettings)
    """The staged settings the next job uses."""
    status: SessionStatus = SessionStatus.STOPPED
    """The status when the state was written (informative; a restart recomputes it)."""
    automatic: bool = False
    """Automatic jobs are on."""
    cycles: tuple[CycleRecord, ...] = ()
    """Completed cycles with both files (``.mrc`` and ``.star``)."""
    stream_cycles: tuple[CycleRecord, ...] = ()
    """Streaming updates with class averages only (no full star was written for them)."""
    job: JobRecord | None = None
    force_abinit: bool = False
    """The next job must be ab initio (a new dataset generation started)."""
    next_run_new_particles: bool = False
    """A full re-import was requested (the original's remedy for a damaged stack)."""
    consecutive_failures: int = 0
    last_error: str = ""
    version: int = SCHEMA_VERSION

    @property
    def history(self) -> tuple[CycleRecord, ...]:
        """Every completed cycle, with or without a star, by number."""
        if not self.stream_cycles:
            return self.cycles
        return tuple(sorted((*self.cycles, *self.stream_cycles), key=lambda c: c.number))

    @property
    def last_cycle(self) -> CycleRecord | None:
        """The newest completed cycle (with or without a star)."""
        newest = self.cycles[-1] if self.cycles else None
        if self.stream_cycles and (newest is None or self.stream_cycles[-1].number > newest.number):
            return self.stream_cycles[-1]
        return newest

    @property
    def last_cycle_with_star(self) -> CycleRecord | None:
        """The newest completed cycle whose star is on disk."""
        return self.cycles[-1] if self.cycles else None

    def has_star(self, number: int) -> bool:
        """Cycle ``number`` is recorded with its star."""
        return any(c.number == number for c in self.cycles)

    def with_cycle(self, record: CycleRecord, *, star: bool = True) -> SessionState:
        """A copy with ``record`` added (replacing a record of the same number): to
        ``cycles``, or with ``star`` False to ``stream_cycles``."""
        cycles = [c for c in self.cycles if c.number != record.number]
        streamed = [c for c in self.stream_cycles if c.number != record.number]
        (cycles if star else streamed).append(record)
        return replace(
            self,
            cycles=tuple(sorted(cycles, key=lambda c: c.number)),
            stream_cycles=tuple(sorted(streamed, key=lambda c: c.number)),
        )

    def with_star(self, number: int, particle_count: int) -> SessionState:
        """A copy in which streaming update ``number`` has its star now (``particle_count``:
        its rows): its record moves from ``stream_cycles`` to ``cycles``."""
        record = next((c for c in self.stream_cycles if c.number == number), None)
        if record is None:
            return self
        return self.with_cycle(replace(record, particle_count=particle_count))

    def without_cycles(self, numbers: set[int]) -> SessionState:
        """A copy whose history no longer holds cycles ``numbers``."""
        return replace(
            self,
            cycles=tuple(c for c in self.cycles if c.number not in numbers),
            stream_cycles=tuple(c for c in self.stream_cycles if c.number not in numbers),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; ``working_directory``/``job_status`` mirror the original's keys."""
        return {
            "version": self.version,
            "warp_folder": self.warp_folder,
            "working_directory": self.output_folder,
            "output_folder": self.output_folder,
            "session_name": self.session_name,
            "settings": self.settings.to_dict(),
            "job_status": self.status.value,
            "automatic": self.automatic,
            "force_abinit": self.force_abinit,
            "next_run_new_particles": self.next_run_new_particles,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "job": None if self.job is None else self.job.to_dict(),
            "cycles": [c.to_dict() for c in self.cycles],
            "stream_cycles": [c.to_dict() for c in self.stream_cycles],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Read state written by :meth:`to_dict`; unknown settings keys are ignored."""
        status_text = str(data.get("job_status", SessionStatus.STOPPED.value))
        try:
            status = SessionStatus(status_text)
        except ValueError:
            status = SessionStatus.STOPPED
        cycles = sorted(
            (CycleRecord.from_dict(c) for c in data.get("cycles", [])), key=lambda c: c.number
        )
        with_star = {c.number for c in cycles}
        streamed = sorted(
            (
                CycleRecord.from_dict(c)
                for c in data.get("stream_cycles", [])
                if int(c["number"]) not in with_star
            ),
            key=lambda c: c.number,
        )
        job = data.get("job")
        return cls(
            version=int(data.get("version", SCHEMA_VERSION)),
            warp_folder=str(data["warp_folder"]),
            output_folder=str(data.get("output_folder", data.get("working_directory", ""))),
            session_name=str(data.get("session_name", "")),
            settings=JobSettings.from_dict(dict(data.get("settings", {})), ignore_unknown=True),
            status=status,
            automatic=bool(data.get("automatic", False)),
            cycles=tuple(cycles),
            stream_cycles=tuple(streamed),
            job=None if not job else JobRecord.from_dict(job),
            force_abinit=bool(data.get("force_abinit", False)),
            next_run_new_particles=bool(data.get("next_run_new_particles", False)),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            last_error=str(data.get("last_error", "")),
        )


@dataclass(frozen=True, slots=True)
class LoadedState:
    """The result of :func:`load_state`: the state and what had to be done to get it."""

    state: SessionState
    recovered_from_prev: bool = False
    message: str = ""


def _parse(path: Path) -> SessionState:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("top level is not a JSON object")
    return SessionState.from_dict(data)


def load_state(folder: Path) -> LoadedState | None:
    """Load ``<folder>/latest_run.json``, falling back to its previous good copy.

    Returns ``None`` when the folder has no state (a new session).

    Raises:
        StateError: both files exist but neither can be read (the message names both).
    """
    folder = Path(folder)
    current, prev = folder / STATE_NAME, folder / PREV_NAME
    if not current.exists() and not prev.exists():
        return None
    problem = ""
    if current.exists():
        try:
            return LoadedState(_parse(current))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problem = f"{current} is damaged ({type(exc).__name__}: {exc})"
    else:
        problem = f"{current} is missing"
    if prev.exists():
        try:
            state = _parse(prev)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{problem}, and its previous copy {prev} is damaged too "
                f"({type(exc).__name__}: {exc}); move both away to start the session afresh"
            ) from None
        damaged = folder / f"{STATE_NAME}.damaged"
        with contextlib.suppress(OSError):
            if current.exists():
                shutil.copyfile(current, damaged)
        kept = f" (the damaged file was kept as {damaged.name})" if damaged.exists() else ""
        return LoadedState(
            state,
            recovered_from_prev=True,
            message=(
                f"{problem}; recovered the session from its previous good copy {prev.name}"
                f"{kept}. At most the last change is lost."
            ),
        )
    raise StateError(f"{problem} and there is no previous copy {prev.name}")


def peek_state(folder: Path) -> SessionState | None:
    """Read the state without changing anything on disk (for commands that only read a
    session, such as ``live2d export``): ``latest_run.json``, else its previous good copy.

    Returns ``None`` when the folder has no state.

    Raises:
        StateError: neither file can be read.
    """
    folder = Path(folder)
    problems: list[str] = []
    for path in (folder / STATE_NAME, folder / PREV_NAME):
        if not path.exists():
            continue
        try:
            return _parse(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path} ({type(exc).__name__}: {exc})")
    if not problems:
        return None
    raise StateError("cannot read the session state: " + "; ".join(problems))


_written: dict[Path, tuple[int, int, int]] = {}
"""(inode, size, mtime) of the state file this process last wrote, per path: a file that still
matches is known good and need not be parsed again before it becomes ``.prev``."""


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _keep_previous(current: Path, prev: Path) -> None:
    """Make ``prev`` the current file's content, atomically: a hard link renamed over ``prev``
    (no copy, whatever the history's size), or a copy where links are not supported."""
    link = prev.with_name(f".{prev.name}.{os.getpid()}.link.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        os.link(current, link)
        link.replace(prev)
    except OSError:
        with contextlib.suppress(OSError):
            link.unlink()
        atomic_write_bytes(prev, current.read_bytes())


def save_state(folder: Path, state: SessionState) -> None:
    """Write ``latest_run.json`` atomically, keeping the current good copy as ``.prev``.

    Raises:
        OSError: the write failed (e.g. disk full); both files on disk are unchanged.
    """
    folder = Path(folder)
    current = folder / STATE_NAME
    if current.exists():
        known_good = _written.get(current) == _identity(current)
        if not known_good:
            try:
                _parse(current)
            except (OSError, ValueError, KeyError, TypeError):
                known_good = False  # never overwrite the good .prev with a damaged file
            else:
                known_good = True
        if known_good:
            _keep_previous(current, folder / PREV_NAME)
    atomic_write_json(current, state.to_dict())
    with contextlib.suppress(OSError):
        _written[current] = _identity(current)
