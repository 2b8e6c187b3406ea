"""Filling empty class slots by splitting the largest classes in two.

A random start leaves some classes without particles, and :func:`refine2d.small_classes` empties
strays; left alone, those slots stay empty for the rest of the job. (``refine2d`` refills slots
only while its limit is coarser than ``refine2d.FINE_RESOLUTION``.) Worse, a random start can put
two similar views into one class that no other class ever claims back (measured on the
reference-shaped session: 2 runs of 4 ended with one class holding two views, purity 0.92).
Here each empty slot, up to :data:`MAX_SPLITS` per round, takes one half of the currently largest
class (bisecting, as in bisecting k-means):

1. an even sample of at most :data:`SPLIT_SAMPLE` members is read, CTF-multiplied and brought
   into the class frame with the star's psi and shifts, at the working box;
2. from each member the parent's average as that member sees it (times its CTF², with a fitted
   amplitude) is taken away; low-passed to :data:`SPLIT_RESOLUTION` (or the working limit, if
   coarser) inside the mask, these residuals are split by the sign of their projection on the
   first principal component: for a class of two views that separates the views, for a pure
   class it splits along its largest variation (on continuous orientations, a tilt across the
   class). Without the subtraction the largest variation is the defocus (the CTF scales the
   whole image): on the harder simulated session, splits of CTF-weighted members put near and
   far focus of one view apart (the sides correlated −0.94 with the defocus);
3. each half's CTF-weighted sums become a class average exactly as merge2d makes them
   (:func:`averages.class_averages`), whitened as the search whitens, so the two new references
   are on the same footing as the others.

The parent keeps the larger half and the empty slot gets the smaller; for the next split of the same
round, each half counts with its share of the parent's members. Everything here is a deterministic
function of the star, the stack and the references, so every program run of a cycle makes the same
split (merge2d sums their dumps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui import imaging
from live2d_tui.ctf import star_ctfs
from live2d_tui.engine.averages import MASK_FALLOFF, class_averages
from live2d_tui.engine.particles import Preprocess, read_images
from live2d_tui.formats.cistem_star import StarRows
from live2d_tui.formats.live2d_dump import ClassSums
from live2d_tui.similarity import filled

MAX_SPLITS = 2
"""Splits per refine2d round: each costs every program run a read of :data:`SPLIT_SAMPLE`
particles."""
SPLIT_SAMPLE = 300
"""Members read to split a class (an even sample by position)."""
SPLIT_RESOLUTION = 20.0
"""Å: the split looks at the aligned members up to this resolution (the views' shapes)."""
MIN_SPLIT_MEMBERS = 40
"""A class with fewer members is not split (each half would be too noisy to be a reference)."""
MIN_HALF = 0.1
"""A split whose smaller half holds less than this fraction of the sample is not made."""


@dataclass(frozen=True)
class Split:
    """One class cut in two: ``parent`` keeps one half, ``slot`` (empty before) the other."""

    parent: int
    slot: int
    members: int
    fraction_to_slot: float


@dataclass(frozen=True)
class SplitSource:
    """What a split reads: the particles, how they are prepared, and the search's grid."""

    star: StarRows
    """The WHOLE star of the round (classes, psi, shifts, CTF)."""
    stack: Any
    prep: Preprocess
    whitening: npt.NDArray[np.float64]
    """W on the working (nb, nb//2+1) grid, as the search whitens."""
    high_res: float
    mask_radius: float


def fill_empty_slots(
    references: npt.NDArray[np.float32], counts: npt.NDArray[np.float64], source: SplitSource
) -> list[Split]:
    """Split the largest classes into the empty slots of ``references`` (in place), updating
    ``counts`` (the memberships that choose the next class to split) to each half's share."""
    empty = np.flatnonzero(~filled(references))
    splits: list[Split] = []
    touched: set[int] = set()
    for slot in empty[:MAX_SPLITS]:
        order = [int(c) for c in np.argsort(-counts, kind="stable") if int(c) not in touched]
        parent = next((c for c in order if counts[c] >= MIN_SPLIT_MEMBERS), None)
        if parent is None or not np.any(references[parent]):
            break
        halves = _split_class(references.shape[-1], parent, references[parent], source)
        touched.add(parent)
        if halves is None:
            continue
        (keep, give), share = halves
        references[parent] = keep
        references[slot] = give
        total = counts[parent]
        counts[parent], counts[slot] = total * (1.0 - share), total * share
        touched.add(int(slot))
        splits.append(Split(parent, int(slot), int(total), share))
    return splits


def _fitted(
    spectra: npt.NDArray[Any], model: npt.NDArray[Any], band: npt.NDArray[np.bool_]
) -> npt.NDArray[Any]:
    """``model`` (B, n, n//2+1) scaled per image to fit ``spectra`` by least squares in
    ``band`` (the amplitude a ≥ 0 of the search's model, see :mod:`.search`)."""
    weight = nm.half_weights(spectra.shape[-2]) * band
    dot = (np.real(spectra * np.conj(model)) * weight).sum(axis=(-2, -1))
    power = (np.abs(model) ** 2 * weight).sum(axis=(-2, -1))
    amplitude = np.maximum(dot, 0.0) / np.maximum(power, 1e-30)
    fitted: npt.NDArray[Any] = amplitude[:, None, None] * model
    return fitted


@dataclass(frozen=True)
class MemberSplit:
    """A sample of a class's members, in the class frame, and the side each one falls on."""

    rows: StarRows
    """The sampled members' star rows."""
    spectra: npt.NDArray[Any]
    """Their CTF-weighted, whitened spectra in the class frame (B, nb, nb//2+1)."""
    ctf2: npt.NDArray[np.float64]
    """Their whitened isotropic CTF² (B, nb, nb//2+1)."""
    side: npt.NDArray[np.bool_]
    """True for the members of the smaller half."""


def split_members(
    box: int, parent: int, parent_reference: npt.NDArray[np.float32], source: SplitSource
) -> MemberSplit | None:
    """Steps 1-2 of the module docstring for class ``parent`` (0-based) whose average is
    ``parent_reference``; ``None`` when it has fewer than :data:`MIN_SPLIT_MEMBERS` members."""
    star, prep, whitening = source.star, source.prep, source.whitening
    members = np.flatnonzero(np.abs(star["best_class"]) == parent + 1)
    if len(members) < MIN_SPLIT_MEMBERS:
        return None
    take = np.unique(np.linspace(0, len(members) - 1, min(SPLIT_SAMPLE, len(members))).round())
    rows = star[members[take.astype(np.int64)]]
    nb = whitening.shape[0]
    pixel_b = box * prep.pixel_size / nb
    images, _ = prep.apply(read_images(source.stack, rows["position"]), rows["pixel_size"])
    spectra = nm.crop_half(np.fft.rfft2(images.astype(np.float64)), nb)
    ctf = star_ctfs(rows, nb, pixel_b)
    # as the search accumulates: y = c·X_w with c = W·CTF and X_w = W·X
    weighted = np.fft.irfft2(spectra * ctf * whitening**2, s=(nb, nb))
    framed = imaging.to_class_frame(
        weighted, rows["psi"], rows["x_shift"] / pixel_b, rows["y_shift"] / pixel_b
    )
    mask = imaging.soft_circular_mask(nb, source.mask_radius / pixel_b, MASK_FALLOFF / pixel_b)
    low = nm.radius_half(nb) <= nb * pixel_b / max(SPLIT_RESOLUTION, source.high_res)
    framed_spectra = np.fft.rfft2(framed)
    # CTF² in the class frame: the isotropic CTF at the mean defocus (rotation-invariant)
    ctf2 = (star_ctfs(rows, nb, pixel_b, isotropic=True) * whitening) ** 2
    parent_spectrum = nm.crop_half(np.fft.rfft2(parent_reference.astype(np.float64)), nb)
    residuals = framed_spectra - _fitted(framed_spectra, ctf2 * parent_spectrum, low)
    shapes = np.fft.irfft2(residuals * low, s=(nb, nb)) * mask
    flat = shapes.reshape(len(rows), -1)
    flat = flat - flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    axis = vt[0] * np.sign(vt[0][np.argmax(np.abs(vt[0]))])  # a sign every BLAS agrees on
    side = flat @ axis > 0
    if side.mean() > 0.5:  # the slot takes the smaller half, whatever the sign
        side = ~side
    return MemberSplit(rows, framed_spectra, ctf2, side)


def _split_class(
    box: int, parent: int, parent_reference: npt.NDArray[np.float32], source: SplitSource
) -> tuple[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]], float] | None:
    """The two half averages of class ``parent`` (0-based) and the share of the second, or
    ``None`` when the members do not split into two usable halves."""
    split = split_members(box, parent, parent_reference, source)
    if split is None:
        return None
    side, spectra, ctf2 = split.side, split.spectra, split.ctf2
    share = float(side.mean())
    if min(share, 1.0 - share) < MIN_HALF:
        return None
    data = ClassSums(
        box=box,
        binned_box=ctf2.shape[-2],
        pixel_size=source.prep.pixel_size,
        mask_radius=source.mask_radius,
        nonzero=np.ones(2, dtype=bool),
        sums=np.stack([spectra[~side].sum(axis=0), spectra[side].sum(axis=0)]),
        ctf2=np.stack([ctf2[~side].sum(axis=0), ctf2[side].sum(axis=0)]),
        class_weight=np.array([float((~side).sum()), float(side.sum())]),
        processed=len(side),
        total_logp=0.0,
    )
    averages = class_averages(data)
    if not (np.any(averages[0]) and np.any(averages[1])):
        return None
    return (averages[0], averages[1]), share
