"""Benchmarks of streaming classification (issue 20): quality, cost flat in N, freshness.

**quality** — a simulated session; a *full* run is an ab initio job over every particle (the
reference of bench_engine.py: K classes, S startup cycles 40 → 8 Å, R refinement cycles); a
*streamed* run is an ab initio job over the first ``--initial`` particles, then a stream
started from its last cycle and updates of ``--block`` new particles each until every particle
is in (the last update writes the full star), ``--revisit`` earlier blocks revisited per update.
Both are scored with the simulator's scorer (purity, ARI, views recovered, FRC0.5 against the
true projections). ``--late-views 2`` removes the particles of two views from the first
``--initial`` particles (those views first appear later) and reports the classes each got.
Shapes: ``--shape full`` (bench_engine.py's reference shape: about 6,000 particles, 96 px at
2 Å, 12 views, K = 20) and ``--shape hard`` (about 20,000 particles, 128 px at 1.5 Å,
continuous orientations, K = 50)::

    flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_stream.py quality \\
        --work /tmp/bench20 --shape full --mode full --run 1
    ... --mode stream --initial 1500 --block 500 --revisit 1 --run 1 [--late-views 2]
    .venv/bin/python benchmarks/bench_stream.py report --work /tmp/bench20

Each run writes ``<work>/results/<name>.json``; ``report`` compares the worst streamed run with
the median full run per shape.

**cost** — one update of ``--new`` (1,000) new particles at 128 px, K = 50, with 10,000 and
with 100,000 particles already classified, timed in one process: wall time with merge2d's and
the file writes' shares, bytes read and written. The 10,000-particle state is made by a real
stream (an ab initio job over 2,000 particles, then updates); the 100,000-particle state
replicates it ten times (the stack's particles and the blocks' files copied under new
positions and ids, the running total and statistics multiplied), so the update that is timed
is the real one on a state of that size::

    flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_stream.py cost --work /tmp/b20c

**freshness** — a live session: ``live2d simulate --rate`` writes the reference shape one movie
at a time while ``live2d run --auto`` classifies it headless (ab initio at ``--initial``, then
streaming with ``--batch``/``--revisit``); per particle, the delay from its stack's first listing
in goodparticles to the first published cycle covering its position, p50/p95, by thirds of the
streamed particles, and the particles waiting (is the backlog bounded?)::

    flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_stream.py freshness \\
        --work /tmp/bench20_fresh --rate 4 --movies 150 --batch 500 --revisit 1 --initial 1500

Simulating a movie costs CPU, so beside the classification the simulator cannot write faster
than about one movie a second. With ``--replay`` the session is simulated first (not timed,
kept under ``--work`` for later runs) and then published at ``--rate`` on a fixed schedule by
:func:`~live2d_tui.simulate.replay.replay_session` (files copied whole, the tables rewritten as
the simulator does: almost no CPU); each stack's listing time is the moment its goodparticles
rewrite was in place (no polling). ``streaming_stages`` splits the streamed particles' delay
into listing → appended to the stack, → start of the update that published them, → published.
``ingest-rate`` replays ``--movies`` movies at ``--rate`` beside the ingest alone (a dataset polled
at the supervisor's cadence) and reports when each movie was appended::

    flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_stream.py ingest-rate \\
        --work /tmp/bench20_replay --rate 1 --movies 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import FULL, HARD_FULL, SMALL

from live2d_tui.classify.engines import builtin_programs
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.schedule import plan_job
from live2d_tui.classify.streaming.runner import StreamResult, StreamRunner
from live2d_tui.config import Config, JobSettings, ServerConfig, render_toml
from live2d_tui.dataset.ingest import Dataset
from live2d_tui.formats.cistem_star import read_star
from live2d_tui.simulate import SimulationOptions, simulate_session
from live2d_tui.simulate.replay import ReplaySummary, replay_session
from live2d_tui.simulate.score import (
    Scorecard,
    original_names_from_relion_star,
    score_classes,
)
from live2d_tui.simulate.truth import load_truth
from live2d_tui.supervisor.loops import next_look

SHAPES: dict[str, dict[str, Any]] = {"full": FULL, "hard": HARD_FULL, "small": SMALL}
"""``small``: a quick check of the script (bench_engine.py's small shape)."""
CLASSES = {"full": 20, "hard": 50, "small": 8}
STARTUP = {"full": 10, "hard": 15, "small": 6}
REFINE = {"full": 3, "hard": 5, "small": 2}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------- the session


def ingest(work: Path, shape: dict[str, Any], seed: int) -> Dataset:
    """Simulate (once) and ingest (once) into ``work/base``."""
    session = work / "session"
    if not (session / "truth").exists():
        simulate_session(session, SimulationOptions(seed=seed, **shape))
    dataset = Dataset(session, work / "base", settle_seconds=0.0)
    dataset.poll_until_settled(60.0, interval=0.1)
    return dataset


def true_views(dataset: Dataset, truth_dir: Path) -> np.ndarray:
    """The true view of every stack position (index position − 1)."""
    names = original_names_from_relion_star(dataset.relion_star_path)
    truth = load_truth(truth_dir)
    index = truth.index()
    return np.array([int(truth.view[index[name]]) for name in names], dtype=np.int64)


def job_settings(shape: str, **changes: Any) -> JobSettings:
    return JobSettings(
        class_number=CLASSES[shape],
        run_count_startup=STARTUP[shape],
        run_count_refine=REFINE[shape],
        high_res_initial=40.0,
        high_res_final=9.0 if shape == "small" else 8.0,
        mask_radius=0.6 * float(SHAPES[shape]["diameter"]),
        particles_per_class=300,
    ).with_changes(**changes)


class Session:
    """One run's output folder on the shared ingested dataset."""

    def __init__(self, dataset: Dataset, folder: Path, pool: int, jobs: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        self.folder = folder
        self.pixel = float(read_star(dataset.star_path)["pixel_size"][0])
        self.log: list[str] = []
        self.runner = CycleRunner(
            folder,
            builtin_programs(),
            pool_size=pool,
            jobs_per_cycle=jobs,
            niceness=0,
            log=self.log.append,
        )

    def inputs(self, active: np.ndarray, nz: int, previous: int | None) -> CycleInputs:
        folder = self.folder
        return CycleInputs(
            stack_path=self.dataset.stack_path,
            nz=nz,
            dataset_star=self.dataset.star_path,
            active_positions=active,
            previous_star=None if previous is None else folder / f"cycle_{previous}.star",
            previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
            pixel_size=self.pixel,
        )

    async def job(self, settings: JobSettings, active: np.ndarray, nz: int) -> int:
        """An ab initio job over ``active`` ≤ ``nz``; returns its last cycle."""
        previous: int | None = None
        for cycle in plan_job(settings, last_cycle_number=None).cycles:
            wall = time.monotonic()
            await self.runner.run_cycle(cycle, self.inputs(active, nz, previous), settings)
            print(f"  cycle {cycle.number:3d} {time.monotonic() - wall:7.1f} s", flush=True)
            previous = cycle.number
        assert previous is not None
        return previous

    def score(self, number: int, truth_dir: Path) -> Scorecard:
        return score_classes(
            self.folder / f"cycle_{number}.mrc",
            self.folder / f"cycle_{number}.star",
            self.dataset.stack_path,
            original_names_from_relion_star(self.dataset.relion_star_path),
            truth_dir,
            pixel_size=self.pixel,
        )


def card_summary(card: Scorecard, views: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "purity": card.purity,
        "ari": card.ari,
        "views_recovered": card.views_recovered,
        "median_frc05_A": card.median_frc05,
        "weighted_median_frc05_A": card.weighted_median_frc05,
        "median_half_frc0143_A": card.median_half_frc0143,
        "classes": len(card.classes),
        "particles": card.particles,
        "recovered_views": sorted({c.majority_view for c in card.classes if c.purity >= 0.5})
        if card.views_recovered is not None
        else [],
        "box": card.box,
        "pixel_size": card.pixel_size,
    }
    for view in views:  # the classes a late view got
        mine = [c for c in card.classes if c.majority_view == view and c.purity >= 0.5]
        out[f"view_{view}"] = [
            {"class": c.class_number, "members": c.members, "purity": round(c.purity, 3),
             "frc05_A": round(c.frc05, 2)}
            for c in mine
        ]  # fmt: skip
    return out


# ---------------------------------------------------------------- quality


async def quality(args: argparse.Namespace) -> dict[str, Any]:
    shape = SHAPES[args.shape]
    work: Path = args.work / args.shape
    dataset = ingest(work, shape, args.seed)
    truth_dir = work / "session" / "truth"
    views = true_views(dataset, truth_dir)
    active = np.asarray(dataset.active_positions(), dtype=np.int64)
    late: list[int] = []
    if args.late_views:
        # two views that first appear after the first --initial particles: their particles
        # among the first ones never existed (their positions stay inactive)
        counts = np.bincount(views[views >= 0])
        late = [int(v) for v in np.argsort(counts)[::-1][: args.late_views]]
        cut = active[~np.isin(views[active - 1], late)][args.initial - 1]
        drop = active[(active <= cut) & np.isin(views[active - 1], late)]
        active = active[~np.isin(active, drop)]
    nz = int(active.max())
    name = f"{args.shape}_{args.mode}" + (f"_R{args.revisit}" if args.mode == "stream" else "")
    name += f"_late{args.late_views}" if args.late_views else ""
    if args.no_reseed:  # the misfit pool never fills
        from live2d_tui.classify.streaming import reseed

        reseed.POOL_SIZE = 10**12
        name += "_noreseed"
    name += f"_run{args.run}"
    folder = work / "runs" / name
    if folder.exists():
        shutil.rmtree(folder)
    session = Session(dataset, folder, args.pool, args.jobs)
    settings = job_settings(args.shape, stream_batch=args.block, stream_revisit=args.revisit)
    wall0, cpu0 = time.monotonic(), children_cpu()
    updates: list[dict[str, Any]] = []
    print(f"{name}: {len(active)} particles", flush=True)
    if args.mode == "full":
        last = await session.job(settings, active, nz)
    else:
        cut = int(active[args.initial - 1])
        first = active[active <= cut]
        base = await session.job(settings, first, cut)
        stream = StreamRunner(session.runner)
        await stream.start(base, session.inputs(active, cut, base), settings)
        number, reached, seen = base + 1, cut, len(session.log)
        while True:
            chunk = active[active > reached][: args.block]
            reached = int(chunk[-1]) if len(chunk) else reached
            done = reached >= nz
            wall = time.monotonic()
            result = await stream.update(
                number, session.inputs(active, reached, None), settings, force=True,
                full_star=done,
            )  # fmt: skip
            assert result is not None
            updates.append(update_row(result, time.monotonic() - wall))
            print(
                f"  update {number}: +{result.new_particles} new, {result.revisited_particles} "
                f"revisited, {result.particle_count} in classes, {updates[-1]['wall_s']:.1f} s, "
                f"drift max {result.drift.max_shift:.2f} px",
                flush=True,
            )
            for line in session.log[seen:]:
                if any(word in line for word in ("misfits", "takes a view", "fused")):
                    print(f"    {line}", flush=True)
            seen = len(session.log)
            number += 1
            if done:
                break
        last = number - 1
    wall, cpu = time.monotonic() - wall0, children_cpu() - cpu0
    card = session.score(last, truth_dir)
    print(card.format(), flush=True)
    summary = {
        "name": name,
        "shape": args.shape,
        "mode": args.mode,
        "revisit": args.revisit,
        "initial": args.initial,
        "block": args.block,
        "late_views": late,
        "particles": len(active),
        "wall_s": wall,
        "children_cpu_s": cpu,
        "scores": card_summary(card, late),
        "updates": updates,
        "log_tail": [line for line in session.log if "failed" in line.lower()][-20:],
        "new_views": [line for line in session.log if "takes a view" in line],
    }
    results = args.work / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(summary, indent=2))
    if not args.keep:  # the last cycle's files are all a later look needs
        for path in folder.glob("cycle_*"):
            if path.name not in (f"cycle_{last}.mrc", f"cycle_{last}.star"):
                path.unlink(missing_ok=True)
        shutil.rmtree(folder / "cycles", ignore_errors=True)
    return summary


def update_row(result: StreamResult, wall: float) -> dict[str, Any]:
    return {
        "cycle": result.number,
        "new": result.new_particles,
        "revisited": result.revisited_particles,
        "in_classes": result.particle_count,
        "blocks": result.blocks,
        "wall_s": wall,
        "seconds": result.seconds,
        "bytes_read": result.io.bytes_read,
        "bytes_written": result.io.bytes_written,
        "drift_max_px": result.drift.max_shift,
        "drift_median_px": result.drift.median_shift,
        "drift_max_deg": result.drift.max_angle,
        "emptied": result.emptied,
        "load_average_1min": os.getloadavg()[0],
    }


def report(work: Path) -> dict[str, Any]:
    """Worst streamed run against the median full run, per shape and variant."""
    runs = [json.loads(p.read_text()) for p in sorted((work / "results").glob("*.json"))]
    out: dict[str, Any] = {}
    for shape in SHAPES:
        full = [r for r in runs if r["shape"] == shape and r["mode"] == "full"]
        if not full:
            continue
        med = {
            key: statistics.median(r["scores"][key] for r in full if r["scores"][key] is not None)
            for key in ("purity", "ari", "median_frc05_A")
            if any(r["scores"][key] is not None for r in full)
        }
        box, pixel = full[0]["scores"]["box"], full[0]["scores"]["pixel_size"]
        field = box * pixel
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in runs:
            if r["shape"] == shape and r["mode"] == "stream":
                key = f"R{r['revisit']}" + ("_late" if r["late_views"] else "")
                key += "_noreseed" if "_noreseed_" in r["name"] else ""
                groups.setdefault(key, []).append(r)
        rows: dict[str, Any] = {"full_runs": len(full), "full_median": med}
        for key, group in sorted(groups.items()):
            worst: dict[str, Any] = {"runs": len(group)}
            if "purity" in med:
                worst["purity"] = min(r["scores"]["purity"] for r in group)
                worst["ari"] = min(r["scores"]["ari"] for r in group)
                worst["purity_ok"] = worst["purity"] >= med["purity"] - 0.02
                worst["ari_ok"] = worst["ari"] >= med["ari"] - 0.05
            frc = max(r["scores"]["median_frc05_A"] for r in group)
            worst["median_frc05_A"] = frc
            # one Fourier ring at the full run's median: field/ring vs field/(ring - 1)
            ring = field / med["median_frc05_A"]
            worst["frc_rings_behind"] = ring - field / frc
            worst["frc_ok"] = worst["frc_rings_behind"] <= 1.0 + 1e-9
            worst["views_recovered"] = [len(r["scores"]["recovered_views"]) for r in group]
            if group[0]["late_views"]:
                worst["late_view_classes"] = [
                    {str(v): r["scores"].get(f"view_{v}", []) for v in r["late_views"]}
                    for r in group
                ]
            worst["stream_wall_s"] = [round(r["wall_s"]) for r in group]
            rows[key] = worst
        rows["full_views_recovered"] = [len(r["scores"]["recovered_views"]) for r in full]
        rows["full_wall_s"] = [round(r["wall_s"]) for r in full]
        out[shape] = rows
    print(json.dumps(out, indent=2))
    return out


# ---------------------------------------------------------------- freshness


FRESH_SHAPE = {
    "particles_per_micrograph": 62,
    "box": 96,
    "pixel_size": 2.0,
    "diameter": 160.0,
    "snr": 0.05,
    "views": 12,
}
"""The reference shape (bench_engine.py's FULL) written live, one movie at a time."""
_POSITIONS = re.compile(
    r"Cycle (\d+) \(streaming update \d+\) finished in (\d+) s: .*positions up to ([\d,]+)"
)
_STARTED = re.compile(r"Cycle (\d+) started \(streaming update \d+\)")
_FINISHED = re.compile(r"Cycle (\d+) (?:\(random start\) )?finished in")
_WAITING = re.compile(
    r"\[stream\] .*?; (?:([\d,]+) of [\d,]+ particles for the next update"
    r"|update running; ([\d,]+) particles waiting)"
)


class _Lines:
    """A subprocess's stdout, each line with the ``time.time()`` it was read."""

    def __init__(self, proc: subprocess.Popen[str], log: Path) -> None:
        self.lines: list[tuple[float, str]] = []
        self._log = log
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        with self._log.open("w") as log:
            for line in proc.stdout:
                self.lines.append((time.time(), line.rstrip("\n")))
                log.write(f"{time.time():.3f} {line}")
                log.flush()

    def join(self) -> None:
        self._thread.join(30)


def _listed_stacks(star: Path) -> set[str]:
    """Stack files named by a goodparticles star (``rlnImageName`` = ``n@stack``)."""
    try:
        text = star.read_text(errors="replace")
    except OSError:
        return set()
    return {m.group(1).rsplit("/", 1)[-1] for m in re.finditer(r"\d+@(\S+\.mrcs)", text)}


def freshness_report(
    listing_times: dict[int, float], published: dict[int, float]
) -> dict[str, float]:
    """Per-particle delay from its micrograph's first listing in goodparticles to its first
    appearance in a published cycle (both ``time.time()``; keys: stack positions)."""
    delays = np.array([published[p] - t for p, t in listing_times.items() if p in published])
    if len(delays) == 0:
        return {"particles": 0}
    return {
        "particles": float(len(delays)),
        "p50_s": round(float(np.percentile(delays, 50)), 1),
        "p95_s": round(float(np.percentile(delays, 95)), 1),
        "max_s": round(float(delays.max()), 1),
        "unpublished": float(len(listing_times) - len(delays)),
    }


def stage_report(
    listing: dict[int, float],
    ingested: dict[int, float],
    started: dict[int, float],
    published: dict[int, float],
) -> dict[str, dict[str, float]]:
    """Where a streamed particle's time goes (p50/p95 of each stage, seconds): listing →
    appended to the stack (``ingest``), → the start of the update that published it
    (``wait``: the batch filling, the trigger, a running update), → published (``update``)."""
    stages: dict[str, list[float]] = {"ingest": [], "wait": [], "update": []}
    for p, t in listing.items():
        if p in ingested and p in started and p in published:
            stages["ingest"].append(ingested[p] - t)
            stages["wait"].append(started[p] - ingested[p])
            stages["update"].append(published[p] - started[p])
    return {
        name: {
            "p50_s": round(float(np.percentile(v, 50)), 1),
            "p95_s": round(float(np.percentile(v, 95)), 1),
            "max_s": round(float(np.max(v)), 1),
        }
        for name, v in stages.items()
        if v
    }


def replay_source(work: Path, seed: int, movies: int) -> Path:
    """A simulated session of the freshness shape with at least ``movies`` movies, written at
    once (not timed) and kept under ``work`` for later runs (the first movies of a longer
    session are the movies of a shorter one: every movie is drawn from (seed, index))."""
    for folder in sorted(work.glob(f"source_seed{seed}_movies*")):
        if int(folder.name.rsplit("movies", 1)[1]) >= movies and (folder / "done").exists():
            return folder
    folder = work / f"source_seed{seed}_movies{movies}"
    shutil.rmtree(folder, ignore_errors=True)
    began = time.time()
    simulate_session(folder, SimulationOptions(seed=seed, micrographs=movies, **FRESH_SHAPE))
    (folder / "done").write_text(f"{time.time() - began:.0f} s\n")
    return folder


class _Replay:
    """:func:`~live2d_tui.simulate.replay.replay_session` in a thread, polled like a process."""

    def __init__(self, source: Path, target: Path, rate: float, movies: int) -> None:
        self._result: list[ReplaySummary] = []
        self._thread = threading.Thread(
            target=lambda: self._result.append(replay_session(source, target, rate, movies=movies)),
            daemon=True,
        )
        self._thread.start()

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else 0 if self._result else 1

    def summary(self) -> ReplaySummary:
        self._thread.join()
        return self._result[0]


def freshness(args: argparse.Namespace) -> dict[str, Any]:
    """A live session at ``--rate`` seconds per movie, ``live2d run --auto`` on it with
    streaming after the first ab initio; per-particle delays and the backlog over time."""
    work = args.work / f"rate_{args.rate:g}_batch_{args.batch}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    warp, out = work / "session", work / "session" / "classification"
    settings = job_settings(
        "full",
        particle_count_initial=args.initial,
        stream_after_abinit=True,
        stream_batch=args.batch,
        stream_revisit=args.revisit,
    )
    server = ServerConfig(
        engine="builtin",  # type: ignore[arg-type]
        pool_size=args.pool,
        jobs_per_cycle=args.jobs,
        interval=1.0,
        min_free_gb=0.0,
    )
    config = work / "config.toml"
    config.write_text(render_toml(Config(server=server, job=settings)))
    movies = args.movies
    per_movie = FRESH_SHAPE["particles_per_micrograph"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    feed: subprocess.Popen[bytes] | _Replay
    if args.replay:
        feed = _Replay(replay_source(args.work, args.seed, movies), warp, args.rate, movies)
    else:
        sim_cmd = [sys.executable, "-m", "live2d_tui", "simulate", str(warp), "--quiet"]
        sim_cmd += [f"--micrographs={movies}", f"--rate={args.rate}", f"--seed={args.seed}"]
        sim_cmd += [f"--{k.replace('_', '-')}={v}" for k, v in FRESH_SHAPE.items()]
        feed = subprocess.Popen(
            sim_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
    while not (warp / "previous.settings").exists():
        assert feed.poll() is None, "the simulator ended before writing the session"
        time.sleep(0.05)
    run = subprocess.Popen(
        [sys.executable, "-m", "live2d_tui", "run", str(warp), "--auto", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = _Lines(run, work / "run.log")
    first_listed: dict[str, float] = {}
    started = time.time()
    stars = lambda: sorted(warp.glob("goodparticles_*.star"))  # noqa: E731
    while feed.poll() is None:
        if isinstance(feed, _Replay):
            time.sleep(0.5)  # the replay notes each listing itself
            continue
        now = time.time()
        for star in stars()[:1]:
            for stack in _listed_stacks(star) - first_listed.keys():
                first_listed[stack] = now
        time.sleep(0.2)
    if isinstance(feed, _Replay):
        first_listed = feed.summary().listed_at
    for star in stars()[:1]:
        for stack in _listed_stacks(star) - first_listed.keys():
            first_listed[stack] = time.time()
    sim_seconds = time.time() - started
    # let the stream take in what the last batch allows, then stop (the full star is written):
    # fewer than stream_batch particles that arrive at the end wait for the next particles and
    # are counted as unpublished
    expected = len(first_listed)
    deadline = time.time() + args.drain
    ingested_at: float | None = None
    while time.time() < deadline and run.poll() is None:
        if ingested_at is None and len(_ledger_ranges(out)) >= expected:
            ingested_at = time.time()
        if ingested_at is not None and any(
            t > ingested_at + 1.0
            and (m := _WAITING.search(line))
            and m.group(1)
            and int(m.group(1).replace(",", "")) < args.batch
            for t, line in list(lines.lines)
        ):
            break  # an idle stream state after the last ingest: no update runs or will run
        time.sleep(1.0)
    run.send_signal(signal.SIGINT)
    run.wait(600)
    lines.join()
    # per particle: when listed, when first in a published cycle
    ranges = _ledger_ranges(out)
    listing: dict[int, float] = {}
    ingested: dict[int, float] = {}
    for stack, (_, first, rows, appended) in ranges.items():
        if stack in first_listed:
            for position in range(first, first + rows):
                listing[position] = first_listed[stack]
                ingested[position] = appended
    state = json.loads((out / "latest_run.json").read_text())
    input_rows = {int(c["number"]): int(c["input_rows"]) for c in state["cycles"]}
    coverage: list[tuple[float, int, bool]] = []  # (time, last position covered, streaming)
    durations: list[float] = []
    waiting: list[tuple[float, int]] = []
    update_started: dict[int, float] = {}  # cycle → when its "started" line was read
    started_at: dict[int, float] = {}  # position → when the update that published it began
    for t, line in lines.lines:
        if m := _STARTED.search(line):
            update_started[int(m.group(1))] = t
        if m := _POSITIONS.search(line):
            upto = int(m.group(3).replace(",", ""))
            begun = update_started.get(int(m.group(1)))
            if begun is not None:
                last = max((c for _, c, _ in coverage), default=0)
                for position in range(last + 1, upto + 1):
                    started_at[position] = begun
            coverage.append((t, upto, True))
            durations.append(float(m.group(2)))
        elif (m := _FINISHED.search(line)) and int(m.group(1)) in input_rows:
            coverage.append((t, input_rows[int(m.group(1))], False))
        if m := _WAITING.search(line):
            waiting.append((t, int((m.group(1) or m.group(2)).replace(",", ""))))
    published: dict[int, float] = {}
    covered = 0
    for t, upto, _ in coverage:
        for position in range(covered + 1, upto + 1):
            published.setdefault(position, t)
        covered = max(covered, upto)
    first_stream = next((t for t, _, streaming in coverage if streaming), None)
    steady = {p: t for p, t in listing.items() if first_stream is not None and t > first_stream}
    rate_particles = per_movie / args.rate
    thirds: list[dict[str, float]] = []
    if steady:
        order = sorted(steady, key=lambda p: steady[p])
        for part in np.array_split(np.array(order), 3):
            thirds.append(freshness_report({int(p): steady[int(p)] for p in part}, published))
    stream_waiting = [w for t, w in waiting if first_stream is not None and t >= first_stream]
    interval = args.batch / rate_particles
    compute = statistics.median(durations) if durations else float("nan")
    result = {
        "rate_s_per_movie": args.rate,
        "particles_per_s": round(rate_particles, 1),
        "movies": movies,
        "batch": args.batch,
        "revisit": args.revisit,
        "simulated_s": round(sim_seconds),
        "s_per_movie_achieved": round(sim_seconds / max(1, len(first_listed)), 3),
        "replay": bool(args.replay),
        "updates": len(durations),
        "update_s_median": compute,
        "update_s_max": max(durations, default=float("nan")),
        "interval_s": round(interval, 1),
        "goal_p95_s": round(2 * interval + compute, 1),
        "all": freshness_report(listing, published),
        "streaming": freshness_report(steady, published),
        "streaming_stages": stage_report(steady, ingested, started_at, published),
        "streaming_thirds": thirds,
        "waiting_max_by_third": [
            max(part.tolist(), default=0) for part in np.array_split(np.array(stream_waiting), 3)
        ]
        if stream_waiting
        else [],
        "exit_code": run.returncode,
    }
    if isinstance(feed, _Replay):
        summary = feed.summary()
        result["replay_cpu_s"] = round(summary.cpu_seconds, 2)
        result["replay_s"] = round(summary.seconds, 1)
    if len(thirds) == 3 and thirds[1].get("p95_s") and thirds[2].get("p95_s"):
        # bounded: the delays of the last third of the streamed particles did not grow past
        # 1.5 × those of the middle third
        result["bounded"] = bool(thirds[2]["p95_s"] <= 1.5 * thirds[1]["p95_s"])
    (args.work / "results").mkdir(exist_ok=True)
    (args.work / "results" / f"{work.name}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


def ingest_rate(args: argparse.Namespace) -> dict[str, Any]:
    """The ingest alone against a replay: a :class:`Dataset` polled at the supervisor's cadence
    (``interval``, or :func:`~live2d_tui.supervisor.loops.next_look` while files settle) while
    ``--movies`` movies are published at ``--rate``; per movie, listing → appended."""
    work = args.work / f"ingest_rate_{args.rate:g}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    source = replay_source(args.work, args.seed, args.movies)
    feed = _Replay(source, work / "live", args.rate, args.movies)
    while not (work / "live" / "previous.settings").exists():
        time.sleep(0.05)
    dataset = Dataset(work / "live", work / "out", min_free_gb=0.0)
    ended: float | None = None
    while ended is None or time.time() < ended + 5.0:
        report = dataset.poll()
        if ended is None and feed.poll() is not None:
            ended = time.time()
        time.sleep(next_look(args.interval, report.pending))
    dataset.close()
    listed = feed.summary().listed_at
    appended = {stack: a for stack, (_, _, _, a) in _ledger_ranges(work / "out").items()}
    delays = np.array([appended[s] - t for s, t in listed.items() if s in appended])
    assert ended is not None
    result = {
        "rate_s_per_movie": args.rate,
        "movies": len(listed),
        "appended": len(delays),
        "appended_before_the_replay_ended": sum(1 for s in listed if appended.get(s, 1e30) < ended),
        "listing_to_append_p50_s": round(float(np.percentile(delays, 50)), 1),
        "listing_to_append_p95_s": round(float(np.percentile(delays, 95)), 1),
        "listing_to_append_max_s": round(float(delays.max()), 1),
    }
    print(json.dumps(result, indent=2))
    return result


def _ledger_ranges(out: Path) -> dict[str, tuple[str, int, int, float]]:
    """Current ranges of the newest generation: stack file name → (micrograph, first, rows,
    ``time.time()`` when appended to the stack)."""
    path = out / "ledger.sqlite"
    if not path.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute(
                "SELECT stack, micrograph, first, rows, appended FROM ranges WHERE current = 1 AND "
                "generation = (SELECT MAX(generation) FROM generations)"
            ).fetchall()
    except sqlite3.Error:
        return {}
    return {str(s).rsplit("/", 1)[-1]: (str(m), int(f), int(r), float(a)) for s, m, f, r, a in rows}


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--work", type=Path, default=Path("/tmp/bench20"))
    q.add_argument("--shape", choices=sorted(SHAPES), default="full")
    q.add_argument("--mode", choices=["full", "stream"], default="stream")
    q.add_argument("--run", type=int, default=1)
    q.add_argument("--seed", type=int, default=1)
    q.add_argument("--initial", type=int, default=1500)
    q.add_argument("--block", type=int, default=500)
    q.add_argument("--revisit", type=int, default=1)
    q.add_argument("--late-views", type=int, default=0)
    q.add_argument("--pool", type=int, default=2)
    q.add_argument("--jobs", type=int, default=2)
    q.add_argument("--keep", action="store_true", help="keep every cycle's files")
    q.add_argument(
        "--no-reseed", action="store_true", help="never look for late views (for comparison)"
    )
    f = sub.add_parser("freshness")
    f.add_argument("--work", type=Path, default=Path("/tmp/bench20_fresh"))
    f.add_argument("--rate", type=float, default=2.0, help="seconds per movie (62 particles)")
    f.add_argument("--movies", type=int, default=120)
    f.add_argument("--batch", type=int, default=500, help="stream_batch")
    f.add_argument("--revisit", type=int, default=1)
    f.add_argument("--initial", type=int, default=1500)
    f.add_argument("--pool", type=int, default=2)
    f.add_argument("--jobs", type=int, default=2)
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--drain", type=float, default=600, help="seconds to wait for the last update")
    f.add_argument(
        "--replay",
        action="store_true",
        help="simulate the session first (not timed), then publish it at --rate (costs no CPU)",
    )
    i = sub.add_parser("ingest-rate")
    i.add_argument("--work", type=Path, default=Path("/tmp/bench20_replay"))
    i.add_argument("--rate", type=float, default=1.0, help="seconds per movie")
    i.add_argument("--movies", type=int, default=30)
    i.add_argument("--interval", type=float, default=1.0, help="the ingest interval")
    i.add_argument("--seed", type=int, default=1)
    r = sub.add_parser("report")
    r.add_argument("--work", type=Path, default=Path("/tmp/bench20"))
    c = sub.add_parser("cost")
    c.add_argument("--work", type=Path, default=Path("/tmp/bench20_cost"))
    c.add_argument("--new", type=int, default=1000)
    c.add_argument("--revisit", type=int, default=1)
    c.add_argument("--pool", type=int, default=2)
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--seed", type=int, default=3)
    c.add_argument("--repeats", type=int, default=4)
    c.add_argument("--count", type=int, default=10_000, help="particles classified before")
    c.add_argument("--copies", type=int, default=10, help="the larger state is this × count")
    c.add_argument("--shape", choices=["hard", "small"], default="hard")
    args = parser.parse_args()
    if args.command == "quality":
        asyncio.run(quality(args))
    elif args.command == "freshness":
        freshness(args)
    elif args.command == "ingest-rate":
        ingest_rate(args)
    elif args.command == "report":
        report(args.work)
    else:
        asyncio.run(cost(args))
    return 0


# ---------------------------------------------------------------- cost


COST_SHAPE = {**HARD_FULL, "micrographs": 180, "particles_per_micrograph": 62}
"""128 px at 1.5 Å, continuous orientations: about 11,000 particles (10,000 + the new ones)."""


async def build_state(
    session: Session, active: np.ndarray, classified: int, settings: JobSettings
) -> int:
    """A real stream holding the first ``classified`` particles: an ab initio job over 2,000,
    then updates of ``stream_batch``. Returns the last cycle."""
    cut = int(active[min(2000, classified // 2) - 1])
    base = await session.job(
        settings.with_changes(run_count_startup=6, run_count_refine=1), active[active <= cut], cut
    )
    stream = StreamRunner(session.runner)
    await stream.start(base, session.inputs(active, cut, base), settings)
    number, reached = base + 1, cut
    while True:
        result = await stream.update(number, session.inputs(active, reached, None), settings)
        assert result is not None
        print(f"  state: cycle {number}, {result.particle_count} particles", flush=True)
        number += 1
        if result.particle_count >= classified:
            return number - 1
        reached = int(active[min(len(active), result.particle_count + settings.stream_batch) - 1])


def replicate(a: Path, b: Path, stack: Path, star: Path, copies: int, count: int, new: int) -> None:
    """State ``b``: ``copies`` copies of state ``a``'s ``count`` particles (stack slices, dataset
    rows, blocks under shifted positions and new ids; dumps linked, the running total and the
    class statistics multiplied), then ``a``'s next ``new`` particles after them."""
    import mrcfile

    from live2d_tui.classify.streaming import index as ix
    from live2d_tui.classify.streaming.startail import cursor_after
    from live2d_tui.classify.streaming.stats import ClassStats
    from live2d_tui.formats.cistem_star import write_star
    from live2d_tui.formats.dumps import read_total, write_total

    if b.exists():
        shutil.rmtree(b)
    (b / "stream" / "blocks").mkdir(parents=True)
    source = mrcfile.mmap(stack, mode="r", permissive=True)
    data = np.asarray(source.data[:count])
    extra = np.asarray(source.data[count : count + new])
    total = copies * count + new
    with mrcfile.new_mmap(
        b / "combined_stack.mrcs", shape=(total, *data.shape[1:]), mrc_mode=2, overwrite=True
    ) as out:
        for i in range(copies):
            out.data[i * count : (i + 1) * count] = data
        out.data[copies * count :] = extra
        out.set_image_stack()
        out.voxel_size = source.voxel_size
    source.close()
    rows = read_star(star)
    parts = []
    for i in range(copies):
        part = rows[:count].copy()
        part["position"] += i * count
        parts.append(part)
    tail = rows[count : count + new].copy()
    tail["position"] += (copies - 1) * count
    write_star(b / "combined_stack.star", np.concatenate([*parts, tail]), ["replicated"])
    folder_a, folder_b = a / "stream", b / "stream"
    index = ix.load_index(folder_a)
    assert index is not None
    blocks = []
    next_id = 0
    for i in range(copies):
        for block in index.blocks:
            shift = i * count
            names = {}
            for kind in ("data", "star"):
                name = getattr(block, kind)
                if name:
                    moved = read_star(folder_a / name)
                    moved["position"] += shift
                    names[kind] = f"blocks/b{next_id}_{kind}.star"
                    write_star(folder_b / names[kind], moved, ["replicated"])
            dumps = []
            for j, name in enumerate(block.dumps):
                target = f"blocks/b{next_id}_{j}.dat"
                os.link(folder_a / name, folder_b / target)
                dumps.append(target)
            blocks.append(
                ix.Block(
                    next_id, block.first + shift, block.last + shift, block.visited,
                    names.get("data", ""), names.get("star", ""), tuple(dumps), block.rows,
                    block.bytes, block.stale,
                )
            )  # fmt: skip
            next_id += 1
    totals = read_total(folder_a / index.total)
    for name in ("sums", "ctf2", "weight"):
        setattr(totals, name, getattr(totals, name) * copies)
    totals.processed *= copies
    write_total(folder_b / index.total, totals)
    stats = ClassStats.load(folder_a / index.stats)
    for name in ("members", "used", "score_count"):
        setattr(stats, name, getattr(stats, name) * copies)
    stats.save(folder_b / index.stats)
    for name in (index.averages, index.context):
        shutil.copyfile(folder_a / name, folder_b / name)
    if index.pool:
        shutil.copyfile(folder_a / index.pool, folder_b / index.pool)
    replica = index.with_changes(
        stack=str(b / "combined_stack.mrcs"),
        cursor=cursor_after(b / "combined_stack.star", copies * count),
        next_block=next_id,
        blocks=tuple(blocks),
        extra={},
        full_star_time=time.time(),
    )
    ix.save_index(folder_b, replica)


async def cost(args: argparse.Namespace) -> dict[str, Any]:
    work: Path = args.work
    shape = COST_SHAPE if args.shape == "hard" else SHAPES[args.shape]
    dataset = ingest(work, shape, args.seed)
    active = np.asarray(dataset.active_positions(), dtype=np.int64)
    count, new, copies = args.count, args.new, args.copies
    assert len(active) >= count + new, f"only {len(active)} particles"
    settings = job_settings(args.shape, stream_batch=new, stream_revisit=args.revisit)
    state_a = work / "state_10k"
    if not (state_a / "stream" / "index.json").exists():
        session = Session(dataset, state_a, args.pool, args.jobs)
        await build_state(session, active, count, settings)
    # the state as it was before any timed update (a snapshot of it, once timed)
    before = work / "snapshot_10k" / "index.json"
    if not before.exists():
        before = state_a / "stream" / "index.json"
    index_a = json.loads(before.read_text())
    classified = sum(b["rows"] for b in index_a["blocks"])
    reached = int(index_a["cursor"]["position"])
    print(f"10k state: {classified} particles up to position {reached}", flush=True)
    state_b = work / "state_100k"
    if not (state_b / "stream" / "index.json").exists():
        wall = time.monotonic()
        replicate(state_a, state_b, dataset.stack_path, dataset.star_path, copies, reached, new)
        print(f"100k state replicated in {time.monotonic() - wall:.0f} s", flush=True)
    snapshots = {}
    for name, folder in (("10k", state_a), ("100k", state_b)):
        snapshot = work / f"snapshot_{name}"
        if not snapshot.exists():
            shutil.copytree(folder / "stream", snapshot, copy_function=os.link)
        snapshots[name] = (folder, snapshot)
    rows: dict[str, list[dict[str, Any]]] = {"10k": [], "100k": []}
    pixel = float(read_star(dataset.star_path)["pixel_size"][0])
    for repeat in range(args.repeats):
        for name in ("10k", "100k") if repeat % 2 == 0 else ("100k", "10k"):
            folder, snapshot = snapshots[name]
            shutil.rmtree(folder / "stream")
            shutil.copytree(snapshot, folder / "stream", copy_function=shutil.copy2)
            stack = dataset.stack_path if name == "10k" else folder / "combined_stack.mrcs"
            star = dataset.star_path if name == "10k" else folder / "combined_stack.star"
            start = reached if name == "10k" else copies * reached
            positions = np.arange(1, start + new + 1)
            if name == "10k":
                positions = active[active <= int(active[active > reached][new - 1])]
            nz = int(positions.max())
            runner = CycleRunner(folder, builtin_programs(), pool_size=args.pool,
                                 jobs_per_cycle=args.jobs, niceness=0)  # fmt: skip
            stream = StreamRunner(runner)
            index = stream.state()
            assert index is not None
            inputs = CycleInputs(
                stack_path=stack, nz=nz, dataset_star=star, active_positions=positions,
                previous_star=None, previous_classes=None, pixel_size=pixel,
            )  # fmt: skip
            cpu0, clock = children_cpu(), time.monotonic()
            result = await stream.update(index.cycle + 1, inputs, settings, full_star=False)
            wall = time.monotonic() - clock
            assert result is not None
            row = {
                "repeat": repeat,
                "classified_before": index.particles,
                "new": result.new_particles,
                "revisited": result.revisited_particles,
                "wall_s": wall,
                "children_cpu_s": children_cpu() - cpu0,
                "seconds": result.seconds,
                "bytes_read": result.io.bytes_read,
                "bytes_written": result.io.bytes_written,
                "read": result.io.read,
                "written": result.io.written,
                "blocks": result.blocks,
                "load_average_1min": os.getloadavg()[0],
            }
            clock = time.monotonic()  # the full star: O(N), written every stream_star_minutes
            await stream.write_full_star(positions)
            row["full_star_s"] = time.monotonic() - clock
            row["full_star_bytes"] = (folder / f"cycle_{result.number}.star").stat().st_size
            rows[name].append(row)
            print(
                f"  {name}: {index.particles} classified, update of {result.new_particles} new + "
                f"{result.revisited_particles} revisited: {wall:.1f} s (merge2d "
                f"{result.seconds['merge2d']:.1f} s, files {result.seconds['publish']:.1f} s), "
                f"read {result.io.bytes_read / 1e6:.0f} MB, wrote "
                f"{result.io.bytes_written / 1e6:.0f} MB",
                flush=True,
            )

    def median(name: str, key: str) -> float:
        return float(statistics.median(r[key] for r in rows[name]))

    def share(name: str, step: str) -> float:
        return float(statistics.median(r["seconds"][step] / r["wall_s"] for r in rows[name]))

    summary = {
        "wall_ratio_100k_over_10k": median("100k", "wall_s") / median("10k", "wall_s"),
        "jobs_cpu_ratio_100k_over_10k": median("100k", "children_cpu_s")
        / median("10k", "children_cpu_s"),
        "median_wall_s": {n: median(n, "wall_s") for n in rows},
        "merge2d_share": {n: share(n, "merge2d") for n in rows},
        "file_writes_share": {n: share(n, "publish") for n in rows},
        "sums_share": {n: share(n, "consolidate") for n in rows},
        "bytes_read": {n: median(n, "bytes_read") for n in rows},
        "bytes_written": {n: median(n, "bytes_written") for n in rows},
        "full_star_s": {n: median(n, "full_star_s") for n in rows},
        "full_star_bytes": {n: median(n, "full_star_bytes") for n in rows},
        "runs": rows,
    }
    results = args.work / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "cost.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
