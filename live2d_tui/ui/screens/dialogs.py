"""Small modal screens: quit-while-running, abort confirmation, cycle picker, Warp folder, help.

Each dismisses with a plain value; the app decides what to do with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

_MODAL_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: auto; max-width: 90%; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 1 2;
}}
{name} Horizontal {{ height: auto; width: auto; margin-top: 1; }}
{name} Button {{ margin: 0 1; }}
"""


class QuitScreen(ModalScreen[str]):
    """Quitting while a job runs: stop after this cycle, abort now, or keep running.

    Dismisses with ``"stop"``, ``"abort"`` or ``"cancel"``.
    """

    DEFAULT_CSS = _MODAL_CSS.format(name="QuitScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss('cancel')", "Keep running"),
        Binding("s", "dismiss('stop')", "Stop after cycle", show=False),
        Binding("a", "dismiss('abort')", "Abort now", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("A job is running. Quit and…")
            with Horizontal():
                yield Button("Stop after this cycle (s)", id="stop", variant="warning")
                yield Button("Abort now (a)", id="abort", variant="error")
                yield Button("Keep running (esc)", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question (abort confirmation); Enter/y = yes, Esc/n = no."""

    DEFAULT_CSS = _MODAL_CSS.format(name="ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss(False)", "No"),
        Binding("y", "dismiss(True)", "Yes"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self._question = question
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._question)
            with Horizontal():
                yield Button(f"{self._yes} (y)", id="yes", variant="error")
                yield Button("No (esc)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class CyclePicker(ModalScreen[int | None]):
    """Choose a cycle: one line per cycle, newest first. Dismisses with its number or None."""

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="CyclePicker")
        + """
    CyclePicker OptionList { height: auto; max-height: 24; width: 90; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Close")]

    def __init__(self, choices: Sequence[tuple[int, str]], current: int | None) -> None:
        super().__init__()
        self._choices = list(choices)
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Show cycle (Enter) · Esc closes")
            yield OptionList(*[Option(text, id=str(n)) for n, text in self._choices])

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        for i, (n, _) in enumerate(self._choices):
            if n == self._current:
                options.highlighted = i
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or 0))


class WarpFolderScreen(ModalScreen[str | None]):
    """Type a session name or an absolute path; errors are shown inline, the dialog stays open.

    ``apply(text)`` performs the change and returns an error message (or None on success).
    """

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="WarpFolderScreen")
        + """
    WarpFolderScreen Input { width: 80; }
    WarpFolderScreen #warp-error { color: $error; width: 80; height: auto; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, current: str, apply: Callable[[str], Awaitable[str | None]]) -> None:
        super().__init__()
        self._current = current
        self._apply = apply

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Warp folder: a session name (uses the configured prefix) or a path")
            yield Input(self._current, id="warp-input", placeholder="session name or /path")
            yield Static("", markup=False, id="warp-error")
            with Horizontal():
                yield Button("Open (enter)", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit(self.query_one("#warp-input", Input).value)
        else:
            self.dismiss(None)

    @work(exclusive=True, group="warp-folder")
    async def _submit(self, text: str) -> None:
        error = self.query_one("#warp-error", Static)
        if not text.strip():
            error.update("⚠ Type a session name or an absolute path.")
            return
        error.update("Checking…")
        problem = await self._apply(text.strip())
        if problem:
            error.update(f"⚠ {problem}")
            return
        self.dismiss(text.strip())


class HelpScreen(ModalScreen[None]):
    """Every key, grouped by the screen where it works, then notes (which images and why)."""

    DEFAULT_CSS = (
        _MODAL_CSS.format(name="HelpScreen")
        + """
    HelpScreen VerticalScroll { height: auto; max-height: 34; width: 78; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(
        self, sections: Iterable[tuple[str, Sequence[tuple[str, str]]]], notes: Sequence[str] = ()
    ) -> None:
        super().__init__()
        self._sections = [(title, list(rows)) for title, rows in sections]
        self._notes = list(notes)

    def compose(self) -> ComposeResult:
        width = max((len(k) for _, rows in self._sections for k, _ in rows), default=4) + 2
        text = Text()
        for n, (title, rows) in enumerate(self._sections):
            if n:
                text.append("\n")
            text.append(title + "\n", style="bold underline")
            for keys, description in rows:
                text.append(f"  {keys.ljust(width)}", style="bold")
                text.append(f"{description}\n")
        if self._notes:
            text.append("\n" + "\n".join(self._notes))
        text.rstrip()
        with Vertical():
            yield Label("Keys (Esc closes)")
            with VerticalScroll():
                yield Static(text, id="help-text")
