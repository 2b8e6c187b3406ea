"""The live job supervisor: automatic jobs, stop/abort, persistent history, crash recovery.

Public API (the UI and ``live2d run`` use only these names)::

    from live2d_tui.supervisor import Supervisor, SupervisorError, SupervisorSnapshot

and the value types a snapshot holds (:class:`CycleRecord`, :class:`WarpSummary`). The modules
only the supervisor uses live here too: the session state file (:mod:`.state`), the output
folder's lock (:mod:`.lock`) and the session log (:mod:`.sessionlog`).

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
from live2d_tui.supervisor.state import CycleRecord

__all__ = [
    "CycleRecord",
    "OutputFolderInUse",
    "Supervisor",
    "SupervisorError",
    "SupervisorSnapshot",
    "WarpSummary",
]
