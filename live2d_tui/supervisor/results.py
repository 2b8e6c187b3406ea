"""A cycle's result files, and the background process that estimates its classes' quality.

After every successful cycle the :class:`ResultsWorker` starts ``live2d quality OUT --cycle N
--after-cycle`` as a separate process: the per-class half-set estimate
(:mod:`live2d_tui.results.quality`) and the carried class selection
(:mod:`live2d_tui.results.selection`) are written beside the cycle, and
:class:`~live2d_tui.events.ClassQualityReady` is published when it ends.

Invariants:
- the process runs at the lowest priority (niceness 19 and, on Linux, ``SCHED_IDLE``): it only
  takes CPU time the cycle's programs leave idle, so it never delays the next cycle; nothing of
  it runs on the event loop but the wait for its exit;
- at most one runs at a time; a cycle finishing meanwhile is queued, and only the newest queued
  cycle runs next; a cycle a view asks for (an older one the user looks at) goes first;
- it carries the output folder's marker in its environment, so a restarted supervisor ends it
  as an orphan; closing the supervisor ends it (its files are written atomically: a killed
  process leaves none half-written);
- its output goes to ``cycles/cycle_<N>/quality.log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from live2d_tui.classify.procs import MARKER_ENV, signal_group
from live2d_tui.dataset.ledger import read_generation_ranges
from live2d_tui.dataset.writer import RELION_NAME, STACK_NAME, STAR_NAME, generation_folder_name
from live2d_tui.events import BlockType, ClassQualityReady, CycleFinished, Event
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.results.cycle_results import CycleResults
from live2d_tui.results.export import (
    ExportError,
    ExportRequest,
    ExportSource,
    ExportSummary,
    default_target,
    export_cycle,
)
from live2d_tui.results.quality import CycleQuality, read_cached
from live2d_tui.results.report import classes_for_report, render_report, write_report
from live2d_tui.results.selection import CycleLink, selection_for
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.state import CycleRecord
from live2d_tui.warp.settings import read_warp_settings, resolve_processing_folder

TERM_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CycleFiles:
    """Where a cycle's files and the dataset files it indexes live."""

    number: int
    star: Path
    classes: Path
    generation_folder: Path
    """The folder of the cycle's dataset generation (the output folder for generation 0)."""

    @property
    def stack(self) -> Path:
        """The combined stack the star's positions index."""
        return self.generation_folder / STACK_NAME

    @property
    def dataset_star(self) -> Path:
        """The generation's cisTEM star."""
        return self.generation_folder / STAR_NAME

    @property
    def relion_star(self) -> Path:
        """The generation's RELION star."""
        return self.generation_folder / RELION_NAME


def cycle_files(output_folder: Path, record: CycleRecord) -> CycleFiles:
    """The files of a completed cycle."""
    out = Path(output_folder)
    return CycleFiles(
        number=record.number,
        star=out / f"{record.name}.star",
        classes=out / f"{record.name}.mrc",
        generation_folder=out / generation_folder_name(record.generation),
    )


def export_source(
    output_folder: Path, record: CycleRecord, warp_folder: Path | None
) -> ExportSource:
    """What :func:`~live2d_tui.results.export.export_cycle` needs of a completed cycle: its
    files, the particles active now (read-only from the ledger) and where Warp's stacks are.

    Raises:
        ValueError: the ledger cannot be read.
    """
    files = cycle_files(output_folder, record)
    generation, ranges = read_generation_ranges(
        Path(output_folder) / "ledger.sqlite", record.generation
    )
    spans = [np.arange(r.first, r.first + r.rows, dtype=np.int64) for r in ranges if r.rows]
    active = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
    processing = warp_folder
    if warp_folder is not None:
        with contextlib.suppress(OSError, ValueError):
            processing = resolve_processing_folder(warp_folder, read_warp_settings(warp_folder))
    return ExportSource(
        cycle=record.number,
        star=files.star,
        stack=files.stack,
        relion_star=files.relion_star,
        active_positions=active,
        generation=record.generation,
        warp_folder=processing,
        warp_inverted=generation.invert,
        warp_float16=any("16" in r.dtype for r in ranges),
    )


def cycle_links(cycles: Sequence[CycleRecord]) -> list[CycleLink]:
    """What decides whether class numbers carry between the completed cycles."""
    return [
        CycleLink(
            number=c.number,
            generation=c.generation,
            seed=c.block_type is BlockType.RANDOM_SEED,
            classes=int(c.settings.get("class_number", len(c.particle_count_per_class) - 1)),
        )
        for c in cycles
    ]


def read_results(
    output_folder: Path, record: CycleRecord, cycles: Sequence[CycleRecord]
) -> CycleResults:
    """A completed cycle's cached estimate (``None`` when missing or stale) and its marks,
    carried ones included (nothing is written).

    Raises:
        SelectionError: a selection file cannot be read.
    """
    files = cycle_files(output_folder, record)
    quality = read_cached(output_folder, record.number, star=files.star, classes=files.classes)
    selection, _ = selection_for(output_folder, record.number, cycle_links(cycles))
    return CycleResults(record.number, quality, selection)


def class_count(record: CycleRecord) -> int:
    """The cycle's number of classes."""
    return int(record.settings.get("class_number", len(record.particle_count_per_class) - 1))


def selected_classes(
    output_folder: Path, record: CycleRecord, cycles: Sequence[CycleRecord]
) -> tuple[int, ...]:
    """The classes marked good on a cycle (carried marks included).

    Raises:
        ExportError: none is.
        SelectionError: a selection file cannot be read.
    """
    selection, _ = selection_for(output_folder, record.number, cycle_links(cycles))
    if not selection.good:
        raise ExportError(f"cycle {record.number} has no class marked good")
    return tuple(selection.good)


def export_classes(
    output_folder: Path,
    record: CycleRecord,
    warp_folder: Path | None,
    request: ExportRequest,
    target: Path | None = None,
    *,
    on_warning: Callable[[str], None] = lambda _text: None,
) -> ExportSummary:
    """Export ``request.classes`` of a completed cycle (:func:`export_cycle`), by default into
    the output folder's ``exports/`` under a new name.

    Raises:
        ExportError: a class the cycle does not have, nothing to export, or the target exists.
        OSError, ValueError: a file cannot be read or written (nothing is left behind).
    """
    k = class_count(record)
    beyond = [c for c in request.classes if c > k]
    if beyond:
        raise ExportError(f"cycle {record.number} has {k} classes: no class {beyond[0]}")
    if target is None:
        exports = Path(output_folder) / "exports"
        exports.mkdir(exist_ok=True)
        target = default_target(exports, record.number, request.classes, request.format)
    source = export_source(output_folder, record, warp_folder)
    return export_cycle(source, request, target, on_warning=on_warning)


def report_target(output_folder: Path, cycle: int) -> Path:
    """``<output folder>/exports/cycle_<N>_classes.png``, the first free one of ``…_2``, …"""
    exports = Path(output_folder) / "exports"
    exports.mkdir(exist_ok=True)
    for n in range(1, 10_000):
        path = exports / f"cycle_{cycle}_classes{'' if n == 1 else f'_{n}'}.png"
        if not path.exists():
            return path
    raise ExportError(f"{exports}: no free report name for cycle {cycle}")


def write_cycle_report(
    output_folder: Path,
    session_name: str,
    record: CycleRecord,
    cycles: Sequence[CycleRecord],
    quality: CycleQuality | None,
    target: Path,
) -> int:
    """Write a completed cycle's report PNG (:mod:`live2d_tui.results.report`) with its marks;
    returns the number of classes shown.

    Raises:
        SelectionError: a selection file cannot be read.
        OSError, ValueError: a file cannot be read or written.
    """
    files = cycle_files(output_folder, record)
    selection, _ = selection_for(output_folder, record.number, cycle_links(cycles))
    header = read_header(files.classes)
    averages = read_slices(files.classes, header, np.arange(1, header.nz + 1, dtype=np.int64))
    classes = classes_for_report(averages, record.particle_count_per_class, quality, selection)
    title = (
        f"{session_name or Path(output_folder).name} — cycle {record.number} "
        f"({record.block_type.value}, {record.high_res_limit:.1f} Å limit), "
        f"{record.particle_count:,} particles, {record.time[:16].replace('T', ' ')}"
    )
    footer = (
        "Under each class: number (✓ selected, ✗ rejected, ? unreviewed), members, and the "
        + (quality.describe() if quality is not None else "half-set estimate (not computed)")
        + "."
    )
    write_report(render_report(classes, title, footer), target)
    return len(classes)


def quality_argv(output_folder: Path, cycle: int) -> list[str]:
    """The command line of the background estimate of ``cycle``."""
    return [
        sys.executable,
        "-m",
        "live2d_tui",
        "quality",
        str(output_folder),
        "--cycle",
        str(cycle),
        "--after-cycle",
    ]


def _close_opened_log(opening: asyncio.Future[tuple[IO[bytes], str]]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


NO_FULL_STAR = "no full star (a streaming update that published its class averages only)"
"""Why a cycle has no estimate: the estimate re-averages from the cycle's star."""


class ResultsWorker:
    """Starts the background estimate after each successful cycle (see the module docstring)."""

    def __init__(self, ctx: SupervisorContext) -> None:
        """A worker with nothing to do; it listens to the context's bus for finished cycles."""
        self.ctx = ctx
        self.output_folder: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._running: int | None = None
        self._pending: int | None = None
        """The newest finished cycle still to estimate."""
        self._asked: list[int] = []
        """Cycles a view asked for, oldest request first (they go before ``_pending``)."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._unsubscribe = ctx.bus.subscribe(self._on_event)

    @property
    def running(self) -> int | None:
        """The cycle whose estimate runs now."""
        return self._running

    def switch_to(self, output_folder: Path) -> None:
        """Work for another output folder (the session changed); nothing queued carries over."""
        self.output_folder = Path(output_folder)
        self._pending = None
        self._asked = []

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CycleFinished) and event.success:
            self.request(event.number, finished=True)

    def request(self, cycle: int, *, finished: bool = False) -> None:
        """Estimate ``cycle`` in the background as soon as no other estimate runs.

        Args:
            cycle: The cycle.
            finished: The cycle just finished: it replaces an older finished cycle still
                queued. Otherwise a view asked for it, and it goes first.
        """
        if self._closed or self.output_folder is None:
            return
        if finished:
            self._pending = cycle
        elif cycle not in self._asked and cycle != self._running:
            self._asked.append(cycle)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._drain(), name="live2d-quality"
            )

    def _next(self) -> int | None:
        if self._asked:
            asked = self._asked.pop(0)
            if asked == self._pending:
                self._pending = None
            return asked
        pending, self._pending = self._pending, None
        return pending

    async def _drain(self) -> None:
        while not self._closed:
            cycle = self._next()
            if cycle is None:
                return
            folder = self.output_folder
            if folder is None:
                return
            if not await asyncio.to_thread((folder / f"cycle_{cycle}.star").exists):
                # a streaming update that published its class averages only: nothing to
                # re-average from; the next update with a full star gets its estimate
                self.ctx.bus.publish(ClassQualityReady(cycle, False, NO_FULL_STAR))
                continue
            self._running = cycle
            try:
                await self._run(folder, cycle)
            finally:
                self._running = None

    @staticmethod
    def _open_log(folder: Path, cycle: int) -> tuple[IO[bytes], str]:
        log_dir = folder / "cycles" / f"cycle_{cycle}"
        log_dir.mkdir(parents=True, exist_ok=True)
        return open(log_dir / "quality.log", "wb"), str(folder.resolve())

    async def _run(self, folder: Path, cycle: int) -> None:
        try:
            opening = asyncio.ensure_future(asyncio.to_thread(self._open_log, folder, cycle))
            try:
                log, marker = await asyncio.shield(opening)
            except asyncio.CancelledError:
                # closed meanwhile: the thread still opens the log; close it when it has
                opening.add_done_callback(_close_opened_log)
                raise
            env = {**os.environ, MARKER_ENV: marker, "OMP_NUM_THREADS": "1"}
            with log:
                self._proc = await asyncio.create_subprocess_exec(
                    *quality_argv(folder, cycle),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            code = await self._proc.wait()
        except OSError as exc:
            self.ctx.log(f"Half-set estimate of cycle {cycle} could not start: {exc}", "warning")
            self.ctx.bus.publish(ClassQualityReady(cycle, False, str(exc)))
            return
        finally:
            self._proc = None
        if self._closed:
            return
        if code == 0:
            self.ctx.bus.publish(ClassQualityReady(cycle, True))
        else:
            message = f"exit status {code} (see cycles/cycle_{cycle}/quality.log)"
            self.ctx.log(f"Half-set estimate of cycle {cycle} failed: {message}", "warning")
            self.ctx.bus.publish(ClassQualityReady(cycle, False, message))

    async def close(self) -> None:
        """End a running estimate (SIGTERM to its group, SIGKILL after a grace) and stop."""
        self._closed = True
        self._pending = None
        self._asked = []
        self._unsubscribe()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), TERM_GRACE_SECONDS)
            except TimeoutError:
                signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
