"""Helpers of the supervisor's part tests: a scripted cycle runner, a dataset in memory, and a
session built around them on a real output folder (real lock, session log and state file).

The parts run exactly as in the supervisor; only the two expensive neighbours are replaced: the
cycle runner (programs) and the dataset (Warp ingest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import numpy.typing as npt

from live2d_tui.classify.engines import EngineKind, EnginePrograms
from live2d_tui.classify.procs import end_orphans
from live2d_tui.classify.runner import CycleFailed, CycleInputs, CycleResult, CycleRunner
from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import Config, JobSettings
from live2d_tui.dataset.ingest import Dataset
from live2d_tui.dataset.report import IngestReport
from live2d_tui.events import EventBus
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobrunner import JobRunner
from live2d_tui.supervisor.lock import OutputLock
from live2d_tui.supervisor.session import Session
from live2d_tui.supervisor.sessionlog import SessionLog
from live2d_tui.supervisor.state import SessionState
from live2d_tui.supervisor.store import SessionStore

from .conftest import TINY_JOB, Recorder, tiny_config


class FakeDataset:
    """What the supervisor uses of a :class:`~live2d_tui.dataset.ingest.Dataset`, in memory.

    ``polls`` scripts what :meth:`poll` returns (a report) or raises (an exception), one item per
    pass; an empty script returns an empty report. ``before_poll`` runs inside :meth:`poll`
    (in the worker thread, under the dataset lock).
    """

    def __init__(self, folder: Path, *, particles: int = 150, generation: int = 0) -> None:
        self.stack_path = folder / "combined_stack.mrcs"
        self.star_path = folder / "combined_stack.star"
        self.particles = particles
        self.generation = generation
        self.warp_settings = SimpleNamespace(
            model="sim", pixel_size=3.0, box_size=64, diameter=150.0, mask_radius_guess=90.0
        )
        self.polls: list[IngestReport | Exception] = []
        self.before_poll: Callable[[], None] | None = None
        self.abinitio_flag = False
        self.reimport_requested = False
        self.closed = False

    def particle_count(self) -> int:
        return self.particles

    def active_positions(self, up_to: int | None = None) -> npt.NDArray[np.int64]:
        return np.arange(1, (up_to or self.particles) + 1, dtype=np.int64)

    def poll(self) -> IngestReport:
        if self.before_poll is not None:
            self.before_poll()
        item = self.polls.pop(0) if self.polls else IngestReport()
        if isinstance(item, Exception):
            raise item
        return item

    def consume_abinitio_flag(self) -> bool:
        flag, self.abinitio_flag = self.abinitio_flag, False
        return flag

    def request_reimport(self) -> None:
        self.reimport_requested = True

    def close(self) -> None:
        self.closed = True


class ScriptedRunner:
    """A cycle runner that does what its script says, one step per cycle, then ``"ok"``.

    - ``"ok"``: install ``cycle_<N>.mrc``/``.star`` and return the result;
    - ``"fail"``: raise :class:`CycleFailed` with a program's last line;
    - ``"hold"``: write a partial ``cycle_<N>.mrc`` (as a real cycle has when it is ended), set
      :attr:`holding`, and wait for :meth:`release` (or cancellation), then finish as ``"ok"``.
    """

    def __init__(self, folder: Path, script: list[str] | None = None) -> None:
        self.folder = folder
        self.script = list(script or [])
        self.calls: list[tuple[CyclePlan, CycleInputs]] = []
        self.holding = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    def end_orphans(self, log: Callable[[str], None]) -> int:
        """As the real runner's, for its local executor: processes and scratch of the folder."""
        return end_orphans(self.folder, log)

    async def run_cycle(
        self, plan: CyclePlan, inputs: CycleInputs, settings: JobSettings
    ) -> CycleResult:
        self.calls.append((plan, inputs))
        step = self.script.pop(0) if self.script else "ok"
        started = datetime.now()
        if step == "fail":
            raise CycleFailed(f"refine2d of cycle {plan.number} failed", ["Error: scripted"])
        if step == "hold":
            (self.folder / f"cycle_{plan.number}.mrc").write_bytes(b"partial")
            self.holding.set()
            await self._released.wait()
            self._released.clear()
            self.holding.clear()
        classes = plan.class_number or settings.class_number
        count = len(inputs.active_positions)
        members = [0] + [
            count // classes + (1 if k < count % classes else 0) for k in range(classes)
        ]
        classes_path = self.folder / f"cycle_{plan.number}.mrc"
        star_path = self.folder / f"cycle_{plan.number}.star"
        classes_path.write_bytes(b"classes")
        star_path.write_text("rows\n")
        return CycleResult(
            number=plan.number,
            block_type=plan.block_type,
            high_res_limit=plan.high_res_limit,
            classes_path=classes_path,
            star_path=star_path,
            particle_count=count,
            class_count=classes,
            members=members,
            used=members,
            fraction_used=1.0,
            started=started,
            finished=datetime.now(),
            process_count=1,
        )


def make_session(
    folder: Path,
    *,
    dataset: FakeDataset | None = None,
    runner: ScriptedRunner | None = None,
    settings: JobSettings = TINY_JOB,
    automatic: bool = False,
) -> Session:
    """A session on ``folder`` (locked) around a fake dataset and a scripted runner."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(folder)
    lock.acquire()
    state = SessionState(
        warp_folder=str(folder / "warp"),
        output_folder=str(folder),
        session_name=folder.name,
        settings=settings,
        automatic=automatic,
    )
    return Session(
        warp_folder=folder / "warp",
        output_folder=folder,
        lock=lock,
        log=SessionLog(folder),
        state=state,
        dataset=cast(Dataset, dataset or FakeDataset(folder)),
        programs=EnginePrograms(kind=EngineKind.BUILTIN),
        runner=cast(CycleRunner, runner or ScriptedRunner(folder)),
    )


def fake_dataset(session: Session) -> FakeDataset:
    return cast(FakeDataset, session.dataset)


def scripted_runner(session: Session) -> ScriptedRunner:
    return cast(ScriptedRunner, session.runner)


@dataclass
class Calls:
    """Counts the calls of a callback (and the loop time of each)."""

    times: list[float] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        self.event.set()

    async def next(self, timeout: float = 30.0) -> None:
        """Wait for the next call."""
        self.event.clear()
        await asyncio.wait_for(self.event.wait(), timeout)


async def open_store(session: Session, config: Config | None = None) -> SessionStore:
    """A context bound to the running loop and a store with ``session`` open in it."""
    ctx = SupervisorContext(config or tiny_config(), EventBus())
    ctx.attach_loop()
    store = SessionStore(ctx)
    await store.switch_to(session)
    return store


@dataclass
class JobParts:
    """A job runner on a store, with its callbacks counted and its events recorded."""

    store: SessionStore
    jobs: JobRunner
    started: Calls
    ready: Calls
    events: Recorder


async def job_parts(session: Session, config: Config | None = None) -> JobParts:
    store = await open_store(session, config)
    started, ready = Calls(), Calls()
    jobs = JobRunner(store.ctx, store, on_start=started, on_ready=ready)
    return JobParts(store, jobs, started, ready, Recorder(store.ctx.bus))


async def job_at_hold(out: Path, script: list[str]) -> tuple[Session, JobParts]:
    """An automatic job on ``out`` whose runner follows ``script``, waiting in its ``"hold"``."""
    session = make_session(out, runner=ScriptedRunner(out, script), automatic=True)
    parts = await job_parts(session)
    parts.jobs.launch_new(automatic=True, generation=0)
    await scripted_runner(session).holding.wait()
    return session, parts
