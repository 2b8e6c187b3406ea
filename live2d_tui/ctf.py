"""The contrast transfer function, in RELION's convention (which Warp follows).

One implementation serves the simulator, the built-in engine and the scorer
(docs/simulation-and-scoring.md#the-ctf):

    γ(k) = π·λ·Δf(α)·|k|² − (π/2)·Cs·λ³·|k|⁴ + arcsin(Q0) + φ,   CTF = sin γ · exp(−B|k|²/4)

with Δf(α) = ½(U+V) + ½(U−V)·cos 2(α − θ), U/V positive for underfocus (Å), θ in degrees,
φ the phase shift in **degrees** at the interface (radians inside), Cs in mm. CTF(0) = +Q0 > 0,
so a positive (white) projected potential times this CTF gives white protein, which is what
Warp's inverted exports contain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def electron_wavelength(voltage_kv: npt.ArrayLike) -> FloatArray:
    """Relativistic electron wavelength in Å (0.019687 Å at 300 kV); broadcasts over arrays."""
    volts = np.asarray(voltage_kv, dtype=np.float64) * 1e3
    return 12.2643247 / np.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def frequency_grid(
    box: int, pixel_size: float, *, rfft: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Spatial frequencies (kx, ky) in 1/Å for an image [y, x] of ``box`` pixels.

    With ``rfft`` the grid matches ``numpy.fft.rfft2`` output (box, box//2 + 1), else ``fft2``.
    """
    ky = np.fft.fftfreq(box, d=pixel_size)
    kx = np.fft.rfftfreq(box, d=pixel_size) if rfft else np.fft.fftfreq(box, d=pixel_size)
    return np.meshgrid(kx, ky, indexing="xy")


def ctf_2d(
    box: int,
    pixel_size: float,
    defocus_u: npt.ArrayLike,
    defocus_v: npt.ArrayLike,
    defocus_angle_deg: npt.ArrayLike,
    *,
    voltage_kv: npt.ArrayLike = 300.0,
    cs_mm: npt.ArrayLike = 2.7,
    amplitude_contrast: npt.ArrayLike = 0.07,
    phase_shift_deg: npt.ArrayLike = 0.0,
    bfactor: float = 0.0,
    rfft: bool = True,
    dtype: type[np.floating[Any]] = np.float64,
) -> npt.NDArray[np.floating[Any]]:
    """CTF on the (r)FFT grid for one or many particles.

    Parameters broadcast: scalars give one (box, nkx) array; 1-D arrays of length B give
    (B, box, nkx). Defocus in Å (positive = underfocus), angles in degrees, Cs in mm.
    """
    kx, ky = frequency_grid(box, pixel_size, rfft=rfft)
    k2 = kx * kx + ky * ky
    alpha = np.arctan2(ky, kx)
    du = np.asarray(defocus_u, dtype=np.float64)
    batched = du.ndim > 0
    shape = (-1, 1, 1) if batched else ()

    def col(value: npt.ArrayLike) -> FloatArray:
        arr = np.asarray(value, dtype=np.float64)
        return arr.reshape(shape) if batched and arr.ndim > 0 else arr

    u, v, theta = col(du), col(defocus_v), np.deg2rad(col(defocus_angle_deg))
    lam = col(electron_wavelength(voltage_kv))
    cs = col(cs_mm) * 1e7
    q0 = np.clip(col(amplitude_contrast), 0.0, 0.999)
    phi = np.deg2rad(col(phase_shift_deg))
    defocus = 0.5 * (u + v) + 0.5 * (u - v) * np.cos(2.0 * (alpha - theta))
    gamma = np.pi * lam * defocus * k2 - 0.5 * np.pi * cs * lam**3 * k2 * k2 + np.arcsin(q0) + phi
    ctf = np.sin(gamma)
    if bfactor:
        ctf = ctf * np.exp(-bfactor * k2 / 4.0)
    return ctf.astype(dtype, copy=False)


def star_ctfs(
    rows: npt.NDArray[Any], box: int, pixel_size: float, *, isotropic: bool = False
) -> npt.NDArray[np.floating[Any]]:
    """Per-particle CTFs (B, box, box//2+1) of cisTEM star rows (``formats.cistem_star``
    columns: defocus 1/2 and angle, phase shift in degrees, voltage, Cs, amplitude contrast); a
    row without a voltage (≤ 0) counts as 300 kV. ``isotropic``: at the mean defocus without
    astigmatism, so the same after any in-plane rotation (the CTF² of a class-frame average)."""
    if isotropic:
        mean = 0.5 * (rows["defocus_1"] + rows["defocus_2"])
        defocus_u, defocus_v, angle = mean, mean, np.zeros(len(rows))
    else:
        defocus_u, defocus_v, angle = rows["defocus_1"], rows["defocus_2"], rows["defocus_angle"]
    return ctf_2d(
        box,
        pixel_size,
        defocus_u,
        defocus_v,
        angle,
        voltage_kv=np.where(rows["voltage"] > 0, rows["voltage"], 300.0),
        cs_mm=rows["cs"],
        amplitude_contrast=rows["amplitude_contrast"],
        phase_shift_deg=rows["phase_shift"],
    )
