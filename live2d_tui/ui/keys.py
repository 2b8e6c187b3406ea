"""The main screen's keys, and the help's rows built from bindings.

The main screen owns its keys (:data:`MAIN_BINDINGS`). A screen pushed over it that is not a
dialog (the class view) answers them too, acting on the main screen below
(:func:`carried`), as the help says: "Main screen (everywhere unless a screen below says
otherwise)". Dialogs are modal: only their own keys and ctrl+q work there.

To add a key to the main screen: a :class:`~textual.binding.Binding` here (with an ``id`` for
keymaps and a ``tooltip`` for the help) and an ``action_…`` method on
:class:`~live2d_tui.ui.screens.main.MainScreen`; the help, the footer and the class view pick it
up from this list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.binding import Binding, BindingType

# fmt: off
MAIN_BINDINGS: list[BindingType] = [
    # first: the footer lists keys in this order and cuts what does not fit, and these two
    # are the ones a newcomer needs (after the focused widget's own, e.g. ⏎ Open class)
    Binding("question_mark", "app.help", "Keys", id="help", tooltip="This list of keys"),
    Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit (asks while a job runs)"),
    Binding(
        "g", "start_now", "Start now", id="job.start_now",
        tooltip="Start a job now with the settings on the left",
    ),
    Binding(
        "a", "start_auto", "Automatic", id="job.start_auto",
        tooltip="Automatic jobs: a new job whenever enough new particles",
    ),
    Binding(
        "x", "stop", "Stop", id="job.stop",
        tooltip="Stop after the running cycle (and stop automatic jobs)",
    ),
    Binding("X", "abort", "Abort", id="job.abort", tooltip="Abort the running cycle (asks)"),
    Binding(
        "left_square_bracket", "cycle(-1)", "Older cycle", id="cycle.prev",
        tooltip="Show the previous cycle",
    ),
    Binding(
        "right_square_bracket", "cycle(1)", "Newer cycle", id="cycle.next",
        tooltip="Show the next cycle",
    ),
    Binding("c", "pick_cycle", "Cycles", id="cycle.pick", tooltip="Pick a cycle from a list"),
    Binding(
        "f", "follow_latest", "Latest", id="cycle.latest",
        tooltip="Show the latest cycle and follow new ones",
    ),
    Binding(
        "w", "warp_folder", "Warp folder", id="session.warp",
        tooltip="Open another Warp folder",
    ),
    Binding("1", "tab('classes-tab')", "Classes", show=False, id="tab.classes",
            tooltip="Classes tab"),
    Binding("2", "tab('output-tab')", "Job Output", show=False, id="tab.output",
            tooltip="Job Output tab: the running cycle and the session log"),
    Binding("ctrl+l", "redraw", "Redraw", show=False, id="view.redraw",
            tooltip="Redraw the images (after a resize or a reattach)"),
]
# fmt: on
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
