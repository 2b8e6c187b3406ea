"""Running the engine's programs as real subprocesses, the way the cycle runner does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from live2d_tui.formats.prompts import MERGE2D_PROMPTS, REFINE2D_PROMPTS, REFINE2D_TERMINATION
from live2d_tui.formats.protocol import (
    Merge2dRequest,
    Refine2dRequest,
    format_answer,
    stdin_text,
)


def run_program(
    module: str, lines: Sequence[str], *, seed: int | None = 7, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m live2d_tui.engine.<module>`` with ``lines`` on a stdin pipe."""
    env = dict(os.environ)
    if seed is not None:
        env["LIVE2D_ENGINE_SEED"] = str(seed)
    return subprocess.run(
        [sys.executable, "-m", f"live2d_tui.engine.{module}"],
        input=stdin_text(lines),
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=250,
        check=False,
    )


def refine_lines(request: Refine2dRequest) -> list[str]:
    """The 25 answer lines the runner sends for ``request``."""
    return [
        format_answer(v, p.kind) for v, p in zip(request.values(), REFINE2D_PROMPTS, strict=True)
    ]


def merge_lines(request: Merge2dRequest) -> list[str]:
    """The 3 answer lines of merge2d."""
    return [
        format_answer(v, p.kind) for v, p in zip(request.values(), MERGE2D_PROMPTS, strict=True)
    ]


def request(
    stack: Path, star: Path, *, classes: str = "/dev/null", **changes: object
) -> Refine2dRequest:
    """A refinement request with the runner's usual values, changed by ``changes``."""
    base: dict[str, object] = {
        "input_stack": str(stack),
        "input_star": str(star),
        "input_classes": classes,
        "output_star": "/dev/null",
        "output_classes": "/dev/null",
        "class_number": 0,
        "first_particle": 0,
        "last_particle": 0,
        "fraction": 1.0,
        "pixel_size": 3.0,
        "mask_radius": 80.0,
        "low_res": 300.0,
        "high_res": 20.0,
        "angular_step": 15.0,
        "search_range": 30.0,
        "smoothing": 1.0,
        "padding": 2,
        "normalize": True,
        "invert": True,
        "exclude_blank_edges": False,
        "automask": False,
        "autocenter": True,
        "dump": False,
        "dump_file": "/dev/null",
        "threads": 1,
    }
    base.update(changes)
    return Refine2dRequest(**base)  # type: ignore[arg-type]


def ok(result: subprocess.CompletedProcess[str], termination: str) -> None:
    """Assert success as the runner judges it: rc 0 and the termination line."""
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert termination in result.stdout, result.stdout[-2000:]


def refine_ok(
    stack: Path, star: Path, *, classes: str = "/dev/null", **changes: object
) -> subprocess.CompletedProcess[str]:
    """Run refine2d on :func:`request` ``(stack, star, classes=..., **changes)`` and assert that
    it succeeded (:func:`ok`); returns the finished process."""
    result = run_program("refine2d", refine_lines(request(stack, star, classes=classes, **changes)))
    ok(result, REFINE2D_TERMINATION)
    return result
