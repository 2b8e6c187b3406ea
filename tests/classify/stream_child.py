"""A supervisor stand-in for the streaming crash test: runs streaming updates in its own process.

Usage: ``python stream_child.py OUTPUT_FOLDER UPDATES`` — ends the jobs a killed predecessor
left, recovers the stream, starts it from cycle 1 if there is none, then runs updates until the
stream has had UPDATES of them. Update n (0-based) sees the stack up to 24 + 8n particles (80 at
most), and from update 3 on positions 5-8 are inactive (a micrograph Warp dropped).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

from live2d_tui.classify.engines import EnginePrograms
from live2d_tui.classify.inputs import CycleInputs
from live2d_tui.classify.procs import end_orphans
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.streaming.runner import StreamRunner
from live2d_tui.config import EngineKind, JobSettings

FAKE = Path(__file__).with_name("fake_cistem.py")
SETTINGS = JobSettings(class_number=4, mask_radius=15.0, stream_batch=8, stream_revisit=1)


def active(update: int) -> np.ndarray:
    positions = np.arange(1, 81)
    return positions[(positions < 5) | (positions > 8)] if update >= 3 else positions


def inputs(folder: Path, update: int, previous: int | None) -> CycleInputs:
    return CycleInputs(
        stack_path=folder / "combined_stack.mrcs",
        nz=min(80, 24 + 8 * update),
        dataset_star=folder / "combined_stack.star",
        active_positions=active(update),
        previous_star=None if previous is None else folder / f"cycle_{previous}.star",
        previous_classes=None if previous is None else folder / f"cycle_{previous}.mrc",
        pixel_size=2.5,
    )


async def main(folder: Path, updates: int) -> None:
    programs = EnginePrograms(
        EngineKind.CISTEM,
        [sys.executable, str(FAKE), "refine2d"],
        [sys.executable, str(FAKE), "merge2d"],
    )
    runner = CycleRunner(folder, programs, pool_size=2, jobs_per_cycle=2, log=print)
    stream = StreamRunner(runner)
    end_orphans(folder, print, grace=1.0)
    stream.recover()
    index = stream.state()
    if index is None:
        index = await stream.start(1, inputs(folder, 0, 1), SETTINGS)
    while index.updates < updates:
        n = index.updates
        await stream.update(index.cycle + 1, inputs(folder, n, None), SETTINGS, force=True)
        index = stream.state()
        assert index is not None


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
