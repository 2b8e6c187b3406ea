"""One attempt at one cycle: build the answer lists, run refine2d and merge2d, assemble results.

An attempt owns a random token (6 hex digits: never ``data_``/``loop_``, never a dot) that is
part of every scratch name in ``cycles/cycle_<N>/`` — input star, per-run stars, dumps, the
merged classes — so a killed attempt's leftovers never collide with a new one. Per-run logs
(``<program>_<j>_<token>_try<n>.log``) stay; everything else is removed when the attempt ends.

Every answer list is validated before the first process starts. Each program run is retried once
inside its own task (its siblings keep running); success = exit 0 + the program's "Normal
termination" line + its expected files. The first refine2d's and merge2d's echoed prompts are
compared with the prompt table and differences are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from live2d_tui.classify import assemble
from live2d_tui.classify.assemble import CycleFailed, CycleResult, RunFailed
from live2d_tui.classify.counts import class_counts
from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.executors import Executor, RunOutcome, RunSpec, RunState
from live2d_tui.classify.inputs import CycleInputs, load_input_rows, select_positions
from live2d_tui.classify.procs import SCRATCH_PATTERN
from live2d_tui.classify.progress import CycleProgressTracker, LineSplitter, RunProgress
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import JobSettings
from live2d_tui.events import BlockType, CycleProgress, CycleStage, Event, job_position
from live2d_tui.formats.cistem_star import write_star
from live2d_tui.formats.prompts import (
    MERGE2D_PROMPTS,
    MERGE2D_TERMINATION,
    REFINE2D_PROMPTS,
    REFINE2D_TERMINATION,
    dump_file_name,
)
from live2d_tui.formats.protocol import (
    DEV_NULL,
    Merge2dRequest,
    Refine2dRequest,
    check_echo,
    stdin_text,
    validate_merge2d,
    validate_refine2d,
)

PUBLISH_INTERVAL = 0.25
"""Seconds between progress events while program runs are running (stage changes and the end of
a program run always publish)."""


async def write_in_thread[T](
    func: Callable[..., T],
    /,
    *args: Any,
    undo: Callable[[T], None] | None = None,
    **kwargs: Any,
) -> T:
    """``asyncio.to_thread`` for a call that writes files: a worker thread cannot be stopped, so
    if the cycle is cancelled meanwhile, the cancellation goes on only once the thread has
    ended (and after ``undo`` of its result, when it succeeded). The attempt's cleanup then
    finds the file the thread wrote; it used to run first, and the file the thread finished
    afterwards stayed behind."""
    work = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if undo is not None and not work.cancelled() and work.exception() is None:
            undo(work.result())
        raise


@dataclass(frozen=True, slots=True)
class AttemptContext:
    """What an attempt uses of its runner (:class:`~live2d_tui.classify.runner.CycleRunner`)."""

    output_folder: Path
    """The session output folder (absolute): cycle files land here; program runs work in it."""
    programs: EnginePrograms
    jobs_per_cycle: int
    executor: Executor
    publish: Callable[[Event], None]
    log: Callable[[str], None]
    merge_executor: Executor | None = None
    """Runs merge2d; ``None``: the executor (e.g. merge2d on this machine, refine2d on SLURM)."""

    def relative(self, path: Path) -> str:
        """A path as refine2d sees it: relative to the output folder (its cwd) when inside it.

        Relative names keep the output folder's own path (which may contain ``data_``) out of
        refine2d's star comments.
        """
        path = Path(path).absolute()
        try:
            return str(path.relative_to(self.output_folder))
        except ValueError:
            return str(path)


class CycleAttempt:
    """One attempt at one cycle (see the module docstring)."""

    def __init__(
        self,
        context: AttemptContext,
        plan: CyclePlan,
        inputs: CycleInputs,
        settings: JobSettings,
    ) -> None:
        self.context = context
        self.plan = plan
        self.inputs = inputs
        self.settings = settings
        self.dir = context.output_folder / "cycles" / f"cycle_{plan.number}"
        self.token = secrets.token_hex(3)
        self.scratch: list[Path] = []
        self.tracker = CycleProgressTracker.for_rows([1])
        self.runs_total = 1
        self.clock = time.monotonic()
        self.last_publish = 0.0
        self.cpu_seconds: float | None = 0.0
        """CPU time of the attempt's program runs so far (``None``: one run's is unknown)."""
        self.run_states: dict[str, RunState] = {}
        """Program runs handed to an executor and not ended yet: queued or running."""
        self.stage: CycleStage | None = None
        """The stage published last when one was named (preparing, merging, finishing); while
        it is ``None`` the tracker's stage is shown."""
        self._trailing: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ bookkeeping

    def scratch_path(self, stem: str, suffix: str) -> Path:
        """A scratch file name carrying this attempt's token; removed at the end, and by
        :func:`~live2d_tui.classify.procs.remove_stale_scratch` after a crash, whose pattern it
        must match (a name it missed stayed behind for good)."""
        path = self.dir / f"{stem}_{self.token}{suffix}"
        if not SCRATCH_PATTERN.match(path.name):
            raise ValueError(f"scratch name {path.name} is not one a restart would clean up")
        self.scratch.append(path)
        return path

    def remove_scratch(self) -> None:
        """Delete every scratch file (logs are not scratch)."""
        for path in self.scratch:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def publish(self, stage: CycleStage | None = None, *, force: bool = False) -> None:
        """Publish the cycle's progress (throttled unless ``force``; a throttled change is
        published when the interval has passed, so the last state is always shown)."""
        if stage is not None:
            self.stage = stage
        now = time.monotonic()
        if not force and now - self.last_publish < PUBLISH_INTERVAL:
            if self._trailing is None:
                delay = PUBLISH_INTERVAL - (now - self.last_publish)
                self._trailing = asyncio.get_running_loop().call_later(delay, self._publish_later)
            return
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        self.last_publish = now
        states = list(self.run_states.values())
        self.context.publish(
            CycleProgress(
                number=self.plan.number,
                stage=self.stage or self.tracker.stage,
                percent=round(self.tracker.percent, 1),
                runs_done=self.tracker.runs_done,
                runs_total=self.runs_total,
                eta_seconds=self.tracker.eta_seconds(now - self.clock),
                runs_queued=states.count(RunState.QUEUED),
                runs_running=states.count(RunState.RUNNING),
            )
        )

    def _publish_later(self) -> None:
        self._trailing = None
        self.publish(force=True)

    def stop_publishing(self) -> None:
        """Drop a pending trailing publish (the attempt has ended)."""
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None

    # ------------------------------------------------------------------ the cycle

    async def run(self) -> CycleResult:
        """Run the cycle to its installed files (errors: see :meth:`CycleRunner.run_cycle`)."""
        plan, inputs, log = self.plan, self.inputs, self.context.log
        started = datetime.now(UTC)
        self.dir.mkdir(parents=True, exist_ok=True)
        seed = plan.block_type is BlockType.RANDOM_SEED
        expected = len(select_positions(inputs.active_positions, inputs.nz))
        self.runs_total = 1 if seed else max(1, min(self.context.jobs_per_cycle, expected))
        self.publish(CycleStage.PREPARING, force=True)
        rows = await asyncio.to_thread(load_input_rows, inputs, carry=not seed)
        seed_classes = plan.class_number if seed else None
        box, class_count = await asyncio.to_thread(assemble.check_files, inputs, seed_classes)
        n = len(rows)
        fraction = plan.fraction(n)
        input_star = self.scratch_path("input", ".star")
        await write_in_thread(write_star, input_star, rows, [f"live2d-tui cycle {plan.number}"])
        classes_tmp = self.scratch_path("classes", ".mrc")
        dump_seed = self.scratch_path("dump", "_.dat")
        ranges = [(0, n)] if seed else assemble.split_rows(n, self.context.jobs_per_cycle)
        positions = rows["position"]
        requests = [
            self.refine_request(
                seed=seed,
                input_star=input_star,
                classes_tmp=classes_tmp,
                first=int(positions[start]),
                last=int(positions[end - 1]),
                fraction=fraction,
                dump_seed=dump_seed,
                j=j,
            )
            for j, (start, end) in enumerate(ranges, start=1)
        ]
        folder = self.context.output_folder
        answer_lists = [validate_refine2d(request, cwd=folder) for request in requests]
        for request in requests:
            self.scratch += [folder / p for p in request.output_paths()]
        self.runs_total = len(ranges)
        self.tracker = CycleProgressTracker.for_rows(
            [end - start for start, end in ranges],
            CycleStage.SEEDING if seed else CycleStage.NOISE,
        )
        self.stage = None  # from here the program runs' output says where the cycle is
        log(
            f"Cycle {plan.number} ({plan.block_type.label}, "
            f"{job_position(plan.index_in_job, plan.cycles_in_job)}): {n} particles, "
            f"high-res limit {plan.high_res_limit:.2f} Å, "
            f"fraction {fraction:.3g}, {len(ranges)} program run(s)"
        )
        t_jobs = time.monotonic()
        try:
            async with asyncio.TaskGroup() as group:
                for j, (request, lines) in enumerate(zip(requests, answer_lists, strict=True), 1):
                    group.create_task(self.refine_run(j, request, lines), name=f"refine2d {j}")
        except* Exception as failures:
            failed = [e for e in failures.exceptions if isinstance(e, RunFailed)]
            if failed:
                raise CycleFailed(failed[0].message, failed[0].last_lines) from None
            raise CycleFailed(
                f"a program run could not be carried out: {failures.exceptions[0]}"
            ) from None
        t_merge = time.monotonic()
        star_tmp = self.scratch_path("joined", ".star")
        # "psi and shifts as cisTEM refine2d" marks stars whose shifts follow cisTEM's convention
        # whatever the engine (the built-in engine wrote them negated before; README)
        comment = (
            f"live2d-tui cycle {plan.number}: {n} particles, {class_count} classes; "
            "psi and shifts as cisTEM refine2d"
        )
        if seed:
            star_rows = rows
            occupancy: list[float] = []
            await write_in_thread(write_star, star_tmp, star_rows, [comment])
        else:
            # merge2d (a child on one core) and the join of the program runs' stars (this process)
            # overlap: both only read the program runs' outputs
            parts = [(folder / r.output_star, r.first_particle, r.last_particle) for r in requests]
            merge = asyncio.create_task(self.merge_run(classes_tmp, dump_seed, len(ranges)))
            try:
                star_rows = await write_in_thread(
                    assemble.join_and_write, rows, parts, star_tmp, comment
                )
            except BaseException:
                merge.cancel()
                await asyncio.gather(merge, return_exceptions=True)
                raise
            t_joined = time.monotonic()
            occupancy = await merge
        t_join = time.monotonic()
        self.publish(CycleStage.FINISHING, force=True)
        counts = class_counts(star_rows["best_class"], class_count)
        classes_path, star_path = await write_in_thread(
            assemble.install,
            folder,
            plan.number,
            classes_tmp,
            star_tmp,
            box=box,
            class_count=class_count,
            pixel_size=inputs.pixel_size,
            # aborted as they went into place: the files become scratch, which the cleanup
            # removes (an aborted cycle leaves no cycle_<N> files; nothing records them)
            undo=self.scratch.extend,
        )
        finished = datetime.now(UTC)
        log(
            f"Cycle {plan.number} done in {time.monotonic() - self.clock:.1f} s "
            f"(refine2d {t_merge - t_jobs:.1f} s, merge2d {t_join - t_merge:.1f} s"
            + ("" if seed else f" beside the join's {t_joined - t_merge:.1f} s")
            + f", install {time.monotonic() - t_join:.1f} s)"
        )
        if seed:
            log(f"Cycle {plan.number}: {class_count} random starting classes")
        else:
            for line in assemble.count_lines(plan.number, counts.members, counts.used, occupancy):
                log(line)
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
            cpu_seconds=self.cpu_seconds,
        )

    def refine_request(
        self,
        *,
        seed: bool,
        input_star: Path,
        classes_tmp: Path,
        first: int,
        last: int,
        fraction: float,
        dump_seed: Path,
        j: int,
    ) -> Refine2dRequest:
        """refine2d's answers for program run ``j`` (random start for a seed, else dump mode)."""
        plan, settings, rel = self.plan, self.settings, self.context.relative
        previous = self.inputs.previous_classes
        return Refine2dRequest(
            input_stack=rel(self.inputs.stack_path),
            input_star=rel(input_star),
            input_classes=DEV_NULL if seed or previous is None else rel(previous),
            output_star=DEV_NULL if seed else rel(self.dir / f"part_{self.token}_{j}.star"),
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
            dump_file=DEV_NULL if seed else dump_file_name(rel(dump_seed), j),
            threads=self.context.executor.threads,
        )

    async def refine_run(self, j: int, request: Refine2dRequest, lines: list[str]) -> None:
        """Run refine2d's program run ``j``; retry once; raise :class:`RunFailed` after two
        failures."""
        folder = self.context.output_folder
        await self.run_program(
            name=f"refine2d_{j}",
            argv=self.context.programs.refine2d,
            lines=lines,
            outputs=[folder / p for p in request.output_paths()],
            termination=REFINE2D_TERMINATION,
            progress=self.tracker.runs[j - 1],
            echo_check=j == 1,
            executor=self.context.executor,
        )

    async def merge_run(self, classes_tmp: Path, dump_seed: Path, count: int) -> list[float]:
        """Run merge2d over ``count`` dumps; return its per-class occupancies."""
        request = Merge2dRequest(
            output_classes=self.context.relative(classes_tmp),
            dump_seed=self.context.relative(dump_seed),
            dump_count=count,
        )
        lines = validate_merge2d(request, cwd=self.context.output_folder)
        self.publish(CycleStage.MERGING, force=True)
        try:
            log_path = await self.run_program(
                name="merge2d",
                argv=self.context.programs.merge2d,
                lines=lines,
                outputs=[classes_tmp],
                termination=MERGE2D_TERMINATION,
                progress=None,
                echo_check=True,
                executor=self.context.merge_executor or self.context.executor,
            )
        except RunFailed as exc:
            raise CycleFailed(exc.message, exc.last_lines) from None
        text = await asyncio.to_thread(log_path.read_text, "utf-8", "replace")
        return assemble.occupancies(text)

    async def run_program(
        self,
        *,
        name: str,
        argv: list[str],
        lines: list[str],
        outputs: list[Path],
        termination: str,
        progress: RunProgress | None,
        echo_check: bool,
        executor: Executor,
        env: dict[str, str] | None = None,
    ) -> Path:
        """Run one program, retrying once; return the successful run's log path (``env``: added
        to the job's environment)."""
        plan, log = self.plan, self.context.log
        problem = ""
        log_path = self.dir / f"{name}_{self.token}.log"
        for attempt in (1, 2):
            for path in outputs:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            log_path = self.dir / f"{name}_{self.token}_try{attempt}.log"
            if progress is not None:
                progress.fraction, progress.done = 0.0, False
            spec = RunSpec(
                name=f"cycle_{plan.number}_{name}_try{attempt}",
                argv=list(argv),
                stdin_text=stdin_text(lines),
                log_path=log_path,
                cwd=self.context.output_folder,
                env=dict(env or {}),
                outputs=tuple(outputs),
            )
            try:
                outcome = await executor.run(
                    spec, self._output_handler(progress), self._state_handler(name)
                )
            finally:
                if self.run_states.pop(name, None) is not None:
                    self.publish()
            self.add_cpu(outcome.cpu_seconds)
            problem = await asyncio.to_thread(judge, outcome, termination, outputs)
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
        last = await asyncio.to_thread(assemble.tail, log_path)
        raise RunFailed(f"{name} failed twice: {problem} (log: {log_path})", last)

    def add_cpu(self, seconds: float | None) -> None:
        """Count one program run's CPU time (a failed try's too: it was spent on the cycle)."""
        if self.cpu_seconds is not None:
            self.cpu_seconds = None if seconds is None else self.cpu_seconds + seconds

    def _output_handler(self, progress: RunProgress | None) -> _OutputHandler:
        return _OutputHandler(self, progress)

    def _state_handler(self, name: str) -> Callable[[RunState], None]:
        def changed(state: RunState) -> None:
            if self.run_states.get(name) is not state:
                self.run_states[name] = state
                self.publish()

        return changed


class _OutputHandler:
    """Feeds one run's output to its progress entry; logs the first program run's stage lines."""

    def __init__(self, attempt: CycleAttempt, progress: RunProgress | None) -> None:
        self.attempt = attempt
        self.progress = progress
        self.splitter = LineSplitter()

    def __call__(self, text: str) -> None:
        progress, attempt = self.progress, self.attempt
        if progress is None:
            return
        changed = False
        for piece in self.splitter.feed(text):
            stages = len(progress.stage_lines)
            if progress.update(piece):
                changed = True
                if progress is attempt.tracker.runs[0] and len(progress.stage_lines) > stages:
                    attempt.context.log(f"Cycle {attempt.plan.number}: {piece.strip()}")
        if changed:
            attempt.publish()


def judge(outcome: RunOutcome, termination: str, outputs: list[Path]) -> str:
    """Why a run failed ('' when it succeeded): exit 0, termination line, expected files."""
    if outcome.start_error:
        return outcome.start_error
    if outcome.hung:
        return "hung (CPU time stopped growing); ended by the watchdog"
    if outcome.failure:
        return outcome.failure
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
