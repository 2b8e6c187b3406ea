"""Finding this output folder's SLURM jobs again: names, comments, the durable registry, and the
clean-up of jobs a previous supervisor left behind.

Two records, like the local executor's (:mod:`~live2d_tui.classify.procs`):

1. **the registry** ``cycles/slurm_jobs.json``: one entry per submission, written (atomically and
   fsynced: it must survive the machine, not only the supervisor) *before* ``sbatch`` runs — its
   intent, without an id — and again once ``sbatch`` has returned the id; removed when SLURM has
   reported the job ended. Its existence tells a later start that SLURM must be asked, even if
   the configuration no longer says ``executor = "slurm"``;
2. **the job's name and comment**: every job is named ``live2d-<tag>-<run>`` (``tag``: 8 hex
   digits of the output folder's path) and carries the comment
   ``live2d-tui run=<run> nonce=<n> folder=<output folder>``, so ``squeue --me`` finds it even
   when the supervisor died between ``sbatch`` returning and the id being saved. Ids are never
   trusted alone: a SLURM restarted with a clean state hands out low ids again, so a recorded id
   may name somebody else's job; only a job whose comment or name names this folder is touched.

One supervisor owns an output folder at a time (its lock), so at start-up every live job of the
folder is an orphan: :func:`end_slurm_orphans` cancels them and waits until SLURM reports them
ended before the scratch files of the interrupted cycle are removed. Re-attaching instead would
need the interrupted attempt's state (its token, its siblings, its merge), which a restart does
not keep; the cycle runs again from its inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from live2d_tui.atomic import atomic_write_json, fsync_dir
from live2d_tui.classify.executors.slurm_cli import (
    JobStatus,
    ListedJob,
    SlurmError,
    parse_squeue_mine,
    parse_squeue_states,
    run_sync,
    scancel_argv,
    squeue_mine_argv,
    squeue_states_argv,
)

REGISTRY_NAME = "slurm_jobs.json"
COMMENT_PREFIX = "live2d-tui "
CANCEL_WAIT_SECONDS = 120.0
"""How long an abort or a start-up waits for SLURM to report cancelled jobs ended (SLURM sends
SIGKILL ``KillWait`` seconds after SIGTERM: 30 s by default)."""

_COMMENT = re.compile(r"^live2d-tui run=(?P<run>\S+) nonce=(?P<nonce>\w+) folder=(?P<folder>.+)$")


def folder_tag(output_folder: Path) -> str:
    """8 hex digits naming an output folder in job names."""
    return hashlib.sha1(str(Path(output_folder).resolve()).encode()).hexdigest()[:8]


def job_name(output_folder: Path, run: str) -> str:
    """The SLURM job name of program run ``run`` (e.g. ``cycle_3_refine2d_2_try1``)."""
    return f"live2d-{folder_tag(output_folder)}-{run}"


def job_comment(output_folder: Path, run: str, nonce: str) -> str:
    """The SLURM job comment: the run, a per-submission nonce and the output folder."""
    return f"{COMMENT_PREFIX}run={run} nonce={nonce} folder={Path(output_folder).resolve()}"


def belongs_to(job: ListedJob, output_folder: Path) -> bool:
    """Whether a listed job is a program run of this output folder (by comment, else name)."""
    match = _COMMENT.match(job.comment)
    if match is not None:
        return match.group("folder") == str(Path(output_folder).resolve())
    return job.name.startswith(f"live2d-{folder_tag(output_folder)}-")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True, slots=True)
class SlurmEntry:
    """One submission of the registry."""

    nonce: str
    run: str
    job_id: int | None
    """``None`` between the intent and ``sbatch`` returning."""
    submitted: float
    """``time.time()`` of the intent."""


class SlurmRegistry:
    """``cycles/slurm_jobs.json`` of one output folder; every change is written durably.

    Thread-safe: the executor writes it from worker threads (an fsync on a network filesystem
    takes milliseconds), so writes are serialised and each one writes the latest content.
    """

    def __init__(self, output_folder: Path) -> None:
        self.path = Path(output_folder) / "cycles" / REGISTRY_NAME
        self._entries: dict[str, SlurmEntry] = {}
        self._lock = threading.Lock()

    def intend(self, nonce: str, run: str) -> None:
        """Record a submission about to happen (no id yet)."""
        with self._lock:
            self._entries[nonce] = SlurmEntry(nonce, run, None, time.time())
            self._save()

    def record(self, nonce: str, job_id: int) -> None:
        """Record the id ``sbatch`` returned for a submission."""
        with self._lock:
            entry = self._entries.get(nonce)
            run = entry.run if entry else "?"
            submitted = entry.submitted if entry else time.time()
            self._entries[nonce] = SlurmEntry(nonce, run, job_id, submitted)
            self._save()

    def forget(self, nonce: str) -> None:
        """Drop a submission whose job SLURM reported ended (or that was never submitted)."""
        with self._lock:
            if self._entries.pop(nonce, None) is not None:
                self._save()

    def entries(self) -> list[SlurmEntry]:
        """The submissions this registry holds in memory."""
        with self._lock:
            return list(self._entries.values())

    def _save(self) -> None:
        if not self._entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
                fsync_dir(self.path.parent)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, [asdict(e) for e in self._entries.values()])

    def load(self) -> list[SlurmEntry]:
        """Entries on disk (a damaged file counts as empty: the comment scan still runs)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [SlurmEntry(**entry) for entry in data]
        except (OSError, ValueError, TypeError):
            return []

    def replace(self, entries: Iterable[SlurmEntry]) -> None:
        """Make the file hold exactly ``entries`` (clean-up keeps the jobs it could not end)."""
        with self._lock:
            self._entries = {e.nonce: e for e in entries}
            self._save()

    def exists(self) -> bool:
        """Whether the file is there (a submission may have happened)."""
        return self.path.exists()


# --------------------------------------------------------------------------- clean-up


def wait_ended(ids: list[int], timeout: float, *, poll: float = 0.5) -> dict[int, JobStatus]:
    """Poll ``squeue -t all`` until every job has ended or been forgotten, or ``timeout``; return
    the jobs still live (blocking)."""
    deadline = time.monotonic() + timeout
    live: dict[int, JobStatus] = {}
    while True:
        result = run_sync(squeue_states_argv(ids))
        if result.returncode != 0 and "Invalid job id" not in result.message():
            raise SlurmError(f"squeue: {result.message()}")
        statuses = parse_squeue_states(result.stdout) if result.returncode == 0 else {}
        live = {i: s for i, s in statuses.items() if not s.ended}
        if not live or time.monotonic() >= deadline:
            return live
        time.sleep(poll)


def end_slurm_orphans(
    output_folder: Path,
    log: Callable[[str], None],
    *,
    configured: bool,
    wait_seconds: float = CANCEL_WAIT_SECONDS,
) -> int:
    """Cancel every live SLURM job of ``output_folder`` and wait until SLURM reports it ended;
    return how many were cancelled.

    SLURM is asked when the executor is SLURM (``configured``) or the registry exists. When it
    does not answer, the registry is kept (the next start asks again) and the reason logged.
    Call it only while no cycle of this folder runs (at start-up, after an abort). Blocking.
    """
    folder = Path(output_folder).resolve()
    registry = SlurmRegistry(folder)
    recorded = registry.load()
    if not recorded and not configured and not registry.exists():
        return 0
    try:
        listing = run_sync(squeue_mine_argv())
        if listing.returncode != 0:
            raise SlurmError(f"squeue: {listing.message()}")
    except SlurmError as exc:
        if recorded:
            log(
                f"Cannot ask SLURM about {len(recorded)} job(s) the last run recorded ({exc}); "
                f"they stay in {registry.path} and are checked at the next start"
            )
        else:
            log(f"Cannot ask SLURM for jobs of the last run: {exc}")
        return 0
    orphans = [job for job in parse_squeue_mine(listing.stdout) if belongs_to(job, folder)]
    if not orphans:
        registry.replace([])
        _remove_end_records(folder)
        return 0
    ids = [job.job_id for job in orphans]
    for job in orphans:
        log(f"Cancelling SLURM job {job.job_id} ({job.name}, {job.state}) left by the previous run")
    try:
        cancelled = run_sync(scancel_argv(ids))
        if cancelled.returncode != 0:
            log(f"scancel: {cancelled.message()}")
        live = wait_ended(ids, wait_seconds)
    except SlurmError as exc:
        log(f"Cannot cancel the previous run's SLURM jobs: {exc}; they are tried again next start")
        live = {i: JobStatus(i, "UNKNOWN") for i in ids}
    if live:
        log(
            f"SLURM job(s) {', '.join(map(str, live))} did not end within {wait_seconds:.0f} s "
            "of scancel; they stay recorded and are cancelled again at the next start"
        )
        by_id = {job.job_id: job for job in orphans}
        registry.replace(_entry_of(by_id[i]) for i in live)
    else:
        registry.replace([])
        _remove_end_records(folder)
        log(f"Cancelled {len(ids)} SLURM job(s) of the previous run; SLURM reports them ended")
    return len(ids)


_END_RECORD = re.compile(r"\.log\.(end|hung|end\.tmp\.\d+)$")


def _remove_end_records(folder: Path) -> None:
    """Delete end records (and watchdog markers) of jobs nobody read: a job that ended while
    the supervisor was down leaves one beside its log."""
    for path in (folder / "cycles").glob("cycle_*/*.log.*"):
        if _END_RECORD.search(path.name):
            with contextlib.suppress(OSError):
                path.unlink()


def _entry_of(job: ListedJob) -> SlurmEntry:
    match = _COMMENT.match(job.comment)
    nonce = match.group("nonce") if match else f"job{job.job_id}"
    run = match.group("run") if match else job.name
    return SlurmEntry(nonce, run, job.job_id, time.time())
