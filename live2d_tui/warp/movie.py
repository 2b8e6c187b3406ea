"""Per-movie XML ``<movie_root>.xml``: the selection flag and the particle export options.

Only two things are taken from it (docs/warp-formats.md#per-movie-xml):
- ``UnselectManual`` (reliable, tri-state): ``True`` excludes the micrograph;
- ``<OptionsParticlesExport>``: box, pixel size, inversion, normalisation of *this* movie's
  stack, which decides whether it fits the current dataset generation.
``UnselectFilter`` is deliberately ignored (Warp never reloads it). Warp truncates and rewrites the
file in place, so a malformed read is transient; callers defer the micrograph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from live2d_tui.formats.warp_xml import WarpFileError, as_bool, as_float, params, parse_xml_bytes


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """How one micrograph's particles were exported."""

    box_size: int
    pixel_size: float
    """Binned pixel size in Å (0 when the XML does not say)."""
    invert: bool
    normalize: bool


@dataclass(frozen=True, slots=True)
class MovieInfo:
    """What ingest needs from a movie XML."""

    unselect_manual: bool | None
    """True: excluded by the user (or by Warp after an error); None: follows filters."""
    export: ExportOptions | None
    """None when the movie has no ``<OptionsParticlesExport>`` (not exported yet)."""


def parse_movie_xml(data: bytes, source: str) -> MovieInfo:
    """Parse a movie XML's bytes.

    Raises:
        WarpFileError: malformed or half-written XML, or a non-numeric export option.
    """
    root = parse_xml_bytes(data, source)
    if root.tag != "Movie":
        raise WarpFileError(f"{source}: root element is <{root.tag}>, expected <Movie>")
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
    return MovieInfo(unselect_manual=unselect, export=export)


def read_movie_xml(path: Path) -> MovieInfo:
    """Read one movie XML (whole file, closed at once).

    Raises:
        FileNotFoundError: no such file.
        WarpFileError: malformed or half-written.
    """
    return parse_movie_xml(Path(path).read_bytes(), str(path))
