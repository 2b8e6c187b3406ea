"""``live2d run``: the supervisor without a terminal UI, one log line per event on stdout.

Modes: ``--auto`` (the default) waits for particles and runs jobs until stopped; ``--once``
ingests what is there, runs one job now and exits when it ends (exit status 0 only when the job
succeeded). The mode given here wins over the one saved in the output folder: ``--once`` after
an ``--auto`` run restores no automatic jobs, and finishes an interrupted job instead of
starting one. ``--set KEY=VALUE`` overrides a job setting (canonical names) for this run, on top of
the session's saved settings.

Signals: the first SIGINT (Ctrl-C) stops after the running cycle, a second one aborts now;
SIGTERM and SIGHUP abort cleanly (processes ended, partial outputs removed, the lock released).

Exit status: 0 success / clean stop; 1 the job failed or automatic jobs ended *failed*; 2 the
session could not be opened (message on stderr); 128 + signal number after an abort by signal.
Never imports Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from live2d_tui.commands.common import (
    OUT_RULE,
    add_config_arguments,
    config_from_args,
    job_overrides,
)
from live2d_tui.config import Config, ConfigError, JobSettings
from live2d_tui.events import (
    AlertCleared,
    AlertRaised,
    ClassQualityReady,
    CycleFinished,
    CycleProgress,
    CycleStarted,
    ErrorRaised,
    Event,
    HealthUpdated,
    IngestCounts,
    JobFinished,
    LogLine,
    SessionChanged,
    SessionStatus,
    StatusChanged,
    StreamState,
    job_position,
)
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.paths import resolve_warp_folder
from live2d_tui.supervisor import Supervisor, SupervisorError
from live2d_tui.supervisor.model import mask_radius_problem
from live2d_tui.warp.source import initial_settings

EPILOG = """\
exit status: 0 success or a clean stop; 1 the job failed, or automatic jobs ended failed;
  2 the session could not be opened (one line on stderr, nothing written);
  128 + the signal's number after an abort by signal.
signals: the first Ctrl-C stops after the running cycle, a second one aborts now;
  SIGTERM and SIGHUP abort cleanly (program runs ended, partial outputs removed).
output: one line per event on stdout; every line is also in live2d.log in the output folder.
  When stdout is closed (e.g. `live2d run ... | head`), printing stops quietly and the run
  carries on (the job is not ended; --once still exits with the job's status).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``live2d run``."""
    parser.add_argument(
        "warp_folder",
        metavar="WARP_FOLDER",
        help="Warp session folder: a path, or a session name under warp_prefix",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help=f"output folder (default: {OUT_RULE})"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--auto",
        action="store_true",
        help="wait for particles and run automatic jobs until stopped (default)",
    )
    mode.add_argument(
        "--once",
        action="store_true",
        help="ingest what is there, run one job now (or finish an interrupted one), exit with "
        "its status; automatic jobs saved by an earlier --auto are not restored",
    )
    parser.add_argument(
        "--reimport",
        action="store_true",
        help="re-import every particle into a fresh stack first (for a damaged stack); "
        "the next job is ab initio",
    )
    add_config_arguments(parser)


def format_event(event: Event) -> str | None:
    """One line for an event (``None``: not printed)."""
    match event:
        case LogLine(text=text, level=level):
            return text if level == "info" else f"{level.upper()}: {text}"
        case StatusChanged(status=status, reason=reason):
            return f"[status] {status.label}" + (f" ({reason})" if reason else "")
        case IngestCounts() as c:
            return (
                f"[ingest] {c.particles_active:,} active of {c.particles_total:,} particles; "
                f"{c.micrographs_ingested}/{c.micrographs_seen} micrographs "
                f"({c.micrographs_deferred} deferred, {c.micrographs_inactive} inactive); "
                f"new {c.particles_new:,} of {c.next_threshold:,}"
            )
        case CycleStarted() as s:
            return (
                f"[cycle {s.number}] started: {s.block_type.label}, "
                f"{job_position(s.index_in_job, s.cycles_in_job)}, "
                f"{s.particle_count:,} particles, {s.high_res_limit:.1f} Å"
            )
        case CycleProgress() as p:
            return f"[cycle {p.number}] {p.stage.value} {p.percent:.0f}% ({p.runs_text()})"
        case StreamState() as s:
            return f"[stream] classes of cycle {s.cycle}: {s.summary(time.time())}"
        case CycleFinished(number=number, success=success, message=message):
            return f"[cycle {number}] " + ("finished" if success else f"failed: {message}")
        case JobFinished(success=success, message=message):
            return (
                "[job] "
                + ("finished" if success else "ended without success")
                + (f": {message}" if message else "")
            )
        case ErrorRaised(message=message, detail=detail):
            return f"[error] {message}" + (f" — {detail}" if detail else "")
        case SessionChanged(warp_folder=warp, output_folder=out):
            return f"[session] Warp folder {warp} → output folder {out}"
        case ClassQualityReady(number=number, success=success, message=message):
            return f"[cycle {number}] half-set estimate " + (
                "ready" if success else f"failed: {message}"
            )
        case AlertRaised(alert=alert):
            return f"[alert] {alert.text}"
        case AlertCleared(text=text):
            return f"[alert ended] {text}"
        case HealthUpdated():
            return None


ALSO_LOGGED = (CycleStarted, CycleFinished, JobFinished, ErrorRaised, AlertRaised, AlertCleared)
"""Events the supervisor always announces with a log line too: printed once, as that line (an
alert's is ``ALERT: <text>``, its end ``Alert ended: <text>``)."""


class _Printer:
    """Prints events; coalesces progress to stage changes, 10 % steps and changes of the queued,
    running and done counts, and the streaming state to changes other than the particles
    waiting, which it prints in steps of a tenth of the batch.

    When the reader goes away (``live2d run … | head``), printing stops quietly and the run
    carries on: the job is not ended because nobody reads its output (the session log keeps
    every line).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._progress: tuple[int, str, int, int, int, int] | None = None
        self._stream: tuple[object, ...] | None = None
        self.closed = False
        """The reader closed the pipe: nothing more is printed."""

    def __call__(self, event: Event) -> None:
        if self.closed or isinstance(event, ALSO_LOGGED):
            return
        if isinstance(event, CycleProgress):
            key = (
                event.number,
                event.stage.value,
                int(event.percent // 10),
                event.runs_queued,
                event.runs_running,
                event.runs_done,
            )
            if key == self._progress:
                return
            self._progress = key
        if isinstance(event, StreamState):
            step = max(1, event.batch // 10)
            stream_key = (
                event.cycle,
                event.updating,
                event.blocks,
                event.particles,
                event.waiting // step,
                event.pass_number,
                event.pass_done,
                event.full_star_cycle,
            )
            if stream_key == self._stream:
                return
            self._stream = stream_key
        line = format_event(event)
        if line is None:
            return
        stamp = datetime.now().strftime("%H:%M:%S")
        try:
            for part in line.splitlines() or [""]:
                self.stream.write(f"{stamp} {part}\n")
            self.stream.flush()
        except BrokenPipeError:
            self.closed = True
            _discard_output(self.stream)


def _discard_output(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null, so that what is still buffered (flushed at
    exit) does not raise a second BrokenPipeError."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``live2d run``."""
    config = config_from_args(args)
    overrides = job_overrides(args)
    try:
        warp = resolve_warp_folder(args.warp_folder, config.server)
    except ValueError as exc:
        print(f"live2d run: {exc}", file=sys.stderr)
        return 2
    problem = _mask_problem(warp, overrides)
    if problem:  # before the session opens: a refused start writes nothing
        print(f"live2d run: {problem}", file=sys.stderr)
        return 2
    return asyncio.run(
        _main(config, warp, args.out, overrides, once=bool(args.once), reimport=args.reimport)
    )


def _mask_problem(warp: Path, overrides: dict[str, str]) -> str:
    """Whether ``--set mask_radius=…`` exceeds half the box of the Warp folder's particles."""
    if "mask_radius" not in overrides:
        return ""
    try:
        settings = initial_settings(warp)
    except WarpFileError:
        return ""  # the session's opening says what is wrong with the folder
    radius = JobSettings().with_changes(mask_radius=overrides["mask_radius"]).mask_radius
    return mask_radius_problem(radius, settings.box_size, settings.pixel_size)


async def _main(
    config: Config,
    warp: Path,
    out: Path | None,
    overrides: dict[str, str],
    *,
    once: bool,
    reimport: bool = False,
) -> int:
    printer = _Printer(sys.stdout)
    try:
        sup = Supervisor(config, warp_folder=warp, output_folder=out)
    except SupervisorError as exc:
        print(f"live2d run: {exc}", file=sys.stderr)
        return 2
    sup.bus.subscribe(printer)
    done = asyncio.Event()
    outcome: dict[str, int] = {}

    def finish(code: int) -> None:
        outcome.setdefault("code", code)
        done.set()

    def on_event(event: Event) -> None:
        if isinstance(event, JobFinished) and once:
            finish(0 if event.success else 1)
        elif isinstance(event, StatusChanged):
            if event.status is SessionStatus.FAILED:
                finish(1)
            elif event.status is SessionStatus.STOPPED and stopping:
                finish(0)

    stopping = False
    sup.bus.subscribe(on_event)
    try:
        # the mode given here wins over the saved one: --once restores no automatic jobs
        await sup.start(automatic=False if once else None)
    except SupervisorError as exc:
        print(f"live2d run: {exc}", file=sys.stderr)
        return 2

    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def spawn(coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def abort_and_exit(code: int) -> None:
        outcome["code"] = code  # the abort's own JobFinished must not decide the status
        await sup.abort()
        finish(code)

    async def stop_then_exit() -> None:
        await sup.stop()
        if not sup.job_running:
            finish(outcome.get("code", 0))

    def on_sigint() -> None:
        nonlocal stopping
        if stopping:
            printer(LogLine("Second interrupt: aborting now"))
            spawn(abort_and_exit(128 + signal.SIGINT))
            return
        stopping = True
        printer(LogLine("Interrupt: stopping after the running cycle (Ctrl-C again to abort)"))
        spawn(stop_then_exit())

    def on_terminate(signum: int) -> None:
        printer(LogLine(f"{signal.Signals(signum).name}: aborting now"))
        spawn(abort_and_exit(128 + signum))

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, on_terminate, signum)
    try:
        if reimport and not sup.job_running:
            await sup.force_reimport()
        elif reimport:
            printer(LogLine("An interrupted job is running: --reimport ignored", "warning"))
        settings: JobSettings | None = None
        if overrides:
            settings = sup.snapshot().settings.with_changes(**overrides)
        if once and sup.job_running:
            printer(LogLine("Continuing the interrupted job; --once ends when it ends"))
            if settings is not None:
                spawn(_stage_later(sup, settings))
        elif once:
            if settings is not None:  # refused now rather than after the ingest
                await sup.update_settings(settings)
            await sup.ingest_now(settle=True)
            await sup.start_job_now(continue_automatic=False)
        elif not sup.job_running and sup.status is not SessionStatus.WAITING:
            await sup.start_automatic(settings)
        elif settings is not None:
            printer(LogLine("A job is being resumed: --set applies to the next job", "warning"))
            spawn(_stage_later(sup, settings))
        await done.wait()
    except (SupervisorError, ConfigError) as exc:
        print(f"live2d run: {exc}", file=sys.stderr)
        outcome.setdefault("code", 2)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await sup.close(abort_running=True)
        for task in list(tasks):
            task.cancel()
    return outcome.get("code", 0)


async def _stage_later(sup: Supervisor, settings: JobSettings) -> None:
    """Stage ``settings`` once the resumed job has ended."""
    await sup.wait_job()
    try:
        await sup.update_settings(settings)
    except SupervisorError:
        return
