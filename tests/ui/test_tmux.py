"""The real app in a real terminal: `live2d open` inside tmux, driven with send-keys and read
with capture-pane (a private tmux server per test, killed at the end)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from live2d_tui.supervisor.lock import OutputLock

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
    pytest.mark.slow,  # a real terminal, a real process: ~30 s
]

REPO = Path(__file__).resolve().parents[2]


class Tmux:
    """A private tmux server (its own socket) with one 160×48 session."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, check=check
        )

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ui", check=False).stdout

    def alive(self) -> bool:
        return self.run("has-session", "-t", "ui", check=False).returncode == 0

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never matched; last screen:\n{screen}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(Path("/tmp") / f"live2d-test-{uuid.uuid4().hex[:8]}")
    yield server
    server.run("kill-server", check=False)
    server.socket.unlink(missing_ok=True)


def test_app_in_tmux(tmux: Tmux, session_copy: Path, tmp_path: Path) -> None:
    env_home = tmp_path / "home"
    command = [
        "env",
        "-u",  # pytest's COLUMNS/LINES would override the pane's real size
        "COLUMNS",
        "-u",
        "LINES",
        f"LIVE2D_HOME={env_home}",
        "TERM=xterm-256color",
        sys.executable,
        "-m",
        "live2d_tui",
        "open",
        str(session_copy),
        "--engine",
        "builtin",
        "--interval",
        "3600",
        "--images",
        "halfcell",
    ]
    tmux.run("new-session", "-d", "-s", "ui", "-x", "160", "-y", "48", "-c", str(REPO), *command)
    tmux.wait_for(lambda s: "Live 2D Classification" in s)
    # a detached session starts at 80×24: growing it also exercises the redraw on resize
    tmux.run("resize-window", "-t", "ui", "-x", "160", "-y", "48")
    screen = tmux.wait_for(lambda s: "#6 " in s and "page 1/1" in s)
    assert "Start Job Now" in screen and "Cycle " in screen
    tmux.run("send-keys", "-t", "ui", "o")
    tmux.wait_for(lambda s: "by member count" in s)
    tmux.run("send-keys", "-t", "ui", "Enter")
    tmux.wait_for(lambda s: "members" in s and "of 6" in s)
    tmux.run("send-keys", "-t", "ui", "Escape")
    tmux.wait_for(lambda s: "Live 2D Classification" in s)
    tmux.run("send-keys", "-t", "ui", "2")
    tmux.wait_for(lambda s: "No cycle running" in s)
    tmux.run("send-keys", "-t", "ui", "?")
    tmux.wait_for(lambda s: "Keys (Esc closes)" in s)
    tmux.run("send-keys", "-t", "ui", "Escape")
    tmux.wait_for(lambda s: "Keys (Esc closes)" not in s)
    tmux.run("send-keys", "-t", "ui", "q")
    deadline = time.monotonic() + 30
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive(), tmux.capture()
    # quitting released the output folder's lock: another supervisor may take it now
    lock = OutputLock(session_copy / "classification")
    lock.acquire()
    lock.release()
    # `live2d open` points the last-session pointer at the session it opened
    assert (env_home / "last_session.json").exists()


def test_demo_in_tmux(tmux: Tmux, tmp_path: Path) -> None:
    """`live2d demo` shows classes from a live simulated session and leaves the user's
    last-session pointer alone."""
    home = tmp_path / "home"
    home.mkdir()
    pointer = home / "last_session.json"
    pointer.write_text('{"warp_folder": "/data/mine", "output_folder": "/data/mine/out"}')
    folder = tmp_path / "demo"
    command = [
        "env", "-u", "COLUMNS", "-u", "LINES", f"LIVE2D_HOME={home}", "TERM=xterm-256color",
        sys.executable, "-m", "live2d_tui", "demo", "--folder", str(folder),
        "--rate", "0.3", "--micrographs", "40", "--images", "halfcell",
    ]  # fmt: skip
    tmux.run("new-session", "-d", "-s", "ui", "-x", "160", "-y", "48", "-c", str(REPO), *command)
    tmux.wait_for(lambda s: "Waiting for new particles" in s or "Running" in s, timeout=120)
    tmux.wait_for(lambda s: "Cycle " in s and "#1 " in s, timeout=240)
    tmux.run("send-keys", "-t", "ui", "q")
    screen = tmux.wait_for(lambda s: "Keep running" in s or not tmux.alive(), timeout=30)
    if "Keep running" in screen:
        tmux.run("send-keys", "-t", "ui", "a")
    deadline = time.monotonic() + 60
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tmux.alive()
    assert pointer.read_text() == '{"warp_folder": "/data/mine", "output_folder": "/data/mine/out"}'
    assert (folder / "warp_session" / "classification" / "cycle_0.mrc").exists()


@pytest.mark.parametrize("how", ["kill-session", "SIGTERM"])
def test_demo_removes_its_folder_when_ended(tmux: Tmux, tmp_path: Path, how: str) -> None:
    """`tmux kill-session` (SIGHUP, with the terminal gone) or SIGTERM during `live2d demo`:
    the process ends and its temporary folder goes with it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    command = [
        "env", "-u", "COLUMNS", "-u", "LINES", f"LIVE2D_HOME={tmp_path / 'home'}",
        f"TMPDIR={temp}", "TERM=xterm-256color",
        sys.executable, "-m", "live2d_tui", "demo", "--rate", "0.3", "--images", "halfcell",
    ]  # fmt: skip
    tmux.run("new-session", "-d", "-s", "ui", "-x", "160", "-y", "48", "-c", str(REPO), *command)
    pid = int(tmux.run("display", "-p", "-t", "ui", "#{pane_pid}").stdout.strip())
    tmux.wait_for(lambda s: "Live 2D Classification" in s and "Particles " in s, timeout=120)
    assert [p.name.startswith("live2d-demo-") for p in temp.iterdir()] == [True]
    if how == "kill-session":
        tmux.run("kill-session", "-t", "ui")
    else:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert list(temp.iterdir()) == []


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
