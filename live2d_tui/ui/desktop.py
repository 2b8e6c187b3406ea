"""Desktop notifications through the terminal: whether to send them, which sequence, and how.

Decided once, when the app starts (:func:`resolve_desktop`), from ``desktop_notifications``:

- ``off``: never;
- a named protocol (``osc9``, ``osc777``, ``osc99``): that one;
- ``auto``: the terminal's own (:func:`~live2d_tui.notify.osc.choose_protocol`), or none for a
  terminal not known to show notifications (an unknown sequence may be printed as text).

Inside tmux the sequence reaches the outer terminal only wrapped in tmux's passthrough, and only
when the pane's ``allow-passthrough`` is ``on`` (tmux ≥ 3.3; asked with ``tmux show -Apv``); the
outer terminal's ``TERM`` is asked with ``tmux display -p '#{client_termname}'``. Nothing is sent
when the app's output is not a terminal. The sequences are written through Textual's driver
(:meth:`DesktopNotifier.send`), in order with the screen updates, never behind its back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from live2d_tui.config import DesktopNotify
from live2d_tui.notify.osc import choose_protocol, notification

TITLE = "live2d"


def _tmux(args: list[str]) -> str | None:
    """stdout of a tmux query, or ``None`` when tmux does not answer."""
    try:
        out = subprocess.run(
            ["tmux", *args], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class DesktopChoice:
    """How desktop notifications are sent, and why (shown on the help screen)."""

    protocol: DesktopNotify
    """``OFF``, or the protocol used (never ``AUTO``)."""
    in_tmux: bool
    reason: str


def resolve_desktop(
    setting: DesktopNotify,
    *,
    is_tty: bool,
    env: Mapping[str, str] | None = None,
    tmux: Callable[[list[str]], str | None] = _tmux,
) -> DesktopChoice:
    """The protocol to use for ``setting`` in this terminal (see the module docstring)."""
    env = os.environ if env is None else env
    if setting is DesktopNotify.OFF:
        return DesktopChoice(DesktopNotify.OFF, False, "desktop notifications are off")
    if not is_tty:
        return DesktopChoice(DesktopNotify.OFF, False, "the output is not a terminal")
    in_tmux = bool(env.get("TMUX"))
    outer: str | None = None
    if in_tmux:
        passthrough = tmux(["show", "-Apv", "allow-passthrough"])
        if passthrough not in {"on", "all"}:
            return DesktopChoice(
                DesktopNotify.OFF,
                True,
                "inside tmux without allow-passthrough (set -g allow-passthrough on)",
            )
        outer = tmux(["display", "-p", "#{client_termname}"])
    if setting is DesktopNotify.AUTO:
        protocol = choose_protocol(env, outer)
        if protocol is DesktopNotify.OFF:
            term = outer or env.get("TERM_PROGRAM") or env.get("TERM", "")
            return DesktopChoice(
                DesktopNotify.OFF,
                in_tmux,
                f"auto: {term or 'this terminal'} is not known to show them",
            )
        return DesktopChoice(
            protocol, in_tmux, f"auto: {protocol.value} for {outer or 'this terminal'}"
        )
    where = " through tmux" if in_tmux else ""
    return DesktopChoice(setting, in_tmux, f"{setting.value}{where} (configured)")


def not_decided() -> DesktopChoice:
    """No desktop notifications, because nobody decided on them (an app made without a choice,
    as in tests)."""
    return DesktopChoice(DesktopNotify.OFF, False, "not enabled for this app")


class DesktopNotifier:
    """Sends desktop notifications with the chosen protocol through a writer (the driver)."""

    def __init__(self, choice: DesktopChoice, write: Callable[[str], None]) -> None:
        self.choice = choice
        self._write = write
        self._count = 0

    @property
    def enabled(self) -> bool:
        """Notifications are sent."""
        return self.choice.protocol is not DesktopNotify.OFF

    def send(self, body: str, *, urgency: int = 1) -> bool:
        """Show ``body`` as a notification titled ``live2d``; ``False`` when disabled."""
        if not self.enabled:
            return False
        self._count += 1
        self._write(
            notification(
                self.choice.protocol,
                TITLE,
                body,
                ident=f"live2d-{os.getpid()}-{self._count}",
                urgency=urgency,
                in_tmux=self.choice.in_tmux,
            )
        )
        return True


def output_is_terminal() -> bool:
    """Textual's Linux driver writes to the process's original standard error."""
    stream = sys.__stderr__
    return stream is not None and stream.isatty()
