"""``previous.settings``: the Warp session settings that live ingest depends on.

Invariants:
- the file is parsed from bytes (Warp 1: UTF-16 + BOM; Warp 2: UTF-8), never as default text;
- Warp 1 and Warp 2 key variants are both accepted (docs/warp-formats.md#previoussettings);
- the binned pixel size is mean(PixelSizeX, PixelSizeY) · 2^BinTimes (W1) or
  Import/PixelSize · 2^BinTimes (W2, W1 root keys as fallback);
- Windows paths inside the file are never used as paths on this machine: only their last
  component is used to find Warp 2's processing folder next to the folder the user gave.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path, PureWindowsPath

from live2d_tui.formats.warp_xml import (
    WarpFileError,
    as_bool,
    as_float,
    is_utf16,
    params,
    parse_xml_bytes,
)

SETTINGS_NAME = "previous.settings"


class WarpSettingsMissing(WarpFileError):
    """The folder has no ``previous.settings``: it is not a Warp session folder."""


@dataclass(frozen=True, slots=True)
class WarpSettings:
    """The values of ``previous.settings`` that ingest and the supervisor use."""

    warp_version: int
    """1 (UTF-16 file) or 2 (UTF-8 file)."""
    pixel_size: float
    """Binned pixel size in Å: the pixel size of averages and particle stacks."""
    unbinned_pixel_size: float
    """Pixel size of the movies in Å."""
    bin_times: float
    """Binning exponent (may be non-integer)."""
    box_size: int
    """Extraction box in binned pixels (``Picking/BoxSize``)."""
    diameter: float
    """Particle diameter in Å (``Picking/Diameter``)."""
    model: str
    """BoxNet model name as it appears in file names (W1 keeps the extension, W2 strips it)."""
    model_path: str
    """Raw ``Picking/ModelPath``."""
    invert: bool
    """Particles exported with inverted contrast (protein white)."""
    normalize: bool
    """Particles exported normalised (background mean 0, σ 1)."""
    export_enabled: bool
    """``Picking/DoExport``: particle stacks are written at all."""
    picking_enabled: bool
    """Root ``ProcessPicking``."""
    picking_threshold: float
    """``Picking/MinimumScore`` (a change alone never starts a new dataset generation)."""
    voltage: float
    """kV."""
    cs: float
    """Spherical aberration in mm."""
    amplitude_contrast: float
    processing_folder: str
    """Raw ``Import/ProcessingFolder`` (Warp 2), empty if unset."""

    @property
    def mask_radius_guess(self) -> float:
        """Mask radius the original Live2D derived: 0.6 × diameter, in Å."""
        return 0.6 * self.diameter

    @property
    def model_candidates(self) -> tuple[str, ...]:
        """Model names to try in file names, the version's own form first."""
        name = PureWindowsPath(self.model_path.replace("/", "\\")).name
        stem = name.rsplit(".", 1)[0] if "." in name else name
        ordered = (name, stem) if self.warp_version == 1 else (stem, name)
        return tuple(dict.fromkeys(n for n in ordered if n))


def parse_warp_settings(data: bytes, source: str = SETTINGS_NAME) -> WarpSettings:
    """Parse the bytes of a ``previous.settings`` file.

    Raises:
        WarpFileError: malformed or half-written XML, or a non-numeric value (names ``source``).
    """
    root = parse_xml_bytes(data, source)
    if root.tag != "Settings":
        raise WarpFileError(f"{source}: root element is <{root.tag}>, expected <Settings>")
    top = params(root)
    imp = params(root.find("Import"))
    pick = params(root.find("Picking"))
    ctf = params(root.find("CTF"))
    version = 1 if is_utf16(data) else 2

    def num(table: dict[str, str], key: str, default: float) -> float:
        return as_float(table.get(key), default, source, key)

    bin_times = num(imp, "BinTimes", 0.0)
    if "PixelSize" in imp:
        unbinned = num(imp, "PixelSize", 1.0)
    else:
        px = num(top, "PixelSizeX", 1.0)
        unbinned = 0.5 * (px + num(top, "PixelSizeY", px))
    if unbinned <= 0:
        raise WarpFileError(f"{source}: pixel size {unbinned} is not positive")
    model_path = pick.get("ModelPath", "")
    box = num(pick, "BoxSize", 128.0)
    if box <= 0 or box != int(box):
        raise WarpFileError(f"{source}: Picking/BoxSize={box} is not a positive integer")
    provisional = WarpSettings(
        warp_version=version,
        pixel_size=unbinned * 2.0**bin_times,
        unbinned_pixel_size=unbinned,
        bin_times=bin_times,
        box_size=int(box),
        diameter=num(pick, "Diameter", 200.0),
        model=model_path,
        model_path=model_path,
        invert=as_bool(pick.get("Invert"), True),
        normalize=as_bool(pick.get("Normalize"), True),
        export_enabled=as_bool(pick.get("DoExport"), False),
        picking_enabled=as_bool(top.get("ProcessPicking"), False),
        picking_threshold=num(pick, "MinimumScore", 0.95),
        voltage=num(ctf, "Voltage", 300.0),
        cs=num(ctf, "Cs", 2.7),
        amplitude_contrast=num(ctf, "Amplitude", 0.07),
        processing_folder=imp.get("ProcessingFolder", "").strip(),
    )
    candidates = provisional.model_candidates
    return replace(provisional, model=candidates[0] if candidates else "")


def read_warp_settings(folder: Path) -> WarpSettings:
    """Read ``<folder>/previous.settings`` (one read of the whole file, closed at once).

    Raises:
        WarpSettingsMissing: there is no ``previous.settings`` (not a Warp folder).
        WarpFileError: the file is malformed or half-written (callers retry later).
    """
    path = Path(folder) / SETTINGS_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WarpSettingsMissing(
            f"{folder}: not a Warp folder (no {SETTINGS_NAME}; is this the folder Warp writes to?)"
        ) from None
    except IsADirectoryError:
        raise WarpFileError(f"{path}: is a directory") from None
    return parse_warp_settings(data, str(path))


def resolve_processing_folder(folder: Path, settings: WarpSettings) -> Path:
    """The folder holding Warp's outputs (stars, ``particles/``, movie XML) on this machine.

    Warp 1 writes next to the movies (``folder``). Warp 2 may use ``Import/ProcessingFolder``, a
    path on the Warp machine: it is used when it exists here as written, or as
    ``folder/<its last component>``; otherwise ``folder`` itself.
    """
    folder = Path(folder)
    raw = settings.processing_folder
    if not raw or _has_outputs(folder):
        return folder
    local = Path(raw)
    if local.is_absolute() and local.is_dir():
        return local
    name = PureWindowsPath(raw.replace("/", "\\").rstrip("\\")).name
    if name and (folder / name).is_dir():
        return folder / name
    return folder


def _has_outputs(folder: Path) -> bool:
    if (folder / "particles").is_dir():
        return True
    return any(folder.glob("*particles_*.star"))
