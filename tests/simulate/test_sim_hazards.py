"""Every hazard switch produces what it claims; Warp 2 variant; live mode and stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.simulate import SimEvent, SimulationOptions, simulate_session
from live2d_tui.simulate.options import CHANGED_MODEL, DEFAULT_MODEL
from live2d_tui.simulate.truth import load_truth

from .test_sim_formats import column, read_warp_star

BASE = {"micrographs": 6, "particles_per_micrograph": 12, "box": 32, "diameter": 60.0, "seed": 5}


def good_path(folder: Path, model: str = DEFAULT_MODEL) -> Path:
    return folder / f"goodparticles_{model}.star"


def stacks_in(path: Path) -> list[str]:
    """Micrograph stacks named by a star, in table order (each once)."""
    labels, rows = read_warp_star(path)
    seen: list[str] = []
    for name in column(labels, rows, "rlnImageName"):
        stack = name.split("@")[1]
        if stack not in seen:
            seen.append(stack)
    return seen


def run(
    tmp_path: Path, on: Callable[[SimEvent], None] | None = None, **options: object
) -> tuple[Path, object]:
    folder = tmp_path / "session"
    summary = simulate_session(folder, SimulationOptions(**{**BASE, **options}), on_event=on)  # type: ignore[arg-type]
    return folder, summary


def test_vanishing_micrographs_appear_once_then_vanish(tmp_path: Path) -> None:
    snapshots: dict[int, list[str]] = {}

    def on(event: SimEvent) -> None:
        if event.kind == "movie_done":
            snapshots[event.micrograph] = stacks_in(good_path(tmp_path / "session"))

    folder, summary = run(tmp_path, on, vanishing=0.34)
    vanished = summary.vanished  # type: ignore[attr-defined]
    assert len(vanished) == 2
    final = stacks_in(good_path(folder))
    everything = stacks_in(folder / f"allparticles_{DEFAULT_MODEL}.star")
    assert len(everything) == 6
    for root in vanished:
        stack = f"particles/{root}_{DEFAULT_MODEL}.mrcs"
        index = everything.index(stack)
        assert stack in snapshots[index]  # a new movie starts unfiltered
        if index + 1 in snapshots:
            assert stack not in snapshots[index + 1]  # and is gone at the next rewrite
        assert stack not in final
        xml = ET.fromstring((folder / f"{root}.xml").read_bytes())
        assert float(xml.get("CTFResolutionEstimate", "0")) > 8.0  # fails ResolutionMax
        assert xml.get("UnselectFilter") == "False"  # Warp never persists the verdict
    assert len(final) == 4


def test_unselect_manual_set_later(tmp_path: Path) -> None:
    at_unselect: list[tuple[str, list[str]]] = []

    def on(event: SimEvent) -> None:
        if event.kind == "unselected":
            assert event.path is not None
            flag = ET.fromstring(event.path.read_bytes()).get("UnselectManual")
            at_unselect.append((str(flag), stacks_in(good_path(tmp_path / "session"))))

    folder, summary = run(tmp_path, on, unselect_later=0.25)
    (root,) = summary.unselected  # type: ignore[attr-defined]
    stack = f"particles/{root}_{DEFAULT_MODEL}.mrcs"
    # the XML says True while goodparticles still lists the movie, until the next rewrite
    assert at_unselect == [("True", at_unselect[0][1])]
    assert stack in at_unselect[0][1]
    assert stack not in stacks_in(good_path(folder))
    assert stack in stacks_in(folder / f"allparticles_{DEFAULT_MODEL}.star")
    assert ET.fromstring((folder / f"{root}.xml").read_bytes()).get("UnselectManual") == "True"


def test_reprocessed_micrograph_changes_count_in_place(tmp_path: Path) -> None:
    before: dict[str, int] = {}
    order_before: list[list[str]] = []

    def on(event: SimEvent) -> None:
        if event.kind == "movie_done" and event.path is not None:
            with mrcfile.open(event.path, header_only=True) as mrc:
                before[event.path.name] = int(mrc.header.nz)
        if event.kind == "reprocessed":
            order_before.append(stacks_in(good_path(tmp_path / "session")))

    folder, summary = run(tmp_path, on, reprocess=0.25)
    (root,) = summary.reprocessed  # type: ignore[attr-defined]
    name = f"{root}_{DEFAULT_MODEL}.mrcs"
    with mrcfile.open(folder / "particles" / name) as mrc:
        now = mrc.data.shape[0]
    assert now != before[name]
    labels, rows = read_warp_star(good_path(folder))
    names = [n for n in column(labels, rows, "rlnImageName") if n.endswith(name)]
    assert len(names) == now
    # rows keep the micrograph's position in the table
    final_order = stacks_in(good_path(folder))
    assert final_order[: len(order_before[0])] == order_before[0]
    truth = load_truth(folder / "truth")
    assert sum(n.endswith(name) for n in truth.names) == now


def test_late_stacks_are_named_while_incomplete(tmp_path: Path) -> None:
    seen: list[bool] = []

    def on(event: SimEvent) -> None:
        if event.kind == "stack_partial":
            assert event.path is not None
            listed = f"particles/{event.path.name}" in stacks_in(good_path(tmp_path / "session"))
            with pytest.raises(ValueError, match="Expected"):
                mrcfile.open(event.path).close()
            seen.append(listed)

    folder, _ = run(tmp_path, on, late_stacks=True)
    assert seen == [True] * 6
    for stack in stacks_in(good_path(folder)):
        with mrcfile.open(folder / stack) as mrc:  # complete in the end
            assert mrc.data.shape[0] > 0


def test_star_missing_during_replacement(tmp_path: Path) -> None:
    folder = tmp_path / "session"
    target = good_path(folder)
    observed: set[str] = set()
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                target.stat()
                observed.add("present")
            except FileNotFoundError:
                observed.add("missing")
            done.wait(0.005)

    during: list[tuple[bool, list[str]]] = []

    def on(event: SimEvent) -> None:
        if event.kind == "star_missing" and event.path == target:
            temps = sorted(p.name for p in folder.glob(f"{target.name}_*"))
            during.append((target.exists(), temps))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        simulate_session(
            folder, SimulationOptions(**{**BASE, "micrographs": 3}, star_gap=0.15), on_event=on
        )
    finally:
        done.set()
        poller.join()
    assert observed == {"present", "missing"}
    assert [exists for exists, _ in during] == [False] * 4  # 3 movies + the stop rewrite
    assert during[0][1] == [
        f"{target.name}_FoilHole_3000000_Data_4000000_5000000_20261126_090000_fractions"
    ]
    assert during[-1][1] == [f"{target.name}_temp"]
    assert not list(folder.glob("*.star_*"))


def test_torn_star_is_cut_mid_row(tmp_path: Path) -> None:
    torn: list[tuple[bool, int, int]] = []

    def on(event: SimEvent) -> None:
        if event.kind == "star_torn" and event.path is not None:
            text = event.path.read_text(encoding="utf-8")
            labels = [ln for ln in text.splitlines() if ln.startswith("_")]
            last = text.splitlines()[-1].split()
            torn.append((text.endswith("\n"), len(labels), len(last)))

    folder, _ = run(tmp_path, on, torn_star=True)
    assert len(torn) == 7
    for ends_with_newline, ncol, nlast in torn:
        assert not ends_with_newline and nlast < ncol
    read_warp_star(good_path(folder))  # the final table is whole


def test_torn_settings_then_whole(tmp_path: Path) -> None:
    torn: list[bytes] = []

    def on(event: SimEvent) -> None:
        if event.kind == "settings_torn" and event.path is not None:
            torn.append(event.path.read_bytes())

    folder, _ = run(tmp_path, on, torn_settings=True)
    assert len(torn) == 5  # rewritten before every movie after the first
    for data in torn:
        with pytest.raises(ET.ParseError):
            ET.fromstring(data)
    ET.fromstring((folder / "previous.settings").read_bytes())


def settings_value(folder: Path, section: str, name: str) -> str:
    root = ET.fromstring((folder / "previous.settings").read_bytes())
    node = root.find(f"./{section}/Param[@Name='{name}']")
    assert node is not None
    return str(node.get("Value"))


def test_box_change_mid_session(tmp_path: Path) -> None:
    folder, _ = run(tmp_path, change_box_at=3)
    sizes = []
    for stack in stacks_in(good_path(folder)):
        with mrcfile.open(folder / stack, header_only=True) as mrc:
            sizes.append(int(mrc.header.nx))
    assert sizes == [32, 32, 32, 40, 40, 40]
    assert settings_value(folder, "Picking", "BoxSize") == "40"


def test_model_change_mid_session(tmp_path: Path) -> None:
    folder, summary = run(tmp_path, change_model_at=4)
    assert summary.models == [DEFAULT_MODEL, CHANGED_MODEL]  # type: ignore[attr-defined]
    assert len(stacks_in(good_path(folder))) == 4
    assert len(stacks_in(good_path(folder, CHANGED_MODEL))) == 2
    assert settings_value(folder, "Picking", "ModelPath") == CHANGED_MODEL


def test_binning_change_mid_session(tmp_path: Path) -> None:
    folder, _ = run(tmp_path, change_binning_at=2)
    labels, rows = read_warp_star(good_path(folder))
    sizes = sorted(set(column(labels, rows, "rlnDetectorPixelSize")))
    assert sizes == ["3.00000", "6.00000"]
    last = stacks_in(good_path(folder))[-1]
    with mrcfile.open(folder / last, header_only=True) as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(6.0)
    assert settings_value(folder, "Import", "BinTimes") == "1"


def test_invert_false_negates_the_stacks(tmp_path: Path) -> None:
    white, _ = run(tmp_path / "a")
    black, _ = run(tmp_path / "b", invert=False)
    stack = stacks_in(good_path(white))[0]
    with mrcfile.open(white / stack) as a, mrcfile.open(black / stack) as b:
        assert np.array_equal(a.data, -b.data)
    assert settings_value(black, "Picking", "Invert") == "False"


def test_phase_plate(tmp_path: Path) -> None:
    folder, _ = run(tmp_path, phase_plate=True)
    labels, rows = read_warp_star(good_path(folder))
    phases = np.array([float(v) for v in column(labels, rows, "rlnPhaseShift")])
    assert np.all((phases >= 30) & (phases <= 110))
    assert settings_value(folder, "CTF", "DoPhase") == "True"
    root = Path(stacks_in(good_path(folder))[0]).name.removesuffix(f"_{DEFAULT_MODEL}.mrcs")
    xml = ET.fromstring((folder / f"{root}.xml").read_bytes())
    node = xml.find("./CTF/Param[@Name='PhaseShift']")
    assert node is not None
    assert float(node.get("Value", "0")) * 180 == pytest.approx(phases[0], abs=0.05)


def test_warp2_variant_with_processing_folder(tmp_path: Path) -> None:
    folder, summary = run(
        tmp_path, warp2=True, processing_folder="processing", model="BoxNet2Mask_20180918.pb"
    )
    raw = (folder / "previous.settings").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf<?xml")
    assert settings_value(folder, "Import", "ProcessingFolder") == str(
        (folder / "processing").resolve()
    )
    out = folder / "processing"
    assert summary.output_folder == out  # type: ignore[attr-defined]
    star = out / "goodparticles_BoxNet2Mask_20180918.star"  # W2 strips the extension
    stacks = stacks_in(star)
    assert len(stacks) == 6
    with mrcfile.open(out / stacks[0]) as mrc:
        assert mrc.header.mode == 12 and mrc.data.dtype == np.float16
        assert (out / stacks[0]).stat().st_size == 1024 + 2 * mrc.data.size
    xml_path = out / (Path(stacks[0]).name.removesuffix("_BoxNet2Mask_20180918.mrcs") + ".xml")
    xml_raw = xml_path.read_bytes()
    assert xml_raw.startswith(b"\xef\xbb\xbf")
    assert ET.fromstring(xml_raw).get("DataDirectory") == str(folder.resolve())


def test_warp1_keeps_the_model_extension(tmp_path: Path) -> None:
    folder, _ = run(tmp_path, model="BoxNet2Mask_20180918.pb", micrographs=1)
    assert (folder / "goodparticles_BoxNet2Mask_20180918.pb.star").exists()


def test_live_mode_stops_early_and_still_rewrites(tmp_path: Path) -> None:
    stop = threading.Event()

    def on(event: SimEvent) -> None:
        if event.kind == "movie_done" and event.micrograph == 1:
            stop.set()

    folder = tmp_path / "live"
    summary = simulate_session(
        folder, SimulationOptions(**{**BASE, "rate": 0.05}), stop=stop, on_event=on
    )
    assert summary.stopped and summary.micrographs == 2
    assert len(stacks_in(good_path(folder))) == 2


def test_running_window_keeps_the_last_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from live2d_tui.simulate import session as session_module

    # Warp names the files after Picking/RunningWindowLength (10000 by default)
    monkeypatch.setattr(session_module, "RUNNING_WINDOW", 25)
    folder, _ = run(tmp_path)
    rows = read_warp_star(good_path(folder))[1]
    window = read_warp_star(folder / f"goodparticles_last25_{DEFAULT_MODEL}.star")[1]
    assert len(rows) > 25 and window == rows[-25:]


def test_cli_live_mode_stops_on_sigint(tmp_path: Path) -> None:
    out = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "live2d_tui", "simulate", str(out), "--micrographs", "50",
         "--particles-per-micrograph", "5", "--box", "32", "--diameter", "60", "--rate", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("movie 1/50 written")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "1 micrographs" in stdout and "stopped early" in stdout
    assert len(stacks_in(good_path(out))) == 1


def test_stopped_before_the_first_movie_leaves_empty_tables(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    folder = tmp_path / "empty"
    summary = simulate_session(folder, SimulationOptions(**BASE), stop=stop)
    assert summary.stopped and summary.micrographs == 0 and summary.particles == 0
    assert summary.goodparticles == good_path(folder)
    labels, rows = read_warp_star(good_path(folder))
    assert rows == [] and "rlnImageName" in labels
    ET.fromstring((folder / "previous.settings").read_bytes())


def test_rejected_stretch_fails_the_filter_then_ends(tmp_path: Path) -> None:
    folder, summary = run(tmp_path, rejected_from=2, rejected_until=4)
    everything = stacks_in(folder / f"allparticles_{DEFAULT_MODEL}.star")
    final = stacks_in(good_path(folder))
    rejected = [everything[2], everything[3]]
    assert [s for s in everything if s not in final] == rejected
    assert summary.vanished == [  # type: ignore[attr-defined]
        s.removeprefix("particles/").removesuffix(f"_{DEFAULT_MODEL}.mrcs") for s in rejected
    ]
    with pytest.raises(ValueError, match="rejected_until"):
        SimulationOptions(rejected_from=3, rejected_until=3)


def test_stamped_clock_gives_each_movie_its_time(tmp_path: Path) -> None:
    folder, _ = run(tmp_path, start_time=1_700_000_000.0, movie_seconds=90.0, unselect_later=0.2)
    stacks = stacks_in(folder / f"allparticles_{DEFAULT_MODEL}.star")
    for index, stack in enumerate(stacks):
        root = stack.removeprefix("particles/").removesuffix(f"_{DEFAULT_MODEL}.mrcs")
        assert (folder / stack).stat().st_mtime == 1_700_000_000.0 + 90.0 * index
        xml = (folder / f"{root}.xml").stat().st_mtime
        # a later deselection rewrites the XML two movies on
        assert xml in {1_700_000_000.0 + 90.0 * index, 1_700_000_000.0 + 90.0 * (index + 2)}


def test_pause_holds_the_next_movie_until_cleared(tmp_path: Path) -> None:
    pause = threading.Event()
    written: list[int] = []
    resumed = threading.Event()

    def on(event: SimEvent) -> None:
        if event.kind == "movie_done":
            written.append(event.micrograph)
            if event.micrograph == 1:
                pause.set()

    folder = tmp_path / "live"
    worker = threading.Thread(
        target=lambda: (
            simulate_session(
                folder, SimulationOptions(**{**BASE, "rate": 0.01}), on_event=on, pause=pause
            ),
            resumed.set(),
        )
    )
    worker.start()
    try:
        deadline = 100
        while len(written) < 2 and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
        threading.Event().wait(0.5)
        assert written == [0, 1]  # held while paused
    finally:
        pause.clear()
        worker.join(30)
    assert resumed.is_set() and written == list(range(6))
