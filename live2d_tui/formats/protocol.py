"""Answer lists for ``refine2d`` (25 lines) and ``merge2d`` (3 lines), validated before launch.

cisTEM reads one answer per stdin line in scripted mode and exits 255 on any wrong one — or, worse,
silently misreads paths (docs/protocol.md#scripted-mode-rules). So every list is checked
here against the shared prompt table (:mod:`live2d_tui.formats.prompts`) before a process starts:

- always 25 refine2d lines (the threads line is fatal when missing on OpenMP builds);
- types as cisTEM parses them (an int is never a bool, floats are finite, no ``e``-notation);
- ranges from the prompt table, plus pixel size and mask radius > 0 and fraction > 0;
- files that must exist do exist (relative names are resolved against the program run's working
  folder);
- paths free of cisTEM's pitfalls: ``data_``/``loop_`` anywhere in a path (refine2d echoes paths
  into its star's comments and its reader then starts the table there), a ``.cistem`` suffix on a
  text star, a merge2d dump seed whose base name has another dot, newlines in a name.

:func:`check_echo` compares the prompts a program echoed with the table, so a future cisTEM that
changes the prompt order shows up in the logs instead of as a wrong run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from live2d_tui.formats.cistem_binary import is_binary_star
from live2d_tui.formats.prompts import (
    MERGE2D_PROMPTS,
    REFINE2D_PROMPTS,
    AnswerKind,
    Prompt,
)

DEV_NULL = "/dev/null"
_MAX_NAME = 999  # cisTEM reads answers into a 1000-byte buffer


class ProtocolError(ValueError):
    """An answer list would make refine2d/merge2d fail or misread; lists every problem."""


Answer = str | int | float | bool


def _typed_answers(
    program: str, prompts: Sequence[Prompt], answers: Mapping[str, Answer]
) -> dict[str, Answer]:
    """``answers`` (keyed by prompt key) in prompt order, each converted to its prompt's type.

    Raises:
        ProtocolError: a prompt has no answer, or an answer matches no prompt.
    """
    keys = [p.key for p in prompts]
    missing = [k for k in keys if k not in answers]
    unknown = sorted(set(answers) - set(keys))
    if missing or unknown:
        raise ProtocolError(f"{program} answers: missing {missing}, unknown {unknown}")
    typed: dict[str, Answer] = {}
    for prompt in prompts:
        value = answers[prompt.key]
        if prompt.kind is AnswerKind.YES_NO:
            typed[prompt.key] = bool(value)
        elif prompt.kind is AnswerKind.INT:
            typed[prompt.key] = int(value)
        elif prompt.kind is AnswerKind.FLOAT:
            typed[prompt.key] = float(value)
        else:
            typed[prompt.key] = str(value)
    return typed


@dataclass(frozen=True, kw_only=True)
class Refine2dRequest:
    """The 25 answers of one refine2d run; field names are the prompt keys, in prompt order."""

    input_stack: str
    input_star: str
    input_classes: str
    output_star: str
    output_classes: str
    class_number: int
    first_particle: int
    last_particle: int
    fraction: float
    pixel_size: float
    mask_radius: float
    low_res: float
    high_res: float
    angular_step: float
    search_range: float
    smoothing: float
    padding: int = 2
    normalize: bool = True
    invert: bool = True
    exclude_blank_edges: bool = False
    automask: bool = False
    autocenter: bool = True
    dump: bool = False
    dump_file: str = DEV_NULL
    threads: int = 1

    @classmethod
    def from_answers(cls, answers: Mapping[str, Answer]) -> Refine2dRequest:
        """The request from parsed answers ``{prompt key: value}`` (all 25, as the engine reads
        them); raises :class:`ProtocolError` when one is missing or unknown."""
        return cls(**_typed_answers("refine2d", REFINE2D_PROMPTS, answers))  # type: ignore[arg-type]

    def values(self) -> list[Answer]:
        """The answers in prompt order."""
        return [getattr(self, p.key) for p in REFINE2D_PROMPTS]

    def output_paths(self) -> list[str]:
        """Files this run is expected to create (dump mode: the dump and the star)."""
        if self.class_number > 0:
            return [self.output_classes]
        outputs = [self.output_star] if self.output_star != DEV_NULL else []
        outputs.append(self.dump_file if self.dump else self.output_classes)
        return [p for p in outputs if p != DEV_NULL]


@dataclass(frozen=True, kw_only=True)
class Merge2dRequest:
    """The 3 answers of merge2d."""

    output_classes: str
    dump_seed: str
    dump_count: int

    @classmethod
    def from_answers(cls, answers: Mapping[str, Answer]) -> Merge2dRequest:
        """The request from parsed answers ``{prompt key: value}`` (all 3, as the engine reads
        them); raises :class:`ProtocolError` when one is missing or unknown."""
        return cls(**_typed_answers("merge2d", MERGE2D_PROMPTS, answers))  # type: ignore[arg-type]

    def values(self) -> list[Answer]:
        """The answers in prompt order."""
        return [getattr(self, p.key) for p in MERGE2D_PROMPTS]


def format_answer(value: Answer, kind: AnswerKind) -> str:
    """One answer as the line cisTEM expects (without the newline)."""
    if kind is AnswerKind.YES_NO:
        return "Yes" if value else "No"
    if kind is AnswerKind.INT:
        return str(int(value))
    if kind is AnswerKind.FLOAT:
        # positional notation: cisTEM's float check wants a digit (or '-'/'.') first, and a
        # readable log beats 1e-05
        return str(np.format_float_positional(float(value), trim="0"))
    return str(value)


def _check_path(prompt: Prompt, value: str) -> list[str]:
    problems: list[str] = []
    if value == DEV_NULL:
        return problems
    if "\n" in value or "\r" in value:
        problems.append(f"{prompt.text}: a file name must not contain a line break")
    if len(value) > _MAX_NAME:
        problems.append(f"{prompt.text}: file name longer than {_MAX_NAME} characters")
    for bad in ("data_", "loop_"):
        if bad in value:
            problems.append(
                f"{prompt.text}: path {value!r} contains {bad!r}; refine2d would read its own "
                "star comments as the table (rename the folder or file)"
            )
    return problems


def _check_value(prompt: Prompt, value: Answer, cwd: Path | None) -> list[str]:
    text = prompt.text
    if prompt.kind in (AnswerKind.FILENAME, AnswerKind.EXISTING_FILE):
        if not isinstance(value, str) or not value.strip():
            return [f"{text}: expected a file name, got {value!r}"]
        problems = _check_path(prompt, value)
        if prompt.kind is AnswerKind.EXISTING_FILE:
            path = Path(value)
            if cwd is not None and not path.is_absolute():
                path = cwd / path
            if not path.is_file():
                problems.append(f"{text}: {value} does not exist (refine2d would exit 255)")
        return problems
    if prompt.kind is AnswerKind.YES_NO:
        return [] if isinstance(value, bool) else [f"{text}: expected yes/no, got {value!r}"]
    if prompt.kind is AnswerKind.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{text}: expected a whole number, got {value!r}"]
        number: float = value
    else:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{text}: expected a number, got {value!r}"]
        if not math.isfinite(value):
            return [f"{text}: expected a finite number, got {value!r}"]
        number = float(value)
    if prompt.minimum is not None and number < prompt.minimum:
        return [f"{text}: {value} is below the minimum {prompt.minimum}"]
    if prompt.maximum is not None and number > prompt.maximum:
        return [f"{text}: {value} is above the maximum {prompt.maximum}"]
    return []


def validate_refine2d(request: Refine2dRequest, *, cwd: Path | None = None) -> list[str]:
    """Answer lines for refine2d, after checking every value; raises :class:`ProtocolError`.

    Args:
        request: The run's answers.
        cwd: The folder the program runs in (relative file names are checked against it).

    Returns:
        Exactly 25 lines, without newlines.
    """
    problems: list[str] = []
    values = request.values()
    if len(values) != len(REFINE2D_PROMPTS) or len(fields(request)) != len(REFINE2D_PROMPTS):
        problems.append(f"refine2d needs {len(REFINE2D_PROMPTS)} answers, got {len(values)}")
    for prompt, value in zip(REFINE2D_PROMPTS, values, strict=False):
        problems += _check_value(prompt, value, cwd)
    if not problems:
        if not request.pixel_size > 0:
            problems.append("Pixel size of class averages (A) must be > 0")
        if not request.mask_radius > 0:
            problems.append("Mask radius (A) must be > 0")
        if not request.fraction > 0:
            problems.append("the fraction of particles used must be > 0 (averages degenerate)")
        if request.last_particle and request.last_particle < request.first_particle:
            problems.append(
                f"last particle {request.last_particle} is before first {request.first_particle}"
            )
        if is_binary_star(request.input_star):
            problems.append(f"input star {request.input_star}: '.cistem' means binary to refine2d")
        if is_binary_star(request.output_star):
            problems.append(
                f"output star {request.output_star}: refine2d writes text; a '.cistem' name "
                "would be read back as binary"
            )
        if request.class_number == 0 and request.input_classes == DEV_NULL:
            problems.append("refinement (class number 0) needs input class averages")
        if request.dump and request.class_number == 0 and request.dump_file == DEV_NULL:
            problems.append("dump mode needs a dump file name")
    if problems:
        raise ProtocolError("; ".join(problems))
    return [format_answer(v, p.kind) for p, v in zip(REFINE2D_PROMPTS, values, strict=True)]


def validate_merge2d(request: Merge2dRequest, *, cwd: Path | None = None) -> list[str]:
    """Answer lines for merge2d, after checking every value; raises :class:`ProtocolError`.

    The dump seed's base name must have exactly one dot (its extension): cisTEM strips the
    extension at the last dot and inserts the dump index there.
    """
    problems: list[str] = []
    values = request.values()
    for prompt, value in zip(MERGE2D_PROMPTS, values, strict=True):
        problems += _check_value(prompt, value, cwd)
    base = Path(request.dump_seed).name
    if base.count(".") != 1 or base.startswith(".") or base.endswith("."):
        problems.append(
            f"dump seed {request.dump_seed!r}: the base name needs exactly one dot, before a "
            "simple extension (e.g. dump_.dat)"
        )
    if problems:
        raise ProtocolError("; ".join(problems))
    return [format_answer(v, p.kind) for p, v in zip(MERGE2D_PROMPTS, values, strict=True)]


def stdin_text(lines: Sequence[str]) -> str:
    """The bytes to send on stdin: one answer per line, ``\\n`` endings."""
    return "".join(f"{line}\n" for line in lines)


_ECHO = re.compile(r"^(?P<prompt>\S.*?)\s* : (?P<answer>.*)$")


def check_echo(output: str, prompts: Sequence[Prompt], answers: Sequence[str]) -> list[str]:
    """Compare the prompts/answers a program echoed with what was sent; list differences.

    cisTEM echoes each accepted answer as ``<prompt padded to 50> : <answer>``. The echo block
    starts at the first line whose prompt is the table's first prompt. An empty list means the
    program asked exactly the expected prompts in the expected order.
    """
    echoes: list[tuple[str, str]] = []
    started = False
    for raw in re.split(r"[\r\n]", output):
        match = _ECHO.match(raw.strip())
        if not match:
            if started and len(echoes) >= len(prompts):
                break
            continue
        prompt, answer = match.group("prompt").strip(), match.group("answer").strip()
        if not started and prompt != prompts[0].text:
            continue
        started = True
        echoes.append((prompt, answer))
        if len(echoes) == len(prompts):
            break
    if not echoes:
        return ["no echoed answers found in the program's output"]
    problems: list[str] = []
    for i, prompt in enumerate(prompts):
        if i >= len(echoes):
            problems.append(f"prompt {i + 1} ({prompt.text!r}) was not echoed")
            continue
        got_prompt, got_answer = echoes[i]
        if got_prompt != prompt.text:
            problems.append(
                f"prompt {i + 1}: expected {prompt.text!r}, program asked {got_prompt!r}"
            )
        elif i < len(answers) and not _same_answer(prompt.kind, answers[i], got_answer):
            problems.append(
                f"prompt {i + 1} ({prompt.text}): sent {answers[i]!r}, echoed {got_answer!r}"
            )
    return problems


def _same_answer(kind: AnswerKind, sent: str, echoed: str) -> bool:
    """Whether an echoed answer is the one sent (numbers may be reformatted by the program)."""
    sent, echoed = sent.strip(), echoed.strip()
    if kind is AnswerKind.YES_NO:
        return sent[:1].lower() == echoed[:1].lower()
    if kind in (AnswerKind.INT, AnswerKind.FLOAT):
        try:
            return math.isclose(float(sent), float(echoed), rel_tol=1e-4, abs_tol=1e-6)
        except ValueError:
            return False
    return sent == echoed
