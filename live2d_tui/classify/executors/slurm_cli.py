"""SLURM's command-line clients as the SLURM executor uses them: argv builders and parsers.

Everything here is pure (argv lists in, parsed records out) except :func:`run_sync` and
:func:`run_async`, which run one client command with a time limit. The executor polls with
``squeue``; orphan clean-up at start-up runs the same commands synchronously in a thread.

Where a job's final state and reason come from (docs/slurm.md, "State and reason"):

1. ``squeue -h -t all -j ID,... -o '%i|%T|%r'`` while slurmctld still knows the job (until
   ``MinJobAge`` after it ended, 300 s by default): state **and** reason (``TIMEOUT``/
   ``TimeLimit``, ``NODE_FAIL``/``NodeDown``, ``OUT_OF_MEMORY``/``OutOfMemory``...);
2. ``sacct -X -n -P -j ID,... -o JobID,State,ExitCode`` once it is forgotten (slurmdbd), or the
   same with ``--completion`` (the ``jobcomp/filetxt`` log) when accounting storage is
   disabled: the state only;
3. neither: "SLURM no longer knows it", a failure.

``sbatch --wait`` is no source: it returns 0 for a job cancelled while pending or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from live2d_tui.config import ServerConfig

COMMAND_TIMEOUT = 60.0
"""Seconds one client command may take. A dead slurmctld makes every command fail after about
4 s; a missing ``SLURM_CONF`` makes them retry for 60 s."""

ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)
"""Job states after which the job will not run again (we submit with ``--no-requeue``)."""

RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING"})
"""States in which the program runs (or is being ended) on a node; every other live state
(``PENDING``, ``CONFIGURING``, ``SUSPENDED``, ``REQUEUED``...) counts as queued."""

NEVER_STARTS = frozenset(
    {
        "PartitionConfig",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "BadConstraints",
        "InvalidAccount",
        "InvalidQOS",
        "AccountNotAllowed",
        "QOSNotAllowed",
        "DependencyNeverSatisfied",
    }
)
_NEVER_PATTERN = re.compile(r"^(QOS|Assoc)Max\w*PerJob")
"""Pending reasons that a waiting job cannot outgrow: the request exceeds what the partition,
QOS or account allows (e.g. more CPUs than any node has). Such a job is cancelled and the run
fails at once instead of waiting for ever."""


class SlurmError(Exception):
    """A SLURM client command failed (not found, timed out, or refused); the message says how."""


def never_starts(reason: str) -> bool:
    """Whether a pending job with this reason can never start (a configuration problem)."""
    return reason in NEVER_STARTS or _NEVER_PATTERN.match(reason) is not None


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """The ``slurm_*`` server settings the executor uses (docs: config.py's field help)."""

    partition: str = ""
    account: str = ""
    qos: str = ""
    time_limit_minutes: int = 60
    memory_mb: int = 0
    cpus_per_task: int = 1
    max_jobs: int = 16
    extra_args: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    poll_seconds: float = 5.0
    file_wait_seconds: float = 120.0
    watchdog_seconds: float = 600.0

    @classmethod
    def from_server(cls, server: ServerConfig) -> SlurmSettings:
        """The settings of a validated server configuration."""
        return cls(
            partition=server.slurm_partition,
            account=server.slurm_account,
            qos=server.slurm_qos,
            time_limit_minutes=server.slurm_time_limit_minutes,
            memory_mb=server.slurm_memory_mb,
            cpus_per_task=server.slurm_cpus_per_task,
            max_jobs=server.slurm_max_jobs,
            extra_args=server.slurm_extra_args,
            prologue=server.slurm_prologue,
            poll_seconds=server.slurm_poll_seconds,
            file_wait_seconds=server.slurm_file_wait_seconds,
            watchdog_seconds=server.watchdog_minutes * 60.0,
        )


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What SLURM says about one job."""

    job_id: int
    state: str
    """``PENDING``, ``RUNNING``, ``TIMEOUT``... (sacct's ``CANCELLED by 0`` → ``CANCELLED``)."""
    reason: str = ""
    """squeue's reason (``TimeLimit``, ``Resources``...); empty when it came from sacct."""
    exit_code: str = ""
    """sacct's ``code:signal`` (empty from squeue)."""

    @property
    def ended(self) -> bool:
        """The job will not run again."""
        return self.state in ENDED_STATES

    @property
    def running(self) -> bool:
        """The program runs on a node (or is being ended there)."""
        return self.state in RUNNING_STATES

    def describe(self) -> str:
        """``TIMEOUT, reason TimeLimit`` / ``CANCELLED`` (no reason when SLURM gave none)."""
        text = self.state
        if self.reason and self.reason != "None":
            text += f", reason {self.reason}"
        if self.exit_code and self.exit_code not in {"0:0", ""}:
            text += f", exit code {self.exit_code}"
        return text


@dataclass(frozen=True, slots=True)
class ListedJob:
    """One of the user's live jobs (``squeue --me``)."""

    job_id: int
    state: str
    name: str
    comment: str


def _job_id(text: str) -> int | None:
    """The numeric id at the start of ``123``, ``123;cluster``, ``123.batch``; else ``None``."""
    match = re.match(r"^\s*(\d+)", text)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- sbatch


def sbatch_argv(
    settings: SlurmSettings, *, name: str, comment: str, log_path: Path, cwd: Path
) -> list[str]:
    """``sbatch`` reading the job script from stdin.

    The job's stdout and stderr (the program's output, the prologue's, and slurmstepd's own
    messages such as "CANCELLED ... DUE TO TIME LIMIT") are appended to the program run's log
    (``%`` doubled: sbatch reads ``%j``... in file names). It starts in ``cwd`` (else in the
    supervisor's folder, which a node may not have). ``--no-requeue``: a job whose node fails
    ends as ``NODE_FAIL`` (and is retried here) instead of being requeued silently under the
    same id. ``slurm_extra_args`` come last.
    """
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={name}",
        f"--comment={comment}",
        f"--output={str(log_path).replace('%', '%%')}",
        "--open-mode=append",
        f"--chdir={cwd}",
        "--no-requeue",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={settings.cpus_per_task}",
    ]
    if settings.partition:
        argv.append(f"--partition={settings.partition}")
    if settings.account:
        argv.append(f"--account={settings.account}")
    if settings.qos:
        argv.append(f"--qos={settings.qos}")
    if settings.time_limit_minutes:
        argv.append(f"--time={settings.time_limit_minutes}")
    if settings.memory_mb:
        argv.append(f"--mem={settings.memory_mb}M")
    argv.extend(settings.extra_args)
    return argv


def parse_sbatch(stdout: str) -> int:
    """The job id ``sbatch --parsable`` printed (``123`` or ``123;cluster``)."""
    for line in stdout.splitlines():
        job_id = _job_id(line)
        if job_id is not None:
            return job_id
    raise SlurmError(f"sbatch printed no job id: {stdout.strip()!r}")


# --------------------------------------------------------------------------- squeue / sacct


def squeue_states_argv(ids: Sequence[int]) -> list[str]:
    """State and reason of the given jobs, ended ones included while slurmctld knows them."""
    return ["squeue", "-h", "-t", "all", "-j", ",".join(map(str, ids)), "-o", "%i|%T|%r"]


def parse_squeue_states(text: str) -> dict[int, JobStatus]:
    """``id|STATE|Reason`` lines → statuses (jobs SLURM has forgotten are simply absent)."""
    found: dict[int, JobStatus] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3:
            continue
        job_id = _job_id(parts[0])
        if job_id is None:
            continue
        found[job_id] = JobStatus(job_id, parts[1].split()[0] if parts[1] else "", parts[2])
    return found


def sacct_argv(ids: Sequence[int], *, completion: bool) -> list[str]:
    """Final states of forgotten jobs, from accounting or (``completion``) the jobcomp log."""
    argv = ["sacct", "-X", "-n", "-P", "-j", ",".join(map(str, ids)), "-o", "JobID,State,ExitCode"]
    if completion:
        argv.insert(1, "--completion")
    return argv


ACCOUNTING_DISABLED = "accounting storage is disabled"
"""What sacct prints (on stderr, exit 1) on a cluster without slurmdbd."""


def parse_sacct(text: str) -> dict[int, JobStatus]:
    """``id|STATE|code:signal`` lines → statuses (the last line of a job wins: a requeued job
    appears once per run)."""
    found: dict[int, JobStatus] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 3:
            continue
        job_id = _job_id(parts[0])
        if job_id is None or not parts[0].strip().isdigit():
            continue  # job steps (123.batch) are not jobs
        state = parts[1].split()[0] if parts[1].strip() else ""
        found[job_id] = JobStatus(job_id, state, "", parts[2].strip())
    return found


def squeue_mine_argv() -> list[str]:
    """The user's live jobs (pending, running, completing...), comment last (it may hold '|')."""
    return ["squeue", "--me", "-h", "-o", "%i|%T|%j|%k"]


def parse_squeue_mine(text: str) -> list[ListedJob]:
    """Lines of :func:`squeue_mine_argv` → jobs."""
    jobs: list[ListedJob] = []
    for line in text.splitlines():
        parts = line.rstrip("\n").split("|", 3)
        if len(parts) < 4:
            continue
        job_id = _job_id(parts[0])
        if job_id is None:
            continue
        jobs.append(ListedJob(job_id, parts[1].strip(), parts[2].strip(), parts[3].strip()))
    return jobs


def scancel_argv(ids: Sequence[int]) -> list[str]:
    """Cancel the given jobs (every step; SIGTERM, then SIGKILL after SLURM's KillWait)."""
    return ["scancel", *map(str, ids)]


# --------------------------------------------------------------------------- running commands


@dataclass(frozen=True, slots=True)
class Result:
    """A finished client command."""

    returncode: int
    stdout: str
    stderr: str

    def message(self) -> str:
        """The last non-empty line of stderr (else stdout), for error texts."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.returncode}"


def _env() -> dict[str, str]:
    # SQUEUE_*/SACCT_* variables of the user's shell (SQUEUE_STATES, SACCT_FORMAT...) would
    # change what the queries list; SBATCH_* ones are the user's submission defaults and stay
    return {
        key: value for key, value in os.environ.items() if not key.startswith(("SQUEUE_", "SACCT_"))
    }


def run_sync(
    argv: list[str], *, stdin: str | None = None, timeout: float = COMMAND_TIMEOUT
) -> Result:
    """Run a SLURM client (blocking); raises :class:`SlurmError` when it cannot run or times out."""
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} not found: SLURM's client commands are not on PATH") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {argv[0]}: {exc}") from None
    return Result(done.returncode, done.stdout, done.stderr)


async def run_async(
    argv: list[str], *, stdin: str | None = None, limit: float = COMMAND_TIMEOUT
) -> Result:
    """Run a SLURM client without blocking the event loop (see :func:`run_sync`).

    Cancelling it kills the client and re-raises (callers that must not lose a submission
    shield it).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
        )
    except FileNotFoundError:
        raise SlurmError(f"{argv[0]} not found: SLURM's client commands are not on PATH") from None
    except OSError as exc:
        raise SlurmError(f"cannot run {argv[0]}: {exc}") from None
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), limit
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise SlurmError(f"{argv[0]} did not answer within {limit:.0f} s") from None
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


def slurm_answers(timeout: float = 10.0) -> str:
    """'' when a SLURM controller answers ``scontrol ping``, else why not (for tests and
    diagnostics)."""
    try:
        result = run_sync(["scontrol", "ping"], timeout=timeout)
    except SlurmError as exc:
        return str(exc)
    if "is UP" in result.stdout:
        return ""
    return f"scontrol ping: {result.message()}"
