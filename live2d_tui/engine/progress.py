"""A progress bar in cisTEM's exact stdout format (``src/core/progressbar.cpp``).

The cycle runner's progress parser splits stdout on ``\\r`` and ``\\n`` and matches
``(\\d{1,3})%\\s*\\[``, for cisTEM and for this engine alike:

- start:  ``     0% [<30 spaces>] ???h:??m:??s   \\r``
- update: ``   <%3d>% [<30-char bar of '='>] <h>h:<mm>m<ss>s<spaces>\\r`` at most once a second
- end:    ``   100% [==============================] done! (<h>h:<mm>m<ss>s)<spaces>\\n``

Like cisTEM, no bar is drawn for fewer than 2 ticks.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30


def _hms(seconds: float) -> str:
    total = max(0, int(seconds))
    return f"{total // 3600}h:{(total // 60) % 60:02d}m:{total % 60:02d}s"


class ProgressBar:
    """cisTEM-style progress bar for ``total`` ticks, written to ``stream``."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = int(total)
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = self.total >= 2
        self.start = time.monotonic()
        self._last_print = self.start
        if self.enabled:
            self.stream.write(f"     0% [{' ' * _WIDTH}] ???h:??m:??s   \r")
            self.stream.flush()

    def update(self, done: int, *, force: bool = False) -> None:
        """Report ``done`` ticks; prints at most once a second unless ``force``."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last_print < 1.0:
            return
        self._last_print = now
        fraction = min(1.0, max(0.0, done / self.total))
        filled = int(fraction * _WIDTH)
        elapsed = now - self.start
        remaining = elapsed / fraction - elapsed if fraction > 0 else 0.0
        bar = "=" * filled + " " * (_WIDTH - filled)
        self.stream.write(f"   {int(fraction * 100):3d}% [{bar}] {_hms(remaining)}     \r")
        self.stream.flush()

    def finish(self) -> None:
        """Print the final ``100% [...] done!`` line."""
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        self.stream.write(f"   100% [{'=' * _WIDTH}] done! ({_hms(elapsed)})     \n")
        self.stream.flush()
