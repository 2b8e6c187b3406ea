"""The job settings form, generated from :class:`~live2d_tui.config.JobSettings` field metadata.

Two collapsible groups: *User* (fields with ``metadata["group"] == "user"``) and *Expert* (the
rest). Labels and tooltips come from ``metadata["label"]``/``["help"]``, so a field added to the
model appears here without UI changes.

Invariants:
- The form never holds an invalid model: :meth:`SettingsForm.read` builds a new model with
  ``JobSettings.with_changes`` and raises :class:`ConfigError` (also shown inline) when a value is
  wrong. What the user typed is *staged*; it reaches the supervisor only with a Start.
- Fields the chosen classification type ignores get the ``-ignored`` class (greyed out) and are
  disabled; the form is read-only (all inputs disabled) while locked.
"""

from __future__ import annotations

import dataclasses
import typing
from enum import StrEnum
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Collapsible, Input, Label, Select, Static, Switch

from live2d_tui.config import ConfigError, JobSettings

_HINTS = typing.get_type_hints(JobSettings)


def field_kind(name: str) -> type[Any]:
    """The Python type of a JobSettings field (bool, int, float or a StrEnum)."""
    kind: type[Any] = _HINTS[name]
    return kind


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


class SettingsForm(Vertical):
    """Staged job settings in two collapsible groups; :meth:`read` validates."""

    DEFAULT_CSS = """
    SettingsForm { height: auto; }
    SettingsForm .setting-row { height: auto; }
    SettingsForm .setting-row Label { width: 24; padding: 1 1 0 0; }
    SettingsForm .setting-row Input { width: 1fr; }
    SettingsForm .setting-row Select { width: 1fr; }
    SettingsForm .-ignored Label { color: $text-disabled; text-style: strike; }
    SettingsForm #settings-error { color: $error; height: auto; }
    """

    def __init__(self, settings: JobSettings, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._settings = settings
        self._locked = False

    @property
    def settings(self) -> JobSettings:
        """The last model loaded or successfully read."""
        return self._settings

    def compose(self) -> ComposeResult:
        fields = dataclasses.fields(JobSettings)
        user = [f for f in fields if f.metadata.get("group") == "user"]
        expert = [f for f in fields if f.metadata.get("group") != "user"]
        with Collapsible(title="User settings", collapsed=False, id="group-user"):
            for f in user:
                yield self._row(f)
        with Collapsible(title="Expert settings", collapsed=True, id="group-expert"):
            for f in expert:
                yield self._row(f)
        yield Static("", markup=False, id="settings-error")

    def _row(self, f: dataclasses.Field[Any]) -> Widget:
        value = getattr(self._settings, f.name)
        kind = field_kind(f.name)
        editor: Widget
        if kind is bool:
            editor = Switch(bool(value), id=f"set-{f.name}", animate=False)
        elif isinstance(kind, type) and issubclass(kind, StrEnum):
            options = [(getattr(m, "label", m.value), m.value) for m in kind]
            editor = Select(options, value=str(value), allow_blank=False, id=f"set-{f.name}")
        else:
            editor = Input(
                _format(value),
                type="integer" if kind is int else "number",
                id=f"set-{f.name}",
                select_on_focus=True,
            )
        editor.tooltip = str(f.metadata.get("help", ""))
        label = Label(str(f.metadata.get("label", f.name)))
        label.tooltip = editor.tooltip
        return Horizontal(label, editor, classes="setting-row", id=f"row-{f.name}")

    def on_mount(self) -> None:
        self._grey_ignored(self._settings)

    # ----------------------------------------------------------------- state

    def raw_values(self) -> dict[str, Any]:
        """What the editors hold now, keyed by field name (strings for text inputs)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(JobSettings):
            editor = self.query_one(f"#set-{f.name}")
            if isinstance(editor, Switch | Select):
                values[f.name] = editor.value
            elif isinstance(editor, Input):
                values[f.name] = editor.value.strip()
        return values

    def read(self) -> JobSettings:
        """Validate the staged values into a new model; show and raise the error if invalid."""
        error = self.query_one("#settings-error", Static)
        try:
            settings = self._settings.with_changes(**self.raw_values())
        except ConfigError as exc:
            error.update(f"⚠ {exc}")
            raise
        error.update("")
        self._settings = settings
        return settings

    def load(self, settings: JobSettings) -> None:
        """Show ``settings`` (e.g. after the supervisor switched ab initio to seeded)."""
        self._settings = settings
        for f in dataclasses.fields(JobSettings):
            editor = self.query_one(f"#set-{f.name}")
            value = getattr(settings, f.name)
            with editor.prevent(Input.Changed, Select.Changed, Switch.Changed):
                if isinstance(editor, Switch):
                    editor.value = bool(value)
                elif isinstance(editor, Select):
                    editor.value = str(value)
                elif isinstance(editor, Input):
                    editor.value = _format(value)
        self.query_one("#settings-error", Static).update("")
        self._grey_ignored(settings)

    @property
    def locked(self) -> bool:
        """Whether editing is disabled (a job is running)."""
        return self._locked

    def set_locked(self, locked: bool) -> None:
        """Disable every editor while a job runs; re-enable (minus ignored fields) after."""
        self._locked = locked
        self._grey_ignored(self._current_type_settings())

    def _current_type_settings(self) -> JobSettings:
        try:
            kind = self.query_one("#set-classification_type", Select).value
            return self._settings.with_changes(classification_type=kind)
        except (ConfigError, LookupError):
            return self._settings

    def _grey_ignored(self, settings: JobSettings) -> None:
        ignored = settings.ignored_fields()
        for f in dataclasses.fields(JobSettings):
            row = self.query_one(f"#row-{f.name}")
            row.set_class(f.name in ignored, "-ignored")
            self.query_one(f"#set-{f.name}").disabled = self._locked or f.name in ignored

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "set-classification_type":
            self._grey_ignored(self._current_type_settings())
