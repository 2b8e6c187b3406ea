"""The batched likelihood search over classes × in-plane rotations × translations.

Model (whitened Fourier space, noise of unit complex variance per coefficient): a particle's
spectrum X (whitened by W = 1/√noise power) is a·c·R_ψ(A_k)·e^{-2πi f·t} + noise, with the
effective CTF c = W·CTF (RELION sign, protein white) and an amplitude a ≥ 0. With
cc = Re Σ_f Y(f)·conj(A_kψ(f))·e^{2πi f·t} (Y = c·X; all t at once by one inverse FFT of
Y·conj(A_kψ)) and norm = Σ_f c(f)²·|A_k(f)|² (rotation-averaged |A_k|², a matrix product), the
log-likelihood maximised over a is

    logP(k, ψ, t) = max(cc, 0)² / (2·norm)

summed over the full plane inside the resolution band. Fitting a removes the plain −½·norm
term's bias towards weak classes, which otherwise swallow everything from a random start.

Coarse-to-fine, all in batches of particles (no per-particle Python loop):

1. **coarse**: every class at every coarse angle (the requested angular step), at a reduced box
   (``nc``: the box for twice the working limit in Å, but no coarser than 16 Å and never finer
   than the working limit; the working box when that is not at least a quarter smaller), all
   translations
   inside the search range → best rotation per class;
2. **fine** (when the working box or the angular sampling is finer than the coarse one): the best
   ``candidates`` classes, at the fine angles within one coarse step of their coarse best, at the
   working box. Every correlation map's peak is refined to sub-pixel precision (parabola), and
   the correlation is re-evaluated exactly there (a direct Fourier sum), so the angle choice is
   not biased by the integer translation grid; psi gets a parabolic sub-step too.

Class probabilities are a softmax of smoothing × logP marginalised over the rotations searched
(all classes equally likely a priori: a prior from the memberships made big classes grow and
blur on continuous orientations; ``refine2d`` and :mod:`.split` keep the class sizes useful);
each particle contributes to every class within 20 log units of its best (as cisTEM), at that
class's best pose, weighted by the probability. Contributions are accumulated per (class, fine
angle) in the particle frame, and each bin is rotated back into the class frame once, at the end:
the class sums are S_k = Σ w·c·X shifted by −t and rotated by −ψ, and C_k = Σ w·c² rotated by −ψ.
(t is where the turned class sits in the particle; the star gets ψ and the shift s = −t,
cisTEM's convention: class = rotate(shift(particle, +s), −ψ), :mod:`live2d_tui.imaging`.)
The sums are held past the search limit, in the grid of the run's
:class:`~live2d_tui.fourier.AverageBand`, and S is tapered by its cosine edge. The
caller may leave particles out of the sums (``into_sums``); they still count in the class
weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui import fourier as nm
from live2d_tui.ctf import ctf_2d
from live2d_tui.similarity import filled

LOGP_WINDOW = 20.0
"""A particle contributes to every class whose (smoothed) logP is within this of its best."""
COARSE_RESOLUTION = 16.0
"""The coarsest limit (Å) of the coarse stage: it searches at twice the working limit, capped
here, and never finer than the working limit (``refine2d``'s search plan)."""


def angle_grid(step: float, offset: float) -> npt.NDArray[np.float64]:
    """Angles 0..360 at ``step`` (rounded so 360/step is whole), shifted by ``offset``."""
    count = max(1, round(360.0 / step))
    grid: npt.NDArray[np.float64] = np.mod(offset + np.arange(count) * (360.0 / count), 360.0)
    return grid


def auto_step(binned_pixel: float, mask_radius: float) -> float:
    """cisTEM's automatic angular step: rad2deg(binned pixel / mask radius)."""
    return float(np.rad2deg(binned_pixel / max(mask_radius, binned_pixel)))


@dataclass(frozen=True)
class SearchParams:
    """Geometry and sampling of one run."""

    box: int
    """Particle box N at the working pixel size."""
    pixel_size: float
    """Working pixel size (Å)."""
    nb: int
    """Working (binned) box; its Nyquist is the high-resolution limit."""
    nc: int
    """Coarse-stage box (≤ nb)."""
    high_res: float
    low_res: float
    search_range: float
    """Maximum translation (Å); 0 = the whole box."""
    smoothing: float
    coarse_step: float
    fine_step: float
    candidates: int = 3
    """Classes carried from the coarse to the fine stage."""

    @property
    def average(self) -> nm.AverageBand:
        """Where the class sums keep data (a function of box, pixel size and limit)."""
        return nm.average_band(self.box, self.pixel_size, self.high_res)

    @property
    def fine_needed(self) -> bool:
        return self.nc < self.nb or self.fine_step < self.coarse_step - 1e-9


@dataclass
class BatchResult:
    """Per-particle results of one batch (classes are 0-based indices into all K classes)."""

    best_class: npt.NDArray[np.int64]
    psi: npt.NDArray[np.float64]
    """Degrees, as the star's (the :mod:`live2d_tui.imaging` convention)."""
    x_shift: npt.NDArray[np.float64]
    """Å, as the star's: class = rotate(shift(particle, +x, +y), −psi)."""
    y_shift: npt.NDArray[np.float64]
    probability: npt.NDArray[np.float64]
    logp: npt.NDArray[np.float64]
    score: npt.NDArray[np.float64]


class ClassSearch:
    """Search particles against fixed references and accumulate new class sums."""

    def __init__(
        self,
        references: npt.NDArray[np.float32],
        params: SearchParams,
        whitening: npt.NDArray[np.float64],
        rng: np.random.Generator,
    ) -> None:
        """Prepare rotated reference spectra.

        Args:
            references: (K, N, N) class averages in the particle frame convention, already
                masked/centred; all-zero slices are empty classes (never searched).
            params: sampling.
            whitening: W on the (na, na//2+1) grid of ``params.average`` (na ≥ nb).
            rng: draws the random offsets of the angle grids.
        """
        p = self.params = params
        self.n_classes = len(references)
        self.nonzero = np.flatnonzero(filled(references))
        if len(self.nonzero) == 0:
            raise ValueError("all class averages are empty")
        k = len(self.nonzero)
        box_a = p.box * p.pixel_size
        self.band_b = nm.band_mask(p.nb, box_a, p.low_res, p.high_res)
        self.band_c = nm.band_mask(p.nc, box_a, p.low_res, p.high_res)
        self.band = p.average
        na = self.band.box
        if whitening.shape != (na, na // 2 + 1):
            raise ValueError(f"whitening must be on the {na}-pixel grid of the class sums")
        self.wt_b = (nm.half_weights(p.nb) * self.band_b).astype(np.float32)
        self.wt_c = (nm.half_weights(p.nc) * self.band_c).astype(np.float32)
        self.whiten_a = whitening.astype(np.float32)
        self.whiten = nm.crop_half(self.whiten_a, p.nb)
        spectra = nm.crop_half(np.fft.rfft2(references[self.nonzero].astype(np.float64)), p.nb)
        power = np.abs(spectra) ** 2
        rings = nm.ring_index(p.nb)
        self.power_b = nm.ring_average(power, p.nb)[:, rings].astype(np.float32)
        rings_c = nm.ring_index(p.nc)
        power_c = nm.ring_average(np.abs(nm.crop_half(spectra, p.nc)) ** 2, p.nc)
        self.power_c = power_c[:, rings_c].astype(np.float32)
        step_c = p.coarse_step
        self.coarse_angles = angle_grid(step_c, rng.uniform(-step_c / 2, step_c / 2))
        coarse = nm.crop_half(spectra, p.nc)
        self.refs_c = _rotated_set(coarse, self.coarse_angles)
        self.refs_c = (np.conj(self.refs_c) * self.band_c).astype(np.complex64)
        self.refs_c_flat = self.refs_c.reshape(k * len(self.coarse_angles), p.nc, p.nc // 2 + 1)
        if p.fine_needed:
            step_f = p.fine_step
            self.fine_angles = angle_grid(step_f, rng.uniform(-step_f / 2, step_f / 2))
            self.refs_f = _rotated_set(spectra, self.fine_angles)
            self.refs_f = (np.conj(self.refs_f) * self.band_b).astype(np.complex64)
            step_ratio = p.coarse_step / (360.0 / len(self.fine_angles))
            self.half_width = int(np.ceil(step_ratio / 2.0)) + 1
        else:
            self.fine_angles = self.coarse_angles
            self.half_width = 0
        self.win_c = nm.shift_window(p.nc, self._range_px(p.nc))
        self.win_b = nm.shift_window(p.nb, self._range_px(p.nb))
        nr = len(self.fine_angles)
        self.sums = np.zeros(
            (k * nr, na, na // 2 + 1), dtype=np.complex64
        )  # per-bin sums: single precision is ample
        self.ctf2 = np.zeros((k * nr, na, na // 2 + 1), dtype=np.float32)
        self.class_weight = np.zeros(self.n_classes)
        self.processed = 0
        self.total_logp = 0.0

    def _range_px(self, n: int) -> float:
        p = self.params
        pixel = p.box * p.pixel_size / n
        if p.search_range <= 0:
            return n / 2.0
        return min(n / 2.0, p.search_range / pixel)

    def batch_size(self) -> int:
        """Particles per batch so the correlation volumes stay near 4 M values (16 MB, under
        glibc's largest heap block size, see :mod:`live2d_tui.engine`)."""
        p = self.params
        per = len(self.nonzero) * len(self.coarse_angles) * p.nc * p.nc
        if p.fine_needed:
            per = max(per, self.params.candidates * (2 * self.half_width + 1) * p.nb * p.nb)
        return int(max(1, min(256, 4_000_000 // max(per, 1))))

    def run(
        self,
        images: npt.NDArray[np.float32],
        ctf: dict[str, npt.NDArray[np.float64]],
        into_sums: npt.NDArray[np.bool_] | None = None,
    ) -> BatchResult:
        """Search a batch of preprocessed particles (B, N, N); update the class sums.

        ``ctf`` holds per-particle arrays: defocus_1, defocus_2, defocus_angle, phase_shift
        (degrees), voltage, cs, amplitude_contrast. Particles whose ``into_sums`` is False
        (default: all True) are searched and counted in the class weights (occupancy) but left
        out of the class sums.
        """
        p = self.params
        nbatch = len(images)
        nb, nc, na = p.nb, p.nc, self.band.box
        spectra_a = nm.crop_half(np.fft.rfft2(images), na).astype(np.complex64)
        ctf_a = ctf_2d(
            na,
            p.box * p.pixel_size / na,
            ctf["defocus_1"],
            ctf["defocus_2"],
            ctf["defocus_angle"],
            voltage_kv=ctf["voltage"],
            cs_mm=ctf["cs"],
            amplitude_contrast=np.maximum(ctf["amplitude_contrast"], 0.001),
            phase_shift_deg=ctf["phase_shift"],
            dtype=np.float32,
        ).reshape(nbatch, na, na // 2 + 1)
        # at the sums' grid; the search takes the central nb × nb of it (the same frequencies)
        xw_a = spectra_a * self.whiten_a
        c_a = ctf_a * self.whiten_a
        y_a = (xw_a * c_a).astype(np.complex64)
        c2_a = (c_a * c_a).astype(np.float32)
        # (a crop is laid out rows first; the products and reshapes below want C order)
        xw = np.ascontiguousarray(nm.crop_half(xw_a, nb))
        y = np.ascontiguousarray(nm.crop_half(y_a, nb))
        c2 = np.ascontiguousarray(nm.crop_half(c2_a, nb))
        xsq_b = np.einsum("bij,ij->b", np.abs(xw) ** 2, self.wt_b)
        norm_b = (c2 * self.wt_b).reshape(nbatch, -1) @ self.power_b.reshape(
            len(self.nonzero), -1
        ).T
        # coarse stage: all classes × coarse angles × translations
        yc = nm.crop_half(y, nc) * self.band_c
        c2c = nm.crop_half(c2, nc)
        norm_c = (c2c * self.wt_c).reshape(nbatch, -1) @ self.power_c.reshape(
            len(self.nonzero), -1
        ).T
        prod: npt.NDArray[Any] = yc[:, None] * self.refs_c_flat[None]
        cc_c: npt.NDArray[Any] = np.fft.irfft2(prod, s=(nc, nc))
        cc_c = cc_c.reshape(nbatch, -1, nc * nc)
        k = len(self.nonzero)
        rc = len(self.coarse_angles)
        if p.fine_needed:
            win = cc_c[:, :, self.win_c]
            best_c = win.max(axis=2) * float(nc * nc)
            logp_c = _loglik(best_c.reshape(nbatch, k, rc), norm_c[:, :, None])
            class_c = logp_c.max(axis=2)
            m = min(k, p.candidates)
            cand = np.argsort(-class_c, axis=1)[:, :m]
            rbest = np.take_along_axis(logp_c.argmax(axis=2), cand, axis=1)
            psi_c = self.coarse_angles[rbest]
            nr = len(self.fine_angles)
            step_f = 360.0 / nr
            j0 = np.rint((psi_c - self.fine_angles[0]) / step_f).astype(np.int64)
            offsets = np.arange(-self.half_width, self.half_width + 1)
            jidx = np.mod(j0[..., None] + offsets, nr)
            refs = self.refs_f[cand[..., None], jidx]
            prod = (y[:, None, None] * refs).reshape(nbatch, -1, nb, nb // 2 + 1)
            cc: npt.NDArray[Any] = np.fft.irfft2(prod, s=(nb, nb))
            n_stage = nb
            cc = cc.reshape(nbatch, -1, nb * nb)
            window = self.win_b
            norm_stage: npt.NDArray[Any] = np.take_along_axis(norm_b, cand, axis=1)
        else:
            m = k
            cand = np.broadcast_to(np.arange(k), (nbatch, k))
            jidx = np.broadcast_to(np.arange(rc), (nbatch, k, rc))
            cc = cc_c
            n_stage = nc
            window = self.win_c
            norm_stage = norm_c
        nl = jidx.shape[2]
        win = cc[:, :, window]
        arg = win.argmax(axis=2)
        # sub-pixel peak of every (class, angle) map: a parabola along x and y through the best
        # integer translation; its interpolated height enters logP, so the angle choice is not
        # biased by the integer translation grid
        ty, tx = np.divmod(window[arg], n_stage)
        maps = cc.reshape(nbatch, m * nl, n_stage, n_stage)
        bi = np.arange(nbatch)[:, None]
        ji = np.arange(m * nl)[None, :]

        def value(dy: int, dx: int) -> npt.NDArray[Any]:
            return maps[bi, ji, (ty + dy) % n_stage, (tx + dx) % n_stage]  # type: ignore[no-any-return]

        c0 = value(0, 0)
        left_x, right_x = value(0, -1), value(0, 1)
        left_y, right_y = value(-1, 0), value(1, 0)
        dxs = _parabola(left_x, c0, right_x)
        dys = _parabola(left_y, c0, right_y)
        sx_flat = np.where(tx > n_stage // 2, tx - n_stage, tx) + dxs
        sy_flat = np.where(ty > n_stage // 2, ty - n_stage, ty) + dys
        # the correlation exactly at the sub-pixel position (a direct Fourier sum), never
        # below the integer peak
        exact = _correlation_at(prod, sx_flat, sy_flat, self.wt_b if n_stage == nb else self.wt_c)
        height = np.maximum(c0 * float(n_stage**2), exact)
        peak = height.reshape(nbatch, m, nl)
        sx_all = sx_flat.reshape(nbatch, m, nl)
        sy_all = sy_flat.reshape(nbatch, m, nl)
        logp = _loglik(peak, norm_stage[:, :, None])
        smooth = p.smoothing * logp
        lbest = smooth.argmax(axis=2)
        top = smooth.max(axis=2, keepdims=True)
        class_lp = top[..., 0] + np.log(np.exp(smooth - top).sum(axis=2))
        prob = np.exp(class_lp - class_lp.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        keep = class_lp >= class_lp.max(axis=1, keepdims=True) - LOGP_WINDOW
        sx = np.take_along_axis(sx_all, lbest[..., None], axis=2)[..., 0]
        sy = np.take_along_axis(sy_all, lbest[..., None], axis=2)[..., 0]
        # accumulate at the sums' grid: shift back by −t, bin by (class, angle)
        scale_a = na / n_stage
        best_j = np.take_along_axis(jidx, lbest[..., None], axis=2)[..., 0]
        bins = cand * len(self.fine_angles) + best_j
        rows, cols = np.nonzero(keep)
        weights = prob[rows, cols]
        np.add.at(self.class_weight, self.nonzero[cand[rows, cols]], weights)
        if into_sums is not None:
            summed = into_sums[rows]
            rows, cols, weights = rows[summed], cols[summed], weights[summed]
        ramps = nm.phase_ramp(na, -sx[rows, cols] * scale_a, -sy[rows, cols] * scale_a)
        _add_by_bin(self.sums, bins[rows, cols], weights[:, None, None] * y_a[rows] * ramps)
        _add_by_bin(self.ctf2, bins[rows, cols], weights[:, None, None] * c2_a[rows])
        # per-particle results at the most probable class
        best_m = prob.argmax(axis=1)
        pick = (np.arange(nbatch), best_m)
        best_logp = logp[pick[0], best_m, lbest[pick]] - 0.5 * xsq_b
        norm_best = norm_stage[pick]
        peak_best = peak[pick[0], best_m, lbest[pick]]
        if p.fine_needed or n_stage == nb:
            xsq = xsq_b
        else:
            xsq = np.einsum("bij,ij->b", np.abs(nm.crop_half(xw, nc)) ** 2, self.wt_c)
        score = 100.0 * peak_best / np.sqrt(np.maximum(xsq * norm_best, 1e-30))
        pixel_stage = p.box * p.pixel_size / n_stage
        # sub-step psi: parabola through the best angle and its neighbours (when searched)
        lb = lbest[pick]
        inner = (lb > 0) & (lb < nl - 1) if p.fine_needed else np.ones(nbatch, dtype=bool)
        lp = logp[pick[0], best_m]
        left = lp[np.arange(nbatch), (lb - 1) % nl]
        right = lp[np.arange(nbatch), (lb + 1) % nl]
        psi_offset = np.where(inner, _parabola(left, lp[np.arange(nbatch), lb], right), 0.0)
        psi_offset = psi_offset * (360.0 / len(self.fine_angles))
        self.processed += nbatch
        self.total_logp += float(best_logp.sum())
        # the map's peak t moves the turned class onto the particle (particle = class turned
        # by psi, then moved by +t); the star's shift is the opposite, s = −t (cisTEM's
        # convention, :mod:`live2d_tui.imaging`)
        return BatchResult(
            best_class=self.nonzero[cand[pick]],
            psi=self.fine_angles[best_j[pick]] + psi_offset,
            x_shift=-sx[pick] * pixel_stage,
            y_shift=-sy[pick] * pixel_stage,
            probability=prob[pick],
            logp=best_logp,
            score=score,
        )

    def class_sums(self) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.float64]]:
        """Sums rotated into the class frame: (S, C), each (K, na, na//2+1) for ALL K classes;
        S tapered by the average band's edge, both zero past it."""
        band = self.band
        na = band.box
        nr = len(self.fine_angles)
        sums = np.zeros((self.n_classes, na, na // 2 + 1), dtype=np.complex128)
        ctf2 = np.zeros((self.n_classes, na, na // 2 + 1))
        k = len(self.nonzero)
        grid = self.sums.reshape(k, nr, na, na // 2 + 1)
        for start in range(0, nr, 16):
            part = slice(start, min(nr, start + 16))
            rotated = nm.rotate_half_spectra(grid[:, part], -self.fine_angles[part], band.edge)
            sums[self.nonzero] += rotated.sum(axis=1)
        used = np.flatnonzero(self.ctf2.reshape(len(self.ctf2), -1).max(axis=1) > 0)
        for flat in used:
            ki, j = divmod(int(flat), nr)
            angle = -float(self.fine_angles[j])
            rotated_c2 = nm.rotate_half_real(self.ctf2[flat], na, angle)
            ctf2[self.nonzero[ki]] += np.maximum(rotated_c2, 0.0)
        return sums * band.taper(), ctf2 * (nm.radius_half(na) <= band.edge)


def _rotated_set(
    spectra: npt.NDArray[Any], angles: npt.NDArray[np.float64], chunk: int = 16
) -> npt.NDArray[np.complex64]:
    """(K, R, n, n//2+1): every spectrum rotated by every angle (in chunks of angles), inside
    the disc of radius n/2 (the search bands never reach past it)."""
    k, n = len(spectra), spectra.shape[-2]
    out = np.empty((k, len(angles), n, n // 2 + 1), dtype=np.complex64)
    for start in range(0, len(angles), chunk):
        part = angles[start : start + chunk]
        out[:, start : start + len(part)] = nm.rotate_half_spectra(spectra[:, None], part, n / 2)
    return out


def _add_by_bin(target: npt.NDArray[Any], bins: npt.NDArray[Any], values: npt.NDArray[Any]) -> None:
    """``target[bins[i]] += values[i]`` for every i, repeated bins included (as ``np.add.at``,
    but summed per bin first by a sort and ``reduceat``, several times faster on image rows)."""
    if len(bins) == 0:
        return
    order = np.argsort(bins, kind="stable")
    ordered = bins[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    target[ordered[starts]] += np.add.reduceat(values[order], starts, axis=0)


def _correlation_at(
    prod: npt.NDArray[Any],
    sx: npt.NDArray[Any],
    sy: npt.NDArray[Any],
    weights: npt.NDArray[np.float32],
) -> npt.NDArray[np.float64]:
    """Σ_full Re(P(f)·e^{2πi f·t}) for half-plane products P (B, J, n, n//2+1) at shifts
    t = (sx, sy) (B, J) pixels; the band weights also drop coefficients outside the band."""
    n = prod.shape[-2]
    kx = np.fft.rfftfreq(n)
    ky = np.fft.fftfreq(n)
    ex = np.exp(2j * np.pi * kx[None, None, :] * np.asarray(sx)[..., None]).astype(np.complex64)
    ey = np.exp(2j * np.pi * ky[None, None, :] * np.asarray(sy)[..., None]).astype(np.complex64)
    rows = np.einsum("bjyx,bjx->bjy", prod * weights, ex)
    out: npt.NDArray[np.float64] = np.einsum("bjy,bjy->bj", rows, ey).real.astype(np.float64)
    return out


def _loglik(peak: npt.NDArray[Any], norm: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """logP with the reference amplitude a ≥ 0 chosen to maximise it (a = peak/norm):
    max_a (a·peak − ½a²·norm) = peak²/(2·norm) for a positive peak, else 0.

    Fitting the amplitude removes the bias of the plain −½·norm term towards weak
    (low-power) classes, which otherwise swallow everything from a random start."""
    positive = np.maximum(peak, 0.0)
    out: npt.NDArray[np.float64] = positive * positive / (2.0 * np.maximum(norm, 1e-30))
    return out


def _parabola(
    left: npt.NDArray[Any], centre: npt.NDArray[Any], right: npt.NDArray[Any]
) -> npt.NDArray[np.float64]:
    """Sub-sample offset of a peak from three samples, clipped to ±0.5."""
    denom = left - 2.0 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom < 0, 0.5 * (left - right) / denom, 0.0)
    return np.clip(offset, -0.5, 0.5).astype(np.float64)
