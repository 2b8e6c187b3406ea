"""The shared frame of the engine's stdin programs (``live2d-refine2d``, ``live2d-merge2d``).

Both behave as cisTEM's programs do around their calculation: any argument prints a usage line
and exits 0; otherwise the banner, the answers read from stdin with cisTEM's scripted-mode rules
(:func:`live2d_tui.engine.answers.read_answers`, whose :class:`~.answers.ProgramExit` becomes the
exit code), the calculation, then either the program's normal-termination line (exit 0) or
``Error : <reason>`` (exit 255) for an expected failure. Unexpected exceptions propagate (a
traceback, exit 1), so a bug is never mistaken for bad input.

This is also the one place the program code silences mrcfile 1.5's numpy 2.5 deprecation warning
(the tests do it once, in ``pyproject.toml``).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from live2d_tui.engine.answers import ProgramExit, banner, read_answers
from live2d_tui.formats.prompts import Prompt
from live2d_tui.formats.protocol import Answer

MRCFILE_DTYPE_WARNING = "Setting the dtype on a NumPy array"
"""Start of the DeprecationWarning numpy 2.5 raises when mrcfile 1.5 sets a record array's dtype
while reading or writing a header; harmless, and silenced so program logs stay clean."""


def silence_mrcfile_dtype_warning() -> None:
    """Ignore :data:`MRCFILE_DTYPE_WARNING` for the rest of the process."""
    warnings.filterwarnings("ignore", MRCFILE_DTYPE_WARNING, category=DeprecationWarning)


def run_program(
    *,
    program: str,
    version: str,
    prompts: Sequence[Prompt],
    termination: str,
    calculate: Callable[[dict[str, Answer], TextIO], object],
    errors: tuple[type[Exception], ...],
    argv: list[str] | None = None,
) -> int:
    """Run one engine program on stdin/stdout and return its exit code.

    Args:
        program: cisTEM's program name for the banner and usage line (``Refine2D``).
        version: The version printed in the banner.
        prompts: The prompts whose answers are read from stdin.
        termination: The line printed after a successful calculation.
        calculate: Does the work from ``{prompt key: answer}``, writing progress to the stream.
        errors: Expected failures, reported as ``Error : <reason>`` with exit code 255.
        argv: The arguments (default ``sys.argv[1:]``); any argument prints the usage line.
    """
    args = sys.argv[1:] if argv is None else argv
    out = sys.stdout
    if args:
        out.write(
            f"Usage: live2d-{program.lower()} < answers ({len(prompts)} lines, cisTEM "
            f"{program.lower()}'s prompts)\n"
        )
        return 0
    silence_mrcfile_dtype_warning()
    scripted = not sys.stdin.isatty()
    banner(program, version, out, scripted=scripted)
    try:
        answers = read_answers(prompts, sys.stdin, out, scripted=scripted)
    except ProgramExit as stop:
        return stop.code
    try:
        calculate(answers, out)
    except errors as exc:
        out.write(f"\nError : {exc}\n")
        out.flush()
        return 255
    out.write(f"\n{termination}\n")
    out.flush()
    return 0
