"""Desktop notifications on the raw output of the real app in a pseudo-terminal.

``live2d open`` runs in a pty (80 × 24) on a finished session with automatic jobs turned on by
the key ``a`` and a tiny ``stall_minutes``, so "Warp has stalled" fires within seconds. Every byte
the app writes is collected: with notifications on, the alert's OSC sequence must be there once,
whole and well-formed; with them off, no notification sequence at all. Inside tmux (a stand-in
``tmux`` program answers the app's two questions) the sequence must come wrapped in tmux's
passthrough, and without ``allow-passthrough`` not at all.
"""

from __future__ import annotations

import base64
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from live2d_tui.config import Config, DesktopNotify, render_toml

from .ui_helpers import TEST_CONFIG

pytestmark = pytest.mark.slow  # real processes in a real terminal: ~10 s each

ANY_NOTIFICATION = re.compile(rb"\x1b\](?:9|777|99);")
OSC777 = re.compile(rb"\x1b\]777;notify;live2d;(Warp has stalled: [^\x00-\x1f\x7f]*)\x07")


class PtyApp:
    """``live2d open`` in a pseudo-terminal; every byte it writes is kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.master = master
        self.output = bytearray()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "live2d_tui", "open", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self.output += chunk

    def raw(self) -> bytes:
        with self._lock:
            return bytes(self.output)

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait_for(self, pattern: bytes, timeout: float = 60.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pattern in self.raw():
                return self.raw()
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never written; last bytes: {self.raw()[-2000:]!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.master)
        self._reader.join(5)


def start(tmp_path: Path, warp: Path, setting: DesktopNotify, env: dict[str, str]) -> PtyApp:
    server = TEST_CONFIG.server.with_changes(
        interval=0.2, stall_minutes=0.02, desktop_notifications=setting, images="halfcell"
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / f"config-{setting.value}.toml"
    no_jobs = TEST_CONFIG.job.with_changes(particle_count_initial=10_000_000)
    config.write_text(render_toml(Config(server=server, job=no_jobs)))
    base = {k: v for k, v in os.environ.items() if k not in {"TMUX", "TMUX_PANE"}}
    app = PtyApp(
        [str(warp), "--config", str(config), "--out", str(tmp_path / f"out-{setting.value}")],
        {**base, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24", **env},
    )
    app.wait_for(b"Automatic", timeout=60)  # the footer is drawn: the app is up
    time.sleep(1.0)
    app.send(b"a")  # automatic jobs on: the stall clock starts
    return app


@pytest.fixture
def warp(make_warp_session) -> Path:  # type: ignore[no-untyped-def]
    return make_warp_session(micrographs=2, particles_per_micrograph=10, box=32, diameter=60.0)  # type: ignore[no-any-return]


def test_osc777_is_sent_once_and_well_formed(tmp_path: Path, warp: Path) -> None:
    app = start(tmp_path, warp, DesktopNotify.OSC777, {})
    try:
        raw = app.wait_for(b"\x1b]777;notify;", timeout=60)
        time.sleep(1.0)
        raw = app.raw()
    finally:
        app.close()
    found = OSC777.findall(raw)
    assert len(found) == 1, raw[-3000:]
    assert found[0].startswith(b"Warp has stalled: no new movie for ")
    assert len(ANY_NOTIFICATION.findall(raw)) == 1  # nothing else, nothing torn


def test_nothing_is_sent_when_off(tmp_path: Path, warp: Path) -> None:
    app = start(tmp_path, warp, DesktopNotify.OFF, {})
    try:
        app.wait_for(b"Warp has stalled", timeout=60)  # the in-app notification
        time.sleep(1.0)
        raw = app.raw()
    finally:
        app.close()
    assert ANY_NOTIFICATION.search(raw) is None


def fake_tmux(folder: Path, passthrough: str) -> dict[str, str]:
    """A ``tmux`` on ``PATH`` answering the app's questions as a tmux in kitty would."""
    folder.mkdir()
    script = folder / "tmux"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$*" in\n'
        f'  *allow-passthrough*) echo "{passthrough}" ;;\n'
        '  *client_termname*) echo "xterm-kitty" ;;\n'
        '  *client_termfeatures*) echo "256,RGB,title" ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return {
        "PATH": f"{folder}:{os.environ['PATH']}",
        "TMUX": "/tmp/tmux-fake/default,1,0",
        "TMUX_PANE": "%0",
    }


def test_through_tmux_passthrough_only_when_allowed(tmp_path: Path, warp: Path) -> None:
    app = start(tmp_path, warp, DesktopNotify.AUTO, fake_tmux(tmp_path / "bin", "on"))
    try:
        raw = app.wait_for(b"\x1bPtmux;\x1b\x1b]99;", timeout=60)
        time.sleep(1.0)
        raw = app.raw()
    finally:
        app.close()
    # inside tmux's wrapper every ESC is doubled; it ends at the first single ESC + backslash
    wrapped = re.findall(rb"\x1bPtmux;((?:[^\x1b]|\x1b\x1b)*)\x1b\\", raw, re.S)
    inner = [w.replace(b"\x1b\x1b", b"\x1b") for w in wrapped if b"]99;" in w]
    assert len(inner) == 2  # the title chunk and the body chunk of one notification
    title = re.fullmatch(
        rb"\x1b\]99;i=([\w.+-]+):d=0:e=1:u=1:p=title;([A-Za-z0-9+/=]*)\x1b\\", inner[0]
    )
    body = re.fullmatch(
        rb"\x1b\]99;i=([\w.+-]+):d=1:e=1:u=1:p=body;([A-Za-z0-9+/=]*)\x1b\\", inner[1]
    )
    assert title and body and title.group(1) == body.group(1)
    assert base64.b64decode(body.group(2)).startswith(b"Warp has stalled")
    assert ANY_NOTIFICATION.search(raw.replace(b"\x1b\x1b", b"")) is None  # never unwrapped
    closed = start(
        tmp_path / "closed", warp, DesktopNotify.AUTO, fake_tmux(tmp_path / "bin2", "off")
    )
    try:
        closed.wait_for(b"Warp has stalled", timeout=60)
        time.sleep(1.0)
        raw = closed.raw()
    finally:
        closed.close()
    # (textual-image asks the outer terminal about its graphics through tmux: not a notification)
    assert ANY_NOTIFICATION.search(raw) is None  # neither wrapped (ESC ESC ] 99) nor bare
