"""``live2d-refine2d``: a drop-in for cisTEM's ``refine2d`` (25 stdin answers, same files out).

Modes (docs/engine.md#refinement-step-by-step; the answers:
docs/protocol.md#refine2d-the-25-answers; progress: docs/protocol.md#progress):

- **random start** (#6 = K > 0): cisTEM's block sampling of the star lines; each particle read is
  resampled, normalised, sign-set, and added to each class with probability 1/K after an
  accumulating random integer shift of up to ±0.2·mask radius; the classes (no alignment, no CTF
  correction) are low-passed to the high-resolution limit, masked and written. No star, no dump.
- **refinement** (#6 = 0): references = slices of #3 (optionally auto-centred/auto-masked); the
  particles in [first, last] are each used with probability #9 (the others get class −|previous|),
  searched over every non-empty class × rotation × translation (:mod:`.search`), and their
  CTF-weighted sums either dumped (#23 = Yes, to #24) or turned into class averages (#5). The
  sums leave out the lowest-scoring 30 % of every class of the input star
  (:func:`core_members`); those particles are still searched and written with their new class.
  As in cisTEM, the sums reach past the search limit (to at least 7 Å, with a cosine edge:
  :func:`~live2d_tui.fourier.average_band`), so the averages show what the alignment
  resolves and the ring at the limit is whole.

How some answers are honoured:

- #2 input star: a text star, or cisTEM's binary parameter file when the name ends in
  ``.cistem`` (cisTEM's rule; :mod:`live2d_tui.formats.cistem_binary`), as cisTEM's GUI sends it;
- #10 pixel size: particles whose star pixel size differs by more than 0.1 % are resampled; the
  work happens at the binned box whose Nyquist is #13 (binned pixel = high limit / 2);
- #14 angular step: the global search step (0 = cisTEM's automatic rad2deg(binned pixel / mask
  radius), with a coarser global step); the best angles are then refined locally down to the
  automatic step, which is what the resolution needs;
- #17 padding: accepted; rotations are exact Fourier shears of oversampled images anyway;
- #25 threads: accepted; the engine always computes on one thread (the runner's pool gives the
  parallelism).

The decisions taken from the whole input star (memberships → emptied classes and splits, the
30 % score thresholds, the noise spectrum's particles) come from a frozen-rules file instead when
the environment names one (:mod:`live2d_tui.formats.engine_rules`; streaming updates refine one
block of particles at a time); classes are then not split.

Stdout carries cisTEM's stage lines, progress bars and ``Refine2D: Normal termination``. Unlike
cisTEM, a failed calculation exits with 255 after ``Error : <reason>``. Runnable as
``python -m live2d_tui.engine.refine2d``.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui.engine import ENGINE_VERSION
from live2d_tui.engine.averages import MASK_FALLOFF, class_averages, occupancy_lines, write_mrc
from live2d_tui.engine.particles import (
    EngineInputError,
    Preprocess,
    has_blank_edges,
    load_references,
    noise_spectrum,
    open_stack,
    read_images,
)
from live2d_tui.engine.program import run_program
from live2d_tui.engine.progress import ProgressBar
from live2d_tui.engine.references import prepare_references
from live2d_tui.engine.search import COARSE_RESOLUTION, ClassSearch, SearchParams, auto_step
from live2d_tui.engine.split import SplitSource, fill_empty_slots
from live2d_tui.formats import engine_rules as rules
from live2d_tui.formats.cistem_binary import is_binary_star, read_binary_star
from live2d_tui.formats.cistem_star import CistemStarError, StarRows, read_star, write_star
from live2d_tui.formats.live2d_dump import ClassSums, DumpError, write_dump
from live2d_tui.formats.prompts import REFINE2D_PROMPTS, REFINE2D_TERMINATION
from live2d_tui.formats.protocol import DEV_NULL, Answer, Refine2dRequest
from live2d_tui.imaging import soft_circular_mask
from live2d_tui.similarity import COPY_CORRELATION, aligned_similarity, filled

VERSION = "1.02"
MIN_CLASS_FRACTION = 0.05
"""A class whose current membership is below this fraction of the mean membership of the
classes in use is emptied before the search: its particles go to the other classes, and while the
limit is coarser than :data:`FINE_RESOLUTION` its slot is refilled by splitting the largest class
(:mod:`.split`). Such a class is a few particles split off a view, and it cannot reach the
resolution limit: on the reference-shaped session (6,175 particles, 20 classes, mean about 330
members) the classes left at the end without a floor held 2, 2 and 12 members and reached FRC0.5 96,
21 and 10 Å, while every class from 32 members up reached 7.7-8.0 Å. All program runs of a cycle
read the same star, so they empty the same classes. The floor is lower while the search works
coarser than :data:`FINE_RESOLUTION`, where memberships still move a lot from cycle to cycle and a
small class may be a view still gathering its particles."""
MIN_CLASS_FRACTION_FINE = 0.1
FINE_RESOLUTION = 15.0
"""Å: at this high-resolution limit or finer the floor is :data:`MIN_CLASS_FRACTION_FINE`,
copies are emptied too (:data:`COPY_FRACTION`), and empty slots are no longer refilled by
splits: by then every view has its classes, and halving the largest class only makes two
half-size copies of one view. A slot emptied from here on stays empty (as cisTEM leaves its
empty classes). Reference-shaped session, 3 runs that refilled such slots: every class reached
8.0 Å but the adjusted Rand index fell to 0.797-0.799 (cisTEM: 0.83)."""
COPY_FRACTION = 0.25
"""Once the limit is :data:`FINE_RESOLUTION` or finer, a class below this fraction of the mean
membership is also emptied when it is a copy of a larger class (:data:`COPY_CORRELATION`): two
classes of one view split its particles between them, and the smaller one may not reach the
resolution limit (reference-shaped session: a 53-member copy of a 186-member class ended at
FRC0.5 10.1 Å while every class from 59 members up reached 8.0 Å or better). A small class
that is NOT like any other, such as a rare view, keeps its slot."""
COPY_LOW_RESOLUTION = 100.0
"""Å: classes are compared from here to the working limit (the overall blob is left out)."""
CORE_DROP = rules.CORE_DROP
"""Fraction of each class's members, the lowest-scoring, left out of its class sums
(:func:`core_members`)."""
CORE_MIN = rules.CORE_MIN
"""Classes with fewer members keep them all in their sums (too few to rank)."""
SEED_ENV = "LIVE2D_ENGINE_SEED"
"""If set, seeds the run's random numbers (grid offsets, percent-used draws, random start)."""


def make_rng() -> np.random.Generator:
    """The run's random generator (seeded from ``LIVE2D_ENGINE_SEED`` when set)."""
    seed = os.environ.get(SEED_ENV)
    return np.random.default_rng(int(seed) if seed else None)


def _comments(s: Refine2dRequest) -> list[str]:
    lines = [
        f"Written by live2d-refine2d (Refine2D {VERSION}, live2d-engine {ENGINE_VERSION}) on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; psi and shifts as cisTEM's refine2d writes them",
        f"Input particle images: {s.input_stack}",
        f"Input star file: {s.input_star}",
        f"Input class averages: {s.input_classes}",
        f"Output class averages: {s.output_classes}",
        f"Pixel size {s.pixel_size:g} A, mask radius {s.mask_radius:g} A, "
        f"resolution {s.low_res:g}-{s.high_res:g} A, fraction {s.fraction:g}",
    ]
    return [c for c in lines if "data_" not in c and "loop_" not in c]


def _select_rows(s: Refine2dRequest, rows: StarRows, n_images: int) -> StarRows:
    """The star rows whose stack positions are in [first particle, last particle] (#7, #8)."""
    first = s.first_particle if s.first_particle > 0 else 1
    last = s.last_particle if 0 < s.last_particle <= n_images else n_images
    if last < first:
        raise EngineInputError(f"last particle ({last}) is before the first ({first})")
    inside = (rows["position"] >= first) & (rows["position"] <= last)
    selected: StarRows = rows[inside].copy()
    return selected


def memberships(star: StarRows, k: int) -> npt.NDArray[np.float64] | None:
    """Current membership |Best2DClass| of each of the ``k`` classes in the WHOLE star (the same
    in every program run of a cycle); ``None`` when no particle is assigned yet (the first round
    after a random start)."""
    return rules.memberships(star, k)


def class_floor_fraction(high_res: float) -> float:
    """The fraction of the mean membership below which a class is emptied (see
    :data:`MIN_CLASS_FRACTION`)."""
    return MIN_CLASS_FRACTION_FINE if high_res <= FINE_RESOLUTION else MIN_CLASS_FRACTION


def small_classes(
    counts: npt.NDArray[np.float64] | None, references: npt.NDArray[Any], fraction: float
) -> npt.NDArray[np.int64]:
    """0-based indices of the non-empty references whose membership (:func:`memberships`) is
    below ``fraction`` of the mean over the classes with members; none when no particle is
    assigned yet (``counts`` is None: the first round after a random start)."""
    if counts is None:
        return np.zeros(0, dtype=np.int64)
    floor = fraction * counts.sum() / np.count_nonzero(counts)
    return np.flatnonzero(filled(references) & (counts < floor)).astype(np.int64)


@dataclass(frozen=True)
class Copy:
    """A small class to empty because it looks like a larger one (0-based classes)."""

    cls: int
    members: int
    original: int
    correlation: float


def copied_classes(
    counts: npt.NDArray[np.float64] | None,
    references: npt.NDArray[np.float32],
    emptied: npt.NDArray[np.int64],
    pixel: float,
    high: float,
) -> list[Copy]:
    """The small classes (:data:`COPY_FRACTION`) that copy a larger class, smallest first; a
    class is never emptied in favour of one that is itself emptied."""
    if counts is None:
        return []
    live = filled(references)
    live[emptied] = False
    floor = COPY_FRACTION * counts.sum() / np.count_nonzero(counts)
    small = np.flatnonzero(live & (counts < floor))
    small = small[np.argsort(counts[small], kind="stable")]
    if len(small) == 0:
        return []
    similarity = aligned_similarity(references, small, pixel, (COPY_LOW_RESOLUTION, high))
    copies: list[Copy] = []
    for row, cls in enumerate(small):
        larger = live & (counts > counts[cls])
        candidates = np.where(larger, similarity[row], -1.0)
        match = int(np.argmax(candidates))
        if candidates[match] >= COPY_CORRELATION:
            copies.append(Copy(int(cls), int(counts[cls]), match, float(candidates[match])))
            live[cls] = False
    return copies


def random_start(
    s: Refine2dRequest, stack: Any, rows: StarRows, out: TextIO, rng: np.random.Generator
) -> None:
    """Generate K starting class averages as cisTEM does (docs/engine.md#random-start)."""
    box = stack.shape[-1]
    k = s.class_number
    out.write(f"Generating {k} starting class averages...\n\n")
    prep = Preprocess(box, s.pixel_size, s.mask_radius / s.pixel_size, s.invert, s.normalize)
    n_lines = len(rows)
    p = s.fraction
    block = max(1, round(min(stack.shape[0] / 100.0, n_lines * p / 100.0)))
    max_shift = max(0, int(0.2 * s.mask_radius / s.pixel_size))
    sums = np.zeros((k, box, box))
    counts = np.zeros(k, dtype=np.int64)
    bar = ProgressBar(n_lines, out)
    line: int = 0
    while line < n_lines:
        if rng.random() >= p / block:
            line += 1
            bar.update(line)
            continue
        chunk = rows[line : line + block]
        images, _ = prep.apply(read_images(stack, chunk["position"]), chunk["pixel_size"])
        for image in images:
            current = image.astype(np.float64)
            for target in np.flatnonzero(rng.random(k) < 1.0 / k):
                dx, dy = rng.integers(-max_shift, max_shift + 1, size=2)
                current = np.roll(current, (int(dy), int(dx)), axis=(0, 1))
                sums[target] += current
                counts[target] += 1
        line = line + len(chunk)
        bar.update(line)
    bar.finish()
    nb = nm.binned_box(box, s.pixel_size, s.high_res)
    mask = soft_circular_mask(box, s.mask_radius / s.pixel_size, MASK_FALLOFF / s.pixel_size)
    classes = np.zeros((k, box, box), dtype=np.float32)
    for cls in range(k):
        if counts[cls] == 0:
            continue
        average = sums[cls] / counts[cls]
        spectrum = nm.crop_half(np.fft.rfft2(average), nb) * (nm.radius_half(nb) <= nb / 2)
        classes[cls] = (np.fft.irfft2(nm.pad_half(spectrum, box), s=(box, box)) * mask).astype(
            np.float32
        )
    write_mrc(s.output_classes, classes, s.pixel_size)


def refine(
    s: Refine2dRequest,
    stack: Any,
    star: StarRows,
    rows: StarRows,
    out: TextIO,
    rng: np.random.Generator,
) -> None:
    """Refinement against the input class averages (docs/engine.md#refinement-step-by-step,
    #fraction-used-negative-classes-blank-edges; progress: docs/protocol.md#progress)."""
    box = stack.shape[-1]
    references = load_references(s.input_classes, box)
    high = max(s.high_res, 2.0 * s.pixel_size)
    nb = nm.binned_box(box, s.pixel_size, high)
    pixel_b = box * s.pixel_size / nb
    references = prepare_references(
        references,
        s.pixel_size,
        s.mask_radius,
        high,
        autocenter=s.autocenter,
        automask=s.automask,
    )
    frozen = rules.rules_from_environment()
    counts = memberships(star, len(references)) if frozen is None else frozen.counts
    if frozen is not None:
        out.write(f"Class rules and noise sample from {os.environ[rules.RULES_ENV]}\n\n")
    floor_fraction = class_floor_fraction(high)
    emptied = small_classes(counts, references, floor_fraction)
    copies = (
        copied_classes(counts, references, emptied, s.pixel_size, high)
        if high <= FINE_RESOLUTION
        else []
    )
    references[emptied] = 0.0
    for copy in copies:
        references[copy.cls] = 0.0
    # rotations beyond the box edge do not matter: the step follows the smaller of the two
    auto = auto_step(pixel_b, min(s.mask_radius, 0.5 * box * s.pixel_size))
    coarse_step = s.angular_step if s.angular_step > 0 else max(auto, min(15.0, 3.0 * auto))
    fine_step = min(coarse_step, auto)
    coarse_res = max(high, min(2.0 * high, COARSE_RESOLUTION))
    nc = min(nb, nm.binned_box(box, s.pixel_size, coarse_res))
    if nc > 0.75 * nb:  # a coarse box barely smaller than the working one saves nothing
        nc = nb
    params = SearchParams(
        box=box,
        pixel_size=s.pixel_size,
        nb=nb,
        nc=nc,
        high_res=high,
        low_res=s.low_res,
        search_range=s.search_range,
        smoothing=s.smoothing,
        coarse_step=coarse_step,
        fine_step=fine_step,
    )
    nonzero = int(np.count_nonzero(filled(references)))
    out.write(
        f"Number of classes = {len(references)}, nonzero classes = {nonzero}, box size = {box}, "
        f"binning factor = {box / nb:.3f}, new pixel size = {pixel_b:.3f}, resolution limit = "
        f"{high:.2f}, angular step size = {coarse_step:.2f} (refined to {fine_step:.2f}), "
        f"percent_used = {100.0 * s.fraction:.2f}\n\n"
    )
    if len(emptied):
        out.write(
            f"Emptied {len(emptied)} classes with fewer than {floor_fraction:.0%} of the "
            f"mean membership: {' '.join(str(c + 1) for c in emptied)}\n\n"
        )
    for copy in copies:
        out.write(
            f"Emptied class {copy.cls + 1} ({copy.members} members, under {COPY_FRACTION:.0%} of"
            f" the mean membership): a copy of class {copy.original + 1} (correlation "
            f"{copy.correlation:.2f})\n\n"
        )
    if nonzero == 0:
        raise EngineInputError("all input class averages are empty")
    prep = Preprocess(box, s.pixel_size, s.mask_radius / s.pixel_size, s.invert, s.normalize)
    out.write("Calculating noise power spectrum...\n\n")
    bar = ProgressBar(2, out)
    na = params.average.box
    if frozen is None:
        noise_positions, noise_pixels = star["position"], star["pixel_size"]
    else:
        noise_positions, noise_pixels = frozen.noise_positions, frozen.noise_pixel_sizes
    whitening = 1.0 / np.sqrt(noise_spectrum(stack, noise_positions, noise_pixels, prep, na))
    bar.update(2, force=True)
    bar.finish()
    if len(rows) and np.any(rows["voltage"] <= 0):
        raise EngineInputError(
            "the star has particles without a microscope voltage (needed for the CTF)"
        )
    # see FINE_RESOLUTION; with frozen rules the streaming runner manages the class slots
    if counts is not None and high > FINE_RESOLUTION and frozen is None:
        counts[emptied] = 0.0
        source = SplitSource(star, stack, prep, nm.crop_half(whitening, nb), high, s.mask_radius)
        splits = fill_empty_slots(references, counts, source)
        for split in splits:
            out.write(
                f"Split class {split.parent + 1} ({split.members} members) into classes "
                f"{split.parent + 1} and {split.slot + 1} ({100 * split.fraction_to_slot:.0f} % "
                f"to {split.slot + 1})\n"
            )
    search = ClassSearch(references, params, whitening, rng)
    core = core_members(star, rows) if frozen is None else frozen.core(rows)
    use = rng.random(len(rows)) < s.fraction
    old_class = rows["best_class"].copy()
    old_score = rows["score"].copy()
    rows["best_class"][~use] = -np.abs(old_class[~use])
    rows["score_change"][~use] = 0.0
    chosen = np.flatnonzero(use)
    if s.exclude_blank_edges and len(chosen):
        blank = np.zeros(len(rows), dtype=bool)
        for start in range(0, len(chosen), 256):
            idx = chosen[start : start + 256]
            blank[idx] = has_blank_edges(read_images(stack, rows["position"][idx]))
        rows["best_class"][blank] = -np.abs(old_class[blank])
        rows["score_change"][blank] = 0.0
        chosen = chosen[~blank[chosen]]
        out.write(f"Number of excluded images with blank edges = {int(blank.sum())}\n")
    out.write("Calculating new class averages...\n\n")
    bar = ProgressBar(len(chosen), out)
    batch = search.batch_size()
    ctf_names = (
        "defocus_1",
        "defocus_2",
        "defocus_angle",
        "phase_shift",
        "voltage",
        "cs",
        "amplitude_contrast",
    )
    for start in range(0, len(chosen), batch):
        idx = chosen[start : start + batch]
        sub = rows[idx]
        images, sigma = prep.apply(read_images(stack, sub["position"]), sub["pixel_size"])
        result = search.run(
            images, {n: np.asarray(sub[n], dtype=np.float64) for n in ctf_names}, core[idx]
        )
        rows["best_class"][idx] = result.best_class + 1
        rows["psi"][idx] = np.mod(result.psi, 360.0)
        rows["x_shift"][idx] = result.x_shift
        rows["y_shift"][idx] = result.y_shift
        rows["occupancy"][idx] = 100.0 * result.probability
        rows["logp"][idx] = np.rint(result.logp).astype(np.int64)
        rows["sigma"][idx] = np.minimum(sigma, 100.0)
        rows["score"][idx] = result.score
        rows["score_change"][idx] = result.score - old_score[idx]
        bar.update(start + len(idx))
    bar.finish()
    sums, ctf2 = search.class_sums()
    data = ClassSums(
        box=box,
        binned_box=na,
        pixel_size=s.pixel_size,
        mask_radius=s.mask_radius,
        nonzero=np.isin(np.arange(len(references)), search.nonzero),
        sums=sums,
        ctf2=ctf2,
        class_weight=search.class_weight,
        processed=search.processed,
        total_logp=search.total_logp,
    )
    if s.dump:
        out.write("Dumping intermediate files...\n")
        write_dump(Path(s.dump_file), data)
    else:
        for line in occupancy_lines(data):
            out.write(line + "\n")
        write_mrc(s.output_classes, class_averages(data), s.pixel_size)
    out.write(f"\nTotal logP = {search.total_logp:.6g}\n")
    if s.output_star != DEV_NULL:
        write_star(Path(s.output_star), rows, _comments(s))


def core_members(star: StarRows, rows: StarRows) -> npt.NDArray[np.bool_]:
    """Which of ``rows`` the class sums take: all but the lowest-scoring ``CORE_DROP`` of
    every class of the input ``star`` (its class and score columns, i.e. the previous cycle's).

    A class's outer members, the particles whose views lie furthest from its centre, score lowest,
    and leaving them out sharpens the average more than the fewer members blur it (the note of #5
    gives the measurements). The ranking is the input star's, which every program run reads whole,
    so the program runs of a cycle agree and their merged dumps equal one process. Rows of classes
    with fewer than ``CORE_MIN`` members, and rows without a class (a random start, unused or
    unassigned particles), are all taken.
    """
    # rows are lines of star: a class > 0 is one of its classes
    thresholds = rules.core_thresholds(star, 0)
    return rules.FrozenRules(None, thresholds, np.zeros(0, np.int64), np.zeros(0)).core(rows)


def run(s: Refine2dRequest, out: TextIO) -> None:
    """Run one refine2d calculation (raises on failure)."""
    rng = make_rng()
    if is_binary_star(s.input_star):  # cisTEM's rule (as its GUI sends them)
        star = read_binary_star(Path(s.input_star))
    else:
        star = read_star(Path(s.input_star))
    stack = open_stack(s.input_stack)
    rows = _select_rows(s, star, stack.shape[0])
    shifts = np.stack([rows["x_shift"], rows["y_shift"]]) if len(rows) else np.zeros((2, 1))
    out.write(
        f"\nShift averages x, y = {shifts[0].mean():.4f}, {shifts[1].mean():.4f}, shift std x, "
        f"y = {shifts[0].std():.4f}, {shifts[1].std():.4f}\n"
    )
    if s.class_number > 0:
        box = stack.shape[-1]
        nb = nm.binned_box(box, s.pixel_size, max(s.high_res, 2 * s.pixel_size))
        out.write(
            f"Number of classes = {s.class_number}, nonzero classes = {s.class_number}, box size"
            f" = {box}, binning factor = {box / nb:.3f}, new pixel size = "
            f"{box * s.pixel_size / nb:.3f}, resolution limit = {s.high_res:.2f}, angular step "
            f"size = {s.angular_step:.2f}, percent_used = {100.0 * s.fraction:.2f}\n\n"
        )
        random_start(s, stack, rows, out, rng)
    else:
        refine(s, stack, star, rows, out, rng)


def _calculate(answers: dict[str, Answer], out: TextIO) -> None:
    run(Refine2dRequest.from_answers(answers), out)


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the 25 answers from stdin, run, return the exit code."""
    return run_program(
        program="Refine2D",
        version=VERSION,
        prompts=REFINE2D_PROMPTS,
        termination=REFINE2D_TERMINATION,
        calculate=_calculate,
        errors=(EngineInputError, DumpError, CistemStarError, OSError, ValueError, MemoryError),
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
