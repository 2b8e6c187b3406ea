"""``live2d report``: the PNG montage with marks and figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from live2d_tui.results import report
from live2d_tui.results.selection import Selection, write_selection


def test_report_png_marks_selected_and_rejected(
    session_copy: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = session_copy
    write_selection(out, Selection(cycle=3).with_marks({1: "good", 2: "bad"}))
    target = tmp_path / "classes.png"
    done = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "report", str(out), "-o", str(target)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 classes of cycle 3" in done.stdout
    image = np.asarray(Image.open(target).convert("RGB")).astype(int)
    pad, head = 10, 36
    cell = report.TILE + 2 * pad

    def frame_colour(column: int) -> tuple[int, ...]:
        x = pad + column * cell + pad - report.FRAME + 1
        return tuple(image[head + report.TILE // 2, x])

    assert frame_colour(0) == report.GREEN
    assert frame_colour(1) == report.RED
    assert frame_colour(2) == report.BACKGROUND
    assert (out / "cycle_3.quality.json").is_file()  # computed for the figures
    missing = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "report", str(out), "--cycle", "7", "-o", str(target)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "no completed cycle 7" in missing.stderr


def test_report_text_without_unicode_fonts() -> None:
    assert "6.2 Å ✓ –".translate(report.ASCII) == "6.2 A + -"
    classes = [report.ReportClass(1, np.zeros((8, 8), np.float32), 0, None, "unreviewed")]
    page = report.render_report(classes, "title", "footer")
    assert page.size[0] > report.TILE
