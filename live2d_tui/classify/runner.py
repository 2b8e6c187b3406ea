"""The cycle runner: one classification cycle = J refine2d jobs → merge2d → joined star.

A cycle (../shared/reference/cistem-protocol.md §9, original-live2d.md §3):

1. builds its input star from the dataset (:mod:`~live2d_tui.classify.inputs`);
2. a **seed** cycle runs one refine2d in random-start mode (K classes, ``/dev/null`` star);
   any other cycle splits the input rows into J contiguous, balanced (±1 row), non-empty jobs,
   passed to refine2d as the stack positions of their first and last rows, in dump mode;
3. runs the jobs through an executor (by default the local pool: at most ``pool_size`` at once,
   all inside one ``asyncio.TaskGroup`` so no job outlives its cycle); a failed job is retried
   once inside its own task, so its siblings keep running;
4. runs ``merge2d`` on the dumps, joins the per-job stars (each must hold exactly its slice of the
   input rows; CTF columns are restored from the input so phase shift stays in degrees), stamps
   the real pixel size into the class averages and moves ``cycle_<N>.mrc`` and
   ``cycle_<N>.star`` into the output folder atomically — only when everything succeeded.

Success of a program run = exit 0, its "Normal termination" line, and its expected files
(cisTEM exits 0 after many failures). Scratch files live in ``cycles/cycle_<N>/`` with a random
token per attempt, so a killed attempt's leftovers never collide with a new one; per-job logs
stay there, the rest is removed when the cycle ends (success, failure or cancellation).
Cancelling :meth:`CycleRunner.run_cycle` aborts: every job's process group is ended and reaped
before the cancellation propagates, and earlier cycles are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from live2d_tui.atomic import fsync_dir
from live2d_tui.classify.counts import class_counts
from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.executors import Executor, JobOutcome, JobSpec
from live2d_tui.classify.executors.local import LocalExecutor
from live2d_tui.classify.inputs import CycleInputError, CycleInputs, load_input_rows
from live2d_tui.classify.mrcheader import read_shape, stamp_pixel_size
from live2d_tui.classify.procs import TERM_GRACE_SECONDS, ProcessRegistry
from live2d_tui.classify.progress import CycleProgressTracker, JobProgress, LineSplitter
from live2d_tui.classify.prompts import (
    MERGE2D_PROMPTS,
    MERGE2D_TERMINATION,
    REFINE2D_PROMPTS,
    REFINE2D_TERMINATION,
    dump_file_name,
)
from live2d_tui.classify.protocol import (
    DEV_NULL,
    Merge2dRequest,
    ProtocolError,
    Refine2dRequest,
    check_echo,
    stdin_text,
    validate_merge2d,
    validate_refine2d,
)
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import JobSettings
from live2d_tui.dataset.cistem_star import (
    CTF_FIELDS,
    CistemStarError,
    StarRows,
    parse_star_text,
    write_star,
)
from live2d_tui.events import BlockType, CycleProgress, CycleStage, Event

__all__ = [
    "CycleFailed",
    "CycleInputs",
    "CycleResult",
    "CycleRunner",
    "split_rows",
]

LAST_LINES = 50
"""Lines of a failing job's log quoted in the session log and in :class:`CycleFailed`."""
_PUBLISH_INTERVAL = 0.25  # seconds between progress events while jobs run


class CycleFailed(Exception):
    """A cycle could not complete; earlier cycles are untouched.

    Attributes:
        message: What failed, for the session log and the UI.
        last_lines: The failing program's last lines (empty when no program ran).
    """

    def __init__(self, message: str, last_lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.last_lines = list(last_lines or [])


class _JobFailed(Exception):
    def __init__(self, message: str, last_lines: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.last_lines = last_lines


@dataclass(frozen=True)
class CycleResult:
    """A completed cycle; its files are in place when this is returned."""

    number: int
    block_type: BlockType
    high_res_limit: float
    classes_path: Path
    star_path: Path
    particle_count: int
    """Rows of the cycle's star."""
    class_count: int
    """K: slices of the class averages."""
    members: list[int]
    """Per class, |class| = k (index 0 = unassigned)."""
    used: list[int]
    """Per class, class = +k: used this round (index 0 = unassigned)."""
    fraction_used: float
    started: datetime
    finished: datetime
    process_count: int
    occupancy: list[float] = field(default_factory=list)
    """merge2d's likelihood-weighted class occupancy in %, index k-1 = class k (if printed)."""


def split_rows(count: int, jobs: int) -> list[tuple[int, int]]:
    """Balanced contiguous row ranges ``[start, end)``: min(jobs, count) ranges, sizes ±1.

    The first ``count mod J`` ranges get one row more (cisTEM's ``FirstLastParticleForJob``).
    """
    if count < 1 or jobs < 1:
        raise ValueError(f"need ≥ 1 row and ≥ 1 job (got {count} rows, {jobs} jobs)")
    jobs = min(jobs, count)
    base, extra = divmod(count, jobs)
    ranges: list[tuple[int, int]] = []
    start = 0
    for j in range(jobs):
        end = start + base + (1 if j < extra else 0)
        ranges.append((start, end))
        start = end
    return ranges


def _ignore(_: object) -> None:
    return None


def _tail(path: Path, count: int = LAST_LINES) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = [line.rstrip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    return lines[-count:]


def _mrc_shape(path: Path) -> tuple[int, int, int]:
    shape = read_shape(path)
    return shape.nx, shape.ny, shape.nz


def _occupancies(text: str) -> list[float]:
    values: list[float] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("Class =") and "average occupancy" in stripped:
            with contextlib.suppress(ValueError, IndexError):
                values.append(float(stripped.rsplit("=", 1)[1]))
    return values


class CycleRunner:
    """Runs cycles of one output folder (see the module docstring)."""

    def __init__(
        self,
        output_folder: Path,
        programs: EnginePrograms,
        *,
        pool_size: int,
        jobs_per_cycle: int,
        niceness: int = 10,
        watchdog_seconds: float = 600.0,
        publish: Callable[[Event], None] = _ignore,
        log: Callable[[str], None] = _ignore,
        executor: Executor | None = None,
        grace_seconds: float = TERM_GRACE_SECONDS,
    ) -> None:
        """Create a runner.

        Args:
            output_folder: Session output folder (cycle files land here; jobs run in it).
            programs: The refine2d/merge2d pair.
            pool_size: Jobs running at once (local executor slots).
            jobs_per_cycle: J, the jobs a cycle is split into (capped at the particle count).
            niceness: nice level of the jobs.
            watchdog_seconds: A job whose CPU time stops growing this long is ended as hung.
            publish: Receives :class:`~live2d_tui.events.CycleProgress` events.
            log: Receives session-log lines (summaries, failures).
            executor: Runs the jobs; default a :class:`LocalExecutor` of ``pool_size`` slots.
            grace_seconds: Wait between SIGTERM and SIGKILL when a job is ended.
        """
        if pool_size < 1 or jobs_per_cycle < 1:
            raise ValueError("pool_size and jobs_per_cycle must be ≥ 1")
        self.output_folder = Path(output_folder).resolve()
        self.programs = programs
        self.jobs_per_cycle = jobs_per_cycle
        self.registry = ProcessRegistry(self.output_folder)
        self.executor: Executor = executor or LocalExecutor(
            pool_size,
            registry=self.registry,
            marker_folder=self.output_folder,
            niceness=niceness,
            watchdog_seconds=watchdog_seconds,
            grace_seconds=grace_seconds,
        )
        self._publish = publish
        self._log = log

    # ------------------------------------------------------------------ helpers

    def _rel(self, path: Path) -> str:
        """A path as refine2d sees it: relative to the output folder (its cwd) when inside it.

        Relative names keep the output folder's own path (which may contain ``data_``) out of
        refine2d's star comments.
        """
        path = Path(path).absolute()
        try:
            return str(path.relative_to(self.output_folder))
        except ValueError:
            return str(path)

    def _abs(self, name: str) -> Path:
        return self.output_folder / name

    # ------------------------------------------------------------------ public

    async def run_cycle(
        self, plan: CyclePlan, inputs: CycleInputs, settings: JobSettings
    ) -> CycleResult:
        """Run one cycle; write ``cycle_<N>.mrc``/``.star`` only on success.

        Raises:
            CycleFailed: Inputs are unusable, or a program failed twice; the message says why.
            asyncio.CancelledError: The cycle was aborted (all jobs ended, scratch removed).
        """
        started = datetime.now(UTC)
        cycle_dir = self.output_folder / "cycles" / f"cycle_{plan.number}"
        cycle_dir.mkdir(parents=True, exist_ok=True)
        attempt = _Attempt(self, plan, inputs, settings, cycle_dir)
        try:
            return await attempt.run(started)
        except CycleFailed as exc:
            self._log(f"Cycle {plan.number} failed: {exc.message}")
            for line in exc.last_lines:
                self._log(f"    {line}")
            raise
        finally:
            attempt.remove_scratch()


class _Attempt:
    """One attempt at one cycle: its scratch names carry a random token."""

    def __init__(
        self,
        runner: CycleRunner,
        plan: CyclePlan,
        inputs: CycleInputs,
        settings: JobSettings,
        cycle_dir: Path,
    ) -> None:
        self.runner = runner
        self.plan = plan
        self.inputs = inputs
        self.settings = settings
        self.dir = cycle_dir
        self.token = secrets.token_hex(3)  # hex: never contains data_/loop_ or a dot
        self.scratch: list[Path] = []
        self.tracker = CycleProgressTracker.for_rows([1])
        self.jobs_total = 1
        self.clock = time.monotonic()
        self.last_publish = 0.0

    def scratch_path(self, stem: str, suffix: str) -> Path:
        path = self.dir / f"{stem}_{self.token}{suffix}"
        self.scratch.append(path)
        return path

    def remove_scratch(self) -> None:
        for path in self.scratch:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def publish(self, stage: CycleStage | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_publish < _PUBLISH_INTERVAL:
            return
        self.last_publish = now
        self.runner._publish(
            CycleProgress(
                number=self.plan.number,
                stage=stage or self.tracker.stage,
                percent=round(self.tracker.percent, 1),
                jobs_done=self.tracker.jobs_done,
                jobs_total=self.jobs_total,
                eta_seconds=self.tracker.eta_seconds(now - self.clock),
            )
        )

    # ------------------------------------------------------------------ the cycle

    async def run(self, started: datetime) -> CycleResult:
        plan, inputs, log = self.plan, self.inputs, self.runner._log
        seed = plan.block_type is BlockType.RANDOM_SEED
        self.publish(CycleStage.PREPARING, force=True)
        try:
            rows = await asyncio.to_thread(load_input_rows, inputs)
            box, class_count = await asyncio.to_thread(self.check_files, seed)
        except (CycleInputError, CistemStarError, OSError, ValueError) as exc:
            raise CycleFailed(f"cannot prepare the cycle's input: {exc}") from None
        n = len(rows)
        fraction = plan.fraction(n)
        input_star = self.scratch_path("input", ".star")
        await asyncio.to_thread(write_star, input_star, rows, [f"live2d-tui cycle {plan.number}"])
        classes_tmp = self.scratch_path("classes", ".mrc")
        ranges = [(0, n)] if seed else split_rows(n, self.runner.jobs_per_cycle)
        self.jobs_total = len(ranges)
        self.tracker = CycleProgressTracker.for_rows(
            [end - start for start, end in ranges],
            CycleStage.SEEDING if seed else CycleStage.NOISE,
        )
        positions = rows["position"]
        dump_seed = self.scratch_path("dump", "_.dat")
        requests: list[Refine2dRequest] = []
        for j, (start, end) in enumerate(ranges, start=1):
            requests.append(
                self.refine_request(
                    seed=seed,
                    input_star=input_star,
                    classes_tmp=classes_tmp,
                    first=int(positions[start]),
                    last=int(positions[end - 1]),
                    fraction=fraction,
                    dump=self.runner._abs(dump_file_name(self.runner._rel(dump_seed), j)),
                    part=self.dir / f"part_{self.token}_{j}.star",
                )
            )
        for request in requests:
            for name in (request.output_star, request.dump_file):
                if name != DEV_NULL:
                    self.scratch.append(self.runner._abs(name))
        log(
            f"Cycle {plan.number} ({plan.block_type.value}, {plan.index_in_job}/"
            f"{plan.cycles_in_job}): {n} particles, high-res limit {plan.high_res_limit:.2f} Å, "
            f"fraction {fraction:.3g}, {len(ranges)} job(s)"
        )
        t_jobs = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                for j, request in enumerate(requests, start=1):
                    group.create_task(self.refine_job(j, request), name=f"refine2d {j}")
        except* (_JobFailed, ProtocolError) as failures:
            first = failures.exceptions[0]
            if isinstance(first, _JobFailed):
                raise CycleFailed(first.message, first.last_lines) from None
            raise CycleFailed(str(first)) from None
        t_merge = time.monotonic()
        occupancy: list[float] = []
        if not seed:
            occupancy = await self.merge_job(classes_tmp, dump_seed, len(ranges))
        t_join = time.monotonic()
        self.publish(CycleStage.FINISHING, force=True)
        try:
            star_rows = await asyncio.to_thread(self.join_stars, rows, requests, seed)
            counts = class_counts(star_rows["best_class"], class_count)
            classes_path, star_path = await asyncio.to_thread(
                self.install, classes_tmp, star_rows, box, class_count
            )
        except (CistemStarError, OSError, ValueError) as exc:
            raise CycleFailed(f"cannot assemble cycle {plan.number}: {exc}") from None
        finished = datetime.now(UTC)
        log(
            f"Cycle {plan.number} done in {time.monotonic() - self.clock:.1f} s "
            f"(refine2d {t_merge - t_jobs:.1f} s, merge2d {t_join - t_merge:.1f} s, "
            f"join {time.monotonic() - t_join:.1f} s)"
        )
        self.log_counts(counts.members, counts.used, occupancy)
        self.publish(CycleStage.FINISHING, force=True)
        return CycleResult(
            number=plan.number,
            block_type=plan.block_type,
            high_res_limit=plan.high_res_limit,
            classes_path=classes_path,
            star_path=star_path,
            particle_count=len(star_rows),
            class_count=class_count,
            members=counts.members,
            used=counts.used,
            fraction_used=fraction,
            started=started,
            finished=finished,
            process_count=len(ranges),
            occupancy=occupancy,
        )

    def check_files(self, seed: bool) -> tuple[int, int]:
        """Check the stack (and the reference classes); return (box, K)."""
        inputs = self.inputs
        nx, ny, nz = _mrc_shape(inputs.stack_path)
        if nx != ny:
            raise CycleInputError(f"{inputs.stack_path}: particles are not square ({nx}×{ny})")
        if nz < inputs.nz:
            raise CycleInputError(
                f"{inputs.stack_path}: {nz} slices, the cycle expects {inputs.nz}"
            )
        if not inputs.pixel_size > 0:
            raise CycleInputError(f"pixel size must be > 0 Å (got {inputs.pixel_size})")
        if seed:
            return nx, self.plan.class_number
        if inputs.previous_classes is None:
            raise CycleInputError("a refinement cycle needs the previous cycle's class averages")
        cx, cy, k = _mrc_shape(inputs.previous_classes)
        if (cx, cy) != (nx, ny):
            raise CycleInputError(
                f"{inputs.previous_classes}: box {cx}×{cy} differs from the stack's {nx}×{ny} "
                "(a new stack generation needs a new ab initio job)"
            )
        if k < 1:
            raise CycleInputError(f"{inputs.previous_classes}: no class averages")
        return nx, k

    def refine_request(
        self,
        *,
        seed: bool,
        input_star: Path,
        classes_tmp: Path,
        first: int,
        last: int,
        fraction: float,
        dump: Path,
        part: Path,
    ) -> Refine2dRequest:
        plan, settings, rel = self.plan, self.settings, self.runner._rel
        previous = self.inputs.previous_classes
        return Refine2dRequest(
            input_stack=rel(self.inputs.stack_path),
            input_star=rel(input_star),
            input_classes=DEV_NULL if seed or previous is None else rel(previous),
            output_star=DEV_NULL if seed else rel(part),
            output_classes=rel(classes_tmp),
            class_number=plan.class_number if seed else 0,
            first_particle=first,
            last_particle=last,
            # sent with 6 significant digits: readable in logs, exact enough for a draw
            fraction=min(1.0, float(f"{fraction:.6g}")),
            pixel_size=self.inputs.pixel_size,
            mask_radius=settings.mask_radius,
            low_res=settings.low_res_limit,
            high_res=plan.high_res_limit,
            # a random start aligns nothing: the original Live2D sends 0 (automatic) for both
            angular_step=0.0 if seed else settings.angular_step,
            search_range=0.0 if seed else settings.search_range,
            smoothing=settings.smoothing,
            automask=settings.automask,
            autocenter=settings.autocenter,
            dump=not seed,
            dump_file=DEV_NULL if seed else rel(dump),
        )

    async def refine_job(self, j: int, request: Refine2dRequest) -> None:
        """Run refine2d job ``j``; retry once; raise :class:`_JobFailed` after two failures."""
        lines = validate_refine2d(request, cwd=self.runner.output_folder)
        outputs = [self.runner._abs(p) for p in request.output_paths()]
        progress = self.tracker.jobs[j - 1]
        await self.run_program(
            name=f"refine2d_{j}",
            argv=self.runner.programs.refine2d,
            lines=lines,
            outputs=outputs,
            termination=REFINE2D_TERMINATION,
            progress=progress,
            echo_check=j == 1,
        )

    async def merge_job(self, classes_tmp: Path, dump_seed: Path, count: int) -> list[float]:
        request = Merge2dRequest(
            output_classes=self.runner._rel(classes_tmp),
            dump_seed=self.runner._rel(dump_seed),
            dump_count=count,
        )
        try:
            lines = validate_merge2d(request, cwd=self.runner.output_folder)
        except ProtocolError as exc:
            raise CycleFailed(str(exc)) from None
        self.publish(CycleStage.MERGING, force=True)
        try:
            log_path = await self.run_program(
                name="merge2d",
                argv=self.runner.programs.merge2d,
                lines=lines,
                outputs=[classes_tmp],
                termination=MERGE2D_TERMINATION,
                progress=None,
                echo_check=True,
            )
        except _JobFailed as exc:
            raise CycleFailed(exc.message, exc.last_lines) from None
        text = await asyncio.to_thread(log_path.read_text, "utf-8", "replace")
        return _occupancies(text)

    async def run_program(
        self,
        *,
        name: str,
        argv: list[str],
        lines: list[str],
        outputs: list[Path],
        termination: str,
        progress: JobProgress | None,
        echo_check: bool,
    ) -> Path:
        """Run one program, retrying once; return the successful run's log path."""
        plan, log = self.plan, self.runner._log
        problem = ""
        log_path = self.dir / f"{name}_{self.token}.log"
        for attempt in (1, 2):
            for path in outputs:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            log_path = self.dir / f"{name}_{self.token}_try{attempt}.log"
            splitter = LineSplitter()
            if progress is not None:
                progress.fraction, progress.done = 0.0, False

            def on_output(text: str, splitter: LineSplitter = splitter) -> None:
                if progress is None:
                    return
                changed = False
                for piece in splitter.feed(text):
                    stages = len(progress.stage_lines)
                    if progress.update(piece):
                        changed = True
                        if progress is self.tracker.jobs[0] and len(progress.stage_lines) > stages:
                            log(f"Cycle {plan.number}: {piece.strip()}")
                if changed:
                    self.publish()

            spec = JobSpec(
                name=f"cycle_{plan.number}_{name}_try{attempt}",
                argv=list(argv),
                stdin_text=stdin_text(lines),
                log_path=log_path,
                cwd=self.runner.output_folder,
            )
            outcome = await self.runner.executor.run(spec, on_output)
            problem = await asyncio.to_thread(self.judge, outcome, termination, outputs)
            if not problem:
                if progress is not None:
                    progress.finish()
                    self.publish(force=True)
                if echo_check:
                    prompts = REFINE2D_PROMPTS if name.startswith("refine2d") else MERGE2D_PROMPTS
                    text = await asyncio.to_thread(log_path.read_text, "utf-8", "replace")
                    for issue in check_echo(text, prompts, lines):
                        log(f"Cycle {plan.number}: {name} echo differs: {issue}")
                return log_path
            if attempt == 1:
                log(f"Cycle {plan.number}: {name} failed ({problem}); retrying once")
        last = await asyncio.to_thread(_tail, log_path)
        raise _JobFailed(f"{name} failed twice: {problem} (log: {log_path})", last)

    @staticmethod
    def judge(outcome: JobOutcome, termination: str, outputs: list[Path]) -> str:
        """Why a run failed ('' when it succeeded)."""
        if outcome.start_error:
            return outcome.start_error
        if outcome.hung:
            return "hung (CPU time stopped growing); ended by the watchdog"
        if outcome.returncode != 0:
            return f"exit status {outcome.returncode}"
        try:
            text = outcome.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"cannot read its log: {exc}"
        if termination not in text:
            return f"no '{termination}' line"
        for path in outputs:
            if not path.is_file() or path.stat().st_size == 0:
                return f"expected output {path.name} is missing or empty"
        return ""

    def join_stars(
        self, input_rows: StarRows, requests: list[Refine2dRequest], seed: bool
    ) -> StarRows:
        """The cycle's rows: the jobs' stars in order, each exactly its slice of the input."""
        if seed:
            return input_rows.copy()
        parts: list[StarRows] = []
        offset = 0
        for j, request in enumerate(requests, start=1):
            path = self.runner._abs(request.output_star)
            part = parse_star_text(path.read_text(encoding="utf-8"), str(path))
            expected = input_rows["position"][offset : offset + len(part)]
            first, last = request.first_particle, request.last_particle
            want = int(
                np.count_nonzero(
                    (input_rows["position"] >= first) & (input_rows["position"] <= last)
                )
            )
            if len(part) != want or not np.array_equal(part["position"], expected):
                raise CistemStarError(
                    f"{path.name}: job {j} wrote {len(part)} rows, expected exactly the {want} "
                    f"input rows at positions {first}–{last}"
                )
            offset += len(part)
            parts.append(part)
        joined = np.concatenate(parts)
        if len(joined) != len(input_rows):
            raise CistemStarError(f"joined star has {len(joined)} rows, input {len(input_rows)}")
        for name in CTF_FIELDS:  # refine2d writes phase shift back in radians
            joined[name] = input_rows[name]
        return joined

    def install(
        self, classes_tmp: Path, rows: StarRows, box: int, class_count: int
    ) -> tuple[Path, Path]:
        """Stamp the pixel size, check the classes, move both files into place atomically."""
        nx, ny, nz = _mrc_shape(classes_tmp)
        if (nx, ny, nz) != (box, box, class_count):
            raise CycleInputError(
                f"class averages are {nx}×{ny}×{nz}, expected {box}×{box}×{class_count}"
            )
        stamp_pixel_size(classes_tmp, self.inputs.pixel_size)
        number = self.plan.number
        classes_path = self.runner.output_folder / f"cycle_{number}.mrc"
        star_path = self.runner.output_folder / f"cycle_{number}.star"
        classes_tmp.replace(classes_path)
        fsync_dir(classes_path.parent)
        write_star(
            star_path,
            rows,
            [f"live2d-tui cycle {number}: {len(rows)} particles, {class_count} classes"],
        )
        return classes_path, star_path

    def log_counts(self, members: list[int], used: list[int], occupancy: list[float]) -> None:
        log, number = self.runner._log, self.plan.number
        log(
            f"Cycle {number}: {sum(members) - members[0]} assigned, {members[0]} unassigned, "
            f"{sum(used) - used[0]} used this round"
        )
        per_line = 10
        for start in range(1, len(members), per_line):
            cells = []
            for k in range(start, min(len(members), start + per_line)):
                occ = f" ({occupancy[k - 1]:.1f}%)" if k - 1 < len(occupancy) else ""
                cells.append(f"{k}: {members[k]}{occ}")
            log(f"Cycle {number} members: " + ", ".join(cells))
