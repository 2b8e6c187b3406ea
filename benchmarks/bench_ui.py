"""UI benchmarks (issue 7), measured through a real terminal: the real ``live2d open`` in tmux.

    .venv/bin/python benchmarks/bench_ui.py latency [--presses 200] [--micrographs 40]
    .venv/bin/python benchmarks/bench_ui.py memory  [--particles 1000000]

latency: a simulated session, a 100-class ab initio job started with ``g`` (the engine runs at
    the configured ``niceness``, 10 by default). While cycles run:
    1. keypress → repaint: ``send-keys Right/Left`` (cursor moves between two classes), then
       ``capture-pane -e`` until the label of the class the key moves to is shown selected
       (reverse video), not merely until something on the pane changed (a progress bar or log
       line changing first would count as the repaint); p50/p95 over ``--presses`` presses taken
       while the status reads Running, including presses made while a new cycle arrives.
       Includes two tmux client round trips (measured separately, ``tmux overhead``).
    2. new cycle → grid on screen: from the mtime of ``cycle_<N>.mrc`` (written by merge2d) to
       the first capture showing ``Cycle N`` in the header *and* new, non-empty image cells;
       100 classes. Every capture (also those taken while waiting for a repaint) is checked,
       so the figure is not rounded up to the press loop's period.
memory: peak RSS (VmHWM) of the UI process (app + supervisor + ingest share it) on a session of
    ``--particles`` particles: the output folder is built synthetically as in
    ``bench_ingest.py`` (sparse stack, real stars and ledger), Warp's star lists them all, then
    the app opens it and the supervisor's ingest passes run over it for a while.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANSI = re.compile(r"\x1b\[[0-9;:]*[A-Za-z]")
HEADER = re.compile(r"Cycle (\d+) · ")
SGR_OR_TEXT = re.compile(r"\x1b\[([0-9;:]*)m|\x1b\[[0-9;:]*[A-Za-z]|([^\x1b]+)")
LABEL = re.compile(r"#(\d+) ")


class Tmux:
    """A private tmux server running the app in a 160×48 pane."""

    def __init__(self) -> None:
        self.socket = Path("/tmp") / f"live2d-bench-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-S", str(self.socket), *args], capture_output=True, text=True, check=False
        )
        return out.stdout

    def start(self, argv: list[str], home: Path) -> None:
        env = ["env", "-u", "COLUMNS", "-u", "LINES", f"LIVE2D_HOME={home}"]
        self.run("new-session", "-d", "-s", "ui", "-x", "160", "-y", "48", "-c", str(ROOT),
                 *env, *argv)  # fmt: skip

    def capture(self, escapes: bool = True) -> str:
        return self.run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "ui")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "ui", *keys)

    def pid(self) -> int:
        return int(self.run("display", "-p", "-t", "ui", "#{pane_pid}").strip())

    def wait_text(self, text: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = ANSI.sub("", self.capture())
            if text in screen:
                return screen
            time.sleep(0.05)
        raise TimeoutError(f"{text!r} never appeared:\n{ANSI.sub('', self.capture())}")

    def kill(self) -> None:
        self.run("kill-server")
        self.socket.unlink(missing_ok=True)


def app_argv(warp: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "live2d_tui", "open", str(warp), "--engine", "builtin",
            "--images", "halfcell", *extra]  # fmt: skip


def selected_class(screen: str) -> int | None:
    """The class whose grid label is drawn in reverse video (the cursor), from ``capture -e``."""
    reverse = False
    for match in SGR_OR_TEXT.finditer(screen):
        params, text = match.group(1), match.group(2)
        if params is not None:
            for p in params.split(";") if params else ["0"]:
                if p in ("", "0", "27"):
                    reverse = False
                elif p == "7":
                    reverse = True
        elif text and reverse:
            label = LABEL.match(text)
            if label:
                return int(label.group(1))
    return None


def image_rows(screen: str) -> str:
    return "\n".join(line for line in screen.splitlines() if "▀" in line)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency(args: argparse.Namespace) -> None:
    from live2d_tui.simulate import SimulationOptions, simulate_session

    base = Path(tempfile.mkdtemp(prefix="live2d-bench-ui-"))
    warp = base / "warp"
    simulate_session(warp, SimulationOptions(micrographs=args.micrographs, box=64, seed=5))
    sets = ["class_number=100", "particles_per_class=20", "run_count_startup=15",
            "run_count_refine=5", "particle_count_initial=100", "high_res_initial=30",
            "high_res_final=12"]  # fmt: skip
    argv = app_argv(warp, "--interval", "2", *[a for s in sets for a in ("--set", s)])
    tmux = Tmux()
    try:
        tmux.start(argv, base / "home")
        tmux.wait_text(" active", timeout=300)
        time.sleep(8)  # a few 2-s ingest passes: every stack of the simulation is in
        tmux.keys("g")
        tmux.wait_text("Status: Running")
        out = warp / "classification"
        seen: dict[int, float] = {}
        grid_ms: list[float] = []
        last_images = image_rows(tmux.capture())
        pending: int | None = None

        def watch(screen: str) -> None:
            nonlocal last_images, pending
            plain = ANSI.sub("", screen)
            match = HEADER.search(plain)
            if match:
                number = int(match.group(1))
                if number not in seen and pending != number:
                    pending = number
            rows = image_rows(screen)
            # non-empty: a frame between removing the old strips and showing the new is no grid
            if pending is not None and rows and rows != last_images and pending not in seen:
                now = time.time()
                seen[pending] = now
                mrc = out / f"cycle_{pending}.mrc"
                if mrc.exists():
                    grid_ms.append((now - mrc.stat().st_mtime) * 1000)
                pending = None
            last_images = rows

        overhead: list[float] = []
        for _ in range(20):
            t0 = time.perf_counter()
            tmux.run("display", "-p", "x")
            tmux.capture()
            overhead.append((time.perf_counter() - t0) * 1000)
        samples: list[float] = []
        missed = 0
        deadline = time.monotonic() + 1800
        while len(samples) < args.presses and time.monotonic() < deadline:
            before = tmux.capture()
            watch(before)
            status = ANSI.sub("", before)
            if "Status: Running" not in status:
                if "Status: Waiting" in status or "Status: Ready" in status:
                    tmux.keys("g")  # the job ended: start another one, cycles must keep running
                time.sleep(0.5)
                continue
            current = selected_class(before)
            if current is None:  # no grid yet (or a dialog over it): nothing to move
                time.sleep(0.1)
                continue
            key = "Right" if current % 2 else "Left"  # between two classes: #1 ↔ #2
            wanted = current + (1 if key == "Right" else -1)
            t0 = time.perf_counter()
            tmux.keys(key)
            moved = False
            while not moved and time.perf_counter() - t0 < 5:
                screen = tmux.capture()
                watch(screen)
                moved = selected_class(screen) == wanted
            dt = (time.perf_counter() - t0) * 1000
            if moved:
                samples.append(dt)
            else:
                missed += 1
            pause = time.perf_counter() + 0.03
            while time.perf_counter() < pause:
                watch(tmux.capture())
        # let a few more cycles arrive for the new-cycle figure
        end = time.monotonic() + 120
        while len(grid_ms) < 5 and time.monotonic() < end:
            watch(tmux.capture())
            time.sleep(0.005)
        tmux_ms = statistics.median(overhead)
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
        p50, p95 = percentile(samples, 50), percentile(samples, 95)
        print(f"tmux overhead (display + capture round trips): p50 {tmux_ms:.1f} ms")
        print(
            f"keypress → repaint over {len(samples)} presses while a cycle ran: "
            f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(samples):.1f} ms"
            + (f" ({missed} presses not repainted within 5 s)" if missed else "")
        )
        if grid_ms:
            mid, worst = statistics.median(grid_ms), max(grid_ms)
            print(
                f"new cycle files → grid on screen (100 classes), {len(grid_ms)} cycles: "
                f"median {mid:.0f} ms, max {worst:.0f} ms"
            )
        tmux.keys("q")
        time.sleep(0.5)
        tmux.keys("a")  # quit dialog: abort now
        time.sleep(3)
    finally:
        tmux.kill()
        shutil.rmtree(base, ignore_errors=True)


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory(args: argparse.Namespace) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_ingest", ROOT / "benchmarks" / "bench_ingest.py"
    )
    assert spec and spec.loader
    bi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bi)
    base = Path(tempfile.mkdtemp(prefix="live2d-bench-mem-"))
    warp, out = base / "warp", base / "warp" / "classification"
    box = 64
    t0 = time.perf_counter()
    bi.make_warp(warp, box)
    bi.synthetic_present(warp, out, args.particles, box)
    mics = list(range(args.particles // bi.PER_MIC))
    (warp / f"goodparticles_{bi.MODEL}.star").write_bytes(bi.star_bytes(mics, bi.PER_MIC))
    print(f"built a {args.particles:,}-particle session in {time.perf_counter() - t0:.0f} s")
    tmux = Tmux()
    try:
        tmux.start(app_argv(warp, "--interval", "5"), base / "home")
        tmux.wait_text("Live 2D Classification", timeout=300)
        pid = tmux.pid()
        tmux.wait_text(f"{args.particles:,} active", timeout=1800)
        time.sleep(10)  # a few more ingest passes and repaints
        rss, peak = vm_kib(pid, "VmRSS") / 1024, vm_kib(pid, "VmHWM") / 1024
        print(
            f"UI process (app + supervisor + ingest) with {args.particles:,} particles: "
            f"RSS {rss:.0f} MB, peak {peak:.0f} MB"
        )
        tmux.keys("q")
        time.sleep(3)
    finally:
        tmux.kill()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="UI benchmarks through tmux")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--presses", type=int, default=200)
    p.add_argument("--micrographs", type=int, default=40)
    m = sub.add_parser("memory")
    m.add_argument("--particles", type=int, default=1_000_000)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is required")
    {"latency": latency, "memory": memory}[args.what](args)


if __name__ == "__main__":
    main()
