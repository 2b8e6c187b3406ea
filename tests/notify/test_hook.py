"""The alert hook: valid JSON on stdin, failures logged, a hanging hook ended, nothing waits."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from live2d_tui.events import Alert, AlertCleared, AlertKind, AlertLevel, AlertRaised
from live2d_tui.notify.hook import HookRunner, alert_payload

ALERT = Alert(
    kind=AlertKind.WARP_STALLED,
    level=AlertLevel.WARNING,
    text="Warp has written no new movie for 15 min (last: FoilHole_1 at 14:02)",
    time="2026-05-09T14:17:00+02:00",
)


def runner(argv: list[str], logs: list[tuple[str, str]], timeout: float = 10.0) -> HookRunner:
    return HookRunner(
        argv, timeout=timeout, cwd=None, log=lambda text, level: logs.append((text, level))
    )


def test_payload_keys() -> None:
    raised = alert_payload(AlertRaised(ALERT), session={"session": "grid3"})
    assert raised["event"] == "raised" and raised["kind"] == "warp_stalled"
    assert raised["text"] == ALERT.text and raised["time"] == raised["raised"] == ALERT.time
    assert raised["notify"] is True and raised["session"] == "grid3"
    ended = alert_payload(AlertCleared(ALERT, "Warp resumed", "2026-05-09T14:30:00+02:00", True))
    assert ended["event"] == "cleared" and ended["text"] == "Warp resumed"
    assert ended["raised"] == ALERT.time and ended["time"].endswith("14:30:00+02:00")
    json.dumps(ended)


async def test_the_hook_gets_the_alert_as_json(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    script = f"import json, sys; open({str(out)!r}, 'w').write(json.dumps(json.load(sys.stdin)))"
    logs: list[tuple[str, str]] = []
    hooks = runner([sys.executable, "-c", script], logs)
    payload = alert_payload(AlertRaised(ALERT), session={"session": "grid3"})
    hooks.submit(payload)
    await hooks.close(grace=30.0)
    assert json.loads(out.read_text()) == payload
    assert logs == []


async def test_a_failing_or_missing_hook_is_logged(tmp_path: Path) -> None:
    logs: list[tuple[str, str]] = []
    script = "import sys; print('chat server said no'); sys.exit(3)"
    hooks = runner([sys.executable, "-c", script], logs)
    hooks.submit({"a": 1})
    missing = runner([str(tmp_path / "no-such-program")], logs)
    missing.submit({"a": 1})
    await hooks.close(grace=30.0)
    await missing.close(grace=30.0)
    texts = " | ".join(text for text, _ in logs)
    assert "failed (exit status 3): chat server said no" in texts
    assert "could not start" in texts
    assert {level for _, level in logs} == {"warning"}


async def test_a_hanging_hook_is_ended_and_delays_nothing(tmp_path: Path) -> None:
    logs: list[tuple[str, str]] = []
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    hooks = runner([sys.executable, "-c", script], logs, timeout=1.0)
    for _ in range(3):
        hooks.submit({"a": 1})
    # submitting returned while the hooks run (each would sleep 10 min): nothing waited for them
    assert hooks.busy == 2 and not logs
    for _ in range(200):
        await asyncio.sleep(0.05)
        if len([t for t, _ in logs if "still running" in t]) == 3:
            break
    assert len([t for t, _ in logs if "still running after 1 s" in t]) == 3
    pid = int(pid_file.read_text())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # ended (at most unreaped)
    await hooks.close()
