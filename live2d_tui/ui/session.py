"""The UI's handle on the session: which supervisor, whether it is open, its latest snapshot,
and the commands a screen may send it, as typed calls.

The app owns the lifecycle (:meth:`Session.open`, :meth:`Session.close`); screens send commands
and read :attr:`Session.snapshot`. A command raises :class:`SupervisorError` when the
supervisor refuses it (the screen shows why), and :class:`NoSessionOpen` when no session is
open yet (the first Warp folder could not be opened). To add a command: one method here that
awaits the supervisor's method of the same name.
"""

from __future__ import annotations

from live2d_tui.config import JobSettings
from live2d_tui.paths import PathError, resolve_warp_folder
from live2d_tui.supervisor import Supervisor, SupervisorError, SupervisorSnapshot


class NoSessionOpen(Exception):
    """A command was sent before any session could be opened."""


class Session:
    """The supervisor of the open session (replaced when the first Warp folder is opened from
    the UI after the one given at start could not be)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.is_open = False
        """The supervisor started and not closed."""
        self.closing = False
        """The app is ending: what arrives from the core now is not shown any more."""
        self.snapshot: SupervisorSnapshot | None = None
        """The latest snapshot (see :meth:`refresh`)."""

    # ------------------------------------------------------------------ lifecycle (the app)

    async def open(self) -> None:
        """Start the supervisor (lock, reload, ingest).

        Raises:
            SupervisorError: the session cannot be opened (the UI stays, without a session).
        """
        await self.supervisor.start()
        self.is_open = True

    async def close(self, *, abort: bool) -> None:
        """Close the supervisor (once): the running cycle ends, or with ``abort`` the job."""
        if self.is_open:
            self.is_open = False
            await self.supervisor.close(abort_running=abort)

    def refresh(self) -> SupervisorSnapshot | None:
        """Take a new snapshot (None while no session is open)."""
        if not self.is_open:
            return None
        self.snapshot = self.supervisor.snapshot()
        return self.snapshot

    # ------------------------------------------------------------------ commands (screens)

    def _open_supervisor(self) -> Supervisor:
        if not self.is_open:
            raise NoSessionOpen("No session is open: press w to choose a Warp folder.")
        return self.supervisor

    async def start_job_now(self, settings: JobSettings) -> None:
        """Start a job now with ``settings`` (staged for the next jobs too)."""
        await self._open_supervisor().start_job_now(settings)

    async def start_automatic(self, settings: JobSettings) -> None:
        """Turn automatic jobs on with ``settings``."""
        await self._open_supervisor().start_automatic(settings)

    async def stop(self) -> None:
        """Stop after the running cycle (or stop waiting for particles)."""
        await self._open_supervisor().stop()

    async def abort(self) -> None:
        """Abort the running cycle now."""
        await self._open_supervisor().abort()

    async def force_reimport(self) -> None:
        """Re-import every particle into a fresh stack."""
        await self._open_supervisor().force_reimport()

    async def change_warp_folder(self, name_or_path: str) -> None:
        """Work on another Warp folder; with no session open yet, open this one.

        Raises:
            SupervisorError: the folder cannot be opened (the current session stays).
        """
        if self.is_open:
            await self.supervisor.change_warp_folder(name_or_path)
            return
        try:
            warp = resolve_warp_folder(name_or_path, self.supervisor.config.server)
        except PathError as exc:
            raise SupervisorError(str(exc)) from None
        supervisor = Supervisor(self.supervisor.config, warp_folder=warp, bus=self.supervisor.bus)
        await supervisor.start()
        self.supervisor = supervisor
        self.is_open = True
