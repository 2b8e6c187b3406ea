"""Reference classifications of a simulated session, built from its truth: the yardsticks'
own yardstick.

:func:`oracle_classification` writes, for the particles of a session's final
``goodparticles_<Model>.star`` (first model, in table order), everything the scorer reads:

- ``combined_stack.mrcs`` (float32, position i+1 = row i) and ``combined_stack_relion.star``
  (``rlnImageOriginalName`` = the Warp image name);
- ``classes.star``: cisTEM rows with the **true** psi and shifts (cisTEM refine2d shift =
  +origin) and the star's CTF, assigned either by true view (``grouping="truth"``) or
  uniformly at random (``grouping="random"``, same K); with continuous orientations, "truth"
  groups by the nearest of ``continuous_classes`` well-spread viewing directions;
- ``classes.mrc``: each class's Wiener average from those rows (:func:`score.wiener_average`).

The truth grouping should score purity 1 and an FRC₀.₅ near the resolution limit; the random one
purity ≈ 1/K and a poor FRC. Tests and benchmarks use it to check the scorer and to calibrate
the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from live2d_tui.formats.cistem_star import empty_rows, write_star
from live2d_tui.formats.mrc import read_header, read_slices
from live2d_tui.simulate.averaging import wiener_average
from live2d_tui.simulate.phantom import fibonacci_views, viewing_direction
from live2d_tui.simulate.truth import load_session, load_truth
from live2d_tui.simulate.warp_writer import write_stack


@dataclass(frozen=True)
class OracleFiles:
    """Paths written by :func:`oracle_classification`."""

    classes: Path
    star: Path
    stack: Path
    relion_star: Path
    names: list[str]
    pixel_size: float


def _warp_table(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    labels = [ln.split()[0][1:] for ln in lines if ln.startswith("_")]
    rows = [ln.split() for ln in lines if ln.strip() and not ln.startswith(("_", "data_", "loop_"))]
    return labels, [r for r in rows if len(r) == len(labels)]


def oracle_classification(
    session: Path,
    out: Path,
    *,
    grouping: Literal["truth", "random"] = "truth",
    seed: int = 0,
    continuous_classes: int = 8,
) -> OracleFiles:
    """Write an oracle (or random) classification of ``session`` into ``out``."""
    session, out = Path(session), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = load_session(session / "truth")
    folder = Path(info["folder"]) if Path(info["folder"]).is_dir() else session
    model = info["models"][0]
    labels, rows = _warp_table(folder / f"goodparticles_{model}.star")
    col = {name: labels.index(name) for name in labels}
    names = [r[col["rlnImageName"]] for r in rows]
    truth = load_truth(session / "truth")
    index = truth.index()
    t = truth.take(np.array([index[n] for n in names], dtype=np.int64))
    by_stack: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_stack.setdefault(name.split("@")[1], []).append(i)
    order = np.empty(len(names), dtype=np.int64)
    chunks = []
    cursor = 0
    for stack, members in by_stack.items():
        path = folder / stack
        slots = np.array([int(names[i].split("@")[0]) for i in members], dtype=np.int64)
        chunks.append(read_slices(path, read_header(path), slots))
        order[members] = np.arange(cursor, cursor + len(members))
        cursor += len(members)
    images = np.concatenate(chunks)[order]
    pixel = float(rows[0][col["rlnDetectorPixelSize"]])
    stack_path = out / "combined_stack.mrcs"
    write_stack(stack_path, images, pixel, float16=False)

    star = empty_rows(len(names))
    star["position"] = np.arange(1, len(names) + 1)
    star["psi"] = t.psi
    # particle = projection(psi) moved by −origin = from_class_frame(view, psi, +origin):
    # cisTEM's 2D shifts are RELION's origins (truth.CONVENTION)
    star["x_shift"] = t.origin_x
    star["y_shift"] = t.origin_y
    star["defocus_1"] = [float(r[col["rlnDefocusU"]]) for r in rows]
    star["defocus_2"] = [float(r[col["rlnDefocusV"]]) for r in rows]
    star["defocus_angle"] = [float(r[col["rlnDefocusAngle"]]) for r in rows]
    star["phase_shift"] = [float(r[col["rlnPhaseShift"]]) for r in rows]
    star["pixel_size"] = pixel
    star["voltage"] = [float(r[col["rlnVoltage"]]) for r in rows]
    star["cs"] = [float(r[col["rlnSphericalAberration"]]) for r in rows]
    star["amplitude_contrast"] = [float(r[col["rlnAmplitudeContrast"]]) for r in rows]
    views = len(info["views"]) or continuous_classes
    if grouping == "truth" and info["views"]:
        star["best_class"] = t.view + 1
    elif grouping == "truth":
        # continuous orientations: the nearest of K well-spread viewing directions
        centres = fibonacci_views(views)
        dirs = viewing_direction(centres[:, 0], centres[:, 1])
        star["best_class"] = np.argmax(viewing_direction(t.rot, t.tilt) @ dirs.T, axis=1) + 1
    else:
        star["best_class"] = np.random.default_rng(seed).integers(1, views + 1, len(names))
    star_path = out / "classes.star"
    write_star(star_path, star)

    averages = np.zeros((views, images.shape[1], images.shape[2]), dtype=np.float32)
    for k in range(views):
        members = star["best_class"] == k + 1
        if members.any():
            averages[k] = wiener_average(images[members].astype(np.float64), star[members], pixel)
    classes_path = out / "classes.mrc"
    write_stack(classes_path, averages, pixel, float16=False)

    relion_path = out / "combined_stack_relion.star"
    lines = ["", "data_particles", "", "loop_", "_rlnImageName #1", "_rlnImageOriginalName #2"]
    lines += [f"{i + 1:07d}@combined_stack.mrcs {name}" for i, name in enumerate(names)]
    relion_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return OracleFiles(classes_path, star_path, stack_path, relion_path, names, pixel)


def main(argv: list[str] | None = None) -> int:
    """``python -m live2d_tui.simulate.oracle SESSION OUT [--grouping random]``: write an oracle
    (or random) classification of a simulated session and print its scorecard."""
    import argparse

    from live2d_tui.simulate.score import original_names_from_relion_star, score_classes

    parser = argparse.ArgumentParser(prog="python -m live2d_tui.simulate.oracle")
    parser.add_argument("session", type=Path, help="a folder written by live2d simulate")
    parser.add_argument("out", type=Path, help="folder for the classification files")
    parser.add_argument("--grouping", choices=("truth", "random"), default="truth")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random grouping")
    args = parser.parse_args(argv)
    files = oracle_classification(args.session, args.out, grouping=args.grouping, seed=args.seed)
    card = score_classes(
        files.classes,
        files.star,
        files.stack,
        original_names_from_relion_star(files.relion_star),
        args.session / "truth",
        pixel_size=files.pixel_size,
    )
    print(card.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
