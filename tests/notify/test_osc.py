"""The desktop-notification escape sequences: well-formed, safe for any text, tmux-wrapped."""

from __future__ import annotations

import base64
import re

from hypothesis import given
from hypothesis import strategies as st

from live2d_tui.config import DesktopNotify
from live2d_tui.notify.osc import (
    MAX_TEXT,
    choose_protocol,
    clean,
    notification,
    osc9,
    osc99,
    osc777,
    tmux_wrap,
)

OSC_BEL = re.compile(r"^\x1b\](9|777);([^\x00-\x1f\x7f-\x9f]*)\x07$")
OSC_ST = re.compile(r"^\x1b\]99;([A-Za-z0-9=:._+\-]*);([A-Za-z0-9+/=]*)\x1b\\$")


def test_osc9_and_osc777_forms() -> None:
    assert osc9("live2d", "Warp has stalled") == "\x1b]9;live2d: Warp has stalled\x07"
    assert osc777("live2d; cryo", "a;b") == "\x1b]777;notify;live2d, cryo;a,b\x07"
    # "9;4;…" would be a progress report to ConEmu, Windows Terminal and kitty
    assert osc9("", "4;50 done") == "\x1b]9; 4;50 done\x07"


def test_osc99_is_two_chunks_of_one_notification() -> None:
    title, body = osc99("live2d", "Disk nearly full", ident="alert 7!", urgency=2)
    t, b = OSC_ST.match(title), OSC_ST.match(body)
    assert t and b
    assert t.group(1) == "i=alert7:d=0:e=1:u=2:p=title"
    assert b.group(1) == "i=alert7:d=1:e=1:u=2:p=body"
    assert base64.b64decode(b.group(2)).decode() == "Disk nearly full"


@given(st.text(max_size=400), st.text(max_size=400))
def test_any_text_gives_well_formed_sequences(title: str, body: str) -> None:
    for sequence in (osc9(title, body), osc777(title, body)):
        match = OSC_BEL.match(sequence)
        assert match, repr(sequence)
        assert len(match.group(2)) <= 2 * MAX_TEXT + 20
    if "777" in osc777(title, body):
        fields = osc777(title, body)[len("\x1b]777;") : -1].split(";")
        assert len(fields) == 3 and fields[0] == "notify"
    for chunk in osc99(title, body, ident="x"):
        assert OSC_ST.match(chunk), repr(chunk)
    assert "\x1b" not in clean(title) and "\x07" not in clean(body)


def test_tmux_passthrough_doubles_every_escape() -> None:
    inner = osc99("t", "b", ident="1")[0]
    wrapped = tmux_wrap(inner)
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]99;") and wrapped.endswith("\x1b\x1b\\\x1b\\")
    body = wrapped[len("\x1bPtmux;") : -2]
    assert body.replace("\x1b\x1b", "").count("\x1b") == 0
    both = notification(DesktopNotify.OSC99, "t", "b", ident="1", in_tmux=True)
    assert both.count("\x1bPtmux;") == 2  # one passthrough per sequence
    assert notification(DesktopNotify.OFF, "t", "b") == ""
    assert notification(DesktopNotify.AUTO, "t", "b") == ""


def test_choose_protocol_by_terminal() -> None:
    assert choose_protocol({"TERM": "xterm-kitty"}) is DesktopNotify.OSC99
    assert choose_protocol({"TERM": "foot"}) is DesktopNotify.OSC99
    assert choose_protocol({"TERM_PROGRAM": "WezTerm"}) is DesktopNotify.OSC777
    assert choose_protocol({"TERM_PROGRAM": "iTerm.app"}) is DesktopNotify.OSC9
    assert choose_protocol({"TERM": "xterm-ghostty"}) is DesktopNotify.OSC9
    assert choose_protocol({"TERM": "rxvt-unicode-256color"}) is DesktopNotify.OSC777
    assert choose_protocol({"TERM": "xterm-256color"}) is DesktopNotify.OFF
    assert choose_protocol({"TERM": "xterm-256color", "VTE_VERSION": "7600"}) is DesktopNotify.OFF
    # inside tmux: the attached client's TERM, and what ssh and tmux carry through
    tmux = {"TERM": "tmux-256color", "TERM_PROGRAM": "tmux"}
    assert choose_protocol(tmux, outer_term="xterm-kitty") is DesktopNotify.OSC99
    assert (
        choose_protocol({**tmux, "LC_TERMINAL": "iTerm2"}, "xterm-256color") is DesktopNotify.OSC9
    )
    assert choose_protocol(tmux, outer_term="xterm-256color") is DesktopNotify.OFF
