"""Per-micrograph checks: is a Warp stack complete, and does it fit the current dataset?

A stack is *complete* when its header's expected size equals the file size, its NZ covers every
slice the table references, and its ``(size, mtime_ns)`` has not changed for ≥ 1 s (two polls).
Warp writes the header first and the slices afterwards, straight to the final path, and its star
may name a stack before it is finished (docs/warp-formats.md#particle-stacks), so anything
else is *deferred* to a later poll, never read.

*Compatibility* is decided from the micrograph's XML ``<OptionsParticlesExport>`` (falling back
to ``previous.settings``) and the stack header: box, pixel size, inversion and normalisation must
match the dataset generation's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from live2d_tui.formats.mrc import MrcError, MrcHeader, read_header
from live2d_tui.formats.warp_star import VALUE_INDEX, MicrographRows
from live2d_tui.warp.movie import MovieInfo
from live2d_tui.warp.settings import WarpSettings
from live2d_tui.warp.snapshot import Signature, StabilityTracker

PIXEL_TOLERANCE = 1e-3
"""Relative pixel-size difference still counted as equal (Warp prints 5 decimals)."""


@dataclass(frozen=True, slots=True)
class Params:
    """The export parameters that define a dataset generation."""

    box: int
    pixel_size: float
    invert: bool
    normalize: bool

    def matches(self, other: Params) -> bool:
        """Same box, inversion and normalisation, pixel size within :data:`PIXEL_TOLERANCE`."""
        return (
            self.box == other.box
            and self.invert == other.invert
            and self.normalize == other.normalize
            and abs(self.pixel_size - other.pixel_size)
            <= PIXEL_TOLERANCE * max(self.pixel_size, other.pixel_size)
        )

    def describe(self) -> str:
        """Short text, also stored in the ledger."""
        return (
            f"box={self.box} pixel={self.pixel_size:.5f} invert={self.invert} "
            f"normalize={self.normalize}"
        )

    def difference(self, other: Params) -> str:
        """What differs from ``other``, e.g. ``box 96 ≠ 128``."""
        parts = []
        if self.box != other.box:
            parts.append(f"box {self.box} ≠ {other.box}")
        if not Params(self.box, self.pixel_size, True, True).matches(
            Params(self.box, other.pixel_size, True, True)
        ):
            parts.append(f"pixel size {self.pixel_size:.4f} ≠ {other.pixel_size:.4f} Å")
        if self.invert != other.invert:
            parts.append(f"invert {self.invert} ≠ {other.invert}")
        if self.normalize != other.normalize:
            parts.append(f"normalize {self.normalize} ≠ {other.normalize}")
        return ", ".join(parts) or "nothing"


def settings_params(settings: WarpSettings) -> Params:
    """The parameters Warp is exporting with now."""
    return Params(settings.box_size, settings.pixel_size, settings.invert, settings.normalize)


@dataclass(frozen=True, slots=True)
class Ready:
    """A complete stack, ready to append."""

    rows: MicrographRows
    path: Path
    header: MrcHeader
    signature: Signature
    params: Params


@dataclass(frozen=True, slots=True)
class NotReady:
    """A stack that must wait; ``reason`` names the file and what is wrong."""

    reason: str
    malformed: bool = False
    """True for a bad file (worth a message at once), False for one still being written."""


def check_stack(
    rows: MicrographRows,
    path: Path,
    signature: Signature | None,
    tracker: StabilityTracker,
    movie: MovieInfo | None,
    settings: WarpSettings | None,
) -> Ready | NotReady:
    """Decide whether one micrograph's stack can be appended now."""
    if signature is None:
        return NotReady(f"{path}: stack does not exist yet")
    stable = tracker.check(str(path), signature)
    try:
        header = read_header(path, "<")  # Warp writes little endian, whatever its stamp says
    except FileNotFoundError:
        return NotReady(f"{path}: stack vanished")
    except MrcError as exc:
        if signature[0] < 1024:
            return NotReady(str(exc))
        return NotReady(str(exc), malformed=stable)
    except OSError as exc:
        return NotReady(f"{path}: cannot read ({exc})")
    if header.expected_size != signature[0]:
        return NotReady(
            f"{path}: {signature[0]} bytes, header expects {header.expected_size} (being written)",
            malformed=stable and signature[0] > header.expected_size,
        )
    needed = int(rows.indices.max()) if rows.count else 0
    if header.nz < needed:
        return NotReady(
            f"{path}: stack has {header.nz} slices, the table references {needed}",
            malformed=stable,
        )
    if header.nx != header.ny:
        return NotReady(f"{path}: slices are {header.nx}×{header.ny}, not square", malformed=True)
    if not stable:
        return NotReady(f"{path}: stack changed less than a second ago")
    return Ready(rows, path, header, signature, micrograph_params(rows, header, movie, settings))


def micrograph_params(
    rows: MicrographRows, header: MrcHeader, movie: MovieInfo | None, settings: WarpSettings | None
) -> Params:
    """Export parameters of one micrograph: box from the header, pixel size from the star rows
    (then the header, then the XML), invert/normalise from its XML (else the settings)."""
    pixel = float(rows.values[0, VALUE_INDEX["rlnDetectorPixelSize"]]) if rows.count else 0.0
    if not pixel > 0:
        pixel = header.pixel_size
    export = movie.export if movie is not None else None
    if not pixel > 0 and export is not None:
        pixel = export.pixel_size
    if not pixel > 0 and settings is not None:
        pixel = settings.pixel_size
    if export is not None:
        invert, normalize = export.invert, export.normalize
    elif settings is not None:
        invert, normalize = settings.invert, settings.normalize
    else:
        invert, normalize = True, True
    return Params(header.nx, pixel, invert, normalize)
