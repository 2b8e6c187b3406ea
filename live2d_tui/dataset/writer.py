"""The files of one dataset generation and the crash-consistent append of a batch.

Files (generation 0 in the output folder, generation n ≥ 1 in ``generation_<n>/``):
``combined_stack.mrcs``, ``combined_stack.star`` (cisTEM, 22 columns) and
``combined_stack_relion.star`` (RELION 3.1). All three are append-only and hold every particle
ever appended, in stack order (star row i ↔ stack position i+1).

Append order (each step fsynced before the next): stack data → stack header (new NZ) → cisTEM
star rows → RELION star rows → ledger commit (ranges, NZ, both star lengths) by the caller. On
open, :meth:`GenerationFiles.reconcile` cuts all three files back to what the ledger committed,
so a crash at any instant loses at most the uncommitted batch, which the next poll appends again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.dataset.ledger import Generation, NewRange
from live2d_tui.dataset.micrographs import Params
from live2d_tui.dataset.stack import CombinedStack, SliceSource, StackError, ensure_folder
from live2d_tui.formats import relion_star
from live2d_tui.formats.cistem_star import append_rows, empty_rows, write_star
from live2d_tui.formats.warp_star import VALUE_INDEX, MicrographRows

STACK_NAME = "combined_stack.mrcs"
STAR_NAME = "combined_stack.star"
RELION_NAME = "combined_stack_relion.star"

STAR_COMMENTS = ("Written by live2d-tui: every particle ever appended to combined_stack.mrcs",)
_RELION_VALUES = [VALUE_INDEX[label] for label in relion_star.VALUE_LABELS]
"""Columns of a Warp micrograph's values that :func:`relion_star.format_rows` takes."""


def generation_folder_name(generation: int) -> str:
    """'' for generation 0 (the output folder itself), else ``generation_<n>``."""
    return "" if generation == 0 else f"generation_{generation}"


@dataclass(frozen=True, slots=True)
class Defaults:
    """Values used where Warp's table lacks a column (from ``previous.settings``)."""

    pixel_size: float
    voltage: float
    cs: float
    amplitude_contrast: float


@dataclass(frozen=True, slots=True)
class Piece:
    """One micrograph's particles, ready to append (read while appending)."""

    rows: MicrographRows
    source: SliceSource
    size: int
    mtime_ns: int
    dtype: str
    export: str


class GenerationFiles:
    """Stack and stars of one generation."""

    def __init__(self, output_folder: Path, generation: Generation) -> None:
        self.folder = Path(output_folder) / generation.folder
        self.generation = generation
        self.stack = CombinedStack(self.folder / STACK_NAME, generation.box, generation.pixel_size)
        self.star_path = self.folder / STAR_NAME
        self.relion_path = self.folder / RELION_NAME
        self.star_bytes = generation.star_bytes
        self.relion_bytes = generation.relion_bytes

    @classmethod
    def create(
        cls, output_folder: Path, number: int, params: Params, defaults: Defaults
    ) -> GenerationFiles:
        """Write empty files for a new generation; the caller then records it in the ledger."""
        folder_name = generation_folder_name(number)
        folder = Path(output_folder) / folder_name
        box, pixel_size = params.box, params.pixel_size
        ensure_folder(folder)
        CombinedStack.create(folder / STACK_NAME, box, pixel_size)
        write_star(folder / STAR_NAME, empty_rows(0), STAR_COMMENTS)
        star_bytes = (folder / STAR_NAME).stat().st_size
        relion_bytes = relion_star.create(
            folder / RELION_NAME,
            relion_star.Optics(
                pixel_size, box, defaults.voltage, defaults.cs, defaults.amplitude_contrast
            ),
        )
        gen = Generation(
            number,
            folder_name,
            box,
            pixel_size,
            params.invert,
            params.normalize,
            0,
            star_bytes,
            relion_bytes,
        )
        return cls(output_folder, gen)

    def reconcile(self) -> list[str]:
        """Cut stack and stars back to the ledger's record; returns what was repaired.

        Raises:
            StackError: a file is missing or shorter than the ledger records.
            MrcError: the stack's header is not an MRC header.
        """
        repaired = []
        if self.stack.reconcile(self.generation.nz):
            repaired.append(f"{self.stack.path}: cut back to {self.generation.nz} particles")
        for path, length in (
            (self.star_path, self.star_bytes),
            (self.relion_path, self.relion_bytes),
        ):
            try:
                if relion_star.truncate_to(path, length):
                    repaired.append(f"{path}: removed rows of an interrupted append")
            except FileNotFoundError:
                raise StackError(f"{path}: star of the combined stack is missing") from None
            except ValueError as exc:
                raise StackError(str(exc)) from None
        return repaired

    def append(self, pieces: list[Piece], defaults: Defaults) -> list[NewRange]:
        """Append pieces to stack, cisTEM star and RELION star (in that order, each fsynced).

        ``rlnImageOriginalName`` is Warp's own image name (``%07d@particles/<root>_<Model>.mrcs``).
        Returns the ranges to commit; the caller commits them with the new lengths.
        """
        if not pieces:
            return []
        first = self.stack.append_from([p.source for p in pieces])
        star_rows = empty_rows(sum(p.rows.count for p in pieces))
        relion_chunks: list[str] = []
        ranges: list[NewRange] = []
        position = first
        for piece in pieces:
            rows = piece.rows
            n = rows.count
            v = rows.values
            sl = slice(position - first, position - first + n)
            star_rows["position"][sl] = np.arange(position, position + n)
            star_rows["defocus_1"][sl] = v[:, VALUE_INDEX["rlnDefocusU"]]
            star_rows["defocus_2"][sl] = v[:, VALUE_INDEX["rlnDefocusV"]]
            star_rows["defocus_angle"][sl] = v[:, VALUE_INDEX["rlnDefocusAngle"]]
            star_rows["phase_shift"][sl] = v[:, VALUE_INDEX["rlnPhaseShift"]]
            star_rows["pixel_size"][sl] = _filled(
                v[:, VALUE_INDEX["rlnDetectorPixelSize"]], defaults.pixel_size
            )
            star_rows["voltage"][sl] = _filled(v[:, VALUE_INDEX["rlnVoltage"]], defaults.voltage)
            star_rows["cs"][sl] = _filled(v[:, VALUE_INDEX["rlnSphericalAberration"]], defaults.cs)
            star_rows["amplitude_contrast"][sl] = _filled(
                v[:, VALUE_INDEX["rlnAmplitudeContrast"]], defaults.amplitude_contrast
            )
            relion_chunks.append(
                relion_star.format_rows(
                    position,
                    STACK_NAME,
                    rows.stack,
                    rows.micrograph,
                    rows.indices,
                    v[:, _RELION_VALUES],
                )
            )
            ranges.append(
                NewRange(
                    rows.stack,
                    rows.micrograph,
                    piece.size,
                    piece.mtime_ns,
                    piece.dtype,
                    piece.export,
                    n,
                    position,
                )
            )
            position += n
        append_rows(self.star_path, star_rows)
        self.star_bytes = self.star_path.stat().st_size
        self.relion_bytes = relion_star.append_text(self.relion_path, relion_chunks)
        return ranges


def _filled(values: npt.NDArray[np.float64], default: float) -> npt.NDArray[np.float64]:
    return np.where(np.isfinite(values), values, default)
