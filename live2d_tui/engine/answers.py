"""Reading the stdin answers of refine2d/merge2d with cisTEM's rules
(docs/protocol.md#scripted-mode-rules).

Scripted mode (stdin not a TTY), as ``src/core/userinput.cpp`` behaves:

- a blank line (also what EOF yields) → `` Error: Blank answer in scripted mode, exiting...``,
  exit 255; defaults are never applied;
- a line starting with ``*`` → immediate exit 0;
- ``?`` → help, then counted as invalid;
- int: a digit, or ``-`` then a digit, parsed like ``atoi`` (leading digits); float: a digit, or
  ``-``/``.`` then a digit, parsed like ``atof``; yes/no: first character y/Y/n/N; file name:
  any non-empty line (``\\r`` kept as part of the name);
- a wrong type or an out-of-range value prints the reason, then
  `` Error: Running as script, and answer is not recognized...`` and exits 255;
- a must-exist file that is missing prints
  ``Error: File does not exist, please provide an existing file!`` and exits 255.

Each accepted answer is echoed as ``<prompt padded to 50> : <answer>``. In interactive mode
(a TTY) an invalid answer re-asks the prompt instead of exiting.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from live2d_tui import __version__
from live2d_tui.engine import ENGINE_VERSION
from live2d_tui.formats.prompts import AnswerKind, Prompt
from live2d_tui.formats.protocol import Answer

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ProgramExit(Exception):
    """Stop the program with ``code`` (cisTEM's ``exit()`` calls during input)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class InvalidAnswer(ValueError):
    """An answer of the wrong type or out of range; the message is cisTEM-like."""


def banner(program: str, version: str, stream: TextIO, *, scripted: bool) -> None:
    """Print the welcome banner with the version lines cisTEM prints."""
    stream.write(
        f"\n\n        **   Welcome to {program}   **\n\n"
        f"{'Version':>19} : {version}\n"
        f"{'Compiled':>19} : live2d-tui {__version__}\n"
        f"{'Library Version':>19} : live2d-engine {ENGINE_VERSION}\n"
        f"{'From Branch':>19} : builtin\n"
        f"{'Mode':>19} : {'Scripted' if scripted else 'Interactive'}\n\n"
    )
    stream.flush()


def parse_answer(prompt: Prompt, text: str) -> Answer:
    """Parse one non-blank answer; raises :class:`InvalidAnswer` with cisTEM's reason."""
    kind = prompt.kind
    if kind in (AnswerKind.FILENAME, AnswerKind.EXISTING_FILE):
        if kind is AnswerKind.EXISTING_FILE and not Path(text).is_file():
            raise InvalidAnswer("Error: File does not exist, please provide an existing file!")
        return text
    if kind is AnswerKind.YES_NO:
        first = text[0]
        if first in "yY":
            return True
        if first in "nN":
            return False
        raise InvalidAnswer("Error: Answer must be yes or no")
    value: float
    if kind is AnswerKind.INT:
        if not (text[0].isdigit() or (text[0] == "-" and text[1:2].isdigit())):
            raise InvalidAnswer("Error: Answer is not an integer")
        match = _INT.match(text)
        assert match is not None  # guaranteed by the first-character check
        value = int(match.group(0))
    else:
        ok = text[0].isdigit() or (text[0] in "-." and text[1:2].isdigit())
        ok = ok or (text[:2] == "-." and text[2:3].isdigit())
        if not ok:
            raise InvalidAnswer("Error: Answer is not a number")
        match = _FLOAT.match(text)
        assert match is not None
        value = float(match.group(0))
    if prompt.minimum is not None and value < prompt.minimum:
        raise InvalidAnswer(f"Error: Answer must be at least {prompt.minimum:g}")
    if prompt.maximum is not None and value > prompt.maximum:
        raise InvalidAnswer(f"Error: Answer must be at most {prompt.maximum:g}")
    return value


def read_answers(
    prompts: Sequence[Prompt],
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    *,
    scripted: bool | None = None,
) -> dict[str, Answer]:
    """Read one answer per prompt, echo it, and return ``{prompt.key: value}``.

    Raises:
        ProgramExit: on ``*`` (code 0), or on a blank/invalid answer in scripted mode (255).
    """
    inp = stdin if stdin is not None else sys.stdin
    out = stdout if stdout is not None else sys.stdout
    if scripted is None:
        try:
            scripted = not inp.isatty()
        except (AttributeError, ValueError):
            scripted = True
    answers: dict[str, Answer] = {}
    for prompt in prompts:
        while True:
            if not scripted:
                out.write(f"{prompt.text} : ")
                out.flush()
            line = inp.readline()
            text = line[:-1] if line.endswith("\n") else line
            if not text:
                if scripted:
                    out.write(" Error: Blank answer in scripted mode, exiting...\n")
                    out.flush()
                    raise ProgramExit(255)
                continue
            if text.startswith("*"):
                raise ProgramExit(0)
            try:
                if text.startswith("?"):
                    out.write(f"{prompt.text}: answer type {prompt.kind.value}\n")
                    raise InvalidAnswer("Error: Help requested")
                value = parse_answer(prompt, text)
            except InvalidAnswer as exc:
                out.write(f"{exc}\n")
                if scripted:
                    out.write(" Error: Running as script, and answer is not recognized...\n")
                    out.flush()
                    raise ProgramExit(255) from None
                continue
            break
        out.write(f"{prompt.text:<50} : {text}\n")
        answers[prompt.key] = value
    out.flush()
    return answers
