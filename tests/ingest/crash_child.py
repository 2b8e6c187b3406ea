"""Child process of the crash test: ingest forever in small batches until killed.

Usage: python -m tests.ingest.crash_child WARP_FOLDER OUT_FOLDER [--stall]
Prints ``open`` once the Dataset is open, then polls continuously. With ``--stall`` the first
append stops right after its slices are written and fsynced, before the header and the ledger
(printing ``stalled``), so the parent's SIGKILL is certain to land inside an append.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from live2d_tui.dataset import ingest, stack


def stall_before_header() -> None:
    def stalled(self: stack.CombinedStack, nz: int) -> None:
        print("stalled", flush=True)
        while True:
            time.sleep(60)

    stack.CombinedStack._write_header = stalled  # type: ignore[method-assign]


def main() -> None:
    ingest.BATCH_BYTES = 64 << 10  # many small commits: more instants to be killed at
    ds = ingest.Dataset(Path(sys.argv[1]), Path(sys.argv[2]), settle_seconds=0.0)
    if "--stall" in sys.argv[3:]:
        stall_before_header()
    print("open", flush=True)
    while True:
        ds.poll()


if __name__ == "__main__":
    main()
