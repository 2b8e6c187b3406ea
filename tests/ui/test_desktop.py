"""Whether and how desktop notifications are sent (the decision; the pty test sends them)."""

from __future__ import annotations

from live2d_tui.config import DesktopNotify
from live2d_tui.ui.desktop import DesktopNotifier, resolve_desktop


def tmux_answers(passthrough: str | None, client: str | None):  # type: ignore[no-untyped-def]
    asked: list[list[str]] = []

    def tmux(args: list[str]) -> str | None:
        asked.append(args)
        return passthrough if args[0] == "show" else client

    return tmux, asked


def test_off_and_not_a_terminal_send_nothing() -> None:
    assert resolve_desktop(DesktopNotify.OFF, is_tty=True, env={}).protocol is DesktopNotify.OFF
    choice = resolve_desktop(DesktopNotify.OSC9, is_tty=False, env={"TERM": "xterm-kitty"})
    assert choice.protocol is DesktopNotify.OFF and "not a terminal" in choice.reason
    written: list[str] = []
    assert not DesktopNotifier(choice, written.append).send("x") and written == []


def test_auto_follows_the_terminal() -> None:
    kitty = resolve_desktop(DesktopNotify.AUTO, is_tty=True, env={"TERM": "xterm-kitty"})
    assert kitty.protocol is DesktopNotify.OSC99 and not kitty.in_tmux
    plain = resolve_desktop(DesktopNotify.AUTO, is_tty=True, env={"TERM": "xterm-256color"})
    assert plain.protocol is DesktopNotify.OFF and "not known" in plain.reason
    named = resolve_desktop(DesktopNotify.OSC777, is_tty=True, env={"TERM": "xterm-256color"})
    assert named.protocol is DesktopNotify.OSC777  # the user knows their terminal


def test_tmux_needs_passthrough_and_names_the_outer_terminal() -> None:
    env = {"TMUX": "/tmp/tmux-0/default,1,0", "TERM": "tmux-256color", "TERM_PROGRAM": "tmux"}
    tmux, _ = tmux_answers("off", "xterm-kitty")
    closed = resolve_desktop(DesktopNotify.AUTO, is_tty=True, env=env, tmux=tmux)
    assert closed.protocol is DesktopNotify.OFF and "allow-passthrough" in closed.reason
    tmux, asked = tmux_answers("on", "xterm-kitty")
    open_ = resolve_desktop(DesktopNotify.AUTO, is_tty=True, env=env, tmux=tmux)
    assert open_.protocol is DesktopNotify.OSC99 and open_.in_tmux
    assert asked == [["show", "-Apv", "allow-passthrough"], ["display", "-p", "#{client_termname}"]]
    tmux, _ = tmux_answers(None, None)  # tmux does not answer: nothing is sent
    assert resolve_desktop(DesktopNotify.OSC9, is_tty=True, env=env, tmux=tmux).protocol is (
        DesktopNotify.OFF
    )
    written: list[str] = []
    tmux, _ = tmux_answers("on", "foot")
    notifier = DesktopNotifier(
        resolve_desktop(DesktopNotify.OSC777, is_tty=True, env=env, tmux=tmux), written.append
    )
    assert notifier.send("Disk nearly full")
    assert written == ["\x1bPtmux;\x1b\x1b]777;notify;live2d;Disk nearly full\x07\x1b\\"]
