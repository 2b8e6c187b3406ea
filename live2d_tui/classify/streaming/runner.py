"""The streaming update runner: incremental EM over blocks of particles, on either engine.

Design (issue 20). A **block** is a contiguous range of stack positions. Starting a stream
(:meth:`StreamRunner.start`) adopts a completed cycle: its particles are cut into blocks of about
``stream_batch`` active particles, with that cycle's assignments, and no sums yet. An **update**
(:meth:`StreamRunner.update`):

1. reads the dataset star's rows after the index's cursor (:mod:`.startail`) and plans
   (:mod:`.plan`): the new particles form new blocks; ``stream_revisit`` earlier blocks (least
   recently visited) are refined again; blocks without sums yet (a stream's first update) are
   all refined, so the first update is a refinement cycle over every particle;
2. runs refine2d in dump mode on every block of the update against the latest averages, at
   ``high_res_final``, without auto-centre (the class frame must not move), through the cycle
   runner's executor, answer checks, retries and progress: each block gets its own small input
   star (its rows, with the psi/shifts/classes of its last visit, plus a sample of other rows
   outside its range so cisTEM's whole-star parameter statistics stay those of the whole
   classification) and our engine gets the whole classification's rules in a side file
   (:mod:`live2d_tui.formats.engine_rules`, from the running :mod:`.stats`);
3. checks that every dump of the update names the same set of non-empty classes, one the
   references allow (:func:`.dumps.check_same_classes`: merge2d would sum other sets into the
   wrong classes), and refuses the update otherwise;
4. updates the running total T' = T + Σ new dumps − Σ the revisited blocks' previous dumps
   (float64, each dump read by its own class map), empties in T the classes the engine emptied,
   and writes T' as merge2d's **only** input in the engine's format: merge2d reads one dump,
   whatever N;
5. runs merge2d, registers each new average to the previous one and reports the drift
   (:mod:`.registration`), writes the new block files, statistics and total under new names
   and commits the index atomically (:mod:`.index`); then publishes ``cycle_<N>.mrc`` (and the
   full ``cycle_<N>.star`` when due: at most every ``stream_star_minutes``, and on request) and
   deletes the files the new index no longer names.

So an update reads and writes O(new + revisited particles) plus O(1) files of class sums: the
references, T, merge2d's input and output; the full star, O(N), only when due. Disk: a block
keeps one visit's dumps; beyond ``stream_dump_gb`` neighbouring blocks are fused.

Traps, and how they are handled:

- **Class frame**: no auto-centre while streaming; each update's averages are registered to the
  previous ones and the drift is reported (median/max shift and rotation); class numbers never
  change (an emptied or reused slot keeps its number).
- **Whole-star rules of our engine**: frozen from the running statistics, which are those of
  the union of the blocks' latest rows, so with every block revisited an update equals a full
  refinement cycle over the same star (tested).
- **Non-empty sets**: checked before merge2d (above); T is built by class number from each
  dump's own map, so blocks refined against different sets combine correctly.
- **Empty and stray classes**: a class the engine empties (a stray or a copy) is emptied in T at
  once and marked *stale* in every block not refined in this update, so its old sums are never
  subtracted from T again; cisTEM's empty classes stay empty as in cisTEM.
- **Inactive particles** leave the sums when their block is next revisited (the block's old
  dumps are subtracted, only active particles are refined); reprocessed micrographs arrive as
  new positions and so in new blocks.
- **Crash safety**: new names for every file, one atomic commit, orphans removed on the next
  start (:meth:`StreamRunner.recover`); an abort before the commit leaves the previous state
  and no ``cycle_<N>`` file; an abort during the commit completes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mrcfile
import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import fsync_dir
from live2d_tui.classify import assemble
from live2d_tui.classify.assemble import CycleFailed, RunFailed
from live2d_tui.classify.attempt import CycleAttempt, write_in_thread
from live2d_tui.classify.inputs import CycleInputError, CycleInputs, build_input_rows
from live2d_tui.classify.progress import CycleProgressTracker
from live2d_tui.classify.schedule import CyclePlan, plan_job
from live2d_tui.classify.streaming import index as ix
from live2d_tui.classify.streaming import reseed
from live2d_tui.classify.streaming.plan import (
    NewBlock,
    UpdatePlan,
    fusions,
    new_blocks,
    plan_update,
)
from live2d_tui.classify.streaming.registration import DriftReport, register
from live2d_tui.classify.streaming.startail import cursor_after, read_new_rows
from live2d_tui.classify.streaming.stats import ClassStats
from live2d_tui.config import EngineKind, JobSettings
from live2d_tui.events import BlockType, CycleStage
from live2d_tui.formats.cistem_star import StarRows, empty_rows, read_star, write_star
from live2d_tui.formats.dumps import (
    DumpFormat,
    Partials,
    PartialsError,
    check_same_classes,
    read_engine_dump,
    read_total,
    write_engine_dump,
    write_total,
)
from live2d_tui.formats.engine_rules import RULES_ENV, FrozenRules, noise_sample, write_rules
from live2d_tui.formats.mrc import read_shape, stamp_pixel_size
from live2d_tui.formats.prompts import REFINE2D_TERMINATION
from live2d_tui.formats.protocol import (
    Refine2dRequest,
    validate_refine2d,
)
from live2d_tui.similarity import filled

if TYPE_CHECKING:
    from live2d_tui.classify.runner import CycleRunner

CONTEXT_ROWS = 1000
"""Rows of the classification sampled into every block's input star (outside its range)."""
STAR_COMMENT = "psi and shifts as cisTEM refine2d"


class StreamError(Exception):
    """A streaming update cannot run (no stream, settings changed, dumps disagree...)."""


def dump_format(kind: EngineKind) -> DumpFormat:
    return DumpFormat.LIVE2D if kind is EngineKind.BUILTIN else DumpFormat.CISTEM


def settings_key(settings: JobSettings) -> dict[str, float]:
    """The settings every dump of a stream must share (a change needs a new stream)."""
    return {
        "high_res": float(settings.high_res_final),
        "low_res": float(settings.low_res_limit),
        "mask_radius": float(settings.mask_radius),
        "angular_step": float(settings.angular_step),
        "search_range": float(settings.search_range),
        "smoothing": float(settings.smoothing),
        "automask": float(settings.automask),
    }


@dataclass
class IoCount:
    """Bytes an update reads and writes, by what (the program runs' own reads estimated from
    sizes)."""

    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)

    def add_read(self, what: str, size: int) -> None:
        self.read[what] = self.read.get(what, 0) + int(size)

    def add_written(self, what: str, size: int) -> None:
        self.written[what] = self.written.get(what, 0) + int(size)

    @property
    def bytes_read(self) -> int:
        return sum(self.read.values())

    @property
    def bytes_written(self) -> int:
        return sum(self.written.values())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class StreamResult:
    """A committed update; its ``cycle_<N>`` files are in place when this is returned."""

    number: int
    classes_path: Path
    star_path: Path | None
    """The full cycle star, when this update wrote one."""
    star_rows: int
    """Rows of that star (the active particles among the blocks' rows); 0 without a star."""
    particle_count: int
    """Particles in the classes (every block's rows at its last visit)."""
    cursor_position: int
    """The last stack position the classes cover (every position up to it is in a block)."""
    class_count: int
    members: list[int]
    """Per class, |class| = k (index 0 = unassigned)."""
    used: list[int]
    occupancy: list[float]
    new_particles: int
    revisited_particles: int
    waiting: int
    """Active particles that were not yet in a block when the update was planned."""
    blocks: int
    blocks_revisited: int
    dump_bytes: int
    """Disk taken by the blocks' dumps after the update."""
    drift: DriftReport
    emptied: list[int]
    """1-based classes the engine emptied in this update."""
    new_views: list[tuple[int, int, bool]]
    """Classes given to views that appeared late: (1-based class, members in the pool's
    classification, whether the slot held a copy of another class)."""
    started: datetime
    finished: datetime
    process_count: int
    seconds: dict[str, float]
    """Wall time by step: prepare, refine2d, consolidate, merge2d, publish, total."""
    io: IoCount


@dataclass(frozen=True)
class UpdateStart:
    """What an update is about to do (given to ``on_start`` once it is planned)."""

    number: int
    new_particles: int
    revisited_particles: int
    blocks: int
    """Blocks it refines (new and revisited)."""
    waiting: int
    """Active particles that were waiting when it was planned (its new ones included)."""


@dataclass(frozen=True)
class FullStar:
    """A full cycle star of the stream: every block's latest rows of the active particles."""

    cycle: int
    path: Path
    """``cycle_<cycle>.star`` in the output folder."""
    rows: int


@dataclass(frozen=True)
class StreamSummary:
    """The committed state in numbers (for the UI, the headless log and the session's
    history)."""

    cycle: int
    updates: int
    blocks: int
    particles: int
    cursor_position: int
    pass_number: int
    pass_done: int
    dump_bytes: int
    full_star_cycle: int
    members: list[int]
    """Per class, |class| = k over every block's rows (index 0 = unassigned)."""
    used: list[int]


@dataclass
class _Work:
    """One block of an update: its input rows and, after its program runs, its results."""

    block_id: int
    first: int
    last: int
    data: StarRows
    """The block's dataset rows (every position of its range)."""
    rows: StarRows
    """Its input rows (the active particles, with their last visit's values)."""
    previous: ix.Block | None
    """The block as the index holds it (None: a new block)."""
    previous_rows: StarRows | None
    runs: list[tuple[int, int, int]] = field(default_factory=list)
    """(program run number, first row, end row) slices of :attr:`rows`."""
    refined: StarRows | None = None
    dumps: list[Path] = field(default_factory=list)


class StreamRunner:
    """Runs streaming updates of one output folder through a :class:`CycleRunner`."""

    def __init__(self, runner: CycleRunner) -> None:
        self.runner = runner
        self.folder = ix.stream_folder(runner.output_folder)

    @property
    def format(self) -> DumpFormat:
        return dump_format(self.runner.programs.kind)

    def state(self) -> ix.StreamIndex | None:
        """The committed index (``None``: no stream)."""
        return ix.load_index(self.folder)

    def recover(self) -> list[Path]:
        """After a crash or a kill: remove the files of updates that never committed and publish
        the committed update's files if their links are missing. Returns the removed files."""
        index = self.state()
        removed = ix.remove_orphans(self.folder, index)
        for leftover in self.runner.output_folder.glob(".cycle_*.link"):  # a link half made
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed.append(leftover)
        if index is not None and index.updates:
            out = self.runner.output_folder
            _link(self.folder / index.averages, out / f"cycle_{index.cycle}.mrc")
            star = index.extra.get("full_star", "")
            if star and index.full_star_cycle == index.cycle:
                _link(self.folder / star, out / f"cycle_{index.cycle}.star")
        for path in removed:
            self.runner.log(f"Streaming: removed {path.name} (left by an update that never ended)")
        return removed

    # ------------------------------------------------------------------ start

    async def start(
        self, base_cycle: int, inputs: CycleInputs, settings: JobSettings
    ) -> ix.StreamIndex:
        """Start a stream afresh from completed cycle ``base_cycle`` (``inputs.previous_star`` /
        ``previous_classes`` are its files): its active particles become blocks with its
        assignments, without sums; the next update refines them all. Reads the dataset star and
        the cycle's star once (O(N), like one cycle's input). A previous stream is discarded.
        """
        if inputs.previous_star is None or inputs.previous_classes is None:
            raise StreamError("a stream starts from a completed cycle's star and classes")
        settings.validate()
        return await write_in_thread(self._start, base_cycle, inputs, settings)

    def _start(self, base_cycle: int, inputs: CycleInputs, settings: JobSettings) -> ix.StreamIndex:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (folder / ix.INDEX).unlink()  # the old stream ends here, whatever happens next
        fsync_dir(folder)
        ix.remove_orphans(folder, None)
        (folder / "blocks").mkdir(exist_ok=True)
        assert inputs.previous_star is not None and inputs.previous_classes is not None
        dataset = read_star(inputs.dataset_star)
        positions = np.unique(np.asarray(inputs.active_positions, dtype=np.int64))
        positions = positions[(positions >= 1) & (positions <= inputs.nz)]
        if len(positions) == 0:
            raise StreamError("no active particles to stream")
        rows = build_input_rows(
            dataset, positions, read_star(inputs.previous_star), dataset_name="dataset star"
        )
        shape = read_shape(inputs.previous_classes)
        blocks: list[ix.Block] = []
        stats = ClassStats.empty(shape.nz)
        for number, part in enumerate(new_blocks(positions, 1, inputs.nz, settings.stream_batch)):
            data = _between(dataset, part.first, part.last)
            mine = _between(rows, part.first, part.last)
            data_name, star_name = (
                f"blocks/b{number}_data.star",
                f"blocks/b{number}_v{base_cycle}.star",
            )
            write_star(folder / data_name, data, ["dataset rows of a streaming block"])
            write_star(folder / star_name, mine, [f"streaming block, cycle {base_cycle}"])
            stats.add(mine)
            blocks.append(
                ix.Block(
                    number,
                    part.first,
                    part.last,
                    base_cycle,
                    data_name,
                    star_name,
                    (),
                    len(mine),
                    0,
                )
            )
        averages = f"classes_v{base_cycle}.mrc"
        shutil.copyfile(inputs.previous_classes, folder / averages)
        stats_name, context_name = f"stats_v{base_cycle}.npz", f"context_v{base_cycle}.star"
        stats.save(folder / stats_name)
        write_star(folder / context_name, _sample(rows, CONTEXT_ROWS), ["streaming context"])
        index = ix.StreamIndex(
            engine=self.format,
            stack=str(inputs.stack_path),
            box=shape.nx,
            pixel_size=float(inputs.pixel_size),
            classes=shape.nz,
            base_cycle=base_cycle,
            cycle=base_cycle,
            cursor=cursor_after(inputs.dataset_star, inputs.nz),
            next_block=len(blocks),
            blocks=tuple(blocks),
            total="",
            stats=stats_name,
            averages=averages,
            context=context_name,
            pool="",
            key=settings_key(settings),
        )
        ix.save_index(folder, index)
        self.runner.log(
            f"Streaming started from cycle {base_cycle}: {len(rows)} particles in "
            f"{len(blocks)} blocks; the next update refines them all"
        )
        return index

    # ------------------------------------------------------------------ update

    async def update(
        self,
        number: int,
        inputs: CycleInputs,
        settings: JobSettings,
        *,
        force: bool = False,
        all_blocks: bool = False,
        full_star: bool | None = None,
        on_start: Callable[[UpdateStart], None] | None = None,
    ) -> StreamResult | None:
        """Run one update as cycle ``number``; ``None`` when fewer than ``stream_batch`` new
        particles wait (unless ``force`` or ``all_blocks``).

        Args:
            number: The cycle number it publishes (after every existing cycle).
            inputs: Stack, stack size, dataset star, active positions, pixel size (the previous
                star and classes are the stream's own).
            full_star: Write the full ``cycle_<N>.star`` (None: when ``stream_star_minutes``
                have passed since the last one).
            on_start: Called once the update is planned, before its first program runs (not
                called when it returns ``None``).

        Raises:
            StreamError: No stream, or its settings or stack differ from these (a changed
                setting or a new stack generation needs a new stream).
            CycleFailed: A program failed twice, dumps disagree, or a file could not be written.
            asyncio.CancelledError: Aborted: every program run ended, the previous state intact (an
                abort during the final commit completes the update first).
        """
        index = self.state()
        if index is None:
            raise StreamError("no stream: start one from a completed cycle first")
        if index.key != settings_key(settings):
            raise StreamError(
                "the classification settings changed since the stream started "
                f"({index.key} → {settings_key(settings)}): start a new stream"
            )
        if number <= index.cycle:
            raise StreamError(f"cycle {number} is not after the stream's cycle {index.cycle}")
        if Path(index.stack) != Path(inputs.stack_path):
            raise StreamError(
                f"the stream's blocks refer to {index.stack}, not {inputs.stack_path} (a new "
                "stack generation): start a new stream"
            )
        attempt = StreamUpdate(self, index, number, inputs, settings)
        try:
            return await attempt.run(
                force=force, all_blocks=all_blocks, full_star=full_star, on_start=on_start
            )
        except (CycleFailed, StreamError):
            raise
        except (OSError, ValueError) as exc:
            failure = CycleFailed(f"streaming update {number}: {exc}")
            self.runner.log(f"Cycle {number} failed: {failure.message}")
            raise failure from None
        finally:
            attempt.remove_scratch()

    async def write_full_star(self, active_positions: npt.ArrayLike) -> FullStar | None:
        """Write the full star of the committed update (every block's latest rows of the active
        particles) as ``cycle_<N>.star`` now, e.g. when streaming stops; ``None`` when the
        stream has no update yet. O(N): the updates themselves write it only when due. When
        the committed update's star exists already, it is returned as it is."""
        return await write_in_thread(self._write_full_star, active_positions)

    def _write_full_star(self, active_positions: npt.ArrayLike) -> FullStar | None:
        index = self.state()
        if index is None or not index.updates:
            return None
        out = self.runner.output_folder / f"cycle_{index.cycle}.star"
        if index.full_star_cycle == index.cycle and out.is_file():
            return FullStar(index.cycle, out, int(index.extra.get("full_star_rows", -1)))
        name = f"cycle_v{index.cycle}.star"
        rows = [read_star(self.folder / b.star) for b in index.blocks if b.star]
        joined = np.concatenate(rows) if rows else empty_rows(0)
        joined = joined[np.isin(joined["position"], np.asarray(active_positions, np.int64))]
        comment = (
            f"live2d-tui streaming cycle {index.cycle}: {len(joined)} particles, "
            f"{index.classes} classes; {STAR_COMMENT}"
        )
        write_star(self.folder / name, joined, [comment])
        old = index.extra.get("full_star", "")
        extra = {**index.extra, "full_star": name, "full_star_rows": len(joined)}
        ix.save_index(
            self.folder,
            index.with_changes(
                extra=extra, full_star_cycle=index.cycle, full_star_time=time.time()
            ),
        )
        _link(self.folder / name, out)
        fsync_dir(self.runner.output_folder)
        if old and old != name:
            with contextlib.suppress(FileNotFoundError):
                (self.folder / old).unlink()
        return FullStar(index.cycle, out, len(joined))

    def summary(self) -> StreamSummary | None:
        """The committed state in numbers (reads the class statistics: O(K) bytes); ``None``
        when there is no stream."""
        index = self.state()
        if index is None:
            return None
        stats = ClassStats.load(self.folder / index.stats)
        pass_number, pass_start = revisit_pass(index)
        return StreamSummary(
            cycle=index.cycle,
            updates=index.updates,
            blocks=len(index.blocks),
            particles=index.particles,
            cursor_position=index.cursor.position,
            pass_number=pass_number,
            pass_done=sum(
                1 for b in index.blocks if b.rows == 0 or (b.dumps and b.visited >= pass_start)
            ),
            dump_bytes=index.dump_bytes,
            full_star_cycle=index.full_star_cycle,
            members=[int(v) for v in stats.members],
            used=[int(v) for v in stats.used],
        )

    def check_total(self) -> float:
        """Recompute the running total from every block's dumps (reads O(N) bytes) and return
        the largest difference relative to the largest class sum (the drift of the running
        sums; float64 keeps it near 1e-12)."""
        index = self.state()
        if index is None or not index.total:
            return 0.0
        total = read_total(self.folder / index.total)
        fresh = total.zeroed()
        for block in index.blocks:
            keep = _not_stale(block, index.classes)
            for name in block.dumps:
                fresh.add(read_engine_dump(self.folder / name, index.engine), classes=keep)
        scale = max(float(np.abs(fresh.sums).max()), 1e-30)
        return float(np.abs(fresh.sums - total.sums).max() / scale)


def revisit_pass(index: ix.StreamIndex) -> tuple[int, int]:
    """The current revisiting pass of a stream and the cycle it began after: (pass number,
    first cycle of the pass). A pass ends once every block has been refined in it (round robin
    over the least recently visited blocks takes ⌈blocks / stream_revisit⌉ updates); new
    blocks count as refined in the pass they are made in."""
    return int(index.extra.get("pass", 1)), int(index.extra.get("pass_start", index.base_cycle + 1))


def _next_pass(index: ix.StreamIndex, blocks: tuple[ix.Block, ...], number: int) -> dict[str, int]:
    """``pass``/``pass_start`` after update ``number`` committed ``blocks``."""
    current, start = revisit_pass(index)
    if blocks and all(b.dumps and b.visited >= start for b in blocks if b.rows > 0):
        return {"pass": current + 1, "pass_start": number + 1}
    return {"pass": current, "pass_start": start}


def _between(rows: StarRows, first: int, last: int) -> StarRows:
    inside = (rows["position"] >= first) & (rows["position"] <= last)
    out: StarRows = rows[inside]
    return out


def _sample(rows: StarRows, count: int) -> StarRows:
    if len(rows) <= count:
        return rows.copy()
    pick = np.unique(np.linspace(0, len(rows) - 1, count).round().astype(np.int64))
    out: StarRows = rows[pick]
    return out


def _not_stale(block: ix.Block, k: int) -> npt.NDArray[np.bool_]:
    keep = np.ones(k, dtype=bool)
    keep[list(block.stale)] = False
    return keep


def _write_classes(path: Path, classes: npt.NDArray[np.float32], pixel: float) -> None:
    with mrcfile.new(path, overwrite=True) as handle:
        handle.set_data(np.ascontiguousarray(classes, dtype=np.float32))
        handle.voxel_size = pixel
    fsync_dir(path.parent)


def _pool_folder(folder: Path, pool: StarRows, stack: Path) -> None:
    """The pool's classification folder: its star, and the stack under a plain name (so the
    programs get names free of ``data_``/``loop_`` whatever the output folder is called)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_star(folder / "pool.star", pool, ["misfits of a streaming classification"])
    link = folder / "stack.mrcs"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(Path(stack).resolve())


def _link(source: Path, target: Path) -> None:
    """Publish ``source`` as ``target`` (a hard link, else a copy), replacing it atomically."""
    if not source.is_file():
        return
    if target.is_file() and source.samefile(target):
        return
    tmp = target.with_name(f".{target.name}.link")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    tmp.replace(target)


class StreamUpdate(CycleAttempt):
    """One streaming update (see the module docstring); reuses the cycle attempt's program runs,
    retries, scratch names and progress events."""

    def __init__(
        self,
        stream: StreamRunner,
        index: ix.StreamIndex,
        number: int,
        inputs: CycleInputs,
        settings: JobSettings,
    ) -> None:
        plan = CyclePlan(
            number=number,
            block_type=BlockType.STREAMING,
            index_in_job=1,
            cycles_in_job=1,
            high_res_limit=float(settings.high_res_final),
            class_number=0,
            fraction_rule="all",
        )
        super().__init__(stream.runner.attempt_context(), plan, inputs, settings)
        self.runner = stream.runner
        self.stream = stream
        self.index = index
        self.number = number
        self.io = IoCount()
        self.available = index.cursor.position
        """The last stack position whose dataset row this update read."""
        self.rules: FrozenRules | None = None
        self.pool_rows: StarRows = empty_rows(0)
        """The misfits the new state keeps for a later classification of late views."""
        self.created: list[Path] = []
        """Stream files written by this update (deleted unless it commits)."""
        self.star_rows = 0
        """Rows of the full star this update wrote (0: none)."""

    def remove_scratch(self) -> None:
        super().remove_scratch()
        for path in self.created:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def stream_path(self, name: str) -> Path:
        path = self.stream.folder / name
        self.created.append(path)
        return path

    # ------------------------------------------------------------------ the update

    async def run(  # type: ignore[override]
        self,
        *,
        force: bool,
        all_blocks: bool,
        full_star: bool | None,
        on_start: Callable[[UpdateStart], None] | None = None,
    ) -> StreamResult | None:
        log, number, index = self.runner.log, self.number, self.index
        started = datetime.now(UTC)
        seconds: dict[str, float] = {}
        clock = time.monotonic()
        prepared = await asyncio.to_thread(self.prepare, force=force, all_blocks=all_blocks)
        if prepared is None:
            return None
        plan, works, cursor = prepared
        if on_start is not None:
            on_start(
                UpdateStart(
                    number=number,
                    new_particles=plan.new_particles,
                    revisited_particles=sum(len(w.rows) for w in works if w.previous is not None),
                    blocks=len(works),
                    waiting=plan.waiting,
                )
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.publish(CycleStage.PREPARING, force=True)
        rules_path = self.stream_path(f"rules_{self.token}.npz")
        references = self.stream.folder / index.averages
        requests = await write_in_thread(self.write_inputs, works, rules_path)
        seconds["prepare"] = time.monotonic() - clock
        total_rows = sum(len(w.rows) for w in works)
        revisited = sum(len(w.rows) for w in works if w.previous is not None)
        log(
            f"Cycle {number} (streaming): {plan.new_particles} new particles in "
            f"{len(plan.new)} block(s), {revisited} revisited in {len(plan.revisit)} block(s), "
            f"{total_rows} refined in {len(requests)} program run(s) at "
            f"{self.plan.high_res_limit:.2f} Å"
        )
        t0 = time.monotonic()
        if requests:
            await self.run_programs(requests, rules_path)
        await asyncio.to_thread(self.join_all, works)
        references, replaced, taken = await self.reseed(works, requests, references, rules_path)
        seconds["refine2d"] = time.monotonic() - t0
        t0 = time.monotonic()
        outcome = await write_in_thread(self.consolidate, works, references, replaced)
        total, stats, emptied, merge_seed = outcome
        seconds["consolidate"] = time.monotonic() - t0
        t0 = time.monotonic()
        classes_tmp = self.scratch_path("classes", ".mrc")
        occupancy = await self.merge_run(classes_tmp, merge_seed, 1)
        seconds["merge2d"] = time.monotonic() - t0
        t0 = time.monotonic()
        self.publish(CycleStage.FINISHING, force=True)
        new_index, drift, star_path = await write_in_thread(
            self.publish_files,
            plan,
            works,
            cursor,
            total,
            stats,
            emptied,
            classes_tmp,
            references,
            full_star,
        )
        # the commit: from here the update is complete whatever happens
        await write_in_thread(self.commit, new_index, star_path)
        seconds["publish"] = time.monotonic() - t0
        seconds["total"] = time.monotonic() - clock
        finished = datetime.now(UTC)
        out = self.runner.output_folder
        for line in assemble.count_lines(
            number, stats.members.tolist(), stats.used.tolist(), occupancy
        ):
            log(line)
        log(f"Cycle {number}: {drift.summary()}")
        for moved in drift.moved():
            log(
                f"Cycle {number}: class {moved.cls} moved {moved.shift:.2f} px and "
                f"{moved.angle:.1f}° since the last update"
            )
        log(
            f"Cycle {number} done in {seconds['total']:.1f} s (prepare {seconds['prepare']:.1f} s,"
            f" refine2d {seconds['refine2d']:.1f} s, sums {seconds['consolidate']:.1f} s, merge2d "
            f"{seconds['merge2d']:.1f} s, files {seconds['publish']:.1f} s); "
            f"{new_index.particles} particles in {len(new_index.blocks)} blocks, dumps "
            f"{new_index.dump_bytes / 1e6:.0f} MB, read {self.io.bytes_read / 1e6:.1f} MB, "
            f"wrote {self.io.bytes_written / 1e6:.1f} MB"
        )
        return StreamResult(
            number=number,
            classes_path=out / f"cycle_{number}.mrc",
            star_path=(out / f"cycle_{number}.star") if star_path is not None else None,
            star_rows=self.star_rows,
            cursor_position=new_index.cursor.position,
            particle_count=new_index.particles,
            class_count=index.classes,
            members=stats.members.tolist(),
            used=stats.used.tolist(),
            occupancy=occupancy,
            new_particles=plan.new_particles,
            revisited_particles=revisited,
            waiting=max(0, plan.waiting - plan.new_particles),
            blocks=len(new_index.blocks),
            blocks_revisited=len(plan.revisit),
            dump_bytes=new_index.dump_bytes,
            drift=drift,
            emptied=[int(c) + 1 for c in np.flatnonzero(emptied & ~replaced)],
            new_views=[(v.slot + 1, v.members, v.replaced) for v in taken],
            started=started,
            finished=finished,
            process_count=len(requests),
            seconds=seconds,
            io=self.io,
        )

    # ------------------------------------------------------------------ steps

    def prepare(
        self, *, force: bool, all_blocks: bool
    ) -> tuple[UpdatePlan, list[_Work], Any] | None:
        """Read the new rows, plan, and build each block's input rows (blocking)."""
        index, inputs, settings, folder = self.index, self.inputs, self.settings, self.stream.folder
        start = index.cursor.offset
        rows_new, cursor = read_new_rows(inputs.dataset_star, index.cursor, inputs.nz)
        self.io.add_read("dataset star (new rows)", cursor.offset - start)
        plan = plan_update(
            index,
            inputs.active_positions,
            cursor.position,
            number=self.number,
            batch=settings.stream_batch,
            revisit=settings.stream_revisit,
            force=force,
            all_blocks=all_blocks,
        )
        if plan is None:
            return None
        active = np.unique(np.asarray(inputs.active_positions, dtype=np.int64))
        works: list[_Work] = []
        next_id = index.next_block
        for part in plan.new:
            data = _between(rows_new, part.first, part.last)
            works.append(self._work(next_id, part, data, None, None, active))
            next_id += 1
        for block_id in plan.revisit:
            block = index.block(block_id)
            data = read_star(folder / block.data)
            self.io.add_read("revisited blocks' rows", _size(folder / block.data))
            previous_rows = read_star(folder / block.star) if block.star else None
            if block.star:
                self.io.add_read("revisited blocks' rows", _size(folder / block.star))
            span = NewBlock(block.first, block.last, 0)
            works.append(self._work(block.id, span, data, block, previous_rows, active))
        self.available = cursor.position
        return plan, works, cursor

    def _work(
        self,
        block_id: int,
        span: NewBlock,
        data: StarRows,
        block: ix.Block | None,
        previous_rows: StarRows | None,
        active: npt.NDArray[np.int64],
    ) -> _Work:
        inside = active[(active >= span.first) & (active <= span.last)]
        inside = inside[np.isin(inside, data["position"])]
        if len(inside):
            rows = build_input_rows(data, inside, previous_rows, dataset_name="block rows")
        else:
            rows = empty_rows(0)
        return _Work(block_id, span.first, span.last, data, rows, block, previous_rows)

    def write_inputs(
        self, works: list[_Work], rules_path: Path
    ) -> list[tuple[_Work, int, Refine2dRequest]]:
        """Each block's input star, the frozen rules, and the program runs' answers (blocking)."""
        index, inputs, settings, folder = self.index, self.inputs, self.settings, self.stream.folder
        stats = ClassStats.load(folder / index.stats)
        self.io.add_read("class statistics", _size(folder / index.stats))
        context = read_star(folder / index.context)
        self.io.add_read("context rows", _size(folder / index.context))
        active = np.unique(np.asarray(inputs.active_positions, dtype=np.int64))
        classified = active[active <= self.available]
        pick = noise_sample(classified)
        rules = FrozenRules(
            counts=stats.counts(),
            core_thresholds=stats.core_thresholds(),
            noise_positions=classified[pick],
            noise_pixel_sizes=np.full(len(pick), float(inputs.pixel_size)),
        )
        write_rules(rules_path, rules)
        self.rules = rules
        self.io.add_written("rules", _size(rules_path))
        total_rows = sum(len(w.rows) for w in works)
        per_job = max(1, -(-total_rows // max(1, self.runner.jobs_per_cycle)))
        requests: list[tuple[_Work, int, Refine2dRequest]] = []
        sizes: list[int] = []
        rel = self.context.relative
        references = rel(folder / index.averages)
        for b, work in enumerate(works):
            if len(work.rows) == 0:
                continue
            outside = (context["position"] < work.rows["position"][0]) | (
                context["position"] > work.rows["position"][-1]
            )
            star = self.scratch_path("input", f"_{b + 1}.star")
            write_star(
                star,
                np.concatenate([work.rows, context[outside]]),
                [f"live2d-tui streaming cycle {self.number}, block {work.block_id}"],
            )
            self.io.add_written("input stars", _size(star))
            count = max(1, round(len(work.rows) / per_job))
            for start, end in assemble.split_rows(len(work.rows), count):
                j = len(requests) + 1
                dump = self.dir / f"dump_{self.token}_{j}.dat"
                part = self.dir / f"part_{self.token}_{j}.star"
                self.scratch += [dump, part]
                work.runs.append((j, start, end))
                positions = work.rows["position"]
                requests.append(
                    (
                        work,
                        j,
                        Refine2dRequest(
                            input_stack=rel(inputs.stack_path),
                            input_star=rel(star),
                            input_classes=references,
                            output_star=rel(part),
                            output_classes=rel(self.dir / f"unused_{self.token}.mrc"),
                            class_number=0,
                            first_particle=int(positions[start]),
                            last_particle=int(positions[end - 1]),
                            fraction=1.0,
                            pixel_size=inputs.pixel_size,
                            mask_radius=settings.mask_radius,
                            low_res=settings.low_res_limit,
                            high_res=float(settings.high_res_final),
                            angular_step=settings.angular_step,
                            search_range=settings.search_range,
                            smoothing=settings.smoothing,
                            automask=settings.automask,
                            autocenter=False,  # the class frame must not move
                            dump=True,
                            dump_file=rel(dump),
                            threads=self.context.executor.threads,
                        ),
                    )
                )
                sizes.append(end - start)
        self.tracker = CycleProgressTracker.for_rows(sizes or [1], CycleStage.NOISE)
        self.runs_total = len(requests)
        return requests

    async def run_programs(
        self, requests: list[tuple[_Work, int, Refine2dRequest]], rules_path: Path
    ) -> None:
        folder = self.runner.output_folder
        env = {RULES_ENV: self.context.relative(rules_path)}
        checked = [validate_refine2d(request, cwd=folder) for _, _, request in requests]
        try:
            async with asyncio.TaskGroup() as group:
                for (_, j, request), lines in zip(requests, checked, strict=True):
                    group.create_task(
                        self.run_program(
                            name=f"refine2d_{j}",
                            argv=self.runner.programs.refine2d,
                            lines=lines,
                            outputs=[folder / p for p in request.output_paths()],
                            termination=REFINE2D_TERMINATION,
                            progress=self.tracker.runs[j - 1],
                            echo_check=j == 1,
                            executor=self.context.executor,
                            env=env,
                        ),
                        name=f"refine2d {j}",
                    )
        except* Exception as failures:
            failed = [e for e in failures.exceptions if isinstance(e, RunFailed)]
            if failed:
                raise CycleFailed(failed[0].message, failed[0].last_lines) from None
            raise CycleFailed(f"a program run could not start: {failures.exceptions[0]}") from None
        # what the program runs read, from sizes: their particles, (ours) the noise sample, the
        # references and their input star
        slice_bytes = 4 * self.index.box * self.index.box
        noise = 0
        if self.index.engine is DumpFormat.LIVE2D and self.rules is not None:
            noise = len(self.rules.noise_positions)
        for work, j, request in requests:
            rows = next(end - start for k, start, end in work.runs if k == j)
            self.io.add_read("refine2d: particle images", rows * slice_bytes)
            self.io.add_read("refine2d: noise sample", noise * slice_bytes)
            self.io.add_read("refine2d: references", _size(folder / request.input_classes))
            self.io.add_read("refine2d: input stars", _size(folder / request.input_star))
            for name in request.output_paths():
                self.io.add_written("refine2d stars and dumps", _size(folder / name))

    async def reseed(
        self,
        works: list[_Work],
        requests: list[tuple[_Work, int, Refine2dRequest]],
        references: Path,
        rules_path: Path,
    ) -> tuple[Path, npt.NDArray[np.bool_], list[reseed.NewView]]:
        """Pool the new misfits; when enough, classify the pool and give its new views classes,
        then refine the update's blocks again (see :mod:`.reseed`). Returns the references the
        update's dumps were made against, the slots given to new views, and those views."""
        index, folder, log = self.index, self.stream.folder, self.runner.log
        none = np.zeros(index.classes, dtype=bool)
        pool, fresh = await asyncio.to_thread(self.pool_misfits, works)
        self.pool_rows = pool
        if fresh:
            log(
                f"Cycle {self.number}: {fresh} new particles fit their classes badly "
                f"({len(pool)} pooled, {reseed.POOL_SIZE} start a search for new views)"
            )
        if len(pool) < reseed.POOL_SIZE or not requests:
            return references, none, []
        self.pool_rows = empty_rows(0)  # the pool is used up, whatever comes of it
        log(
            f"Cycle {self.number}: {len(pool)} particles fit their classes badly ({fresh} of "
            "them new); classifying them alone to look for views without a class"
        )
        try:
            pool_averages, members = await self.classify_pool(pool)
        except (CycleFailed, OSError, ValueError) as exc:
            log(f"Cycle {self.number}: the classification of the misfits failed ({exc})")
            return references, none, []
        current = mrcfile.read(references).reshape(index.classes, index.box, index.box)
        pixel, high = float(self.inputs.pixel_size), self.plan.high_res_limit
        stats = ClassStats.load(folder / index.stats)
        counts = stats.counts()
        counts = np.zeros(index.classes) if counts is None else counts
        found = reseed.new_views(current, pool_averages, members, pixel, high)
        slots = reseed.free_slots(current, counts, pixel, high, len(found)) if found else []
        if not found or not slots:
            why = "none unlike the current classes" if not found else "no free slot"
            log(f"Cycle {self.number}: misfits give no new class ({why})")
            return references, none, []
        taken = [
            reseed.NewView(c, m, sim, slot, copy)
            for (c, m, sim), (slot, copy) in zip(found, slots, strict=False)
        ]
        updated = current.astype(np.float32).copy()
        replaced = none.copy()
        assert self.rules is not None
        rule_counts = (
            np.zeros(index.classes) if self.rules.counts is None else self.rules.counts.copy()
        )
        for view in taken:
            updated[view.slot] = pool_averages[view.pool_class]
            replaced[view.slot] = True
            rule_counts[view.slot] = float(view.members)
            log(
                f"Cycle {self.number}: class {view.slot + 1} "
                + ("(a copy of another class, emptied) " if view.replaced else "(empty) ")
                + f"takes a view no class had ({view.members} misfits, best correlation "
                f"with the classes {view.similarity:.2f})"
            )
        target = self.stream_path(f"classes_rs{self.number}.mrc")
        await write_in_thread(_write_classes, target, updated, pixel)
        self.rules = dataclasses.replace(self.rules, counts=rule_counts)
        await write_in_thread(write_rules, rules_path, self.rules)
        rel = self.context.relative(target)
        again = [
            (work, j, dataclasses.replace(request, input_classes=rel))
            for work, j, request in requests
        ]
        for progress in self.tracker.runs:
            progress.fraction, progress.done = 0.0, False
        await self.run_programs(again, rules_path)
        await asyncio.to_thread(self.join_all, works)
        return target, replaced, taken

    def pool_misfits(self, works: list[_Work]) -> tuple[StarRows, int]:
        """The pool with this update's new misfits added (blocking); and how many were new."""
        index, folder = self.index, self.stream.folder
        stats = ClassStats.load(folder / index.stats)
        fresh = [w.refined for w in works if w.previous is None and w.refined is not None]
        rows = np.concatenate(fresh) if fresh else empty_rows(0)
        bad = rows[reseed.misfits(rows, stats)] if len(rows) else rows
        pool = read_star(folder / index.pool) if index.pool else empty_rows(0)
        if index.pool:
            self.io.add_read("misfit pool", _size(folder / index.pool))
        pool = pool[~np.isin(pool["position"], bad["position"])]
        joined = np.concatenate([pool, bad])[-reseed.POOL_LIMIT :]
        out: StarRows = joined[np.argsort(joined["position"], kind="stable")]
        return out, len(bad)

    async def classify_pool(
        self, pool: StarRows
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """A small ab initio job over the pool alone, through the same programs and executor
        (its files in a folder of this update's, removed afterwards). Returns its class
        averages and each class's members."""
        from live2d_tui.classify.runner import CycleRunner

        folder = self.dir / f"pool_{self.token}"
        try:
            await asyncio.to_thread(_pool_folder, folder, pool, self.inputs.stack_path)
            runner = CycleRunner(
                folder,
                self.runner.programs,
                pool_size=self.runner.executor.slots,
                jobs_per_cycle=self.runner.jobs_per_cycle,
                executor=self.runner.executor,
            )
            settings = self.settings.with_changes(
                classification_type="abinit",
                class_number=reseed.POOL_CLASSES,
                run_count_startup=reseed.POOL_STARTUP,
                run_count_refine=reseed.POOL_REFINE,
                particles_per_class=max(1, len(pool)),
                autocenter=True,
            )
            previous: int | None = None
            for cycle in plan_job(settings, last_cycle_number=None).cycles:
                inputs = CycleInputs(
                    stack_path=folder / "stack.mrcs",
                    nz=self.inputs.nz,
                    dataset_star=folder / "pool.star",
                    active_positions=pool["position"],
                    previous_star=None if previous is None else folder / f"cycle_{previous}.star",
                    previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
                    pixel_size=self.inputs.pixel_size,
                )
                result = await runner.run_cycle(cycle, inputs, settings)
                previous = cycle.number
            averages = mrcfile.read(result.classes_path).reshape(-1, self.index.box, self.index.box)
            members = np.asarray(result.members[1:], dtype=np.int64)
            return averages.astype(np.float32), members
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    def join_all(self, works: list[_Work]) -> None:
        """Each block's refined rows from its program runs' stars (blocking)."""
        for work in works:
            parts = []
            for j, start, end in work.runs:
                first, last = int(work.rows["position"][start]), int(work.rows["position"][end - 1])
                parts.append((self.dir / f"part_{self.token}_{j}.star", first, last))
            work.refined = assemble.join_stars(work.rows, parts) if parts else empty_rows(0)

    def consolidate(
        self, works: list[_Work], references: Path, replaced: npt.NDArray[np.bool_]
    ) -> tuple[Partials, ClassStats, npt.NDArray[np.bool_], Path]:
        """Check the dumps, update T and the statistics, write merge2d's input (blocking).
        ``replaced``: slots given to new views (their old sums leave T). Returns (T',
        statistics, classes emptied in T, merge2d's dump seed)."""
        index, folder = self.index, self.stream.folder
        fmt = index.engine
        with mrcfile.open(references, permissive=True) as handle:
            reference_set = filled(
                np.asarray(handle.data, dtype=np.float32).reshape(
                    index.classes, index.box, index.box
                )
            )
        self.io.add_read("references", _size(references))
        named: list[tuple[str, npt.NDArray[np.bool_]]] = []
        by_block: list[list[Partials]] = []
        for work in works:
            dumps: list[Partials] = []
            for j, _, _ in work.runs:
                dump = self.dir / f"dump_{self.token}_{j}.dat"
                data = read_engine_dump(dump, fmt)
                self.io.add_read("new dumps", _size(dump))
                named.append((dump.name, data.searched))
                dumps.append(data)
            by_block.append(dumps)
        try:
            check_same_classes(named)
        except PartialsError as exc:
            raise CycleFailed(f"cycle {self.number}: {exc}; the update is refused") from None
        searched = named[0][1] if named else reference_set
        if np.any(searched & ~reference_set):
            raise CycleFailed(
                f"cycle {self.number}: a dump names classes "
                f"{(np.flatnonzero(searched & ~reference_set) + 1).tolist()} whose references are "
                "empty (another set of references); the update is refused"
            )
        emptied = reference_set & ~searched
        stats = ClassStats.load(folder / index.stats)
        if index.total:
            total = read_total(folder / index.total)
            self.io.add_read("running total", _size(folder / index.total))
        elif any(by_block):
            total = next(d for d in by_block if d)[0].zeroed()
        else:
            raise CycleFailed(f"cycle {self.number}: no sums to start the stream's total from")
        for work in works:
            block = work.previous
            if block is None:
                continue
            keep = _not_stale(block, index.classes)
            for name in block.dumps:
                old = read_engine_dump(folder / name, fmt)
                self.io.add_read("revisited blocks' old dumps", _size(folder / name))
                total.add(old, sign=-1, classes=keep)
            if work.previous_rows is not None and block.star:
                stats.add(work.previous_rows, sign=-1)
        emptied = emptied | replaced
        if np.any(emptied):
            total.clear_classes(emptied)
        for work, dumps in zip(works, by_block, strict=True):
            if dumps:
                total.add(self.block_dump(work, dumps))
        for work in works:
            if work.refined is not None and len(work.refined):
                stats.add(work.refined)
        total.searched = total.filled()
        # merge2d's only input, T' in the engine's format, under a token of its own (the program
        # runs' dumps carry the attempt's token and are still in place)
        token = secrets.token_hex(3)
        while token == self.token:
            token = secrets.token_hex(3)
        seed = self.dir / f"dump_{token}_.dat"
        merge_input = self.dir / f"dump_{token}_1.dat"
        self.scratch += [seed, merge_input]
        write_engine_dump(merge_input, total)
        self.io.add_written("merge2d input", _size(merge_input))
        self.io.add_read("merge2d input", _size(merge_input))
        return total, stats, emptied, seed

    def block_dump(self, work: _Work, dumps: list[Partials]) -> Partials:
        """The block's one dump file for this visit (its program runs' dumps summed when it had
        several); returns its sums exactly as the file holds them, which is what enters T."""
        name = f"blocks/b{work.block_id}_v{self.number}.dat"
        target = self.stream_path(name)
        work.dumps = [target]
        if len(dumps) == 1:
            j = work.runs[0][0]
            (self.dir / f"dump_{self.token}_{j}.dat").replace(target)
            return dumps[0]
        combined = dumps[0].zeroed()
        for data in dumps:
            combined.add(data)
        write_engine_dump(target, combined)
        self.io.add_written("combined block dumps", _size(target))
        if combined.format is DumpFormat.CISTEM:  # written in single precision: T takes that
            combined = read_engine_dump(target, combined.format)
        return combined

    def publish_files(
        self,
        plan: UpdatePlan,
        works: list[_Work],
        cursor: Any,
        total: Partials,
        stats: ClassStats,
        emptied: npt.NDArray[np.bool_],
        classes_tmp: Path,
        references: Path,
        full_star: bool | None,
    ) -> tuple[ix.StreamIndex, DriftReport, Path | None]:
        """Write the new state's files under new names and build the new index (blocking)."""
        index, folder, number = self.index, self.stream.folder, self.number
        inputs, settings = self.inputs, self.settings
        self.io.add_read("merge2d output", _size(classes_tmp))
        box, k = index.box, index.classes
        shape = read_shape(classes_tmp)
        if (shape.nx, shape.ny, shape.nz) != (box, box, k):
            raise CycleInputError(
                f"class averages are {shape.nx}×{shape.ny}×{shape.nz}, expected {box}×{box}×{k}"
            )
        stamp_pixel_size(classes_tmp, inputs.pixel_size)
        averages = f"classes_v{number}.mrc"
        target = self.stream_path(averages)
        classes_tmp.replace(target)
        new_classes = mrcfile.read(target).reshape(k, box, box)
        old_classes = mrcfile.read(references).reshape(k, box, box)
        drift = register(old_classes, new_classes, inputs.pixel_size, self.plan.high_res_limit)
        self.io.add_written("class averages", _size(target))
        blocks = {block.id: block for block in index.blocks}
        emptied_list = tuple(int(c) for c in np.flatnonzero(emptied))
        refined_ids = {w.block_id for w in works}
        for block_id, block in list(blocks.items()):
            if block_id not in refined_ids and emptied_list:
                stale = tuple(sorted(set(block.stale) | set(emptied_list)))
                blocks[block_id] = dataclasses.replace(block, stale=stale)
        for work in works:
            refined = work.refined if work.refined is not None else empty_rows(0)
            data_name = work.previous.data if work.previous is not None else ""
            if work.previous is None:
                data_name = f"blocks/b{work.block_id}_data.star"
                write_star(
                    self.stream_path(data_name), work.data, ["dataset rows of a streaming block"]
                )
                self.io.add_written("block rows", _size(folder / data_name))
            star_name = ""
            if len(refined):
                star_name = f"blocks/b{work.block_id}_v{number}.star"
                write_star(
                    self.stream_path(star_name), refined, [f"streaming block, cycle {number}"]
                )
                self.io.add_written("block rows", _size(folder / star_name))
            dumps = [dump.relative_to(folder).as_posix() for dump in work.dumps]
            blocks[work.block_id] = ix.Block(
                id=work.block_id,
                first=work.first,
                last=work.last,
                visited=number,
                data=data_name,
                star=star_name,
                dumps=tuple(dumps),
                rows=len(refined),
                bytes=sum(_size(folder / d) for d in dumps),
            )
        ordered = tuple(sorted(blocks.values(), key=lambda b: b.first))
        for left, right in fusions(ordered, 0, settings.stream_dump_gb):
            ordered = self.fuse(ordered, left, right)
        total_name, stats_name = f"total_v{number}.npz", f"stats_v{number}.npz"
        write_total(self.stream_path(total_name), total)
        stats.save(self.stream_path(stats_name))
        self.io.add_written("running total", _size(folder / total_name))
        self.io.add_written("class statistics", _size(folder / stats_name))
        context = read_star(folder / index.context)
        refined_positions = np.concatenate(
            [w.refined["position"] for w in works if w.refined is not None]
            or [np.zeros(0, np.int64)]
        )
        kept = context[~np.isin(context["position"], refined_positions)]
        pool = np.concatenate([kept, *[w.refined for w in works if w.refined is not None]])
        pool = pool[np.argsort(pool["position"], kind="stable")]
        pool_name = ""
        if len(self.pool_rows):
            pool_name = f"pool_v{number}.star"
            write_star(self.stream_path(pool_name), self.pool_rows, ["streaming misfits"])
            self.io.add_written("misfit pool", _size(folder / pool_name))
        context_name = f"context_v{number}.star"
        write_star(
            self.stream_path(context_name), _sample(pool, CONTEXT_ROWS), ["streaming context"]
        )
        self.io.add_written("context rows", _size(folder / context_name))
        due = full_star
        if due is None:
            due = time.time() - index.full_star_time >= 60.0 * settings.stream_star_minutes
        star_path: Path | None = None
        extra = dict(index.extra)
        full_star_cycle, full_star_time = index.full_star_cycle, index.full_star_time
        if due:
            star_name = f"cycle_v{number}.star"
            star_path = self.stream_path(star_name)
            self.star_rows = self.write_full_star(star_path, ordered, works)
            self.io.add_written("full cycle star", _size(star_path))
            extra["full_star"] = star_name
            extra["full_star_rows"] = self.star_rows
            full_star_cycle, full_star_time = number, time.time()
        extra.update(_next_pass(index, ordered, number))
        new_index = index.with_changes(
            cycle=number,
            cursor=cursor,
            next_block=index.next_block + len(plan.new),
            blocks=ordered,
            total=total_name,
            stats=stats_name,
            averages=averages,
            context=context_name,
            pool=pool_name,
            updates=index.updates + 1,
            full_star_cycle=full_star_cycle,
            full_star_time=full_star_time,
            extra=extra,
        )
        return new_index, drift, star_path

    def fuse(self, blocks: tuple[ix.Block, ...], left: int, right: int) -> tuple[ix.Block, ...]:
        """``left`` and ``right`` (neighbours) become one block: dumps summed into one, rows
        joined; its visit is the older one's, so it is revisited soon."""
        folder, fmt, k = self.stream.folder, self.index.engine, self.index.classes
        by_id = {b.id: b for b in blocks}
        a, b = by_id[left], by_id[right]
        summed: Partials | None = None
        for block in (a, b):
            keep = _not_stale(block, k)
            for name in block.dumps:
                data = read_engine_dump(folder / name, fmt)
                self.io.add_read("fused blocks", _size(folder / name))
                data.clear_classes(~keep)
                if summed is None:
                    summed = data.zeroed()
                summed.add(data)
        tag = f"f{self.number}_{a.id}"
        dumps: tuple[str, ...] = ()
        if summed is not None:
            name = f"blocks/b{a.id}_{tag}.dat"
            write_engine_dump(self.stream_path(name), summed)
            dumps = (name,)
        rows = [read_star(folder / x.star) for x in (a, b) if x.star]
        data_rows = [read_star(folder / x.data) for x in (a, b)]
        star_name = f"blocks/b{a.id}_{tag}.star" if rows else ""
        if rows:
            write_star(self.stream_path(star_name), np.concatenate(rows), ["fused streaming block"])
        data_name = f"blocks/b{a.id}_{tag}_data.star"
        write_star(
            self.stream_path(data_name),
            np.concatenate(data_rows),
            ["dataset rows of a streaming block"],
        )
        for name in (*dumps, star_name, data_name):
            if name:
                self.io.add_written("fused blocks", _size(folder / name))
        fused = ix.Block(
            id=a.id,
            first=min(a.first, b.first),
            last=max(a.last, b.last),
            visited=min(a.visited, b.visited),
            data=data_name,
            star=star_name,
            dumps=dumps,
            rows=a.rows + b.rows,
            bytes=sum(_size(folder / d) for d in dumps),
        )
        self.runner.log(
            f"Cycle {self.number}: fused streaming blocks {a.id} and {b.id} "
            f"({fused.rows} particles) to keep the dumps within the disk budget"
        )
        return tuple(
            sorted([x for x in blocks if x.id not in (a.id, b.id)] + [fused], key=lambda x: x.first)
        )

    def write_full_star(self, path: Path, blocks: tuple[ix.Block, ...], works: list[_Work]) -> int:
        """Every block's latest rows of the active particles (O(N): only when due); returns
        the rows written."""
        folder = self.stream.folder
        refined = {w.block_id: w.refined for w in works if w.refined is not None}
        parts: list[StarRows] = []
        for block in blocks:
            if block.id in refined:
                parts.append(refined[block.id])
            elif block.star:
                parts.append(read_star(folder / block.star))
                self.io.add_read("full cycle star (block rows)", _size(folder / block.star))
        rows = np.concatenate(parts) if parts else empty_rows(0)
        active = np.asarray(self.inputs.active_positions, dtype=np.int64)
        rows = rows[np.isin(rows["position"], active)]
        comment = (
            f"live2d-tui streaming cycle {self.number}: {len(rows)} particles, "
            f"{self.index.classes} classes; {STAR_COMMENT}"
        )
        write_star(path, rows, [comment])
        return len(rows)

    def commit(self, new_index: ix.StreamIndex, star_path: Path | None) -> None:
        """Replace the index (the commit), publish ``cycle_<N>``, delete superseded files."""
        folder, out = self.stream.folder, self.runner.output_folder
        ix.save_index(folder, new_index)
        self.io.add_written("block index", _size(folder / ix.INDEX))
        kept = new_index.files()
        superseded = [p for p in self.created if p.relative_to(folder).as_posix() not in kept]
        self.created.clear()  # committed: the rest are the state now
        for path in superseded:  # written and replaced within this update (a fused block's)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        _link(folder / new_index.averages, out / f"cycle_{self.number}.mrc")
        if star_path is not None:
            _link(star_path, out / f"cycle_{self.number}.star")
        fsync_dir(out)
        for name in self.index.files() - new_index.files():
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        for path in folder.glob("rules_*.npz"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
