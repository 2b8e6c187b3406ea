"""The built-in 2D classification engine: drop-in ``refine2d`` / ``merge2d`` programs.

Both programs speak cisTEM's stdin protocol exactly (../shared/reference/cistem-protocol.md), so
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

ENGINE_VERSION = "1.0"
"""Version of the engine's numerics; printed in the banner and stored in dump files."""
