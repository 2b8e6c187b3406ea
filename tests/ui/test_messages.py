"""Core events in the UI: which queued events collapse, and the type → handler map."""

from __future__ import annotations

from live2d_tui.events import (
    BlockType,
    CycleFinished,
    CycleProgress,
    CycleStage,
    CycleStarted,
    Event,
    LogLine,
)
from live2d_tui.ui.keys import MAIN_BINDINGS, binding_rows, carried
from live2d_tui.ui.messages import CoreEvent, EventHandlers
from live2d_tui.ui.screens.detail import ClassDetailScreen


def _progress(percent: float) -> CycleProgress:
    return CycleProgress(3, CycleStage.CLASSIFYING, percent, 1, 4)


def test_queued_progress_and_log_lines_collapse_into_the_newest() -> None:
    assert CoreEvent(_progress(10)).can_replace(CoreEvent(_progress(20)))
    assert CoreEvent(LogLine("a")).can_replace(CoreEvent(LogLine("b")))
    started = CycleStarted(3, BlockType.STARTUP, 2, 6, 20.0, 1000)
    # never across types, and never events that each change what is shown
    assert not CoreEvent(_progress(10)).can_replace(CoreEvent(started))
    assert not CoreEvent(LogLine("a")).can_replace(CoreEvent(_progress(10)))
    assert not CoreEvent(started).can_replace(CoreEvent(started))
    finished = CycleFinished(3, True)
    assert not CoreEvent(finished).can_replace(CoreEvent(finished))


def test_events_go_to_the_handler_of_their_type_or_the_fallback() -> None:
    seen: list[tuple[str, Event]] = []
    handlers = EventHandlers(lambda event: seen.append(("fallback", event)))
    handlers.on(LogLine, lambda event: seen.append(("log", event)))
    line, progress = LogLine("x"), _progress(5)
    handlers.dispatch(line)
    handlers.dispatch(progress)
    assert seen == [("log", line), ("fallback", progress)]


def test_the_class_view_carries_the_main_keys_it_does_not_bind_itself() -> None:
    own = ClassDetailScreen.OWN_BINDINGS
    rows = dict(binding_rows(carried(MAIN_BINDINGS, over=own)))
    assert "q" not in rows and "ctrl+l" not in rows  # the class view's own (back, redraw)
    assert {"?", "g", "[", "]", "c", "1", "2"} <= set(rows)
    actions = {b.action for b in carried(MAIN_BINDINGS, over=own)}  # type: ignore[union-attr]
    assert "app.help" in actions and "below('start_now')" in actions
