"""The content of Warp's documents for a simulated session: settings, movie XML, star rows.

Keys, sections and value formats follow docs/warp-formats.md (#previoussettings,
#the-particle-tables-goodparticles-and-allparticles, #per-movie-xml); the order the files appear in
is docs/simulation-and-scoring.md#the-files-in-warps-order. Encoding and layout are
:mod:`live2d_tui.simulate.warp_writer`'s job; this module decides *what* is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from live2d_tui.formats.warp_xml import XmlSection, render_xml
from live2d_tui.simulate.particles import MicrographCTF, ParticleParams

MICROGRAPH_PX_UNBINNED = 4096
"""Movie frame size (a 4K detector); binned coordinates live in 4096 / 2**BinTimes pixels."""

MOVIE_EXTENSION = ".tif"

FILTER_RESOLUTION_MAX = 8.0
"""``Filter/ResolutionMax`` (Å): micrographs with a worse CTF fit fail Warp's filter."""

PARTICLE_COLUMNS: tuple[str, ...] = (
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnMagnification",
    "rlnDetectorPixelSize",
    "rlnVoltage",
    "rlnSphericalAberration",
    "rlnAmplitudeContrast",
    "rlnPhaseShift",
    "rlnDefocusU",
    "rlnDefocusV",
    "rlnDefocusAngle",
    "rlnCtfMaxResolution",
    "rlnImageName",
    "rlnMicrographName",
)
"""Columns of all/goodparticles, in the order Warp 1's live export writes them."""

MATCHING_COLUMNS: tuple[str, ...] = (
    "rlnCoordinateX",
    "rlnCoordinateY",
    "rlnMicrographName",
    "rlnAutopickFigureOfMerit",
)


@dataclass(frozen=True)
class Geometry:
    """What the export settings are at one moment of the session."""

    box: int
    """Picking/BoxSize, binned px."""
    bin_times: float
    unbinned_pixel: float
    """PixelSizeX = PixelSizeY, Å."""
    model: str
    """``Picking/ModelPath`` value."""
    diameter: int
    """``Picking/Diameter``, Å (Warp stores an integer)."""
    invert: bool

    @property
    def pixel_size(self) -> float:
        """Binned pixel size: unbinned × 2**BinTimes."""
        return float(self.unbinned_pixel * 2.0**self.bin_times)

    @property
    def micrograph_px(self) -> int:
        """Width of the binned average in pixels."""
        return int(MICROGRAPH_PX_UNBINNED / 2.0**self.bin_times)


def model_name(model_path: str, *, warp2: bool) -> str:
    """``<Model>`` in file names: W1 keeps the file name's extension, W2 strips it."""
    name = PurePosixPath(model_path.replace("\\", "/")).name
    return PurePosixPath(name).stem if warp2 else name


def settings_document(
    geometry: Geometry,
    *,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
    phase_plate: bool,
    warp2: bool,
    data_folder: str,
    processing_folder: str | None,
    revision: int = 0,
) -> bytes:
    """``previous.settings`` bytes. ``revision`` nudges one harmless value (the dose), the way
    a user's option change makes Warp rewrite the file."""
    root_params: list[tuple[str, object]] = [
        ("PixelSizeX", geometry.unbinned_pixel),
        ("PixelSizeY", geometry.unbinned_pixel),
        ("PixelSizeAngle", 0.0),
        ("ProcessCTF", True),
        ("ProcessMovement", True),
        ("ProcessPicking", True),
    ]
    import_params: list[tuple[str, object]] = []
    if warp2:
        import_params += [
            ("DataFolder", data_folder),
            ("ProcessingFolder", processing_folder or ""),
            ("PixelSize", geometry.unbinned_pixel),
            ("DoRecursiveSearch", False),
        ]
    else:
        import_params.append(("Folder", data_folder))
    import_params += [
        ("Extension", "*" + MOVIE_EXTENSION),
        ("BinTimes", float(geometry.bin_times)),
        ("GainPath", ""),
        ("DosePerAngstromFrame", round(1.0 + 0.01 * revision, 4)),
    ]
    sections: list[XmlSection] = [
        ("Import", import_params),
        (
            "CTF",
            [
                ("Window", 512),
                ("RangeMin", 0.10 if not warp2 else 30.0),
                ("RangeMax", 0.6 if not warp2 else 4.0),
                ("Voltage", int(voltage)),
                ("Cs", cs),
                ("Amplitude", amplitude_contrast),
                ("DoPhase", phase_plate),
                ("UseMovieSum", False),
            ],
        ),
        ("Movement", [("RangeMin", 0.05), ("RangeMax", 0.25), ("Bfactor", -500.0)]),
        ("Grids", [("GridCTFX", 5), ("GridCTFY", 5), ("GridCTFZ", 1)]),
        ("Tomo", []),
        (
            "Picking",
            [
                ("ModelPath", geometry.model),
                ("DataStyle", "cryo"),
                ("Diameter", geometry.diameter),
                ("MinimumScore", 0.95),
                ("MinimumMaskDistance", 0.0),
                ("DoExport", True),
                ("BoxSize", geometry.box),
                ("Invert", geometry.invert),
                ("Normalize", True),
                ("DoRunningWindow", True),
                ("RunningWindowLength", 10000),
            ],
        ),
        ("Export", [("DoAverage", True), ("DoStack", False), ("SkipFirstN", 0), ("SkipLastN", 0)]),
        ("Tasks", []),
        (
            "Filter",
            [
                ("DefocusMin", 0.0),
                ("DefocusMax", 5.0),
                ("AstigmatismMax", 3.0),
                ("PhaseMin", 0.0),
                ("PhaseMax", 1.0),
                ("ResolutionMax", FILTER_RESOLUTION_MAX),
                ("MotionMax", 5.0),
                ("ParticlesSuffix", f"_{model_name(geometry.model, warp2=warp2)}"),
                ("ParticlesMin", 0),
                ("MaskPercentage", 10.0),
            ],
        ),
    ]
    if not warp2:
        sections.append(("Advanced", [("ProcessingParallelism", 1)]))
    return render_xml("Settings", [], root_params, sections, warp2=warp2)


def movie_document(
    geometry: Geometry,
    ctf: MicrographCTF,
    *,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
    unselect_manual: bool | None,
    motion: float,
    warp2: bool,
    data_directory: str | None,
    picking_suffix: str,
) -> bytes:
    """``<root>.xml`` bytes: flags, CTF fit and the export options actually used."""
    attributes: list[tuple[str, object]] = []
    if warp2 and data_directory is not None:
        attributes.append(("DataDirectory", data_directory))
    attributes += [
        ("UnselectFilter", False),  # Warp never persists the real filter result
        ("UnselectManual", unselect_manual),
        ("CTFResolutionEstimate", ctf.resolution),
        ("MeanFrameMovement", motion),
        ("MaskPercentage", 0.0),
        ("Bfactor", 0.0),
        ("Weight", 1.0),
    ]
    sections: list[XmlSection] = [
        (
            "OptionsCTF",
            [
                ("PixelSizeX", geometry.unbinned_pixel),
                ("PixelSizeY", geometry.unbinned_pixel),
                ("BinTimes", float(geometry.bin_times)),
                ("Voltage", int(voltage)),
                ("Cs", cs),
                ("Amplitude", amplitude_contrast),
            ],
        ),
        (
            "CTF",
            [
                ("Defocus", ctf.defocus),
                ("DefocusDelta", ctf.defocus_delta),
                ("DefocusAngle", ctf.defocus_angle),
                ("PhaseShift", ctf.phase_shift),
                ("Voltage", int(voltage)),
                ("Cs", cs),
                ("Amplitude", amplitude_contrast),
                ("PixelSize", geometry.pixel_size),
                ("Bfactor", 0.0),
            ],
        ),
        ("OptionsMovement", [("BinTimes", float(geometry.bin_times))]),
        ("OptionsBoxNet", [("ModelName", geometry.model), ("ExpectedDiameter", geometry.diameter)]),
        (
            "OptionsParticlesExport",
            [
                ("Suffix", picking_suffix),
                ("BoxSize", geometry.box),
                ("Diameter", geometry.diameter),
                ("Invert", geometry.invert),
                ("Normalize", True),
                ("DoAverage", True),
                ("DoDenoise", False),
                ("PixelSizeX", geometry.unbinned_pixel),
                ("PixelSizeY", geometry.unbinned_pixel),
                ("PixelSizeAngle", 0.0),
                ("BinTimes", float(geometry.bin_times)),
                ("Dimensions", f"{MICROGRAPH_PX_UNBINNED}, {MICROGRAPH_PX_UNBINNED}, 40"),
            ],
        ),
        ("PickingThresholds", [(picking_suffix, 0.95)]),
    ]
    return render_xml("Movie", attributes, [], sections, warp2=warp2)


def particle_rows(
    params: ParticleParams,
    *,
    stack_name: str,
    micrograph_name: str,
    pixel_size: float,
    voltage: float,
    cs: float,
    amplitude_contrast: float,
    resolution: float,
) -> list[list[str]]:
    """One movie's all/goodparticles rows as strings in :data:`PARTICLE_COLUMNS` order."""
    constant = [
        "10000.0",
        f"{pixel_size:.5f}",
        f"{voltage:.1f}",
        f"{cs:.4f}",
        f"{amplitude_contrast:.3f}",
    ]
    rows = []
    for i in range(len(params)):
        rows.append(
            [
                f"{params.coord_x[i]:.2f}",
                f"{params.coord_y[i]:.2f}",
                *constant,
                f"{params.phase_shift[i]:.1f}",
                f"{params.defocus_u[i]:.1f}",
                f"{params.defocus_v[i]:.1f}",
                f"{params.defocus_angle[i]:.1f}",
                f"{resolution:.1f}",
                image_name(i + 1, stack_name),
                micrograph_name,
            ]
        )
    return rows


def matching_rows(params: ParticleParams, micrograph_average: str) -> list[list[str]]:
    """``matching/<root>_<Model>.star`` rows (BoxNet picks)."""
    return [
        [
            f"{params.coord_x[i]:.2f}",
            f"{params.coord_y[i]:.2f}",
            micrograph_average,
            f"{params.fom[i]:.3f}",
        ]
        for i in range(len(params))
    ]


def image_name(index: int, stack_name: str) -> str:
    """Warp's ``rlnImageName``: 1-based ``%07d@particles/<root>_<Model>.mrcs``."""
    return f"{index:07d}@particles/{stack_name}"
