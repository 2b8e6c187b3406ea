"""Helpers of the headless tests: run ``live2d run`` as a real subprocess and read its output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from live2d_tui.config import Config, render_toml
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.supervisor.state import STATE_NAME

from .conftest import TINY_JOB, tiny_server


def write_config(folder: Path, **server_changes: object) -> Path:
    path = folder / "live2d_test_config.toml"
    path.write_text(render_toml(Config(server=tiny_server(**server_changes), job=TINY_JOB)))
    return path


class Headless:
    """``live2d run`` in a subprocess; stdout collected by a thread."""

    def __init__(self, args: list[str], *, umask: int = -1) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "live2d_tui", "run", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            umask=umask,
        )
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self._lock:
                self.lines.append(line.rstrip("\n"))
        stream.close()

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 120.0, *, after: int = 0) -> int:
        """Index of the first line (from ``after``) containing ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for i in range(after, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not seen; output:\n{self.text()[-4000:]}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 120.0) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(10)
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._reader.join(10)


def load_json_state(out: Path) -> dict[str, object]:
    data = json.loads((out / STATE_NAME).read_text())
    assert isinstance(data, dict)
    return data


def check_history(out: Path) -> list[dict[str, object]]:
    """Every recorded cycle has intact files; star rows = particle_count = Σ members."""
    cycles = load_json_state(out)["cycles"]
    assert isinstance(cycles, list)
    numbers = [c["number"] for c in cycles]
    assert numbers == list(range(len(cycles))), numbers
    for c in cycles:
        rows = read_star(out / f"{c['name']}.star")
        assert len(rows) == c["particle_count"], c["name"]
        assert sum(c["particle_count_per_class"]) == len(rows), c["name"]
        assert len(c["particle_count_per_class"]) == c["settings"]["class_number"] + 1
        assert rows["position"].max() <= c["input_rows"]
        assert len(set(rows["position"].tolist())) == len(rows)
        assert (out / f"{c['name']}.mrc").stat().st_size > 1024
    return cycles
