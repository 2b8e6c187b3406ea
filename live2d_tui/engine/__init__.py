"""The built-in 2D classification engine: drop-in ``refine2d`` / ``merge2d`` programs.

Both programs speak cisTEM's stdin protocol exactly (docs/protocol.md), so
the cycle runner drives them like cisTEM's own. They run ONE numerical thread per process (the
runner's pool provides the parallelism): importing this package pins the BLAS/OpenMP thread
counts to 1, which must happen before numpy is first imported in the process.
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
):
    os.environ[_var] = "1"


def _keep_freed_memory() -> None:
    """Ask glibc to serve large blocks from the heap and keep freed memory (no trimming).

    The search allocates the same few tens of MB of temporaries for every batch; with glibc's
    defaults each is a fresh mmap whose pages fault in again, which showed up as a third of the
    CPU time in system time. A no-op where glibc's ``mallopt`` is unavailable.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum on 64-bit
    mallopt(m_trim_threshold, 1 << 30)


_keep_freed_memory()

ENGINE_VERSION = "1.1"
"""Version of the engine's numerics, printed in the banner (``Library Version``). 1.1: the star's
x/y shifts follow cisTEM refine2d's convention (docs/conventions.md); 1.0 wrote them negated."""
