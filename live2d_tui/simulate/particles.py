"""Per-particle parameters and image formation: projection → CTF → noise → Warp normalisation.

Image formation (docs/simulation-and-scoring.md#the-phantom-and-image-formation, #the-ctf,
#noise-and-normalisation):
1. clean projection P of the phantom at (rot, tilt, psi), shifted by −origin (exact, in Fourier);
2. CTF-modulated image C = F⁻¹[CTF · F(P)] with :func:`live2d_tui.ctf.ctf_2d` (RELION sign:
   CTF(0) = +Q0, so a positive potential gives white protein);
3. noise: white Gaussian with σ² = var(C over the whole box) / SNR (the definition the tests
   state);
4. Warp's normalisation: the pixels outside radius Diameter/2 get mean 0 and σ 1;
5. contrast: Invert=True (the default) exports protein white, i.e. +C; Invert=False exports −C.

The CTF values used are the star's own values after Warp's ``F1`` rounding, so the truth and the
star agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from live2d_tui.ctf import ctf_2d
from live2d_tui.imaging import radius_grid
from live2d_tui.simulate.phantom import FloatArray, Phantom, fibonacci_views, project


@dataclass(frozen=True)
class MicrographCTF:
    """One micrograph's CTF fit, as the movie XML holds it."""

    defocus: float
    """Mean defocus, µm (positive = underfocus)."""
    defocus_delta: float
    """Astigmatism U − V, µm."""
    defocus_angle: float
    """Angle of the U axis from +x, degrees."""
    phase_shift: float
    """Phase shift in units of π (XML convention); ``rlnPhaseShift`` = this × 180."""
    resolution: float
    """CTF fit resolution estimate, Å (``CTFResolutionEstimate``)."""


@dataclass(frozen=True)
class ParticleParams:
    """True parameters of a batch of particles (one micrograph), one array entry each."""

    rot: FloatArray
    tilt: FloatArray
    psi: FloatArray
    origin_x: FloatArray
    """RELION origin, Å: the particle is the projection shifted by −origin."""
    origin_y: FloatArray
    view: npt.NDArray[np.int64]
    """True view id (0-based), −1 for continuous orientations."""
    defocus_u: FloatArray
    """Å, rounded to 0.1 as Warp writes it."""
    defocus_v: FloatArray
    defocus_angle: FloatArray
    """Degrees, rounded to 0.1."""
    phase_shift: FloatArray
    """Degrees, rounded to 0.1."""
    coord_x: FloatArray
    """Pick coordinates in binned micrograph pixels, rounded to 0.01."""
    coord_y: FloatArray
    fom: FloatArray
    """BoxNet figure of merit."""

    def __len__(self) -> int:
        return len(self.rot)


def draw_micrograph_ctf(
    rng: np.random.Generator,
    *,
    defocus_min: float,
    defocus_max: float,
    phase_plate: bool,
    bad: bool,
) -> MicrographCTF:
    """A plausible CTF fit; ``bad`` gives one whose resolution estimate fails Warp's filter."""
    return MicrographCTF(
        defocus=round(float(rng.uniform(defocus_min, defocus_max)), 4),
        defocus_delta=round(float(rng.uniform(0.0, 0.06)), 4),
        defocus_angle=round(float(rng.uniform(0.0, 180.0)), 2),
        phase_shift=round(float(rng.uniform(30.0, 110.0)) / 180.0, 4) if phase_plate else 0.0,
        resolution=round(float(rng.uniform(12.0, 20.0) if bad else rng.uniform(3.0, 6.0)), 2),
    )


def draw_particles(
    rng: np.random.Generator,
    count: int,
    ctf: MicrographCTF,
    *,
    views: int,
    view_jitter: float,
    max_shift_px: float,
    pixel_size: float,
    micrograph_px: int,
    box: int,
) -> ParticleParams:
    """Orientations, origins, per-particle defocus and pick coordinates for one micrograph."""
    if views > 0:
        table = fibonacci_views(views)
        view = rng.integers(0, views, size=count).astype(np.int64)
        rot = table[view, 0] + rng.uniform(-view_jitter, view_jitter, count)
        tilt = np.clip(table[view, 1] + rng.uniform(-view_jitter, view_jitter, count), 0.0, 180.0)
    else:
        view = np.full(count, -1, dtype=np.int64)
        rot = rng.uniform(-180.0, 180.0, count)
        tilt = np.rad2deg(np.arccos(rng.uniform(-1.0, 1.0, count)))
    psi = rng.uniform(-180.0, 180.0, count)
    radius = max_shift_px * np.sqrt(rng.uniform(0.0, 1.0, count))
    angle = rng.uniform(0.0, 2.0 * np.pi, count)
    origin_x = radius * np.cos(angle) * pixel_size
    origin_y = radius * np.sin(angle) * pixel_size
    # Warp evaluates the defocus per particle from its CTF grid: a small local variation
    local = rng.normal(0.0, 60.0, count)
    mean_u = (ctf.defocus + ctf.defocus_delta / 2.0) * 1e4
    mean_v = (ctf.defocus - ctf.defocus_delta / 2.0) * 1e4
    margin = box / 2.0
    coord_x = rng.uniform(margin, micrograph_px - margin, count)
    coord_y = rng.uniform(margin, micrograph_px - margin, count)
    return ParticleParams(
        rot=rot,
        tilt=tilt,
        psi=psi,
        origin_x=origin_x,
        origin_y=origin_y,
        view=view,
        defocus_u=np.round(mean_u + local, 1),
        defocus_v=np.round(mean_v + local, 1),
        defocus_angle=np.full(count, round(ctf.defocus_angle, 1)),
        phase_shift=np.full(count, round(ctf.phase_shift * 180.0, 1)),
        coord_x=np.round(coord_x, 2),
        coord_y=np.round(coord_y, 2),
        fom=np.round(rng.uniform(0.95, 1.0, count), 3),
    )


def render_particles(
    phantom: Phantom,
    params: ParticleParams,
    noise_rng: np.random.Generator,
    *,
    box: int,
    pixel_size: float,
    diameter: float,
    snr: float,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
    bfactor: float = 0.0,
    invert: bool = True,
    batch: int = 64,
) -> npt.NDArray[np.float32]:
    """The exported particle images (count, box, box) float32, normalised as Warp does."""
    out = np.empty((len(params), box, box), dtype=np.float32)
    outside = radius_grid(box) > diameter / (2.0 * pixel_size)
    sign = 1.0 if invert else -1.0
    for start in range(0, len(params), batch):
        sl = slice(start, min(start + batch, len(params)))
        clean = project(
            phantom,
            params.rot[sl],
            params.tilt[sl],
            params.psi[sl],
            box=box,
            pixel_size=pixel_size,
            shift_x=-params.origin_x[sl],
            shift_y=-params.origin_y[sl],
        )
        ctf = ctf_2d(
            box,
            pixel_size,
            params.defocus_u[sl],
            params.defocus_v[sl],
            params.defocus_angle[sl],
            voltage_kv=voltage,
            cs_mm=cs,
            amplitude_contrast=amplitude_contrast,
            phase_shift_deg=params.phase_shift[sl],
            bfactor=bfactor,
        )
        modulated = np.fft.irfft2(np.fft.rfft2(clean) * ctf, s=(box, box))
        sigma = np.sqrt(modulated.var(axis=(1, 2)) / snr)
        noisy = modulated + noise_rng.standard_normal(modulated.shape) * sigma[:, None, None]
        background = noisy[:, outside]
        mean = background.mean(axis=1)
        std = background.std(axis=1)
        std[std == 0] = 1.0
        out[sl] = (sign * (noisy - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    return out
