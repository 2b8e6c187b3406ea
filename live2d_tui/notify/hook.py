"""The alert hook: a facility's own command, run for every alert with the alert as JSON on stdin.

The contract (also in the README):

- ``alert_hook`` is an argument list, run without a shell, in the output folder, as a new
  process group; its standard input is one JSON object (:func:`alert_payload`) followed by a
  newline, then end of file; its output is read and thrown away (the last line of a failing
  hook is quoted in the log);
- exit status 0 is success; anything else, a program that cannot be started, or one still
  running after ``alert_hook_timeout`` seconds (then SIGTERM to its group, SIGKILL 2 s later)
  is a failure, written to the session log and otherwise ignored: a hook never stops or delays
  anything else;
- hooks run in the background, at most :data:`MAX_RUNNING` at once, in the order the alerts
  came; alerts beyond :data:`MAX_WAITING` waiting ones are dropped (and the drop is logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from live2d_tui import __version__
from live2d_tui.events import Alert, AlertCleared, AlertRaised

MAX_RUNNING = 2
"""Hooks running at once (a slow chat server must not pile up processes)."""
MAX_WAITING = 50
"""Alerts waiting for a hook beyond which new ones are dropped."""
KILL_GRACE_SECONDS = 2.0
"""Wait between SIGTERM and SIGKILL for a hook past its timeout."""
CLOSE_GRACE_SECONDS = 5.0
"""On shutdown, how long running and waiting hooks may still take (the last alerts of a run,
such as its job's end, are worth delivering)."""


def alert_payload(
    event: AlertRaised | AlertCleared, *, session: dict[str, str] | None = None
) -> dict[str, Any]:
    """The JSON object a hook receives for ``event``.

    Keys: ``event`` (``raised`` or ``cleared``), ``kind``, ``level``, ``text`` (one line),
    ``time`` (when it was raised, or when it ended for ``cleared``; ISO 8601 with offset),
    ``raised`` (when the alert was raised), ``notify`` (a person would want to hear it: every
    raised alert, and the ends worth telling, such as Warp resuming), then ``session``,
    ``warp_folder``, ``output_folder`` (from ``session``), ``host`` and ``program``.
    """
    alert: Alert = event.alert
    if isinstance(event, AlertRaised):
        head = {"event": "raised", "text": alert.text, "time": alert.time, "notify": True}
    else:
        head = {"event": "cleared", "text": event.text, "time": event.time, "notify": event.notify}
    return {
        "event": head["event"],
        "kind": alert.kind.value,
        "level": alert.level.value,
        "text": head["text"],
        "time": head["time"],
        "raised": alert.time,
        "notify": head["notify"],
        **(session or {}),
        "host": socket.gethostname(),
        "program": f"live2d-tui {__version__}",
    }


class HookRunner:
    """Runs the alert hook in the background (see the module docstring)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None,
        log: Callable[[str, str], None],
    ) -> None:
        """A runner with nothing running.

        Args:
            argv: The hook's argument list (empty: no hook; :meth:`submit` does nothing).
            timeout: Seconds after which a running hook is ended.
            cwd: Where the hook runs (the output folder), or the current folder.
            log: ``log(text, level)``, called on the event loop, for failures and drops.
        """
        self.argv = list(argv)
        self.timeout = timeout
        self.cwd = cwd
        self._log = log
        self._waiting: deque[bytes] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._dropped = 0

    @property
    def enabled(self) -> bool:
        """A hook is configured."""
        return bool(self.argv)

    @property
    def busy(self) -> int:
        """Hooks running now."""
        return len(self._tasks)

    def submit(self, payload: dict[str, Any]) -> None:
        """Run the hook for ``payload`` soon (never blocks; call on the event loop)."""
        if not self.argv:
            return
        if len(self._waiting) >= MAX_WAITING:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 100 == 0:
                self._log(
                    f"Alert hook: {self._dropped} alert(s) dropped, {MAX_WAITING} already "
                    "waiting (is the hook hanging?)",
                    "warning",
                )
            return
        self._waiting.append((json.dumps(payload, ensure_ascii=False) + "\n").encode("utf-8"))
        self._start_waiting()

    def _start_waiting(self) -> None:
        while self._waiting and len(self._tasks) < MAX_RUNNING:
            data = self._waiting.popleft()
            task = asyncio.create_task(self._run(data), name="live2d-alert-hook")
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover
            self._log(f"Alert hook: {task.exception()}", "warning")
        self._start_waiting()

    async def _run(self, data: bytes) -> None:
        name = self.argv[0]
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._log(f"Alert hook {name} could not start: {exc.strerror or exc}", "warning")
            return
        try:
            output, _ = await asyncio.wait_for(proc.communicate(data), self.timeout)
        except TimeoutError:
            await self._end(proc)
            self._log(
                f"Alert hook {name} was still running after {self.timeout:g} s and was ended",
                "warning",
            )
            return
        except asyncio.CancelledError:
            await asyncio.shield(self._end(proc))
            raise
        if proc.returncode != 0:
            lines = [line for line in output.decode("utf-8", "replace").splitlines() if line]
            tail = f": {lines[-1].strip()[:200]}" if lines else ""
            self._log(f"Alert hook {name} failed (exit status {proc.returncode}){tail}", "warning")

    async def _end(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM the hook's group, SIGKILL after a grace time, reap."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, None)):
            if proc.returncode is not None:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), wait)
                return
            except TimeoutError:
                continue

    async def close(self, grace: float = CLOSE_GRACE_SECONDS) -> None:
        """Let running and waiting hooks finish for up to ``grace`` seconds, then end them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._tasks and loop.time() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - loop.time()))
        self._waiting.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
