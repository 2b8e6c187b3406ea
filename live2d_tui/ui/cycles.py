"""Cycles' class averages for the grid: read, scaled and laid out off the loop, the last few
kept in memory.

:class:`CycleLoader` is the one place a cycle's ``cycle_<N>.mrc`` becomes grid data. A load
runs in one thread worker (read, scale, montage of the first page, encoding), so the loop only
swaps the finished page in; a newer load cancels an older one (exclusive worker group). The
last :data:`CACHE_CYCLES` cycles stay decoded, so stepping back and forth with ``[ ]`` is
instant.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from textual.dom import DOMNode
from textual.worker import get_current_worker

from live2d_tui.supervisor import CycleRecord
from live2d_tui.ui import montage, text
from live2d_tui.ui.widgets.grid_page import GridData, GridPage, GridView

CACHE_CYCLES = 4
"""Cycles kept decoded in memory, so stepping back and forth with [ ] is instant."""


class CycleLoader:
    """Loads cycles for one owner (the screen whose grid shows them) and caches the newest.

    Args:
        owner: Runs the workers (they end with it).
        loaded: Called on the loop with a loaded cycle and its first page.
        failed: Called on the loop with a message when a cycle's file cannot be read.
    """

    def __init__(
        self,
        owner: DOMNode,
        loaded: Callable[[CycleRecord, GridData, GridPage], None],
        failed: Callable[[str], None],
    ) -> None:
        self._owner = owner
        self._loaded = loaded
        self._failed = failed
        self._cache: OrderedDict[int, GridData] = OrderedDict()

    def cached(self, number: int) -> GridData | None:
        """Cycle ``number``'s data when it is in memory (it becomes the most recently used)."""
        data = self._cache.get(number)
        if data is not None:
            self._cache.move_to_end(number)
        return data

    def clear(self) -> None:
        """Forget every cycle (another session)."""
        self._cache.clear()

    def load(self, record: CycleRecord, folder: Path, view: GridView) -> None:
        """Read cycle ``record`` from ``folder`` and build its first page for ``view``, in a
        thread worker; :attr:`loaded` or :attr:`failed` is called when it is done."""
        self._owner.run_worker(
            lambda: self._load(record, folder, view),
            thread=True,
            exclusive=True,
            group="load-cycle",
            exit_on_error=False,
        )

    def _load(self, record: CycleRecord, folder: Path, view: GridView) -> None:
        # read, scale, build the montage and encode it in this one worker; the loop only swaps
        # the finished page in (ClassGrid.set_data)
        app = self._owner.app
        path = folder / f"{record.name}.mrc"
        try:
            stack = montage.load_class_stack(path)
        except (OSError, ValueError) as exc:
            app.call_from_thread(self._failed, f"Cannot read {path}: {exc}")
            return
        data = GridData.from_stack(
            record.number,
            stack,
            text.members_per_slice(record, stack.shape[0]),
            members_known=not text.is_seed(record),
        )
        if get_current_worker().is_cancelled:
            return
        page = view.page_for(data)
        if not get_current_worker().is_cancelled:
            app.call_from_thread(self._done, record, data, page)

    def _done(self, record: CycleRecord, data: GridData, page: GridPage) -> None:
        self._cache[record.number] = data
        while len(self._cache) > CACHE_CYCLES:
            self._cache.popitem(last=False)
        self._loaded(record, data, page)
