"""Core events inside the UI: the one Textual message that carries them, and the map from an
event's type to its handler.

The app's bridge wraps each core event (a plain dataclass of :mod:`live2d_tui.events`) in a
:class:`CoreEvent` posted to the app, which hands the event to the main screen; the screen's
:class:`EventHandlers` call the handler of its type. (The app itself only looks at the end of a
job, to quit after it when asked.) To handle a new core event: add its dataclass to
:data:`live2d_tui.events.Event` and one ``on(NewEvent, self._on_new_event)`` line in the main
screen's ``_register_handlers``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message

from live2d_tui.events import CycleProgress, Event, LogLine, StreamState

REPLACEABLE = (CycleProgress, LogLine, StreamState)
"""Events a newer one of the same type makes stale while both wait in the queue: the progress
line and the streaming state show the latest only, and a log line only asks for a read of the
log file (which reads every appended line)."""


class CoreEvent(Message):
    """A core event delivered to the UI (the one place core data becomes a Textual message)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        """Frequent events of :data:`REPLACEABLE` that queue up collapse into the newest."""
        return (
            isinstance(message, CoreEvent)
            and type(message.event) is type(self.event)
            and isinstance(self.event, REPLACEABLE)
        )


class EventHandlers:
    """Core event type → handler. An event without a handler of its own goes to the fallback
    (every core event may have changed what the supervisor's snapshot says)."""

    def __init__(self, fallback: Callable[[Event], object]) -> None:
        self._handlers: dict[type[Any], Callable[[Any], object]] = {}
        self._fallback = fallback

    def on[E](self, kind: type[E], handler: Callable[[E], object]) -> None:
        """Handle events of exactly ``kind`` with ``handler`` (one handler per type)."""
        self._handlers[kind] = handler

    def dispatch(self, event: Event) -> None:
        """Call the handler of ``event``'s type, or the fallback."""
        self._handlers.get(type(event), self._fallback)(event)
