"""The ingest loop's cadence against a table Warp rewrites often (a fast session).

The ingest reads Warp's particle table only once its (size, mtime) stayed the same for the
settle time (1 s), and then the stacks it names once they did too. The loop's next look comes
from :func:`next_look`; this drives the real :class:`StabilityTracker` on a virtual clock with
the loop's looks, against a table rewritten every ``period`` seconds, and checks that every
rewrite is read and how long after it was written its stacks are appended.
"""

from __future__ import annotations

from live2d_tui.supervisor.loops import next_look
from live2d_tui.warp.snapshot import StabilityTracker

SETTLE = 1.0
INTERVAL = 1.0
PASS_SECONDS = 0.05
"""The time one ingest pass takes."""


def appended_delays(period: float, duration: float = 120.0, phase: float = 0.37) -> list[float]:
    """Per table version: seconds from its rewrite to the pass that appends its stacks
    (versions never read are left out)."""
    now = 0.0
    tracker = StabilityTracker(SETTLE, clock=lambda: now)
    accepted: int | None = None
    settling_stacks: set[int] = set()  # versions whose new stacks wait to settle
    appended: dict[int, float] = {}
    now = phase
    while now < duration:
        version = int(now // period)
        table_stable = tracker.check("table", (version, version))
        if table_stable and version != accepted:
            accepted = version
            settling_stacks.add(version)  # the stacks it names are first seen now
        for v in sorted(settling_stacks):
            if tracker.check(f"stacks {v}", (v, v)):
                settling_stacks.discard(v)
                appended[v] = now - v * period
        pending = not table_stable or bool(settling_stacks)
        now += PASS_SECONDS + next_look(INTERVAL, pending)
    last = int(duration // period) - 1
    return [appended[v] for v in range(1, last) if v in appended]


def test_a_table_rewritten_every_1_3_s_is_read_between_rewrites() -> None:
    period = 1.3
    delays = appended_delays(period)
    versions = int(120.0 // period) - 2
    # every version (or the next, which lists its movie too) is read: at most one in five is
    # skipped by a rewrite, and a movie's stacks are appended about 2 s after its listing
    assert len(delays) >= 0.8 * versions
    assert max(delays) <= 2 * SETTLE + 4 * (PASS_SECONDS + 0.2)


def test_a_quiet_session_is_looked_at_once_per_interval() -> None:
    assert next_look(INTERVAL, pending=False) == INTERVAL
    assert next_look(0.1, pending=True) == 0.1
