"""Progress of refine2d/merge2d program runs, parsed from their output and aggregated per cycle.

cisTEM's progress bar redraws with ``\\r`` (at most once a second) and ends with ``\\n``
(docs/protocol.md, "Progress"), so output is split on both and each piece matched
against the bar (``(\\d{1,3})%\\s*\\[``) and the stage lines. A run's completion is the position
of its bar within its stage (noise spectrum 0–20 %, class averages 20–100 %, random start
0–100 %); the cycle's percent is the row-weighted mean over its runs, so a cycle of unequal
runs (±1 row) still moves evenly. Output may arrive in arbitrary chunks: a partial line is
kept until its terminator arrives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from live2d_tui.events import CycleStage

_BAR = re.compile(r"(\d{1,3})%\s*\[")
_STAGES: tuple[tuple[str, CycleStage], ...] = (
    ("Generating", CycleStage.SEEDING),
    ("Calculating noise power spectrum", CycleStage.NOISE),
    ("Calculating new class averages", CycleStage.CLASSIFYING),
)
# share of a refinement run's work before its classification bar starts
_NOISE_SHARE = 0.2


@dataclass
class LineSplitter:
    """Split a byte stream into pieces ending at ``\\r`` or ``\\n``; keeps the unfinished tail."""

    _tail: str = ""

    def feed(self, text: str) -> Iterator[str]:
        """Yield every complete piece of ``text`` (plus the kept tail)."""
        data = self._tail + text
        pieces = re.split(r"[\r\n]", data)
        self._tail = pieces.pop()
        for piece in pieces:
            if piece.strip():
                yield piece

    def flush(self) -> Iterator[str]:
        """Yield the unfinished tail, if any."""
        tail, self._tail = self._tail, ""
        if tail.strip():
            yield tail


@dataclass
class RunProgress:
    """Where one program run is: its stage and its completed share of work (0–1)."""

    rows: int
    stage: CycleStage = CycleStage.PREPARING
    fraction: float = 0.0
    done: bool = False
    stage_lines: list[str] = field(default_factory=list)

    def update(self, piece: str) -> bool:
        """Take one output piece; return whether stage or fraction changed."""
        for marker, stage in _STAGES:
            if marker in piece:
                self.stage = stage
                self.stage_lines.append(piece.strip())
                if stage is CycleStage.CLASSIFYING:
                    self.fraction = max(self.fraction, _NOISE_SHARE)
                return True
        match = _BAR.search(piece)
        if match is None:
            return False
        percent = min(100, int(match.group(1))) / 100.0
        if self.stage is CycleStage.NOISE:
            value = _NOISE_SHARE * percent
        elif self.stage is CycleStage.CLASSIFYING:
            value = _NOISE_SHARE + (1 - _NOISE_SHARE) * percent
        else:
            value = percent
        if value > self.fraction:
            self.fraction = value
            return True
        return False

    def finish(self) -> None:
        """Mark the run complete."""
        self.done = True
        self.fraction = 1.0


@dataclass
class CycleProgressTracker:
    """Row-weighted progress over a cycle's program runs."""

    runs: list[RunProgress]
    default_stage: CycleStage = CycleStage.CLASSIFYING
    """The stage reported while no running program run has printed its stage yet."""

    @classmethod
    def for_rows(
        cls, rows: list[int], default_stage: CycleStage = CycleStage.CLASSIFYING
    ) -> CycleProgressTracker:
        """One tracker entry per program run, weighted by its rows."""
        return cls([RunProgress(rows=max(1, r)) for r in rows], default_stage)

    @property
    def runs_done(self) -> int:
        """Program runs that finished successfully."""
        return sum(1 for run in self.runs if run.done)

    @property
    def percent(self) -> float:
        """Completed work in percent (0–100)."""
        total = sum(run.rows for run in self.runs)
        return 100.0 * sum(run.rows * run.fraction for run in self.runs) / total

    @property
    def stage(self) -> CycleStage:
        """The least advanced stage among running program runs that reported one (what the cycle
        waits for); the default stage before any did."""
        order = list(CycleStage)
        running = [
            run.stage for run in self.runs if not run.done and run.stage is not CycleStage.PREPARING
        ]
        if running:
            return min(running, key=order.index)
        if self.runs and all(run.done for run in self.runs):
            return max((run.stage for run in self.runs), key=order.index)
        return self.default_stage

    def eta_seconds(self, elapsed: float) -> float | None:
        """Seconds left, from the elapsed time and the percent done (None before any progress)."""
        percent = self.percent
        if percent <= 0.5 or percent >= 100.0:
            return None if percent < 100.0 else 0.0
        return elapsed * (100.0 - percent) / percent
