"""Property: after any sequence of Warp snapshots (new, vanished, returning and reprocessed
micrographs, torn tables), every active particle's slice in the combined stack equals its source
slice, the active set is exactly the last valid snapshot, and no particle is active twice."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live2d_tui.dataset.ingest import Dataset

from .check import check_active_match_sources
from .warpfake import MODEL, WarpFolder

SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
ROOTS = ("m0", "m1", "m2", "m3", "m4")

step = st.fixed_dictionaries(
    {
        "writes": st.dictionaries(st.sampled_from(ROOTS), st.integers(1, 5), max_size=3),
        "subset": st.sets(st.sampled_from(ROOTS)),
        "torn": st.booleans(),
        "reopen": st.booleans(),
    }
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_any_sequence_of_snapshots_keeps_the_stack_true(
    steps: list[dict[str, object]], seed: int
) -> None:
    # tmpfs when available: fsync costs nothing there, and durability is not what is tested
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        warp = WarpFolder(Path(tmp) / "w", box=16)
        out = Path(tmp) / "out"
        ds = Dataset(warp.root, out, settle_seconds=0.0)
        try:
            for k, s in enumerate(steps):
                writes = s["writes"]
                assert isinstance(writes, dict)
                for j, (root, count) in enumerate(sorted(writes.items())):
                    warp.write_micrograph(root, count, seed=seed + 100 * k + j)
                subset = [r for r in ROOTS if r in s["subset"] and r in warp.micrographs]  # type: ignore[operator]
                warp.write_star(subset)
                for _ in range(3):  # star: two looks; then its new stacks: a second look
                    ds.poll()
                if s["torn"]:
                    text = warp.star_text(list(warp.micrographs))
                    path = warp.root / f"goodparticles_{MODEL}.star"
                    path.write_text(text[: max(1, len(text) - 7)])
                    ds.poll()
                    ds.poll()
                if s["reopen"]:
                    ds.close()
                    ds = Dataset(warp.root, out, settle_seconds=0.0)
                    for _ in range(3):
                        ds.poll()
                sources = {warp.stack_rel(r): warp.micrographs[r] for r in subset}
                check_active_match_sources(ds, sources)
                active_stacks = {s for s, r in ds._ledger.ranges.items() if r.active}
                assert active_stacks == set(sources)
        finally:
            ds.close()
