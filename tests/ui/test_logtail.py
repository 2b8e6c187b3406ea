"""LogTail: the last N lines, then appended complete lines; truncation restarts."""

from __future__ import annotations

from pathlib import Path

from live2d_tui.ui.logtail import LogTail, tail_lines


def test_tail_of_large_file(tmp_path: Path) -> None:
    path = tmp_path / "live2d.log"
    path.write_text("".join(f"line {i} " + "x" * 100 + "\n" for i in range(5000)))
    lines, offset = tail_lines(path, 1000)
    assert (
        len(lines) == 1000
        and lines[0].startswith("line 4000 ")
        and lines[-1].startswith("line 4999 ")
    )
    assert offset == path.stat().st_size


def test_follow_partial_and_truncate(tmp_path: Path) -> None:
    path = tmp_path / "live2d.log"
    tail = LogTail(path, max_lines=3)
    assert tail.read_new() == ([], False)
    path.write_text("a\nb\nc\nd\n")
    assert tail.read_new() == (["b", "c", "d"], True)
    with path.open("a") as fh:
        fh.write("e\nf")
    assert tail.read_new() == (["e"], False)
    with path.open("a") as fh:
        fh.write("\n")
    assert tail.read_new() == (["f"], False)
    assert tail.read_new() == ([], False)
    path.write_text("new\n")
    assert tail.read_new() == (["new"], True)
