"""The stdin prompts of cisTEM's ``refine2d`` (25) and ``merge2d`` (3), in order.

One table serves both sides of the protocol: the cycle runner builds and validates answer lists
from it, and the built-in engine (:mod:`live2d_tui.engine`) parses them with cisTEM's scripted-mode
rules (docs/protocol.md#scripted-mode-rules; the tables: #refine2d-the-25-answers,
#merge2d-the-3-answers). Prompt texts are cisTEM's exact words,
so the echoed banner of a real build can be compared line by line.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AnswerKind(StrEnum):
    """How cisTEM parses an answer in scripted mode."""

    FILENAME = "filename"
    """Any non-empty line."""
    EXISTING_FILE = "existing_file"
    """A file that must exist when the prompt is read."""
    INT = "int"
    """A digit, or '-' then a digit, parsed with atoi."""
    FLOAT = "float"
    """A digit, or '-'/'.' then a digit, parsed with atof."""
    YES_NO = "yes_no"
    """First character y/Y/n/N."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: its text, the answer type and the accepted range."""

    key: str
    text: str
    kind: AnswerKind
    minimum: float | None = None
    maximum: float | None = None


REFINE2D_PROMPTS: tuple[Prompt, ...] = (
    Prompt("input_stack", "Input particle images", AnswerKind.EXISTING_FILE),
    Prompt("input_star", "Input cisTEM star file", AnswerKind.EXISTING_FILE),
    Prompt("input_classes", "Input class averages", AnswerKind.FILENAME),
    Prompt("output_star", "Output cisTEM star file", AnswerKind.FILENAME),
    Prompt("output_classes", "Output class averages", AnswerKind.FILENAME),
    Prompt("class_number", "Number of classes (>0 = initialize classes)", AnswerKind.INT, 0),
    Prompt("first_particle", "First particle to refine (0 = first in stack)", AnswerKind.INT, 0),
    Prompt("last_particle", "Last particle to refine (0 = last in stack)", AnswerKind.INT, 0),
    Prompt("fraction", "Percent of particles to use (1 = all)", AnswerKind.FLOAT, 0.0, 1.0),
    Prompt("pixel_size", "Pixel size of class averages (A)", AnswerKind.FLOAT, 0.0),
    Prompt("mask_radius", "Mask radius (A)", AnswerKind.FLOAT, 0.0),
    Prompt("low_res", "Low resolution limit (A)", AnswerKind.FLOAT, 0.0),
    Prompt("high_res", "High resolution limit (A)", AnswerKind.FLOAT, 0.0),
    Prompt("angular_step", "Angular step (0.0 = set automatically)", AnswerKind.FLOAT, 0.0),
    Prompt("search_range", "Search range (A) (0.0 = max)", AnswerKind.FLOAT, 0.0),
    Prompt("smoothing", "Tuning parameter: smoothing factor", AnswerKind.FLOAT, 0.01),
    Prompt("padding", "Tuning parameter: padding factor for interpol.", AnswerKind.INT, 1),
    Prompt("normalize", "Normalize particles", AnswerKind.YES_NO),
    Prompt("invert", "Invert particle contrast", AnswerKind.YES_NO),
    Prompt("exclude_blank_edges", "Exclude images with blank edges", AnswerKind.YES_NO),
    Prompt("automask", "Automatically mask class averages", AnswerKind.YES_NO),
    Prompt("autocenter", "Automatically center class averages", AnswerKind.YES_NO),
    Prompt("dump", "Dump intermediate arrays (merge later)", AnswerKind.YES_NO),
    Prompt("dump_file", "Output dump filename for intermediate arrays", AnswerKind.FILENAME),
    Prompt("threads", "Max. threads to use for calculation", AnswerKind.INT, 1),
)
"""refine2d's prompts (cisTEM ≥ 2019-07-10, OpenMP build: always 25 lines)."""

MERGE2D_PROMPTS: tuple[Prompt, ...] = (
    Prompt("output_classes", "Output class averages", AnswerKind.FILENAME),
    Prompt(
        "dump_seed",
        "Seed for input dump filenames for intermediate arrays",
        AnswerKind.FILENAME,
    ),
    Prompt("dump_count", "Number of dump files", AnswerKind.INT, 1),
)
"""merge2d's prompts."""

REFINE2D_TERMINATION = "Refine2D: Normal termination"
MERGE2D_TERMINATION = "Merge2D: Normal termination"


def dump_file_name(seed: str, index: int) -> str:
    """Dump file ``index`` (1-based) for a merge2d seed: ``dump_.dat`` → ``dump_3.dat``.

    cisTEM strips the extension at the *last* dot, so the seed must have no other dots in its
    base name (the runner checks this).
    """
    slash = seed.rfind("/")
    dot = seed.rfind(".")
    if dot > slash:
        return f"{seed[:dot]}{index}{seed[dot:]}"
    return f"{seed}{index}"
