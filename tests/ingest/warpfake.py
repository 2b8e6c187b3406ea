"""A small hand-made Warp folder for ingest tests: settings, per-movie XML, stacks, star.

Each write bumps the file's mtime explicitly (by a whole second per write), so a rewrite is
visible to (size, mtime) signatures even within one clock tick.
"""

from __future__ import annotations

import itertools
import os
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.formats.warp_star import star_text
from live2d_tui.simulate.documents import PARTICLE_COLUMNS

MODEL = "BoxNet2Mask_20180918"
_TICK = itertools.count(1)


def _touch(path: Path) -> None:
    t = 1_700_000_000 + next(_TICK)
    os.utime(path, ns=(t * 10**9, t * 10**9))


def settings_xml(
    *,
    warp2: bool = False,
    box: int = 32,
    pixel: float = 2.0,
    bin_times: float = 0.0,
    export: bool = True,
    invert: bool = True,
    normalize: bool = True,
    model: str = MODEL,
    diameter: float = 40.0,
    processing_folder: str = "",
) -> bytes:
    """previous.settings bytes as W1 (UTF-16 + BOM, CRLF) or W2 (UTF-8 + BOM) writes it."""
    enc = "utf-8" if warp2 else "utf-16"
    pix = (
        f'    <Param Name="PixelSize" Value="{pixel}" />\n'
        if warp2
        else f'  <Param Name="PixelSizeX" Value="{pixel}" />\n'
        f'  <Param Name="PixelSizeY" Value="{pixel}" />\n'
    )
    top = "" if warp2 else pix
    imp = pix if warp2 else ""
    text = (
        f'<?xml version="1.0" encoding="{enc}"?>\n<Settings>\n{top}'
        '  <Param Name="ProcessPicking" Value="True" />\n'
        f'  <Import>\n{imp}    <Param Name="BinTimes" Value="{bin_times}" />\n'
        f'    <Param Name="ProcessingFolder" Value="{processing_folder}" />\n  </Import>\n'
        '  <CTF>\n    <Param Name="Voltage" Value="300" />\n    <Param Name="Cs" Value="2.7" />\n'
        '    <Param Name="Amplitude" Value="0.07" />\n  </CTF>\n'
        f'  <Picking>\n    <Param Name="ModelPath" Value="{model}" />\n'
        f'    <Param Name="Diameter" Value="{diameter}" />\n'
        f'    <Param Name="BoxSize" Value="{box}" />\n'
        f'    <Param Name="DoExport" Value="{export}" />\n'
        f'    <Param Name="Invert" Value="{invert}" />\n'
        f'    <Param Name="Normalize" Value="{normalize}" />\n'
        '    <Param Name="MinimumScore" Value="0.95" />\n  </Picking>\n</Settings>\n'
    )
    if warp2:
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.replace("\n", "\r\n").encode("utf-16")


def movie_xml(
    *, box: int = 32, pixel: float = 2.0, invert: bool = True, unselect: str = "null"
) -> bytes:
    """A movie XML (W1 encoding) with OptionsParticlesExport."""
    text = (
        '<?xml version="1.0" encoding="utf-16"?>\n'
        f'<Movie UnselectFilter="False" UnselectManual="{unselect}">\n'
        "  <OptionsParticlesExport>\n"
        f'    <Param Name="BoxSize" Value="{box}" />\n'
        f'    <Param Name="Invert" Value="{invert}" />\n'
        '    <Param Name="Normalize" Value="True" />\n'
        f'    <Param Name="PixelSizeX" Value="{pixel}" />\n'
        f'    <Param Name="PixelSizeY" Value="{pixel}" />\n'
        '    <Param Name="BinTimes" Value="0" />\n'
        "  </OptionsParticlesExport>\n</Movie>\n"
    )
    return text.encode("utf-16")


def mrc_bytes(data: npt.NDArray[np.floating], pixel: float, mode: int = 2) -> bytes:
    """A Warp-style MRC stack (1024-byte header, no extended header)."""
    nz, ny, nx = data.shape
    header = bytearray(1024)
    struct.pack_into("<4i", header, 0, nx, ny, nz, mode)
    struct.pack_into("<3i", header, 28, nx, ny, nz)
    struct.pack_into("<3f", header, 40, nx * pixel, ny * pixel, nz * pixel)
    struct.pack_into("<3f", header, 52, 90, 90, 90)
    struct.pack_into("<3i", header, 64, 1, 2, 3)
    header[208:212] = b"MAP "
    header[212:216] = b"\x44\x44\x00\x00"
    dtype = "<f2" if mode == 12 else "<f4"
    return bytes(header) + np.ascontiguousarray(data, dtype=dtype).tobytes()


class WarpFolder:
    """Write a Warp 1 (or 2) folder piece by piece."""

    def __init__(self, root: Path, *, box: int = 32, pixel: float = 2.0, warp2: bool = False):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "particles").mkdir(exist_ok=True)
        self.box = box
        self.pixel = pixel
        self.warp2 = warp2
        self.micrographs: dict[str, npt.NDArray[np.float32]] = {}
        """root → the stack's float32 data as written."""
        self.phase: dict[str, float] = {}
        self.write_settings()

    def write_settings(self, **kw: object) -> None:
        kw.setdefault("box", self.box)
        kw.setdefault("pixel", self.pixel)
        kw.setdefault("warp2", self.warp2)
        path = self.root / "previous.settings"
        path.write_bytes(settings_xml(**kw))  # type: ignore[arg-type]
        _touch(path)

    def stack_rel(self, root: str) -> str:
        return f"particles/{root}_{MODEL}.mrcs"

    def write_micrograph(
        self,
        root: str,
        count: int,
        *,
        seed: int = 0,
        invert: bool = True,
        unselect: str = "null",
        box: int | None = None,
        mode: int = 2,
        phase: float = 0.0,
    ) -> npt.NDArray[np.float32]:
        box = box or self.box
        rng = np.random.default_rng(seed)
        data = rng.standard_normal((count, box, box)).astype(np.float32)
        if mode == 12:
            data = data.astype(np.float16).astype(np.float32)
        path = self.root / self.stack_rel(root)
        path.write_bytes(mrc_bytes(data, self.pixel, mode))
        _touch(path)
        xml = self.root / f"{root}.xml"
        xml.write_bytes(movie_xml(box=box, pixel=self.pixel, invert=invert, unselect=unselect))
        _touch(xml)
        self.micrographs[root] = data
        self.phase[root] = phase
        return data

    def set_unselect(self, root: str, value: str) -> None:
        xml = self.root / f"{root}.xml"
        xml.write_bytes(movie_xml(box=self.box, pixel=self.pixel, unselect=value))
        _touch(xml)

    def star_text(self, roots: list[str]) -> str:
        """goodparticles/allparticles of ``roots`` as Warp 1 writes it (the simulator's writer)."""
        rows = [
            [
                f"{10.0 * i:.2f}",
                f"{20.0:.2f}",
                "10000.0",
                f"{self.pixel:.5f}",
                "300.0",
                "2.7000",
                "0.070",
                f"{self.phase[root]:.1f}",
                f"{15000.0 + i:.1f}",
                f"{14000.0 + i:.1f}",
                f"{45.0:.1f}",
                "4.0",
                f"{i + 1:07d}@{self.stack_rel(root)}",
                f"{root}.tif",
            ]
            for root in roots
            for i in range(self.micrographs[root].shape[0])
        ]
        return star_text(PARTICLE_COLUMNS, rows)

    def write_star(self, roots: list[str], kind: str = "goodparticles") -> Path:
        path = self.root / f"{kind}_{MODEL}.star"
        path.write_text(self.star_text(roots), encoding="utf-8")
        _touch(path)
        return path
