"""Partial class sums ("dump files") of one refine2d program run, summed by merge2d.

Our own format (cisTEM's raw binary dump is not reproduced): an uncompressed numpy ``.npz``
archive written atomically under the exact name the caller gave (no ``.npz`` is appended).

| key | dtype, shape | meaning |
|---|---|---|
| ``format`` | str | ``"live2d-engine-dump"`` |
| ``version`` | int | :data:`FORMAT_VERSION` |
| ``box`` | int | particle box N (working pixel size) |
| ``binned_box`` | int | box na of the sums: the run's average band (past the search limit) |
| ``pixel_size`` | float | working pixel size (Å) |
| ``mask_radius`` | float | mask radius (Å) for the final averages |
| ``nonzero`` | bool (K,) | which input classes were non-empty (searched) |
| ``sums`` | complex128 (K, na, na//2+1) | Σ w·c·X, class frame (c = whitened CTF, X whitened) |
| ``ctf2`` | float64 (K, na, na//2+1) | Σ w·c², class frame |
| ``class_weight`` | float64 (K,) | Σ of class probabilities |
| ``processed`` | int | particles processed |
| ``total_logp`` | float | Σ of per-particle logP |

Sums from several dumps of the same references and parameters add; box, binned box, K, the
non-empty map and the pixel size must agree, else merge2d refuses the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_writer

FORMAT = "live2d-engine-dump"
FORMAT_VERSION = 1


class DumpError(ValueError):
    """A dump file is unreadable, not ours, or incompatible with the others."""


@dataclass
class ClassSums:
    """Accumulated class sums of one or more program runs."""

    box: int
    binned_box: int
    pixel_size: float
    mask_radius: float
    nonzero: npt.NDArray[np.bool_]
    sums: npt.NDArray[np.complex128]
    ctf2: npt.NDArray[np.float64]
    class_weight: npt.NDArray[np.float64]
    processed: int
    total_logp: float

    @property
    def n_classes(self) -> int:
        return len(self.nonzero)

    def check_compatible(self, other: ClassSums) -> None:
        """Raise :class:`DumpError` unless ``other`` sums over the same classes and grid."""
        same = (
            self.box == other.box
            and self.binned_box == other.binned_box
            and self.n_classes == other.n_classes
            and bool(np.array_equal(self.nonzero, other.nonzero))
            and abs(self.pixel_size - other.pixel_size) <= 1e-6 * self.pixel_size
        )
        if not same:
            raise DumpError("Dump file incompatible with 2D class averages")

    def add(self, other: ClassSums) -> None:
        """Add another program run's sums (after :meth:`check_compatible`)."""
        self.check_compatible(other)
        self.sums = self.sums + other.sums
        self.ctf2 = self.ctf2 + other.ctf2
        self.class_weight = self.class_weight + other.class_weight
        self.processed += other.processed
        self.total_logp += other.total_logp


def write_dump(path: Path, data: ClassSums) -> None:
    """Write ``data`` atomically to exactly ``path``."""
    with atomic_writer(Path(path), "wb") as handle:
        np.savez(
            handle,
            format=np.array(FORMAT),
            version=np.array(FORMAT_VERSION),
            box=np.array(data.box),
            binned_box=np.array(data.binned_box),
            pixel_size=np.array(data.pixel_size),
            mask_radius=np.array(data.mask_radius),
            nonzero=data.nonzero.astype(bool),
            sums=data.sums.astype(np.complex128),
            ctf2=data.ctf2.astype(np.float64),
            class_weight=data.class_weight.astype(np.float64),
            processed=np.array(data.processed),
            total_logp=np.array(data.total_logp),
        )


def read_dump(path: Path) -> ClassSums:
    """Read a dump written by :func:`write_dump`; raises :class:`DumpError` otherwise."""
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if str(archive["format"]) != FORMAT:
                raise DumpError(f"{path} is not a live2d engine dump")
            if int(archive["version"]) != FORMAT_VERSION:
                raise DumpError(f"{path}: dump format version {int(archive['version'])}")
            return ClassSums(
                box=int(archive["box"]),
                binned_box=int(archive["binned_box"]),
                pixel_size=float(archive["pixel_size"]),
                mask_radius=float(archive["mask_radius"]),
                nonzero=np.asarray(archive["nonzero"], dtype=bool),
                sums=np.asarray(archive["sums"], dtype=np.complex128),
                ctf2=np.asarray(archive["ctf2"], dtype=np.float64),
                class_weight=np.asarray(archive["class_weight"], dtype=np.float64),
                processed=int(archive["processed"]),
                total_logp=float(archive["total_logp"]),
            )
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, DumpError):
            raise
        raise DumpError(f"cannot read dump file {path}: {exc}") from None
