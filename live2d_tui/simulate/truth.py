"""The ground-truth sidecar ``truth/`` of a simulated session (the program itself never reads it).

Layout:
- ``truth/session.json``: the scenario's options, the discrete views' (rot, tilt), the
  conventions below, and the geometry (box, pixel size) of every model/box generation;
- ``truth/phantom.json``: the blob model, so the scorer can re-project any orientation;
- ``truth/references.mrcs``: clean, CTF-free projections of the K discrete views at psi 0 and
  zero origin (slice k+1 = view k), at the session's initial box and pixel size, with the
  session's B-factor;
- ``truth/particles/<root>_<Model>.star``: one row per particle of that stack, keyed by the
  exact Warp image name ``%07d@particles/<root>_<Model>.mrcs``; rewritten when the micrograph
  is reprocessed.

Every file is replaced atomically (temporary file + rename) so a scorer running mid-session never
reads a torn one, but without fsync: the sidecar is regenerated from the seed, it needs no
durability, and an fsync per movie would dominate the cost of small test sessions.

Conventions (stated in each truth star's header too): angles are RELION ZYZ in degrees; a
particle is the projection at (rot, tilt, psi) shifted by −origin (``rlnOriginX/YAngst``, Å), so
in :mod:`live2d_tui.imaging` terms ``particle ≈ from_class_frame(reference_psi0, psi, ox/px,
oy/px)``, i.e. cisTEM refine2d's shifts (Å) are (ox, oy): equal to the origins.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from live2d_tui.formats.warp_star import star_text
from live2d_tui.simulate.particles import ParticleParams
from live2d_tui.simulate.warp_writer import mrc_header


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(data)
    temp.replace(path)


TRUTH_COLUMNS: tuple[str, ...] = (
    "rlnImageName",
    "rlnAngleRot",
    "rlnAngleTilt",
    "rlnAnglePsi",
    "rlnOriginXAngst",
    "rlnOriginYAngst",
    "simViewId",
    "rlnDefocusU",
    "rlnDefocusV",
    "rlnDefocusAngle",
    "rlnPhaseShift",
    "rlnDetectorPixelSize",
    "simMicrographIndex",
)

CONVENTION = (
    "RELION ZYZ Euler angles (degrees); particle = projection(rot, tilt, psi) shifted by -origin "
    "(rlnOriginX/YAngst, Angstrom); with live2d_tui.imaging: particle ~ "
    "from_class_frame(projection(rot, tilt, 0), psi, originX/px, originY/px); cisTEM refine2d "
    "x/y shift = +origin; simViewId -1 = continuous orientation; defocus in Angstrom as in the "
    "Warp star; rlnPhaseShift in degrees; images protein white (Invert=True) unless the session "
    "says invert=false"
)


@dataclass(frozen=True)
class TruthTable:
    """Truth of many particles, one array entry each, keyed by Warp image name."""

    names: list[str]
    rot: np.ndarray[Any, np.dtype[np.float64]]
    tilt: np.ndarray[Any, np.dtype[np.float64]]
    psi: np.ndarray[Any, np.dtype[np.float64]]
    origin_x: np.ndarray[Any, np.dtype[np.float64]]
    """Å."""
    origin_y: np.ndarray[Any, np.dtype[np.float64]]
    view: np.ndarray[Any, np.dtype[np.int64]]
    defocus_u: np.ndarray[Any, np.dtype[np.float64]]
    defocus_v: np.ndarray[Any, np.dtype[np.float64]]
    defocus_angle: np.ndarray[Any, np.dtype[np.float64]]
    phase_shift: np.ndarray[Any, np.dtype[np.float64]]
    pixel_size: np.ndarray[Any, np.dtype[np.float64]]

    def index(self) -> dict[str, int]:
        """Image name → row."""
        return {name: i for i, name in enumerate(self.names)}

    def take(self, rows: np.ndarray[Any, np.dtype[np.int64]]) -> TruthTable:
        """The subset of ``rows`` (in that order)."""
        return TruthTable(
            names=[self.names[int(r)] for r in rows],
            **{
                f: getattr(self, f)[rows]
                for f in (
                    "rot", "tilt", "psi", "origin_x", "origin_y", "view", "defocus_u",
                    "defocus_v", "defocus_angle", "phase_shift", "pixel_size",
                )
            },
        )  # fmt: skip


def write_micrograph_truth(
    truth_dir: Path,
    stack_name: str,
    image_names: list[str],
    params: ParticleParams,
    *,
    pixel_size: float,
    micrograph_index: int,
) -> Path:
    """Write (or rewrite, after reprocessing) one micrograph's truth star."""
    rows = [
        [
            image_names[i],
            f"{params.rot[i]:.6f}",
            f"{params.tilt[i]:.6f}",
            f"{params.psi[i]:.6f}",
            f"{params.origin_x[i]:.6f}",
            f"{params.origin_y[i]:.6f}",
            str(int(params.view[i])),
            f"{params.defocus_u[i]:.1f}",
            f"{params.defocus_v[i]:.1f}",
            f"{params.defocus_angle[i]:.1f}",
            f"{params.phase_shift[i]:.1f}",
            f"{pixel_size:.5f}",
            str(micrograph_index),
        ]
        for i in range(len(params))
    ]
    path = truth_dir / "particles" / (Path(stack_name).stem + ".star")
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, (f"# {CONVENTION}\n" + star_text(TRUTH_COLUMNS, rows)).encode("utf-8"))
    return path


def write_session_truth(truth_dir: Path, record: dict[str, Any]) -> None:
    """``truth/session.json`` (options, views, conventions, geometries)."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"convention": CONVENTION, **record}, indent=2) + "\n"
    _replace(truth_dir / "session.json", text.encode("utf-8"))


def write_phantom(truth_dir: Path, phantom_json: dict[str, Any]) -> None:
    """``truth/phantom.json``."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    _replace(truth_dir / "phantom.json", (json.dumps(phantom_json, indent=2) + "\n").encode())


def write_references(
    truth_dir: Path, references: np.ndarray[Any, np.dtype[np.float64]], pixel_size: float
) -> None:
    """``truth/references.mrcs`` (float32, mode 2)."""
    data = references.astype(np.float32)
    payload = mrc_header(data.shape, pixel_size, data) + np.ascontiguousarray(data).tobytes()
    truth_dir.mkdir(parents=True, exist_ok=True)
    _replace(truth_dir / "references.mrcs", payload)


def load_session(truth_dir: Path) -> dict[str, Any]:
    """The content of ``truth/session.json``."""
    data: dict[str, Any] = json.loads((truth_dir / "session.json").read_text(encoding="utf-8"))
    return data


def load_truth(truth_dir: Path) -> TruthTable:
    """Every particle's truth from ``truth/particles/*.star`` (sorted by file name)."""
    names: list[str] = []
    numbers: list[list[float]] = []
    for path in sorted((Path(truth_dir) / "particles").glob("*.star")):
        lines = path.read_text(encoding="utf-8").splitlines()
        labels = [ln.split()[0][1:] for ln in lines if ln.startswith("_")]
        if list(labels) != list(TRUTH_COLUMNS):
            raise ValueError(f"{path}: unexpected truth columns {labels}")
        for line in lines:
            parts = line.split()
            if len(parts) != len(TRUTH_COLUMNS) or line.startswith(("_", "#")):
                continue
            names.append(parts[0])
            numbers.append([float(v) for v in parts[1:]])
    table = np.array(numbers, dtype=np.float64).reshape(len(numbers), len(TRUTH_COLUMNS) - 1)
    return TruthTable(
        names=names,
        rot=table[:, 0],
        tilt=table[:, 1],
        psi=table[:, 2],
        origin_x=table[:, 3],
        origin_y=table[:, 4],
        view=table[:, 5].astype(np.int64),
        defocus_u=table[:, 6],
        defocus_v=table[:, 7],
        defocus_angle=table[:, 8],
        phase_shift=table[:, 9],
        pixel_size=table[:, 10],
    )
