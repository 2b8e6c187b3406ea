"""Per-movie XML ``<movie_root>.xml``: the selection flag, the export options and the CTF fit.

What is taken from it (docs/warp-formats.md#per-movie-xml):
- ``UnselectManual`` (reliable, tri-state): ``True`` excludes the micrograph;
- ``<OptionsParticlesExport>``: box, pixel size, inversion, normalisation of *this* movie's
  stack, which decides whether it fits the current dataset generation;
- the CTF fit, for the session's health view only: the root's ``CTFResolutionEstimate`` (Å) and
  ``<CTF>``'s ``Defocus`` (µm, positive = underfocus). Both Warp 1 and Warp 2 write them so; a
  movie whose CTF was not fitted yet (no ``<OptionsCTF>`` and no estimate) has none, and a value
  that does not parse is left out rather than deferring the micrograph (ingest does not need it).
``UnselectFilter`` is deliberately ignored (Warp never reloads it). Warp truncates and rewrites the
file in place, so a malformed read is transient; callers defer the micrograph.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from live2d_tui.formats.warp_xml import WarpFileError, as_bool, as_float, params, parse_xml_bytes


class NotAMovie(WarpFileError):
    """A well-formed XML whose root is not ``<Movie>`` (another program's file)."""


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How one micrograph's particles were exported."""

    box_size: int
    pixel_size: float
    """Binned pixel size in Å (0 when the XML does not say)."""
    invert: bool
    normalize: bool


@dataclass(frozen=True, slots=True)
class MovieCTF:
    """Warp's CTF fit of one movie (what the health view plots)."""

    resolution: float | None
    """``CTFResolutionEstimate``, Å: how far the fitted CTF matches the spectrum (``None``:
    not estimated; Warp writes 0 then)."""
    defocus: float | None
    """``<CTF>/Defocus``, µm, positive = underfocus (``None``: absent or not a number)."""


@dataclass(frozen=True, slots=True)
class MovieInfo:
    """What ingest (and the health view) need from a movie XML."""

    unselect_manual: bool | None
    """True: excluded by the user (or by Warp after an error); None: follows filters."""
    export: ExportOptions | None
    """None when the movie has no ``<OptionsParticlesExport>`` (not exported yet)."""
    ctf: MovieCTF | None = None
    """None when the movie's CTF has not been fitted yet."""


def _number(text: str | None) -> float | None:
    """A finite decimal, or ``None`` (absent, empty or not a number)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def movie_ctf(root: ET.Element) -> MovieCTF | None:
    """The CTF fit of a parsed ``<Movie>`` root (``None`` when it was not fitted)."""
    resolution = _number(root.get("CTFResolutionEstimate"))
    if resolution is not None and resolution <= 0:
        resolution = None  # Warp's default before a fit
    if root.find("OptionsCTF") is None and resolution is None:
        return None
    defocus = _number(params(root.find("CTF")).get("Defocus"))
    return MovieCTF(resolution=resolution, defocus=defocus)


def parse_movie_xml(data: bytes, source: str) -> MovieInfo:
    """Parse a movie XML's bytes.

    Raises:
        NotAMovie: the root element is not ``<Movie>``.
        WarpFileError: malformed or half-written XML, or a non-numeric export option.
    """
    root = parse_xml_bytes(data, source)
    if root.tag != "Movie":
        raise NotAMovie(f"{source}: root element is <{root.tag}>, expected <Movie>")
    flag = (root.get("UnselectManual") or "null").strip().lower()
    unselect = True if flag == "true" else False if flag == "false" else None
    element = root.find("OptionsParticlesExport")
    export = None
    if element is not None:
        opts = params(element)
        # Warp writes either Param children or attributes depending on version; accept both.
        opts.update({k: v for k, v in element.attrib.items() if k not in opts})

        def num(key: str, default: float) -> float:
            return as_float(opts.get(key), default, source, f"OptionsParticlesExport/{key}")

        bin_times = num("BinTimes", 0.0)
        if "PixelSize" in opts:
            unbinned = num("PixelSize", 0.0)
        else:
            px = num("PixelSizeX", 0.0)
            unbinned = 0.5 * (px + num("PixelSizeY", px))
        box = num("BoxSize", 0.0)
        if box != int(box) or box < 0:
            raise WarpFileError(f"{source}: OptionsParticlesExport/BoxSize={box} is not an integer")
        export = ExportOptions(
            box_size=int(box),
            pixel_size=unbinned * 2.0**bin_times,
            invert=as_bool(opts.get("Invert"), True),
            normalize=as_bool(opts.get("Normalize"), True),
        )
    return MovieInfo(unselect_manual=unselect, export=export, ctf=movie_ctf(root))


def read_movie_xml(path: Path) -> MovieInfo:
    """Read one movie XML (whole file, closed at once).

    Raises:
        FileNotFoundError: no such file.
        WarpFileError: malformed or half-written.
    """
    return parse_movie_xml(Path(path).read_bytes(), str(path))
