"""Synthetic Warp sessions with ground truth, and the scorer that judges 2D classes against it.

Public API::

    from live2d_tui.simulate import SimulationOptions, simulate_session
    summary = simulate_session(out_dir, SimulationOptions(micrographs=5, box=64, seed=1))

The simulator writes a session folder exactly as Warp 1 (or, with ``warp2``, Warp 2) does during
live processing, plus a ``truth/`` sidecar the program never reads. See :mod:`.session` for the
write order, :mod:`.particles` for image formation and :mod:`.score` for the scorecard.
"""

from live2d_tui.simulate.options import SimulationOptions
from live2d_tui.simulate.records import SimEvent, SimulationSummary
from live2d_tui.simulate.session import simulate_session

__all__ = ["SimEvent", "SimulationOptions", "SimulationSummary", "simulate_session"]
