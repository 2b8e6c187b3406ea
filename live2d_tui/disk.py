"""Free space on the disk holding a folder: one probe for ingest, failure messages and alerts.

Every part that asks goes through :func:`free_bytes` (as ``disk.free_bytes``, looked up at call
time), so the whole program sees one answer and a test can stand in a small disk for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def free_bytes(folder: Path) -> int:
    """Bytes free for this user on the filesystem holding ``folder``.

    Raises:
        OSError: the folder cannot be looked at.
    """
    return int(shutil.disk_usage(folder).free)
