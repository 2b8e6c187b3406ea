"""Process groups of running program runs: stop them cleanly, remember them, end survivors after a
crash.

Every program run is the leader of its own session and process group
(``start_new_session=True``), so one signal reaches the program and anything it spawned. Stopping is
polite first: SIGTERM to the group, a bounded wait, SIGKILL, then reaping (the watchfiles/anyio
pattern).

If the supervisor itself dies (SIGKILL, tmux kill-session, OOM), its program runs keep running. Two
records let a restarted supervisor find them, and :func:`end_orphans` ends them before any
cleanup touches their files:

1. a **registry** file per output folder (``cycles/running_jobs.json``) listing each running
   program run's process group and start time (field 22 of ``/proc/<pid>/stat``, in clock ticks
   since boot). A pid is trusted only if its start time still matches, so a recycled pid is never
   hit;
2. a **marker** in each program run's environment (``LIVE2D_OUTPUT_FOLDER=<folder>``), which covers
   the instant between spawning a program run and recording it. One supervisor owns a folder at a
   time (a lock), so at start-up every process carrying the folder's marker is an orphan.

The registry is replaced atomically (temp file + rename) but not fsynced: it protects against the
supervisor dying, and a machine crash ends the program runs anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

REGISTRY_NAME = "running_jobs.json"
SCRATCH_STEMS = ("input", "classes", "dump", "part", "joined")
"""Name stems of a cycle attempt's scratch files (``<stem>_<token>…``); the attempt refuses any
other, so every scratch file it makes is one :data:`SCRATCH_PATTERN` finds after a crash."""
SCRATCH_PATTERN = re.compile(rf"^({'|'.join(SCRATCH_STEMS)})_[0-9a-f]{{6}}(_\d*)?\.(star|mrc|dat)$")
"""Scratch files of a cycle attempt in ``cycles/cycle_<N>/`` (see the runner); logs are kept."""
MARKER_ENV = "LIVE2D_OUTPUT_FOLDER"
TERM_GRACE_SECONDS = 5.0
"""How long a program run's process group may take to exit after SIGTERM before it gets SIGKILL."""


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` we use."""

    pid: int
    state: str
    pgid: int
    sid: int
    cpu_ticks: int
    """utime + stime + cutime + cstime, in clock ticks."""
    start_ticks: int
    """Start time after boot, in clock ticks: with the pid, a process's identity."""


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; ``None`` when the process does not exist (or is unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after the last ')'
    rest = data[data.rfind(")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=rest[0],
            pgid=int(rest[2]),
            sid=int(rest[3]),
            cpu_ticks=int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14]),
            start_ticks=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """CPU time used by ``pid`` (and its reaped children), or ``None`` if it is gone."""
    stat = read_stat(pid)
    if stat is None:
        return None
    return stat.cpu_ticks / os.sysconf("SC_CLK_TCK")


def session_members(sid: int) -> list[ProcStat]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    members: list[ProcStat] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is not None and stat.sid == sid and stat.state != "Z":
            members.append(stat)
    return members


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to a process group; ``False`` when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class RunningProgram:
    """A registry entry: one program run's process group."""

    pid: int
    """The group leader (= process group id = session id)."""
    start_ticks: int
    name: str
    started: float
    """Wall-clock start (``time.time()``), for logs."""


class ProcessRegistry:
    """The persisted set of running program runs of one output folder
    (``cycles/running_jobs.json``)."""

    def __init__(self, output_folder: Path) -> None:
        self.path = Path(output_folder) / "cycles" / REGISTRY_NAME
        self._jobs: dict[int, RunningProgram] = {}

    def add(self, pid: int, name: str) -> RunningProgram | None:
        """Record a freshly spawned program run; ``None`` if it already exited (nothing to
        record)."""
        stat = read_stat(pid)
        if stat is None:
            return None
        job = RunningProgram(pid=pid, start_ticks=stat.start_ticks, name=name, started=time.time())
        self._jobs[pid] = job
        self._save()
        return job

    def remove(self, pid: int) -> None:
        """Forget a reaped program run."""
        if self._jobs.pop(pid, None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([asdict(j) for j in self._jobs.values()]), encoding="utf-8")
        tmp.replace(self.path)

    def load(self) -> list[RunningProgram]:
        """Entries on disk (a damaged file counts as empty: the marker scan still runs)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [RunningProgram(**entry) for entry in data]
        except (OSError, ValueError, TypeError):
            return []

    def clear(self) -> None:
        """Remove the registry file."""
        self._jobs.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def marked_processes(output_folder: Path) -> list[ProcStat]:
    """Processes whose environment carries this output folder's marker."""
    marker = f"{MARKER_ENV}={Path(output_folder).resolve()}".encode()
    me = os.getpid()
    found: list[ProcStat] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            stat = read_stat(int(entry.name))
            if stat is not None and stat.state != "Z":
                found.append(stat)
    return found


def _kill_and_wait(stats: Iterable[ProcStat], grace: float) -> int:
    """SIGTERM the groups of ``stats``, wait up to ``grace`` s, SIGKILL what is left."""
    targets = {s.pid: s for s in stats}
    if not targets:
        return 0
    groups = {s.pgid for s in targets.values()}
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    for s in targets.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(s.pid, signal.SIGTERM)

    def alive() -> list[ProcStat]:
        out = []
        for s in targets.values():
            now = read_stat(s.pid)
            if now is not None and now.start_ticks == s.start_ticks and now.state != "Z":
                out.append(s)
        return out

    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    for s in alive():
        signal_group(s.pgid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(s.pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(targets)


def end_orphans(
    output_folder: Path,
    log: Callable[[str], None],
    *,
    grace: float = TERM_GRACE_SECONDS,
) -> int:
    """End every program run a previous supervisor of ``output_folder`` left running; return how
    many.

    Registry entries are verified by start time (a recycled pid is left alone); members of a
    recorded program run's session started after it are included, as are processes carrying the
    folder's environment marker; then the scratch files of interrupted attempts are removed.
    Call it only while no cycle of this folder runs (at start-up, after an abort). Blocking (up
    to about 2 × ``grace``): call it from a thread when an event loop is running.
    """
    registry = ProcessRegistry(output_folder)
    victims: dict[int, ProcStat] = {}
    for job in registry.load():
        leader = read_stat(job.pid)
        if leader is not None and leader.start_ticks == job.start_ticks:
            victims[leader.pid] = leader
        for member in session_members(job.pid):
            # a pid in use as a session id cannot be recycled while the session has members
            if member.start_ticks >= job.start_ticks:
                victims[member.pid] = member
    for stat in marked_processes(output_folder):
        victims[stat.pid] = stat
    for stat in victims.values():
        log(f"Ending orphaned program run process {stat.pid} (group {stat.pgid}) of a previous run")
    count = _kill_and_wait(victims.values(), grace)
    registry.clear()
    if count:
        log(f"Ended {count} orphaned program run process(es)")
    removed = remove_stale_scratch(output_folder)
    if removed:
        log(f"Removed {len(removed)} scratch file(s) of interrupted cycle attempts")
    return count


def remove_stale_scratch(output_folder: Path) -> list[Path]:
    """Delete scratch files (dumps, per-run stars, input stars) of interrupted cycle attempts.

    Only call it when no cycle of this folder runs (:func:`end_orphans` does, after ending the
    survivors). Per-run logs stay: they explain what happened.
    """
    removed: list[Path] = []
    cycles = Path(output_folder) / "cycles"
    try:
        folders = [entry for entry in cycles.iterdir() if entry.is_dir()]
    except OSError:
        return removed
    for folder in folders:
        for entry in folder.iterdir():
            if SCRATCH_PATTERN.match(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed
