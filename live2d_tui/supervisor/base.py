"""The supervisor's shared state and plumbing: persistence, status, events and the log.

:class:`SupervisorBase` holds what every layer of the supervisor uses; the layers build on it —
:mod:`~live2d_tui.supervisor.jobloop` (running a job's cycles), :mod:`~live2d_tui.supervisor.loops`
(ingest and triggers) and :mod:`~live2d_tui.supervisor.core` (the public commands).

Invariants: the state is saved (atomically, in a thread, one save at a time) before the event
announcing a change is published; events are published on the event loop's thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from live2d_tui.classify.schedule import CyclePlan
from live2d_tui.config import (
    ClassificationType,
    Config,
    ConfigError,
    JobSettings,
    write_default_config,
)
from live2d_tui.dataset.ingest import IngestReport
from live2d_tui.events import (
    ErrorRaised,
    Event,
    EventBus,
    IngestCounts,
    LogLine,
    SessionStatus,
    StatusChanged,
)
from live2d_tui.paths import output_folder_for, read_last_session
from live2d_tui.paths import write_last_session as _write_pointer
from live2d_tui.state import JobRecord, save_state
from live2d_tui.supervisor.jobs import disk_note
from live2d_tui.supervisor.model import SupervisorError, mask_radius_problem
from live2d_tui.supervisor.session import Session


class SupervisorBase:
    """State and plumbing shared by the supervisor's layers (not used on its own)."""

    def __init__(
        self,
        config: Config,
        *,
        warp_folder: Path | None = None,
        output_folder: Path | None = None,
        bus: EventBus | None = None,
    ) -> None:
        """Prepare a supervisor; :meth:`start` opens the session.

        Args:
            config: Server settings and the default job settings of new sessions.
            warp_folder: The Warp folder; ``None`` reopens the last session.
            output_folder: ``--out``; ``None`` applies the one output-folder rule.
            bus: Where events go (a new bus when ``None``).

        Raises:
            SupervisorError: no Warp folder given and no last session known.
        """
        self.config = config
        self.bus = bus or EventBus()
        if warp_folder is None:
            last = read_last_session()
            if last is None:
                raise SupervisorError("no Warp folder given and no last session to reopen")
            warp_folder = last.warp_folder
            output_folder = output_folder or last.output_folder
        self._warp_folder = Path(warp_folder).expanduser().absolute()
        self._output_folder = output_folder_for(self._warp_folder, config.server, output_folder)
        self._session: Session | None = None
        self._status = SessionStatus.STOPPED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._job_task: asyncio.Task[None] | None = None
        self._job: JobRecord | None = None
        self._job_kind: ClassificationType | None = None
        self._current: CyclePlan | None = None
        self._stop_requested = False
        self._keep_job_on_cancel = False
        self._retry_at: float | None = None
        self._report: IngestReport | None = None
        self._generation = 0
        self._counts: IngestCounts | None = None
        self._next_trigger = ""
        self._ds_lock = threading.Lock()
        self._save_lock = asyncio.Lock()
        self._trigger_wake = asyncio.Event()
        self._ingest_wake = asyncio.Event()
        self._closing = False
        self._last_ingest_error = ""
        self._save_error = ""

    @property
    def session(self) -> Session:
        """The open session (after :meth:`start`)."""
        if self._session is None:
            raise SupervisorError("the supervisor is not started")
        return self._session

    @property
    def status(self) -> SessionStatus:
        """The current status."""
        return self._status

    @property
    def output_folder(self) -> Path:
        """The output folder in use."""
        return self._output_folder

    @property
    def job_running(self) -> bool:
        """A job task exists (running or stopping)."""
        return self._job_task is not None and not self._job_task.done()

    def _write_pointer(self, warp: Path, out: Path) -> None:
        try:
            _write_pointer(warp, out)
        except OSError as exc:
            self._log_threadsafe(f"Cannot update the last-session pointer: {exc}")
        try:
            write_default_config()  # first use: the commented configuration file, if missing
        except OSError as exc:
            self._log_threadsafe(f"Cannot write the configuration file: {exc}")

    def _with_dataset[T](self, func: Callable[[], T]) -> T:
        with self._ds_lock:
            return func()

    def _refuse_while_running(self, what: str) -> None:
        if self.job_running:
            raise SupervisorError(
                f"cannot {what} while a job is running: stop it (after this cycle) or abort it "
                "first"
            )

    def _stage_now(self, settings: JobSettings) -> None:
        """Validate and stage ``settings`` in memory (the caller saves)."""
        try:
            settings.validate()
        except ConfigError as exc:
            raise SupervisorError(f"invalid settings: {exc}") from None
        problem = self._mask_problem(settings)
        if problem:
            raise SupervisorError(f"invalid settings: {problem}")
        self.session.state = replace(self.session.state, settings=settings)

    def _mask_problem(self, settings: JobSettings) -> str:
        """Why the mask radius does not fit the particles' box (empty if it fits or the box is
        not known yet)."""
        warp = self.session.warp_summary()
        if warp is None:
            return ""
        return mask_radius_problem(settings.mask_radius, warp.box_size, warp.pixel_size)

    async def _stage(self, settings: JobSettings) -> None:
        self._stage_now(settings)
        await self._save()

    async def _set_automatic(self, on: bool) -> None:
        if self.session.state.automatic != on:
            self.session.state = replace(self.session.state, automatic=on)
            await self._save()

    async def _set_status(
        self, status: SessionStatus, reason: str = "", *, force: bool = False
    ) -> None:
        changed = status is not self._status
        self._status = status
        self.session.state = replace(self.session.state, status=status)
        await self._save()
        if changed or force:
            self.bus.publish(StatusChanged(status=status, reason=reason))

    async def _save(self) -> None:
        session = self._session
        if session is None:
            return
        async with self._save_lock:
            try:
                await asyncio.to_thread(save_state, session.output_folder, session.state)
            except OSError as exc:
                message = (
                    f"cannot save the session state in {session.output_folder}: "
                    f"{exc.strerror or exc}{disk_note(session.output_folder)}; the previous "
                    "state on disk is intact"
                )
                if message != self._save_error:
                    self._save_error = message
                    self._error(message)
            else:
                self._save_error = ""

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread

    def _publish_threadsafe(self, event: Event) -> None:
        if self._on_loop_thread() or self._loop is None:
            self.bus.publish(event)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                self._loop.call_soon_threadsafe(self.bus.publish, event)

    def _log_threadsafe(self, text: str) -> None:
        if self._on_loop_thread() or self._loop is None:
            self._log(text)
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._log, text)

    def _log(self, text: str, level: str = "info") -> None:
        if self._session is not None:
            self._session.log.write(text, level)
        self.bus.publish(LogLine(text=text, level=level))

    def _error(self, message: str, detail: str = "") -> None:
        self._log(message + (f"\n{detail}" if detail else ""), "error")
        self.bus.publish(ErrorRaised(message=message, detail=detail))
