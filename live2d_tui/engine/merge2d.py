"""``live2d-merge2d``: a drop-in for cisTEM's ``merge2d`` (3 stdin answers).

Reads dump files ``seed`` with 1..n inserted before the extension
(:func:`live2d_tui.formats.prompts.dump_file_name`), refuses a missing or incompatible dump
(exit 255, as cisTEM), sums them and writes the class averages (float32, protein white, pixel
size in the header) with cisTEM's stdout lines and ``Merge2D: Normal termination``. Runnable as
``python -m live2d_tui.engine.merge2d``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from live2d_tui.engine.averages import class_averages, occupancy_lines, write_mrc
from live2d_tui.engine.program import run_program
from live2d_tui.formats.live2d_dump import ClassSums, DumpError, read_dump
from live2d_tui.formats.prompts import MERGE2D_PROMPTS, MERGE2D_TERMINATION, dump_file_name
from live2d_tui.formats.protocol import Answer, Merge2dRequest

VERSION = "1.00"


def merge(output: str, seed: str, count: int, out: TextIO) -> ClassSums:
    """Sum ``count`` dumps and write the class averages; raises :class:`DumpError`."""
    names = [dump_file_name(seed, i) for i in range(1, count + 1)]
    for name in names:
        if not Path(name).is_file():
            raise DumpError(f"Dump file {name} not found")
    total = read_dump(Path(names[0]))
    out.write(
        f"\nNumber of classes = {total.n_classes}, nonzero classes = {int(total.nonzero.sum())}"
        f", box size = {total.box}, pixel size = {total.pixel_size:.6g}\n\n"
        "Reading intermediate arrays...\n\n"
    )
    out.write(f"{names[0]}\n")
    for name in names[1:]:
        out.write(f"{name}\n")
        total.add(read_dump(Path(name)))
    out.write("\n")
    for line in occupancy_lines(total):
        out.write(line + "\n")
    write_mrc(output, class_averages(total), total.pixel_size)
    out.write(f"\nTotal logp = {total.total_logp:.6g}\n")
    return total


def _calculate(answers: dict[str, Answer], out: TextIO) -> None:
    request = Merge2dRequest.from_answers(answers)
    merge(request.output_classes, request.dump_seed, request.dump_count, out)


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the 3 answers from stdin, merge, return the exit code."""
    return run_program(
        program="Merge2D",
        version=VERSION,
        prompts=MERGE2D_PROMPTS,
        termination=MERGE2D_TERMINATION,
        calculate=_calculate,
        errors=(DumpError, OSError, ValueError, MemoryError),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
