"""Desktop notifications through the terminal: the escape sequences, and which one a terminal reads.

Terminals disagree (what each is documented to do is in the README's "Alerts" section):

- **OSC 9** (iTerm2's): ``ESC ] 9 ; text BEL``, one text, no title. iTerm2, WezTerm and Ghostty
  show it. Some terminals read ``9;<digits>;`` as a control channel (progress reports),
  so a text starting with digits and a semicolon is given a leading space;
- **OSC 777** (rxvt-unicode's ``notify`` extension): ``ESC ] 777 ; notify ; title ; body BEL``.
  urxvt with its notify extension, foot, WezTerm, Ghostty, and VTE terminals with Fedora's patch
  (plain VTE reads and ignores it). Neither field may hold a ``;``: they are replaced by ``,``;
- **OSC 99** (kitty's own): ``ESC ] 99 ; metadata ; payload ESC \\``, title and body in two
  chunks of one notification id, here base64-encoded (``e=1``) so any text is safe, with an
  urgency. kitty and foot.

Inside tmux a sequence reaches the outer terminal only wrapped in tmux's DCS passthrough
(:func:`tmux_wrap`) and only when ``allow-passthrough`` is on; the UI checks that. Every text
is stripped of control characters (an ESC or BEL inside would end the sequence early and let the
rest reach the screen) and cut to :data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from live2d_tui.config import DesktopNotify

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"

MAX_TEXT = 240
"""Characters of a title or body (a notification shows a line or two; sequences stay small)."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_PROGRESS_LIKE = re.compile(r"^\d+;")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` on one line: control characters become spaces, runs of spaces one, cut to
    ``limit`` characters (with an ellipsis)."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def osc9(title: str, body: str) -> str:
    """OSC 9: ``title: body`` as the one text."""
    text = clean(f"{title}: {body}" if title else body)
    if _PROGRESS_LIKE.match(text):
        text = " " + text
    return f"{ESC}]9;{text}{BEL}"


def osc777(title: str, body: str) -> str:
    """OSC 777 ``notify`` with a title and a body (``;`` replaced: it separates the fields)."""
    return f"{ESC}]777;notify;{clean(title).replace(';', ',')};{clean(body).replace(';', ',')}{BEL}"


def osc99(title: str, body: str, *, ident: str, urgency: int = 1) -> list[str]:
    """kitty's OSC 99: the title chunk, then the body chunk that completes notification
    ``ident``; both base64-encoded.

    Args:
        title: The notification's title.
        body: Its body.
        ident: Letters, digits, ``-``, ``_``, ``+`` and ``.`` only (others are removed).
        urgency: 0 low, 1 normal, 2 critical.
    """
    ident = re.sub(r"[^A-Za-z0-9_+.\-]", "", ident) or "live2d"
    level = min(2, max(0, urgency))

    def b64(text: str) -> str:
        return base64.b64encode(clean(text).encode("utf-8")).decode("ascii")

    return [
        f"{ESC}]99;i={ident}:d=0:e=1:u={level}:p=title;{b64(title)}{ST}",
        f"{ESC}]99;i={ident}:d=1:e=1:u={level}:p=body;{b64(body)}{ST}",
    ]


def tmux_wrap(sequence: str) -> str:
    """``sequence`` in tmux's passthrough: ``ESC P tmux ;`` … ``ESC \\`` with every ESC doubled."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ST}"


def notification(
    protocol: DesktopNotify,
    title: str,
    body: str,
    *,
    ident: str = "live2d",
    urgency: int = 1,
    in_tmux: bool = False,
) -> str:
    """The sequence(s) that show one notification with ``protocol`` ('' for off or auto).

    Args:
        protocol: osc9, osc777 or osc99 (resolve ``auto`` first with :func:`choose_protocol`).
        title: A short title.
        body: The one-line text.
        ident: An id for OSC 99 (a new one per alert keeps them apart).
        urgency: 0 low, 1 normal, 2 critical (OSC 99 only).
        in_tmux: Wrap each sequence in tmux's passthrough.
    """
    if protocol is DesktopNotify.OSC9:
        sequences = [osc9(title, body)]
    elif protocol is DesktopNotify.OSC777:
        sequences = [osc777(title, body)]
    elif protocol is DesktopNotify.OSC99:
        sequences = osc99(title, body, ident=ident, urgency=urgency)
    else:
        return ""
    return "".join(tmux_wrap(s) if in_tmux else s for s in sequences)


def choose_protocol(env: Mapping[str, str], outer_term: str | None = None) -> DesktopNotify:
    """The protocol of the terminal we run in, when it is known to show notifications; ``OFF``
    for any other (an unknown terminal may print an unknown sequence).

    Args:
        env: The environment (``TERM``, ``TERM_PROGRAM``, ``LC_TERMINAL``, ``KITTY_WINDOW_ID``,
            ``WEZTERM_PANE``, ``VTE_VERSION``…).
        outer_term: Inside tmux, the ``TERM`` of the terminal attached to it
            (``#{client_termname}``), since tmux replaces ``TERM`` and ``TERM_PROGRAM``.
    """
    term = (outer_term or env.get("TERM", "")).lower()
    program = env.get("TERM_PROGRAM", "").lower()
    lc_terminal = env.get("LC_TERMINAL", "").lower()
    if "kitty" in term or env.get("KITTY_WINDOW_ID"):
        return DesktopNotify.OSC99
    if term.startswith("foot"):
        return DesktopNotify.OSC99
    if program == "wezterm" or env.get("WEZTERM_PANE") or "wezterm" in term:
        return DesktopNotify.OSC777
    if program == "iterm.app" or lc_terminal == "iterm2":
        return DesktopNotify.OSC9
    if program == "ghostty" or "ghostty" in term:
        return DesktopNotify.OSC9
    if term.startswith("rxvt-unicode"):
        return DesktopNotify.OSC777
    return DesktopNotify.OFF
