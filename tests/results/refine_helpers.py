"""Feeding an exported cisTEM star to refine2d: the built-in one and the strict fake cisTEM."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from engine.helpers import refine_lines, request, run_program

from live2d_tui.formats.cistem_star import read_star
from live2d_tui.formats.prompts import REFINE2D_TERMINATION
from live2d_tui.formats.protocol import stdin_text

FAKE = Path(__file__).resolve().parents[1] / "classify" / "fake_cistem.py"


def refine_accepts(star: Path, stack: Path, classes: Path, work: Path) -> None:
    """Both programs refine every row of ``star`` against ``classes`` and write them back."""
    for name in ("builtin", "fake"):
        out = work / f"refined_{name}.star"
        lines = refine_lines(
            request(
                stack,
                star,
                classes=str(classes),
                output_star=str(out),
                output_classes=str(work / f"classes_{name}.mrc"),
                pixel_size=3.0,
                mask_radius=60.0,
                high_res=20.0,
                dump=True,
                dump_file=str(work / f"dump_{name}.dat"),
            )
        )
        if name == "builtin":
            result = run_program("refine2d", lines)
        else:
            result = subprocess.run(
                [sys.executable, str(FAKE), "refine2d"],
                input=stdin_text(lines),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-2000:])
        assert REFINE2D_TERMINATION in result.stdout, name
        assert len(read_star(out)) == len(read_star(star)), name
