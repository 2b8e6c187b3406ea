"""Dialogs of the class selection and the export: select by rules, and export the selection.

Each dismisses with a plain value (or ``None`` when cancelled); the screen that opened it does
the work off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; height: auto; max-height: 90%;
    border: thick $primary; background: $surface; padding: 1 2;
}}
{name} Horizontal {{ height: auto; width: auto; margin-top: 1; }}
{name} Button {{ margin: 0 1; }}
{name} Input {{ width: 20; }}
{name} .row {{ height: auto; }}
{name} .row Label {{ width: 30; padding-top: 1; }}
{name} #problem {{ color: $error; height: auto; }}
"""


@dataclass(frozen=True, slots=True)
class Rules:
    """Selection rules: a class meeting every given rule is good, any other bad."""

    min_members: int | None
    better_than: float | None


class RulesScreen(ModalScreen[Rules | None]):
    """Minimum members, a resolution finer than X Å, or both."""

    DEFAULT_CSS = _CSS.format(name="RulesScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, classes: int, with_figures: int) -> None:
        super().__init__()
        self._class_count = classes
        self._with_figures = with_figures

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Select classes by rules (leave a field empty to skip that rule)")
            with Horizontal(classes="row"):
                yield Label("At least this many members")
                yield Input(placeholder="e.g. 200", id="min-members", type="integer")
            with Horizontal(classes="row"):
                yield Label("Half-set figure finer than (Å)")
                yield Input(placeholder="e.g. 8", id="better-than", type="number")
            yield Static(
                f"{self._with_figures} of {self._class_count} classes have a figure; a class "
                "without one fails the resolution rule. Classes meeting every rule become "
                "good, the others bad.",
                id="note",
            )
            yield Static("", id="problem")
            with Horizontal():
                yield Button("Apply (enter)", id="apply", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#min-members", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self._apply()
        else:
            self.dismiss(None)

    def _apply(self) -> None:
        members = self.query_one("#min-members", Input).value.strip()
        finer = self.query_one("#better-than", Input).value.strip()
        problem = self.query_one("#problem", Static)
        try:
            rules = Rules(
                min_members=int(members) if members else None,
                better_than=float(finer) if finer else None,
            )
        except ValueError:
            problem.update("Give whole members and Å as a number.")
            return
        if rules.min_members is None and rules.better_than is None:
            problem.update("Give at least one rule.")
            return
        if (rules.min_members is not None and rules.min_members < 0) or (
            rules.better_than is not None and rules.better_than <= 0
        ):
            problem.update("Members must be ≥ 0 and the resolution > 0 Å.")
            return
        self.dismiss(rules)


@dataclass(frozen=True, slots=True)
class ExportChoice:
    """How to export the selected classes."""

    format: str
    alignment: bool
    stack: bool
    warp_stacks: bool


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Export the classes marked good: format and options; the file goes to ``exports/``."""

    DEFAULT_CSS = _CSS.format(name="ExportScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, cycle: int, good: list[int], particles: int, folder: str) -> None:
        super().__init__()
        self._cycle, self._good, self._particles, self._folder = cycle, good, particles, folder

    def compose(self) -> ComposeResult:
        names = ", ".join(str(k) for k in self._good)
        with Vertical():
            yield Static(
                f"Export cycle {self._cycle}'s selected classes ({names}): up to "
                f"{self._particles:,} particles, only those still active"
            )
            with RadioSet(id="format"):
                yield RadioButton("RELION 3.1 star (RELION, cryoSPARC)", value=True, id="relion")
                yield RadioButton("cisTEM star", id="cistem")
            yield Checkbox("2D alignment (psi, origins, class; RELION)", id="alignment")
            yield Checkbox("A new stack of only these particles", id="stack")
            yield Checkbox("Warp's own stacks, not the combined stack (RELION)", id="warp")
            yield Static(f"Written to {self._folder}/exports/ under a new name.", id="where")
            yield Static("", id="problem")
            with Horizontal():
                yield Button("Export", id="export", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "export":
            self.dismiss(None)
            return
        relion = self.query_one("#relion", RadioButton).value
        choice = ExportChoice(
            format="relion" if relion else "cistem",
            alignment=self.query_one("#alignment", Checkbox).value,
            stack=self.query_one("#stack", Checkbox).value,
            warp_stacks=self.query_one("#warp", Checkbox).value,
        )
        problem = self.query_one("#problem", Static)
        if not relion and (choice.alignment or choice.warp_stacks):
            problem.update("A cisTEM star holds the pose and refers to stack positions.")
            return
        if choice.stack and choice.warp_stacks:
            problem.update("A new stack and Warp's stacks exclude each other.")
            return
        self.dismiss(choice)
