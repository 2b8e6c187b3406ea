"""The session store: the open session, its persisted state and status, the last-session pointer.

:class:`SessionStore` holds the supervisor's one open
:class:`~live2d_tui.supervisor.session.Session` (lock, log, state, dataset, cycle runner). A part
changes the state in memory (``store.session.state = replace(...)``) and then calls
:meth:`SessionStore.save`, or one of the methods here that save for it.

Invariants: the state is saved (atomically, in a thread, one save at a time) before the event
announcing a change is published; the dataset is used under one lock
(:meth:`SessionStore.with_dataset`), so an ingest pass, a cycle's inputs and closing the session
never overlap.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from live2d_tui.config import ConfigError, JobSettings, write_default_config
from live2d_tui.events import SessionStatus, StatusChanged
from live2d_tui.paths import write_last_session as _write_pointer
from live2d_tui.supervisor.context import SupervisorContext
from live2d_tui.supervisor.jobs import disk_note
from live2d_tui.supervisor.model import SupervisorError, mask_radius_problem
from live2d_tui.supervisor.session import Session, close_session
from live2d_tui.supervisor.state import save_state


class SessionStore:
    """The open session, its state on disk and the session status (see the module docstring)."""

    def __init__(self, ctx: SupervisorContext) -> None:
        """An empty store; :meth:`switch_to` opens a session in it."""
        self.ctx = ctx
        self._session: Session | None = None
        self._status = SessionStatus.STOPPED
        self._ds_lock = threading.Lock()
        self._save_lock = asyncio.Lock()
        self._save_error = ""

    @property
    def session(self) -> Session:
        """The open session (after the supervisor started)."""
        if self._session is None:
            raise SupervisorError("the supervisor is not started")
        return self._session

    @property
    def current(self) -> Session | None:
        """The open session, or ``None`` (not started yet, or closed)."""
        return self._session

    @property
    def status(self) -> SessionStatus:
        """The current status."""
        return self._status

    async def switch_to(self, session: Session) -> None:
        """Make ``session`` the open one; the previous one's state is saved, then it is closed."""
        previous = self._session
        if previous is not None:
            await self.save()  # the previous session's state, before the swap
        self._session = session  # no await since the save: nothing runs on a half swap
        self.ctx.log_file = session.log
        if previous is not None:
            await close_session(previous, self._ds_lock)

    async def close(self) -> None:
        """Save the state, close the dataset and release the output folder (if one is open)."""
        if self._session is not None:
            await self.save()
            await close_session(self._session, self._ds_lock)
            self._session = None
            self.ctx.log_file = None

    def write_pointer(self, warp: Path, out: Path) -> None:
        """Remember this session as the last one (blocking; a failure is only logged)."""
        try:
            _write_pointer(warp, out)
        except OSError as exc:
            self.ctx.log_threadsafe(f"Cannot update the last-session pointer: {exc}")
        try:
            write_default_config()  # first use: the commented configuration file, if missing
        except OSError as exc:
            self.ctx.log_threadsafe(f"Cannot write the configuration file: {exc}")

    def with_dataset[T](self, func: Callable[[], T]) -> T:
        """Call ``func`` under the dataset lock (blocking; run it in a thread)."""
        with self._ds_lock:
            return func()

    def stage_now(self, settings: JobSettings) -> None:
        """Validate and stage ``settings`` in memory (the caller saves)."""
        try:
            settings.validate()
        except ConfigError as exc:
            raise SupervisorError(f"invalid settings: {exc}") from None
        problem = self.mask_problem(settings)
        if problem:
            raise SupervisorError(f"invalid settings: {problem}")
        self.session.state = replace(self.session.state, settings=settings)

    def mask_problem(self, settings: JobSettings) -> str:
        """Why the mask radius does not fit the particles' box (empty if it fits or the box is
        not known yet)."""
        warp = self.session.warp_summary()
        if warp is None:
            return ""
        return mask_radius_problem(settings.mask_radius, warp.box_size, warp.pixel_size)

    async def stage(self, settings: JobSettings) -> None:
        """Validate, stage and save ``settings``."""
        self.stage_now(settings)
        await self.save()

    async def set_automatic(self, on: bool) -> None:
        """Turn automatic jobs on or off (saved when it changes)."""
        if self.session.state.automatic != on:
            self.session.state = replace(self.session.state, automatic=on)
            await self.save()

    async def set_status(
        self, status: SessionStatus, reason: str = "", *, force: bool = False
    ) -> None:
        """Set and save the status, then announce it (when it changed, or with ``force``)."""
        changed = status is not self._status
        self._status = status
        self.session.state = replace(self.session.state, status=status)
        await self.save()
        if changed or force:
            self.ctx.bus.publish(StatusChanged(status=status, reason=reason))

    async def save(self) -> None:
        """Write the state atomically (in a thread, one save at a time); a failure is reported
        once (until a save succeeds again) and leaves the previous state on disk."""
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
                    self.ctx.error(message)
            else:
                self._save_error = ""
