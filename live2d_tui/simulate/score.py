"""Score 2D class averages and per-particle assignments against a simulated session's truth.

``score_classes(classes_mrc, cycle_star, stack, original_names, truth_dir, pixel_size=…)``
(docs/simulation-and-scoring.md#scoring, #per-class and #per-run):

- every row of the cycle star (cisTEM, 22 columns) with a class ≥ 1 is a member; its
  ``position`` is 1-based in ``stack`` and ``original_names[position − 1]`` is the Warp image
  name that keys ``truth/particles/*.star``;
- **best match** of class c: the largest NCC, inside a 0.45·N circular mask, over candidate
  references (its members' three most common true views — clean CTF-free projections at psi 0 —
  or, for continuous orientations, projections at the true orientations of the three members
  closest to the class's mean viewing direction) × in-plane angles (5° steps, then 1°) × shifts
  (≤ ``max_shift`` px, sub-pixel peak);
- **FRC₀.₅** of the class average against that aligned reference (and FRC₀.₁₄₃ for
  information); **half-set FRC₀.₁₄₃** between odd and even members re-averaged from the star's
  psi, shifts and CTF (Wiener-style Σ CTF·F / (Σ CTF² + 1) in the :mod:`live2d_tui.imaging`
  convention: each CTF-weighted particle is brought into the class frame by
  ``to_class_frame(image, psi, x/px, y/px)``; the denominator uses the astigmatism-free CTF);
- **pose-limited FRC₀.₅**: the same, for the noise-free average of the members' clean
  projections (true orientation and shift; no CTF, no noise) brought into the class frame by the
  star's psi and shifts — the resolution the class's membership and poses allow with unlimited
  particles. Near FRC₀.₅, the class is limited by who its members are and how they are aligned,
  not by noise or the reconstruction;
- run-wide purity, adjusted Rand index and views recovered (discrete views), and per-class
  angular spread of members' true viewing directions.

CLI: ``python -m live2d_tui.simulate.score CLASSES STAR STACK RELION_STAR TRUTH [--json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from live2d_tui import imaging
from live2d_tui.formats.cistem_star import StarRows, read_star
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.simulate import metrics
from live2d_tui.simulate.averaging import align_reference, wiener_average
from live2d_tui.simulate.metrics import F64, I64
from live2d_tui.simulate.phantom import Phantom, project, viewing_direction
from live2d_tui.simulate.truth import TruthTable, load_session, load_truth

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass
class ClassScore:
    """The score of one class."""

    class_number: int
    """1-based, as in the star's ``cisTEMBest2DClass``."""
    members: int
    majority_view: int
    """Most common true view among members (−1 for continuous orientations)."""
    purity: float
    """Fraction of members in the majority view."""
    matched_view: int
    """Best-matching reference view (−1: a re-projected continuous orientation)."""
    match_ncc: float
    match_angle: float
    """In-plane angle (degrees) applied to the reference to match the class."""
    match_shift: tuple[float, float]
    """(x, y) shift in pixels applied after the rotation."""
    frc05: float
    """Å, class average vs the aligned clean reference."""
    frc0143_truth: float
    """Å, same curve at 0.143 (for information)."""
    half_frc0143: float | None
    """Å, odd vs even members re-averaged from the star (None below 4 members)."""
    pose_frc05: float
    """Å, the members' clean projections averaged in the class frame by the star's poses vs
    the same reference: what the membership and poses allow (see the module docstring)."""
    angular_spread: float
    """Median angle (degrees) of members' true viewing directions to their mean."""
    within_15: float
    """Fraction of members within 15° of the mean direction."""
    frc_curve: list[float] = field(default_factory=list, repr=False)


@dataclass
class Scorecard:
    """A run's score: per class and overall."""

    classes: list[ClassScore]
    particles: int
    true_views: int
    """K (0 for continuous orientations)."""
    purity: float | None
    ari: float | None
    views_recovered: float | None
    median_frc05: float
    weighted_median_frc05: float
    """Median over particles (each class weighted by its size)."""
    median_half_frc0143: float | None
    median_pose_frc05: float
    median_angular_spread: float
    nyquist: float
    box: int
    pixel_size: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (FRC curves included)."""
        return asdict(self)

    def mean_frc_at(self, resolution: float) -> float:
        """The classes' FRC with their true projections (the FRC0.5 curve), averaged over the
        classes, at the ring of ``resolution`` Å (N·px/resolution, rounded).

        A class's FRC0.5 crossing moves in whole rings, so near a limit two runs of one engine
        can differ by a ring in several classes and shift the median by chance (on the harder
        simulated session, 8.35 or 8.73 Å); this mean moves continuously with the averages'
        agreement with the truth there. It complements the median and does not predict it: the
        crossing is the first ring BELOW 0.5 (a class "at 8.35 Å" passes the 8.73 Å ring), and
        the mean weighs how far each class is from 0.5 where the median only counts sides (on
        the harder session, the run with the highest mean at the 8.73 Å ring, 0.533, had a
        median of 8.73 Å). NaN when the ring lies beyond Nyquist."""
        ring = round(self.box * self.pixel_size / resolution)
        values = [c.frc_curve[ring] for c in self.classes if ring < len(c.frc_curve)]
        return float(np.mean(values)) if values else float("nan")

    def format(self) -> str:
        """A human-readable table."""
        lines = [
            f"{self.particles} particles in {len(self.classes)} classes, {self.box} px at "
            f"{self.pixel_size:g} Å/px (Nyquist {self.nyquist:.1f} Å), true views: "
            f"{self.true_views or 'continuous'}",
            " class  members  view  purity  match  ncc    FRC0.5  FRC0.143  half0.143  poses"
            "  spread",
        ]
        for c in self.classes:
            half = f"{c.half_frc0143:9.1f}" if c.half_frc0143 is not None else "        -"
            lines.append(
                f"{c.class_number:6d} {c.members:8d} {c.majority_view:5d} {c.purity:7.2f} "
                f"{c.matched_view:6d} {c.match_ncc:5.2f} {c.frc05:8.1f} {c.frc0143_truth:9.1f} "
                f"{half} {c.pose_frc05:6.1f} {c.angular_spread:7.1f}"
            )

        def opt(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"overall: purity {opt(self.purity, '.3f')}, ARI {opt(self.ari, '.3f')}, views "
            f"recovered {opt(self.views_recovered, '.2f')}, median FRC0.5 "
            f"{self.median_frc05:.1f} Å (size-weighted {self.weighted_median_frc05:.1f} Å), "
            f"median half-set FRC0.143 {opt(self.median_half_frc0143, '.1f')} Å, median "
            f"pose-limited FRC0.5 {self.median_pose_frc05:.1f} Å, median angular spread "
            f"{self.median_angular_spread:.1f}°"
        )
        return "\n".join(lines)


def original_names_from_relion_star(path: Path) -> list[str]:
    """``rlnImageOriginalName`` of every particle row of a RELION star, found by label name
    in the ``data_particles`` block (or the only block that has the column)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    i = 0
    start = next((n for n, ln in enumerate(lines) if ln.strip() == "data_particles"), None)
    names: list[str] = []
    i = start if start is not None else 0
    while i < len(lines):
        while i < len(lines) and lines[i].strip() != "loop_":
            i += 1
        i += 1
        labels: list[str] = []
        while i < len(lines) and lines[i].strip().startswith("_"):
            labels.append(lines[i].split()[0][1:])
            i += 1
        rows: list[list[str]] = []
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("data_"):
            if not lines[i].lstrip().startswith("#"):
                rows.append(lines[i].split())
            i += 1
        if "rlnImageOriginalName" in labels:
            j = labels.index("rlnImageOriginalName")
            names = [r[j] for r in rows if len(r) == len(labels)]
            if len(names) != len(rows):
                raise ValueError(f"{path}: a particle row has the wrong number of fields")
            return names
    raise ValueError(f"{path}: no rlnImageOriginalName column")


# ---------------------------------------------------------------------------------------------
# the scorecard


class _References:
    """Clean references at a given box and pixel size: truth/references.mrcs when its geometry
    matches, re-projections of truth/phantom.json otherwise (and for continuous orientations)."""

    def __init__(self, truth_dir: Path, box: int, pixel_size: float) -> None:
        self.session = load_session(truth_dir)
        self.phantom = Phantom.load(truth_dir / "phantom.json")
        self.box, self.pixel_size = box, pixel_size
        self.bfactor = float(self.session["options"].get("bfactor", 0.0))
        views = self.session["views"]
        self.view_angles = np.array([[v["rot"], v["tilt"]] for v in views]).reshape(-1, 2)
        self._views: F64 | None = None
        ref = self.session.get("references", {})
        path = truth_dir / "references.mrcs"
        if (
            path.exists()
            and ref.get("box") == box
            and abs(float(ref.get("pixel_size", 0)) - pixel_size) < 1e-6
        ):
            header = read_header(path)
            self._views = read_slices(path, header, np.arange(1, header.nz + 1)).astype(np.float64)

    def view(self, k: int) -> F64:
        if self._views is None:
            rot, tilt = self.view_angles[:, 0], self.view_angles[:, 1]
            self._views = self.project(rot, tilt)
        view: F64 = self._views[k]
        return view

    def project(
        self,
        rot: F64,
        tilt: F64,
        psi: F64 | None = None,
        origin_x: F64 | None = None,
        origin_y: F64 | None = None,
    ) -> F64:
        """Clean projections at (rot, tilt, psi = 0 unless given), moved by −origin (Å)."""
        out: F64 = project(
            self.phantom,
            rot,
            tilt,
            np.zeros(len(rot)) if psi is None else psi,
            box=self.box,
            pixel_size=self.pixel_size,
            shift_x=0.0 if origin_x is None else -origin_x,
            shift_y=0.0 if origin_y is None else -origin_y,
            bfactor=self.bfactor,
        )
        return out


def score_classes(
    classes_mrc: Path,
    cycle_star: Path,
    stack: Path,
    original_names: Sequence[str],
    truth_dir: Path,
    *,
    pixel_size: float,
    max_shift: float = 6.0,
    fold_mirrors: bool = False,
) -> Scorecard:
    """Score class averages and assignments against the truth (see the module docstring)."""
    header = read_header(Path(classes_mrc))
    averages = read_slices(Path(classes_mrc), header, np.arange(1, header.nz + 1))
    box = header.nx
    rows = read_star(Path(cycle_star))
    rows = rows[rows["best_class"] > 0]
    truth = load_truth(Path(truth_dir))
    index = truth.index()
    try:
        member_truth = np.array(
            [index[original_names[int(p) - 1]] for p in rows["position"]], dtype=np.int64
        )
    except (KeyError, IndexError) as exc:
        raise ValueError(f"a particle of {cycle_star} has no truth entry ({exc})") from None
    t: TruthTable = truth.take(member_truth)
    stack_header = read_header(Path(stack))
    images = read_slices(Path(stack), stack_header, rows["position"].astype(np.int64)).astype(
        np.float64
    )
    refs = _References(Path(truth_dir), box, pixel_size)
    directions = viewing_direction(t.rot, t.tilt)
    labels = rows["best_class"].astype(np.int64)
    discrete = bool(np.all(t.view >= 0)) and len(refs.view_angles) > 0
    scores = [
        _score_class(
            c, labels == c, averages[c - 1].astype(np.float64), images, rows, t, directions,
            refs, pixel_size=pixel_size, discrete=discrete, max_shift=max_shift,
            fold_mirrors=fold_mirrors,
        )
        for c in sorted({int(v) for v in labels})
        if 1 <= c <= len(averages)
    ]  # fmt: skip
    return _summarise(scores, t, labels, discrete, len(refs.view_angles), box, pixel_size)


def _score_class(
    c: int,
    members: BoolArray,
    average: F64,
    images: F64,
    rows: StarRows,
    t: TruthTable,
    directions: F64,
    refs: _References,
    *,
    pixel_size: float,
    discrete: bool,
    max_shift: float,
    fold_mirrors: bool,
) -> ClassScore:
    views = t.view[members]
    if discrete:
        ids, counts = np.unique(views, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        majority, purity = int(ids[order[0]]), float(counts[order[0]] / counts.sum())
        candidates = [(int(v), refs.view(int(v))) for v in ids[order[:3]]]
    else:
        majority, purity = -1, 1.0
        d = directions[members]
        mean = d.sum(axis=0)
        closest = np.argsort(-(d @ (mean / max(np.linalg.norm(mean), 1e-12))))[:3]
        projected = refs.project(t.rot[members][closest], t.tilt[members][closest])
        candidates = [(-1, p) for p in projected]
    best_view, best = -1, (-np.inf, 0.0, 0.0, 0.0)
    best_reference = candidates[0][1]
    for view, reference in candidates:
        result = align_reference(average, reference, max_shift=max_shift)
        if result[0] > best[0]:
            best_view, best = view, result
            best_reference = reference
    ncc, angle, dx, dy = best
    n = average.shape[0]
    mask = imaging.soft_circular_mask(n, 0.45 * n, 3.0)
    curve = _frc_to(average, best_reference, best, mask)
    half = None
    member_rows = np.flatnonzero(members)
    if len(member_rows) >= 4:
        halves = [
            wiener_average(images[member_rows[k::2]].astype(np.float64),
                           rows[member_rows[k::2]], pixel_size)
            for k in (0, 1)
        ]  # fmt: skip
        half_curve = metrics.frc(halves[0] * mask, halves[1] * mask)
        half = metrics.crossing_resolution(half_curve, 0.143, n, pixel_size)
    posed = _pose_average(rows[member_rows], t.take(member_rows), refs, pixel_size)
    posed_alignment = align_reference(posed, best_reference, max_shift=max_shift)
    pose_curve = _frc_to(posed, best_reference, posed_alignment, mask)
    spread, within = metrics.angular_spread(directions[members], fold_mirrors=fold_mirrors)
    return ClassScore(
        class_number=c,
        members=int(members.sum()),
        majority_view=majority,
        purity=purity,
        matched_view=best_view,
        match_ncc=float(ncc),
        match_angle=float(angle % 360.0),
        match_shift=(float(dx), float(dy)),
        frc05=metrics.crossing_resolution(curve, 0.5, n, pixel_size),
        frc0143_truth=metrics.crossing_resolution(curve, 0.143, n, pixel_size),
        half_frc0143=half,
        pose_frc05=metrics.crossing_resolution(pose_curve, 0.5, n, pixel_size),
        angular_spread=spread,
        within_15=within,
        frc_curve=[float(v) for v in curve],
    )


def _frc_to(
    image: F64, reference: F64, alignment: tuple[float, float, float, float], mask: F64
) -> F64:
    """FRC of ``image`` with ``reference`` turned and shifted by ``alignment`` (an
    :func:`align_reference` result), both masked."""
    _, angle, dx, dy = alignment
    aligned = np.asarray(
        imaging.fourier_shift(imaging.rotate(reference, angle), dx, dy), dtype=np.float64
    )
    return metrics.frc(image * mask, aligned * mask)


def _pose_average(
    rows: StarRows, t: TruthTable, refs: _References, pixel_size: float, chunk: int = 256
) -> F64:
    """Mean of the members' clean projections (true orientation and shift, no CTF, no noise),
    each brought into the class frame by the star's psi and shifts."""
    total = np.zeros((refs.box, refs.box))
    for start in range(0, len(rows), chunk):
        part = slice(start, start + chunk)
        clean = refs.project(
            t.rot[part], t.tilt[part], t.psi[part], t.origin_x[part], t.origin_y[part]
        )
        framed = imaging.to_class_frame(
            clean,
            rows["psi"][part],
            rows["x_shift"][part] / pixel_size,
            rows["y_shift"][part] / pixel_size,
        )
        total += np.asarray(framed, dtype=np.float64).sum(axis=0)
    out: F64 = total / max(len(rows), 1)
    return out


def _summarise(
    scores: list[ClassScore],
    t: TruthTable,
    labels: I64,
    discrete: bool,
    true_views: int,
    box: int,
    pixel_size: float,
) -> Scorecard:
    frc05 = np.array([c.frc05 for c in scores])
    sizes = np.array([c.members for c in scores])
    weighted = float(np.median(np.repeat(frc05, sizes))) if len(scores) else float("nan")
    halves = [c.half_frc0143 for c in scores if c.half_frc0143 is not None]
    recovered = None
    if discrete:
        found = {c.majority_view for c in scores if c.purity >= 0.5}
        recovered = len(found) / true_views
    return Scorecard(
        classes=scores,
        particles=len(labels),
        true_views=true_views if discrete else 0,
        purity=metrics.purity(t.view, labels) if discrete else None,
        ari=metrics.adjusted_rand_index(t.view, labels) if discrete else None,
        views_recovered=recovered,
        median_frc05=float(np.median(frc05)) if len(scores) else float("nan"),
        weighted_median_frc05=weighted,
        median_half_frc0143=float(np.median(halves)) if halves else None,
        median_pose_frc05=float(np.median([c.pose_frc05 for c in scores]))
        if scores
        else float("nan"),
        median_angular_spread=float(np.median([c.angular_spread for c in scores]))
        if scores
        else float("nan"),
        nyquist=2.0 * pixel_size,
        box=box,
        pixel_size=pixel_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m live2d_tui.simulate.score``: print a scorecard."""
    parser = argparse.ArgumentParser(
        prog="python -m live2d_tui.simulate.score",
        description="Score 2D classes of a simulated session against its ground truth.",
    )
    parser.add_argument("classes", type=Path, help="class averages (MRC stack), e.g. cycle_N.mrc")
    parser.add_argument("star", type=Path, help="per-particle assignments (cisTEM star)")
    parser.add_argument("stack", type=Path, help="the particle stack the star indexes")
    parser.add_argument(
        "relion_star", type=Path, help="RELION star with rlnImageOriginalName per stack position"
    )
    parser.add_argument("truth", type=Path, help="the session's truth/ folder")
    parser.add_argument("--pixel-size", type=float, default=None, help="Å/px (default: header)")
    parser.add_argument("--max-shift", type=float, default=6.0, help="px searched (6)")
    parser.add_argument("--fold-mirrors", action="store_true", help="fold d and −d in spreads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    pixel = args.pixel_size or read_header(args.classes).pixel_size
    if not pixel:
        print("score: no pixel size in the header; pass --pixel-size", file=sys.stderr)
        return 2
    card = score_classes(
        args.classes,
        args.star,
        args.stack,
        original_names_from_relion_star(args.relion_star),
        args.truth,
        pixel_size=pixel,
        max_shift=args.max_shift,
        fold_mirrors=args.fold_mirrors,
    )
    print(json.dumps(card.to_dict(), indent=2) if args.json else card.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
