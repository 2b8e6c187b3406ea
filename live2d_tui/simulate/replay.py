"""Publish a session simulated beforehand into a live Warp folder at a steady rate (a replay).

Simulating a movie costs CPU (rendering its particles, rewriting the tables), so a live
simulation on the machine that also classifies cannot go faster than that machine allows, and
it takes CPU from the classification it feeds. A replay publishes a finished simulated session
movie by movie instead, at a fixed schedule (movie ``k`` at ``start + k × rate``), costing almost
nothing per movie:

1. ``<root>.xml``, ``matching/<root>_<Model>.star`` and ``particles/<root>_<Model>.mrcs`` are
   copied from the simulated session (each to a hidden temporary name beside the target, then
   renamed into place: the files are whole when they appear);
2. ``allparticles_<Model>.star`` and ``goodparticles_<Model>.star`` are rewritten to list every
   movie published so far, the way the simulator's live mode (and Warp) replaces them
   (:func:`~live2d_tui.simulate.warp_writer.replace_like_warp`: temporary ``<target>_<root>``,
   delete, move), each followed by its ``_last10000_`` window, in the simulator's order; the
   text is byte for byte what the simulator writes for the same rows, built incrementally
   (each row formatted once while the column widths stay).

When the session ends the tables are rewritten once more (temporary ``<target>_temp``), as the
simulator does. ``previous.settings`` is copied before the first movie. The truth sidecar is
not copied (the program never reads it; score against the simulated session's).

Only sessions without hazards are replayed (no vanishing, deselected or reprocessed movies, one
picking model): their tables only ever grow, so each movie's rows are its rows in the final
table.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from live2d_tui.formats.warp_star import column_widths, star_header, star_lines
from live2d_tui.simulate import documents as docs
from live2d_tui.simulate.session import RUNNING_WINDOW
from live2d_tui.simulate.truth import load_session
from live2d_tui.simulate.warp_writer import replace_like_warp, write_last_window

KINDS = ("allparticles", "goodparticles")
"""The tables rewritten after each movie, in the simulator's order."""


class ReplayError(ValueError):
    """The folder is not a simulated session that can be replayed."""


@dataclass(frozen=True)
class ReplayMovie:
    """One movie of the simulated session: its files and its table rows."""

    root: str
    stack: str
    """The stack's file name under ``particles/``."""
    rows: list[list[str]]


@dataclass
class ReplaySummary:
    """What a replay published, and when."""

    movies: int = 0
    particles: int = 0
    listed_at: dict[str, float] = field(default_factory=dict)
    """Stack file name → ``time.time()`` right after goodparticles first listed it."""
    seconds: float = 0.0
    """Wall time from the first movie to the last table rewrite."""
    cpu_seconds: float = 0.0
    """CPU time of the publishing thread."""
    stopped: bool = False


class _GrowingTable:
    """A Warp table that only grows: ``text()`` equals ``star_text`` of every row added so far,
    with each row formatted once while the widest value of every column stays the same."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []
        self.widths: list[int] = []
        self.lines: list[str] = []
        self.head = star_header(docs.PARTICLE_COLUMNS)

    def add(self, rows: list[list[str]]) -> None:
        if not rows:
            return
        self.rows += rows
        added = column_widths(rows)
        widths = (
            [max(a, b) for a, b in zip(self.widths, added, strict=True)] if self.widths else added
        )
        if widths == self.widths:
            self.lines += star_lines(rows, widths)
        else:
            self.widths = widths
            self.lines = star_lines(self.rows, widths)

    def text(self) -> str:
        return self.head + "".join(self.lines)

    def window_text(self, size: int) -> str:
        """The table of the last ``size`` rows (their own widths, as the simulator writes)."""
        rows = self.rows[-size:]
        widths = column_widths(rows)
        lines = self.lines[-size:] if widths == self.widths else star_lines(rows, widths)
        return self.head + "".join(lines)


def _table_rows(path: Path) -> list[list[str]]:
    """The data rows of a Warp particle table, as the strings the simulator formatted."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) == len(docs.PARTICLE_COLUMNS):
            rows.append(fields)
    return rows


def plan_replay(source: Path) -> tuple[Path, str, list[ReplayMovie]]:
    """Read a simulated session: (its output folder, the picking model, its movies in order).

    Raises:
        ReplayError: not a finished simulated session, or one with hazards.
    """
    try:
        record = load_session(Path(source) / "truth")
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{source}: not a simulated session ({exc})") from exc
    hazards = [k for k in ("vanished", "unselected", "reprocessed") if record.get(k)]
    if hazards or len(record.get("models", [])) != 1:
        raise ReplayError(
            f"{source}: only sessions without hazards and with one picking model can be "
            f"replayed (this one has {', '.join(hazards) or 'several models'})"
        )
    processing = record.get("options", {}).get("processing_folder")
    out = Path(source) / processing if processing else Path(source)
    model = str(record["models"][0])
    good = out / f"goodparticles_{model}.star"
    if not good.exists():
        raise ReplayError(f"{source}: {good.name} is missing")
    movies: dict[str, list[list[str]]] = {}
    image = docs.PARTICLE_COLUMNS.index("rlnImageName")
    for row in _table_rows(good):
        stack = row[image].split("@", 1)[1].rsplit("/", 1)[-1]
        movies.setdefault(stack, []).append(row)
    suffix = f"_{model}.mrcs"
    plan = []
    for stack, rows in movies.items():
        if not stack.endswith(suffix):
            raise ReplayError(f"{source}: stack {stack} is not of model {model}")
        plan.append(ReplayMovie(root=stack[: -len(suffix)], stack=stack, rows=rows))
    return out, model, plan


def _copy_whole(source: Path, target: Path) -> None:
    """Copy ``source`` to a hidden name beside ``target``, then rename it into place."""
    temp = target.with_name(f".{target.name}.replay")
    shutil.copyfile(source, temp)
    temp.replace(target)


def replay_session(
    source: Path,
    target: Path,
    rate: float,
    *,
    movies: int | None = None,
    stop: threading.Event | None = None,
    on_movie: Callable[[int, ReplayMovie], None] | None = None,
) -> ReplaySummary:
    """Publish the simulated session ``source`` into the Warp folder ``target``, one movie
    every ``rate`` seconds (blocking; see the module docstring).

    Args:
        source: a finished simulated session (``live2d simulate`` without ``--rate``), without
            hazards.
        target: the live folder (created; it must not hold a session yet).
        rate: seconds between two movies (on a fixed schedule: a late movie does not delay the
            next ones).
        movies: publish only the first ``movies`` movies.
        stop: set it to end early (the tables still get their final rewrite).
        on_movie: called after each movie's tables were rewritten.

    Raises:
        ReplayError: ``source`` cannot be replayed, or ``target`` already holds a session.
    """
    folder, model, plan = plan_replay(source)
    if movies is not None:
        plan = plan[:movies]
    target = Path(target)
    if (target / "previous.settings").exists():
        raise ReplayError(f"{target} already holds a session")
    out = target / folder.relative_to(source)
    for sub in ("particles", "matching"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _copy_whole(Path(source) / "previous.settings", target / "previous.settings")
    tables = {kind: _GrowingTable() for kind in KINDS}
    summary = ReplaySummary()
    cpu0, start = time.thread_time(), time.time()
    label = ""
    for index, movie in enumerate(plan):
        if stop is not None and stop.is_set():
            summary.stopped = True
            break
        delay = start + index * rate - time.time()
        if delay > 0:
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                summary.stopped = True
                break
        for name in (
            f"{movie.root}.xml",
            f"matching/{movie.root}_{model}.star",
            f"particles/{movie.stack}",
        ):
            _copy_whole(folder / name, out / name)
        label = movie.root
        _write_tables(out, model, tables, movie.rows, label)
        summary.listed_at[movie.stack] = time.time()
        summary.movies += 1
        summary.particles += len(movie.rows)
        if on_movie is not None:
            on_movie(index, movie)
    _write_tables(out, model, tables, [], "temp")
    summary.seconds = time.time() - start
    summary.cpu_seconds = time.thread_time() - cpu0
    return summary


def _write_tables(
    out: Path, model: str, tables: dict[str, _GrowingTable], rows: list[list[str]], label: str
) -> None:
    for kind in KINDS:
        table = tables[kind]
        table.add(rows)
        replace_like_warp(out / f"{kind}_{model}.star", table.text(), label)
        if table.rows:  # the simulator skips the running window of an empty table
            write_last_window(
                out / f"{kind}_last{RUNNING_WINDOW}_{model}.star",
                table.window_text(RUNNING_WINDOW),
            )
