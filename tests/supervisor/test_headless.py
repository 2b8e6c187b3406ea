"""``live2d run`` end to end: a simulated live session, signals, exit status, a full disk."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session
from live2d_tui.supervisor.state import STATE_NAME

from .conftest import engine_processes
from .headless import Headless, check_history, load_json_state, write_config

SLOW = pytest.mark.slow


@pytest.mark.slow
def test_live_session_runs_ab_initio_then_seeded_jobs(tmp_path: Path) -> None:
    """Simulator in live mode while ``live2d run --auto`` classifies with the built-in engine.

    The simulated microscope pauses after 5 movies until the first job has finished, so the
    second job's trigger (``particle_count_update`` new particles) does not depend on speed.
    """
    warp = tmp_path / "warp"
    stop = threading.Event()
    first_job_done = threading.Event()

    def pause(event: SimEvent) -> None:
        if event.kind == "movie_done" and event.micrograph == 4:
            first_job_done.wait(240)

    opts = SimulationOptions(micrographs=10, particles_per_micrograph=40, box=64, seed=3, rate=0.1)
    sim = threading.Thread(
        target=simulate_session, args=(warp, opts), kwargs={"stop": stop, "on_event": pause}
    )
    sim.start()
    run: Headless | None = None
    try:
        while not (warp / "previous.settings").exists():
            threading.Event().wait(0.05)
        config = write_config(tmp_path)
        run = Headless([str(warp), "--auto", "--config", str(config)])
        run.wait_for("Ab Initio job finished", timeout=240)
        first_job_done.set()
        run.wait_for("Seeded Startup job finished", timeout=240)
        run.signal(signal.SIGINT)
        assert run.finish(60) == 0
    finally:
        first_job_done.set()
        stop.set()
        sim.join(60)
        if run is not None and run.proc.poll() is None:
            run.kill()
    out = warp / "classification"
    cycles = check_history(out)
    kinds = [c["settings"]["classification_type"] for c in cycles]
    assert cycles[0]["block_type"] == "random_seed" and kinds[:4] == ["abinit"] * 4
    assert kinds[4:7] == ["seeded"] * 3, kinds  # the second job started from the first's classes
    assert [c["block_type"] for c in cycles].count("random_seed") == 1
    # the second job waited for particle_count_update new particles after the first's last input
    assert cycles[4]["input_rows"] - cycles[3]["input_rows"] >= 60
    text = run.text() if run else ""
    assert "[status] Waiting for new particles" in text
    assert engine_processes(out) == []


def test_once_exit_status_and_sigterm(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=1)
    config = write_config(tmp_path)
    ok = Headless([str(warp), "--once", "--config", str(config), "--set", "class_number=3"])
    assert ok.finish(150) == 0, ok.text()
    cycles = check_history(warp / "classification")
    assert len(cycles) == 4 and cycles[0]["settings"]["class_number"] == 3
    assert load_json_state(warp / "classification")["settings"]["classification_type"] == "seeded"
    # a second --once on the same folder while one runs is refused with the holder's pid
    busy = Headless([str(warp), "--once", "--config", str(config)])
    busy.wait_for(" started (", timeout=60)
    refused = subprocess.run(
        [*busy.proc.args[:3], "run", str(warp), "--once", "--config", str(config)],  # type: ignore[index]
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and f"pid {busy.proc.pid}" in refused.stderr
    busy.signal(signal.SIGTERM)
    assert busy.finish(60) == 128 + signal.SIGTERM
    assert "aborting now" in busy.text()
    check_history(warp / "classification")
    assert engine_processes(warp / "classification") == []
    state = load_json_state(warp / "classification")
    assert state["job"] is None and state["job_status"] == "stopped"


@pytest.mark.parametrize(
    "umask", [pytest.param(0o002, id="umask002"), pytest.param(0o022, id="umask022", marks=SLOW)]
)
def test_every_file_written_follows_the_umask(
    tmp_path: Path,
    make_warp_session,  # type: ignore[no-untyped-def]
    umask: int,
) -> None:
    # colleagues and warp_to_cistem read the results: cycle files, stack, stars, state, lock and
    # log (atomic writes included) get the mode the umask gives a new file, never 0600
    warp = make_warp_session(micrographs=3, particles_per_micrograph=40, box=64, seed=1)
    config = write_config(tmp_path, pool_size=1)
    run = Headless([str(warp), "--once", "--config", str(config)], umask=umask)
    assert run.finish(150) == 0, run.text()
    out = warp / "classification"
    expected = 0o666 & ~umask
    modes = {
        str(path.relative_to(out)): stat.S_IMODE(path.stat().st_mode)
        for path in out.rglob("*")
        if path.is_file()
    }
    for name in (
        "cycle_1.mrc",
        "cycle_1.star",
        "combined_stack.mrcs",
        "combined_stack.star",
        "combined_stack_relion.star",
        "latest_run.json",
        "ledger.sqlite",
        "live2d.log",
        ".live2d.lock",
    ):
        assert name in modes, sorted(modes)
    wrong = {name: oct(mode) for name, mode in modes.items() if mode != expected}
    assert not wrong, f"expected {oct(expected)}: {wrong}"


def test_a_closed_stdout_ends_the_output_quietly(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    # live2d run … | head -3: the reader goes away after three lines; the job carries on to its
    # end (exit 0), without a BrokenPipeError traceback per event on stderr
    warp = make_warp_session(micrographs=3, particles_per_micrograph=40, box=64, seed=1)
    config = write_config(tmp_path, pool_size=1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "live2d_tui", "run", str(warp), "--once", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    head = [proc.stdout.readline() for _ in range(3)]
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        assert proc.wait(150) == 0, err
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert all(line.endswith("\n") for line in head), head
    assert err == ""
    cycles = check_history(warp / "classification")
    assert len(cycles) == 4  # the job ran to its end


@pytest.mark.parametrize("interrupted", [False, True], ids=["waiting", "mid-job"])
def test_once_after_a_saved_auto_runs_one_job(
    tmp_path: Path,
    make_warp_session,  # type: ignore[no-untyped-def]
    interrupted: bool,
) -> None:
    # an earlier --auto run was killed (waiting for particles, or in the middle of a job): the
    # saved state has automatic jobs on. --once wins for its run: one job (or the interrupted
    # one, finished), exit 0, and no automatic job started behind it
    scenario = {"particles_per_micrograph": 40, "box": 64, "seed": 1}
    warp = make_warp_session(micrographs=4, **scenario)
    config = write_config(tmp_path)
    auto = Headless([str(warp), "--auto", "--config", str(config)])
    try:
        auto.wait_for("Cycle 1 started" if interrupted else " job finished", timeout=150)
    finally:
        auto.kill()  # killed as a crash would, and never left running by a failed wait
    if not interrupted:
        # Warp went on meanwhile: enough new particles that the restored automatic mode would
        # start a job at the first look, while --once starts its own
        simulate_session(warp, SimulationOptions(micrographs=8, **scenario))  # type: ignore[arg-type]
    out = warp / "classification"
    before = len(load_json_state(out)["cycles"])  # type: ignore[arg-type]
    assert load_json_state(out)["automatic"] is True
    once = Headless([str(warp), "--once", "--config", str(config)])
    assert once.finish(150) == 0, once.text()
    assert "cannot start a job while a job is running" not in once.text()
    cycles = check_history(out)
    state = load_json_state(out)
    assert state["automatic"] is False and state["job"] is None
    if interrupted:  # the interrupted job was finished: seed + 2 startup + 1 refinement
        assert len(cycles) == 4, [c["number"] for c in cycles]
    else:  # one more job from the first one's classes (seeded: 2 startup + 1 refinement)
        assert len(cycles) == before + 3, [c["number"] for c in cycles]
    finished = [line for line in once.text().splitlines() if line.endswith(" job finished")]
    assert len(finished) == 1, once.text()
    assert engine_processes(out) == []


def test_second_sigint_aborts(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=1)
    config = write_config(tmp_path)
    run = Headless([str(warp), "--auto", "--config", str(config)])
    run.wait_for("Cycle 1 started", timeout=120)
    run.signal(signal.SIGINT)
    run.wait_for("stopping after the running cycle")
    run.signal(signal.SIGINT)
    assert run.finish(60) == 128 + signal.SIGINT
    cycles = check_history(warp / "classification")
    assert [c["number"] for c in cycles] == [0]
    assert engine_processes(warp / "classification") == []


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def _fill(path: Path) -> None:
    """Write zeros until the file system is full (down to 512-byte writes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        size = 1 << 20
        while size >= 512:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 4
    finally:
        os.close(fd)


@pytest.mark.slow
def test_full_disk_during_a_cycle_keeps_earlier_results(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    warp = make_warp_session(micrographs=4, particles_per_micrograph=40, box=64, seed=1)
    out = tmp_path / "small_disk"
    if not _mount_tmpfs(out, "24m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        config = write_config(tmp_path)
        first = Headless([str(warp), "--once", "--out", str(out), "--config", str(config)])
        assert first.finish(150) == 0, first.text()
        before = check_history(out)
        saved = (out / STATE_NAME).read_text()
        second = Headless([str(warp), "--once", "--out", str(out), "--config", str(config)])
        second.wait_for("Cycle 4 started", timeout=120)
        _fill(out / "filler.bin")  # the disk fills up while cycle 4 runs
        code = second.finish(150)
        text = second.text()
        assert code == 1, text
        assert "full" in text.lower(), text
        assert "intact" in text, text
        # earlier results are intact, and the state is either the old one or a valid newer one
        after = check_history(out)
        assert after[: len(before)] == before
        assert (out / STATE_NAME).read_text() == saved or load_json_state(out)["cycles"]
        assert engine_processes(out) == []
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


def test_alerts_are_printed_and_sent_to_the_hook(tmp_path: Path, make_warp_session) -> None:  # type: ignore[no-untyped-def]
    """A finished session under ``--auto``: Warp writes nothing more, so it has stalled."""
    import json
    import sys

    from live2d_tui.config import Config, render_toml

    from .conftest import TINY_JOB, tiny_server

    warp = make_warp_session(micrographs=2, particles_per_micrograph=10, box=32, diameter=60.0)
    got = tmp_path / "hook.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys\nopen({str(got)!r}, 'a').write(sys.stdin.read())\n")
    server = tiny_server(stall_minutes=0.02, alert_hook=[sys.executable, str(hook)])
    config = tmp_path / "config.toml"
    no_jobs = TINY_JOB.with_changes(particle_count_initial=10_000_000)
    config.write_text(render_toml(Config(server=server, job=no_jobs)))
    run = Headless([str(warp), "--auto", "--config", str(config)])
    try:
        run.wait_for("ALERT: Warp has stalled: no new movie for", timeout=60)
        for _ in range(200):
            if got.exists() and got.read_text().endswith("\n"):
                break
            threading.Event().wait(0.05)
        run.signal(signal.SIGINT)
        assert run.finish(60) == 0
    finally:
        if run.proc.poll() is None:
            run.kill()
    alert = json.loads(got.read_text().splitlines()[0])
    assert alert["event"] == "raised" and alert["kind"] == "warp_stalled"
    assert alert["output_folder"] == str(warp / "classification")
    assert run.text().count("ALERT: ") == 1  # printed once, as its log line


def test_the_streaming_state_is_printed_on_changes_and_in_steps_of_a_tenth_batch() -> None:
    import io
    import time

    from live2d_tui.commands.run import _Printer, format_event
    from live2d_tui.events import StreamState

    state = StreamState(
        cycle=7,
        updating=False,
        blocks=12,
        particles=5_400,
        waiting=130,
        batch=500,
        newest_ingested=time.time() - 200,
        pass_number=3,
        pass_done=4,
        dump_bytes=120_000_000,
        dump_budget_bytes=20_000_000_000,
        full_star_cycle=6,
    )
    line = format_event(state)
    assert line is not None
    assert line.startswith("[stream] classes of cycle 7: 5,400 particles in 12 blocks")
    assert "130 of 500 particles for the next update" in line
    assert "newest particle 3 min old" in line
    assert "revisit pass 3: 4/12 blocks" in line
    out = io.StringIO()
    printer = _Printer(out)
    printer(state)
    printer(replace(state, waiting=149))  # the same tenth of the batch: not printed
    printer(replace(state, waiting=150))
    printer(replace(state, updating=True))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "150 of 500" in lines[1] and "update running" in lines[2]
