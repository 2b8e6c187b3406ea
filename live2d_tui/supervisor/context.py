"""What every part of the supervisor shares: the settings, the event bus, the event loop, the log.

The parts — :class:`~live2d_tui.supervisor.store.SessionStore`,
:class:`~live2d_tui.supervisor.jobrunner.JobRunner`,
:class:`~live2d_tui.supervisor.loops.IngestLoop` and
:class:`~live2d_tui.supervisor.loops.TriggerLoop` — each hold one :class:`SupervisorContext` and
nothing else in common; what one part needs of another it reaches through that part's public
methods.

Invariant: events are published on the event loop's thread only — callers on a worker thread use
:meth:`SupervisorContext.publish_threadsafe` / :meth:`SupervisorContext.log_threadsafe`, which
forward with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from live2d_tui.config import Config
from live2d_tui.events import ErrorRaised, Event, EventBus, LogLine
from live2d_tui.supervisor.sessionlog import SessionLog


class SupervisorContext:
    """The settings, the bus, the loop and the log shared by the supervisor's parts."""

    def __init__(self, config: Config, bus: EventBus) -> None:
        """Prepare a context; :meth:`attach_loop` binds it to the running loop.

        Args:
            config: Server settings and the default job settings of new sessions.
            bus: Where events go.
        """
        self.config = config
        self.bus = bus
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the supervisor runs on (``None`` before :meth:`attach_loop`)."""
        self.log_file: SessionLog | None = None
        """The open session's log (set by the session store; ``None`` when none is open)."""
        self._loop_thread: int | None = None

    def attach_loop(self) -> None:
        """Bind to the running loop: events are published on its thread from now on."""
        self.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def on_loop_thread(self) -> bool:
        """The caller runs on the event loop's thread."""
        return threading.get_ident() == self._loop_thread

    def publish_threadsafe(self, event: Event) -> None:
        """Publish ``event`` on the loop's thread, from any thread."""
        if self.on_loop_thread() or self.loop is None:
            self.bus.publish(event)
        else:
            with contextlib.suppress(RuntimeError):  # loop closed at shutdown
                self.loop.call_soon_threadsafe(self.bus.publish, event)

    def log_threadsafe(self, text: str) -> None:
        """:meth:`log` from any thread."""
        if self.on_loop_thread() or self.loop is None:
            self.log(text)
        else:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.log, text)

    def log(self, text: str, level: str = "info") -> None:
        """Write a line to the session log and publish it (on the loop's thread)."""
        if self.log_file is not None:
            self.log_file.write(text, level)
        self.bus.publish(LogLine(text=text, level=level))

    def error(self, message: str, detail: str = "") -> None:
        """Log an error and publish it for the user (on the loop's thread)."""
        self.log(message + (f"\n{detail}" if detail else ""), "error")
        self.bus.publish(ErrorRaised(message=message, detail=detail))
