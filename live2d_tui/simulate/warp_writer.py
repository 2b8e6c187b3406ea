"""Writers for the files Warp puts in a session folder, byte for byte the way Warp writes them.

Formats follow docs/warp-formats.md and docs/simulation-and-scoring.md#the-files-in-warps-order
(sources: Warp 1 ``WarpLib/Star.cs``,
``Warp/MainWindow.xaml.cs``, ``WarpLib/Headers/MRC.cs``; Warp 2 ``WarpLib/Image.cs``); the
formats themselves are written by :mod:`live2d_tui.formats` (:func:`~.warp_xml.render_xml`,
:func:`~.warp_star.star_text`), and this module writes the files the way Warp does:

- ``previous.settings`` / ``<root>.xml``: Warp writes both non-atomically (``File.Create``); so
  do we.
- particle stacks: 1024-byte MRC header, no extended header, mode 2 (W1) or 12 (W2), cell =
  pixel × dims; header first, then the slices, straight to the final path.
- all/goodparticles replacement: write ``<target>_<movie root>``, delete the target, move the
  temporary in (so a reader can briefly see no file at all).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from live2d_tui.formats.mrc import MODE_FLOAT16, MODE_FLOAT32, build_header

# ---------------------------------------------------------------------------------------------
# XML


def write_in_place(path: Path, data: bytes, *, torn_hook: Callable[[], None] | None = None) -> None:
    """Truncate and write ``path`` in place (``File.Create``), not atomically.

    With ``torn_hook`` the first half is written and flushed, the hook runs (the moment a reader
    sees a torn file), and then the rest is written.
    """
    with open(path, "wb") as handle:
        if torn_hook is not None:
            handle.write(data[: len(data) // 2])
            handle.flush()
            torn_hook()
            handle.write(data[len(data) // 2 :])
        else:
            handle.write(data)


# ---------------------------------------------------------------------------------------------
# MRC stacks


def mrc_header(
    shape: tuple[int, ...], pixel_size: float, data: npt.NDArray[np.floating[Any]]
) -> bytes:
    """The 1024-byte MRC2014 header of a stack (nz, ny, nx) with statistics of ``data``."""
    mode = MODE_FLOAT16 if data.dtype == np.float16 else MODE_FLOAT32
    values = data.astype(np.float32) if data.size else np.zeros(1, np.float32)
    statistics = (
        float(values.min()),
        float(values.max()),
        float(values.mean(dtype=np.float64)),
        float(values.std(dtype=np.float64)),
    )
    return build_header(shape, pixel_size, mode=mode, statistics=statistics, exttyp=b"MRCO")


def write_stack(
    path: Path,
    images: npt.NDArray[np.float32],
    pixel_size: float,
    *,
    float16: bool,
    partial_hook: Callable[[], None] | None = None,
) -> None:
    """Write a particle stack as Warp does: header first, then the slices, in place.

    With ``partial_hook`` the header and the first half of the slices are written and flushed,
    the hook runs (a reader now sees a stack that is still being written), then the rest.
    """
    data: npt.NDArray[np.floating[Any]] = images.astype(np.float16 if float16 else np.float32)
    header = mrc_header(data.shape, pixel_size, data)
    with open(path, "wb") as handle:
        handle.write(header)
        if partial_hook is not None:
            half = len(data) // 2
            handle.write(np.ascontiguousarray(data[:half]).tobytes())
            handle.flush()
            partial_hook()
            handle.write(np.ascontiguousarray(data[half:]).tobytes())
        else:
            handle.write(np.ascontiguousarray(data).tobytes())


# ---------------------------------------------------------------------------------------------
# STAR tables


def replace_like_warp(
    target: Path,
    text: str,
    movie_root: str,
    *,
    gap_hook: Callable[[], None] | None = None,
    torn_hook: Callable[[], None] | None = None,
) -> None:
    """Warp's star replacement: write ``<target>_<movie_root>``, delete ``target``, move in.

    ``gap_hook`` runs while ``target`` does not exist; ``torn_hook`` (a hazard) first publishes a
    copy of the new table cut in the middle of a row at ``target`` and runs while it is visible.
    """
    data = text.encode("utf-8")
    if torn_hook is not None:
        cut = _mid_row_cut(text)
        target.write_bytes(data[:cut])
        torn_hook()
    temp = target.with_name(f"{target.name}_{movie_root}")
    temp.write_bytes(data)
    if target.exists():
        target.unlink()
    if gap_hook is not None:
        gap_hook()
    temp.replace(target)


def _mid_row_cut(text: str) -> int:
    """A byte offset in the middle of the last data row (or of the text, if it has no rows)."""
    body_end = len(text.rstrip("\n"))
    last_start = text.rfind("\n", 0, body_end) + 1
    if text[last_start:body_end].lstrip().startswith(("_", "loop_", "data_")) or not body_end:
        return max(1, len(text) // 2)
    return last_start + (body_end - last_start) // 2


def write_last_window(path: Path, text: str) -> None:
    """The ``_last10000_`` tables: truncated and rewritten in place."""
    write_in_place(path, text.encode("utf-8"))
