"""Child process of the crash test: ingest forever in small batches until killed.

Usage: python -m tests.ingest.crash_child WARP_FOLDER OUT_FOLDER
Prints ``open`` once the Dataset is open, then polls continuously.
"""

from __future__ import annotations

import sys
from pathlib import Path

from live2d_tui.dataset import ingest


def main() -> None:
    ingest.BATCH_BYTES = 64 << 10  # many small commits: more instants to be killed at
    ds = ingest.Dataset(Path(sys.argv[1]), Path(sys.argv[2]), settle_seconds=0.0)
    print("open", flush=True)
    while True:
        ds.poll()


if __name__ == "__main__":
    main()
