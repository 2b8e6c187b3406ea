"""The live job supervisor: automatic jobs, stop/abort, persistent history, crash recovery.

Public API (the UI and ``live2d run`` use only these names)::

    from live2d_tui.supervisor import Supervisor, SupervisorError, SupervisorSnapshot

See :mod:`live2d_tui.supervisor.core` for the behaviour and its invariants.
"""

from __future__ import annotations

from live2d_tui.supervisor.core import Supervisor
from live2d_tui.supervisor.model import (
    OutputFolderInUse,
    SupervisorError,
    SupervisorSnapshot,
    WarpSummary,
)

__all__ = [
    "OutputFolderInUse",
    "Supervisor",
    "SupervisorError",
    "SupervisorSnapshot",
    "WarpSummary",
]
