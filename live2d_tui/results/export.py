"""Export the active particles of chosen classes of a cycle as a RELION 3.1 or cisTEM star.

**What is exported.** The members (|class| = k) of the chosen classes in the cycle's star whose
micrograph is still active in the ledger now (a micrograph Warp later dropped, or the user
unselected, is left out), in stack order.

**RELION 3.1+ star** (RELION, cryoSPARC's "Import Particle Stack"): the generation's optics
group as ``combined_stack_relion.star`` has it (pixel size, box, voltage, Cs, amplitude
contrast; one group, the cycle's dataset generation) and per particle that star's columns
(Warp's original image name, micrograph, coordinates, defocus U/V/angle in Å/degrees, phase
shift in degrees, optics group) with ``rlnImageName`` pointing at the particle:

- ``<position>@<combined stack>`` (default), or ``<n>@<new stack>`` with a stack of only the
  exported particles (``stack``), or Warp's own ``<slice>@<Warp stack>`` (``warp_stacks``);
- paths are absolute unless ``relative_to`` is given (RELION resolves relative paths from its
  project folder, cryoSPARC from its import path, so absolute paths are the safe default).

With ``alignment`` it adds the 2D pose and class: ``rlnAnglePsi`` = psi,
``rlnOriginXAngst`` = +x shift, ``rlnOriginYAngst`` = +y shift, ``rlnClassNumber`` = |class|.
RELION (``relion_stack_create --apply_transformation``) turns a particle P into
P(R(−psi)·r − origin/pixel), which is cisTEM refine2d's class frame
P(R(−psi)·r − shift/pixel) (docs/conventions.md): same psi, same sign of the shifts. (cisTEM's own
RELION exporter negates the shifts: it exports 3D refinement parameters, whose shift sign is the
opposite of refine2d's.)

**cisTEM star**: the cycle star's own rows (22 columns: pose, CTF with the phase shift in
degrees, class) of the exported particles, positions in the combined stack, or 1 … n in the new
stack (``stack``).

**Writing.** Every file is written to a temporary name beside its target, fsynced, given the
mode the user's umask allows, and published with a hard link that fails when the target exists:
an export never overwrites anything, and a failed one leaves nothing behind. Nothing in the
output folder but the export's own files changes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import create_temp_file, fsync_dir
from live2d_tui.formats import relion_star
from live2d_tui.formats.cistem_star import StarRows, format_rows, header_text, read_star
from live2d_tui.formats.mrc import MODE_FLOAT32, build_header, read_header, read_scattered

Format = Literal["relion", "cistem"]

ALIGNMENT_LABELS = ("rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst", "rlnClassNumber")
"""The 2D pose and class a RELION export adds with ``alignment``."""

CHUNK = 2048
"""Particles copied per read into a new stack."""


class ExportError(ValueError):
    """The export cannot be made as asked; nothing was written. The message says why."""


@dataclass(frozen=True, slots=True)
class ExportSource:
    """A cycle and the dataset it classified, as the export needs them."""

    cycle: int
    star: Path
    """The cycle's ``cycle_<N>.star``."""
    stack: Path
    """The generation's combined stack."""
    relion_star: Path
    """The generation's ``combined_stack_relion.star``."""
    active_positions: npt.NDArray[np.int64]
    """Positions of the particles whose micrograph is active now."""
    generation: int = 0
    warp_folder: Path | None = None
    """Where Warp's ``particles/`` stacks are (``warp_stacks``)."""
    warp_inverted: bool = True
    """Warp exported protein white (``Invert=True``)."""
    warp_float16: bool = False
    """Some of the exported particles' Warp stacks are float16 (Warp 2)."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export and how."""

    classes: tuple[int, ...]
    format: Format = "relion"
    alignment: bool = False
    warp_stacks: bool = False
    stack: bool = False
    relative_to: Path | None = None


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote."""

    star: Path
    stack: Path | None
    classes: tuple[int, ...]
    particles: int
    micrographs: int
    warnings: tuple[str, ...] = field(default=())

    def line(self) -> str:
        """The one-line summary."""
        names = ",".join(str(k) for k in self.classes)
        extra = f" and {self.stack}" if self.stack is not None else ""
        return (
            f"Exported {self.particles:,} particles from {self.micrographs:,} micrographs "
            f"(classes {names}) to {self.star}{extra}"
        )


def parse_classes(text: str) -> tuple[int, ...]:
    """``"1,4,7"`` or ``"1-3,7"`` → (1, 2, 3, 7) (sorted, unique).

    Raises:
        ExportError: not a list of positive class numbers.
    """
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ExportError(f"not a class number or range: {part!r} (e.g. 1,4,7 or 2-5)")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if low < 1 or high < low:
            raise ExportError(f"not a valid class range: {part!r}")
        found.update(range(low, high + 1))
    if not found:
        raise ExportError("no classes given")
    return tuple(sorted(found))


def exported_rows(source: ExportSource, classes: Sequence[int]) -> StarRows:
    """The cycle star's rows of the classes' members that are active now, in stack order.

    Raises:
        ExportError: a class number is beyond the cycle's classes' range found in the star.
    """
    rows = read_star(source.star)
    rows = rows[np.argsort(rows["position"], kind="stable")]
    magnitude = np.abs(rows["best_class"])
    chosen = np.isin(magnitude, np.asarray(classes, dtype=np.int64))
    active = np.isin(rows["position"], source.active_positions)
    picked: StarRows = rows[chosen & active]
    return picked


@contextlib.contextmanager
def _new_file(target: Path, binary: bool) -> Iterator[IO[Any]]:
    """A temporary file beside ``target`` (created with the mode the umask allows), published
    (fsynced, then a hard link) only on a clean exit and only if ``target`` does not exist.

    Raises:
        FileExistsError: ``target`` exists (nothing is written).
    """
    fd, tmp = create_temp_file(target.parent, target.name)
    try:
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")
        with handle as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    fsync_dir(target.parent)


def default_target(folder: Path, cycle: int, classes: Sequence[int], fmt: Format) -> Path:
    """``<folder>/cycle_<N>_classes_<list>_<format>.star``, the first free one of ``…_2``,
    ``…_3`` … (the stack beside it is checked too)."""
    names = "-".join(str(k) for k in classes) if len(classes) <= 8 else f"{len(classes)}"
    base = f"cycle_{cycle}_classes_{names}_{fmt}"
    for n in range(1, 10_000):
        stem = base if n == 1 else f"{base}_{n}"
        star = folder / f"{stem}.star"
        if not star.exists() and not star.with_suffix(".mrcs").exists():
            return star
    raise ExportError(f"{folder}: no free export name for {base}")


def _image_path(path: Path, relative_to: Path | None) -> str:
    if relative_to is None:
        return str(path.absolute())
    return os.path.relpath(path.absolute(), relative_to.absolute())


def _write_stack(
    target: Path, source: Path, positions: npt.NDArray[np.int64], pixel_size: float
) -> None:
    header = read_header(source)
    with _new_file(target, binary=True) as handle:
        handle.write(
            build_header((len(positions), header.ny, header.nx), pixel_size, mode=MODE_FLOAT32)
        )
        for start in range(0, len(positions), CHUNK):
            part = positions[start : start + CHUNK]
            handle.write(read_scattered(source, header, part).astype("<f4").tobytes())


def export_cycle(
    source: ExportSource,
    request: ExportRequest,
    target: Path,
    *,
    on_warning: Callable[[str], None] = lambda _text: None,
) -> ExportSummary:
    """Write the export (see the module docstring) to ``target`` (a star that must not exist).

    Raises:
        ExportError: nothing to export, an option that does not fit the format, or the target
            exists.
        OSError: a file could not be read or written (nothing is left behind).
    """
    target = Path(target)
    if request.format == "cistem" and (request.alignment or request.warp_stacks):
        raise ExportError(
            "a cisTEM star always holds the pose and refers to stack positions: "
            "--alignment and --warp-stacks are for RELION stars"
        )
    if request.warp_stacks and request.stack:
        raise ExportError("--stack and --warp-stacks exclude each other")
    if target.exists():
        raise ExportError(f"{target} exists: an export never overwrites a file")
    rows = exported_rows(source, request.classes)
    if len(rows) == 0:
        raise ExportError(
            f"cycle {source.cycle}: classes {','.join(map(str, request.classes))} have no "
            "active particles"
        )
    positions = rows["position"].astype(np.int64)
    relion_labels, relion_rows = relion_star.particle_rows(source.relion_star, positions.tolist())
    column = {label: i for i, label in enumerate(relion_labels)}
    micrographs = len({relion_rows[int(p)][column["rlnMicrographName"]] for p in positions})
    optics = relion_star.read_optics(source.relion_star)
    warnings: list[str] = []
    new_stack = target.with_suffix(".mrcs") if request.stack else None
    if new_stack is not None and new_stack.exists():
        raise ExportError(f"{new_stack} exists: an export never overwrites a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    if request.warp_stacks:
        if not source.warp_inverted:
            warnings.append(
                "Warp exported these particles with Invert=False: its stacks have protein "
                "black, the opposite contrast of the combined stack"
            )
        if source.warp_float16:
            warnings.append(
                "some Warp stacks are float16 (Warp 2): RELION 3.1 cannot read them "
                "(use the combined stack, or --stack)"
            )
    for text in warnings:
        on_warning(text)
    if new_stack is not None:
        _write_stack(new_stack, source.stack, positions, optics.pixel_size)
    try:
        with _new_file(target, binary=False) as handle:
            if request.format == "cistem":
                _write_cistem(handle, source, rows, new_stack)
            else:
                _write_relion(
                    handle, source, request, rows, relion_labels, relion_rows, optics, new_stack
                )
    except BaseException:
        if new_stack is not None:
            with contextlib.suppress(OSError):
                new_stack.unlink()
        raise
    return ExportSummary(
        star=target,
        stack=new_stack,
        classes=request.classes,
        particles=len(rows),
        micrographs=micrographs,
        warnings=tuple(warnings),
    )


def _write_cistem(
    handle: IO[Any], source: ExportSource, rows: StarRows, new_stack: Path | None
) -> None:
    out = rows.copy()
    stack = source.stack if new_stack is None else new_stack
    if new_stack is not None:
        out["position"] = np.arange(1, len(out) + 1)
    comments = [f"Exported by live2d-tui from cycle {source.cycle}: {len(out)} particles"]
    described = f"positions refer to {stack.absolute()}"
    if "data_" not in described and "loop_" not in described:
        comments.append(described)
    handle.write(header_text(comments))
    handle.write(format_rows(out))


def _write_relion(
    handle: IO[Any],
    source: ExportSource,
    request: ExportRequest,
    rows: StarRows,
    labels: list[str],
    by_position: dict[int, list[str]],
    optics: relion_star.Optics,
    new_stack: Path | None,
) -> None:
    out_labels = list(labels)
    if request.alignment:
        out_labels += [x for x in ALIGNMENT_LABELS if x not in out_labels]
    column = {label: i for i, label in enumerate(out_labels)}
    handle.write(relion_star.header_text(optics, out_labels))
    stack_name = _image_path(
        new_stack if new_stack is not None else source.stack, request.relative_to
    )
    warp_root = source.warp_folder
    lines = []
    for n, row in enumerate(rows, start=1):
        position = int(row["position"])
        fields = list(by_position[position]) + [""] * (len(out_labels) - len(labels))
        if request.warp_stacks:
            slot, _, name = fields[column["rlnImageOriginalName"]].partition("@")
            path = (warp_root or Path()) / name
            fields[column["rlnImageName"]] = f"{slot}@{_image_path(path, request.relative_to)}"
        else:
            index = n if new_stack is not None else position
            fields[column["rlnImageName"]] = f"{index:07d}@{stack_name}"
        if request.alignment:
            fields[column["rlnAnglePsi"]] = f"{float(row['psi']):.2f}"
            fields[column["rlnOriginXAngst"]] = f"{float(row['x_shift']):.2f}"
            fields[column["rlnOriginYAngst"]] = f"{float(row['y_shift']):.2f}"
            fields[column["rlnClassNumber"]] = str(abs(int(row["best_class"])))
        lines.append(" ".join(_quoted(f) for f in fields) + "\n")
    handle.write("".join(lines))


def _quoted(field: str) -> str:
    return f'"{field}"' if any(c.isspace() for c in field) and not field.startswith('"') else field
