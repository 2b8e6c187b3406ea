"""The main screen's keys, and the help's rows built from bindings.

The main screen owns its keys (:data:`MAIN_BINDINGS`). A screen pushed over it that is not a
dialog (the class view) answers them too, acting on the main screen below
(:func:`carried`), as the help says: "Main screen (everywhere unless a screen below says
otherwise)". Dialogs are modal: only their own keys and ctrl+q work there.

To add a key to the main screen: a row of ``_MAIN_KEYS`` here (key, action, footer label, an
``id`` for keymaps), what it does in ``_TOOLTIPS`` (the help shows it) and an ``action_…`` method
on :class:`~live2d_tui.ui.screens.main.MainScreen`; the footer, the help and the class view pick
it up from :data:`MAIN_BINDINGS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.binding import Binding, BindingType

_MAIN_KEYS: tuple[tuple[str, str, str, str], ...] = (
    # (key, action, footer label, id), in footer order. First: the footer cuts what does not
    # fit, and these two are the ones a newcomer needs (after the focused widget's own keys,
    # e.g. ⏎ Open class)
    ("question_mark", "app.help", "Keys", "help"),
    ("q", "app.quit", "Quit", "quit"),
    ("g", "start_now", "Start now", "job.start_now"),
    ("a", "start_auto", "Automatic", "job.start_auto"),
    ("x", "stop", "Stop", "job.stop"),
    ("X", "abort", "Abort", "job.abort"),
    ("left_square_bracket", "cycle(-1)", "Older cycle", "cycle.prev"),
    ("right_square_bracket", "cycle(1)", "Newer cycle", "cycle.next"),
    ("c", "pick_cycle", "Cycles", "cycle.pick"),
    ("f", "follow_latest", "Latest", "cycle.latest"),
    ("w", "warp_folder", "Warp folder", "session.warp"),
    ("1", "tab('classes-tab')", "Classes", "tab.classes"),
    ("2", "tab('output-tab')", "Job Output", "tab.output"),
    ("ctrl+l", "redraw", "Redraw", "view.redraw"),
)
_TOOLTIPS = {
    "help": "This list of keys",
    "quit": "Quit (asks while a job runs)",
    "job.start_now": "Start a job now with the settings on the left",
    "job.start_auto": "Automatic jobs: a new job whenever enough new particles",
    "job.stop": "Stop after the running cycle (and stop automatic jobs)",
    "job.abort": "Abort the running cycle (asks)",
    "cycle.prev": "Show the previous cycle",
    "cycle.next": "Show the next cycle",
    "cycle.pick": "Pick a cycle from a list",
    "cycle.latest": "Show the latest cycle and follow new ones",
    "session.warp": "Open another Warp folder",
    "tab.classes": "Classes tab",
    "tab.output": "Job Output tab: the running cycle and the session log",
    "view.redraw": "Redraw the images (after a resize or a reattach)",
}
"""What each key does, in the help (by binding id)."""
_HIDDEN = frozenset({"tab.classes", "tab.output", "view.redraw"})
"""Keys the footer does not show (the help lists them)."""

MAIN_BINDINGS: list[BindingType] = [
    Binding(key, action, label, show=id not in _HIDDEN, id=id, tooltip=_TOOLTIPS[id])
    for key, action, label, id in _MAIN_KEYS
]
"""Every key of the main screen, in footer order."""

_KEY_NAMES = {
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "escape": "esc",
    "pagedown": "page down",
    "pageup": "page up",
    "left": "←",
    "right": "→",
}


def action_name(binding: BindingType) -> str:
    """The action a binding runs, without its ``app.``/``screen.`` namespace."""
    action = binding.action if isinstance(binding, Binding) else str(binding[1])
    return action.removeprefix("app.").removeprefix("screen.")


def _keys(binding: Binding) -> list[str]:
    return [key.strip() for key in binding.key.split(",")]


def carried(bindings: Iterable[BindingType], over: Sequence[BindingType]) -> list[BindingType]:
    """``bindings`` of the screen below, for a screen pushed over it: each runs its action on
    the screen below (``below('…')``, see ``action_below`` of that screen), app actions run as
    they are; keys the screen above binds itself (``over``) stay its own."""
    own = {key for b in over if isinstance(b, Binding) for key in _keys(b)}
    result: list[BindingType] = []
    for binding in bindings:
        if not isinstance(binding, Binding):
            continue
        keys = [key for key in _keys(binding) if key not in own]
        if not keys:
            continue
        action = binding.action
        if not action.startswith("app."):
            action = f"below({action!r})"
        result.append(
            Binding(
                ",".join(keys),
                action,
                binding.description,
                show=binding.show,
                tooltip=binding.tooltip,
            )
        )
    return result


def binding_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, description) of ``bindings``, one row per action: ``q`` and ``ctrl+q`` for the
    same action are one row, keys spelled as a user types them."""
    rows: dict[str, tuple[list[str], str]] = {}
    for binding in bindings:
        if not isinstance(binding, Binding) or binding.action.startswith("dismiss"):
            continue
        name = action_name(binding)
        keys = [_KEY_NAMES.get(k, k) for k in _keys(binding)]
        known, description = rows.get(name, ([], binding.tooltip or binding.description))
        rows[name] = ([*known, *(k for k in keys if k not in known)], description)
    return [
        (", ".join(keys), description or action) for action, (keys, description) in rows.items()
    ]
