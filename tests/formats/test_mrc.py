"""The one MRC header reader/writer, checked against mrcfile in both byte orders."""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from mrcfile.dtypes import HEADER_DTYPE

from live2d_tui.dataset.stack import combined_header
from live2d_tui.formats.mrc import (
    MODE_FLOAT16,
    NOT_COMPUTED,
    ByteOrder,
    MrcError,
    build_header,
    read_header,
    read_shape,
    read_slices,
    stamp_pixel_size,
    voxel_size,
)
from live2d_tui.simulate.warp_writer import mrc_header

ORDERS = pytest.mark.parametrize("order", ["<", ">"])
"""Both byte orders (``struct``'s and numpy's characters)."""


def _reference_header(
    order: str,
    n: tuple[int, int, int],
    m: tuple[int, int, int],
    *,
    mode: int,
    cella: tuple[float, float, float],
    stats: tuple[float, float, float, float],
    exttyp: bytes = b"",
) -> bytes:
    """An MRC2014 image-stack header laid out by mrcfile's own dtype (labels and origin zero)."""
    header = np.zeros(1, dtype=HEADER_DTYPE.newbyteorder(order))[0]
    header["nx"], header["ny"], header["nz"] = n
    header["mx"], header["my"], header["mz"] = m
    header["mode"] = mode
    header["cella"] = cella
    header["cellb"] = (90.0, 90.0, 90.0)
    header["mapc"], header["mapr"], header["maps"] = 1, 2, 3
    header["dmin"], header["dmax"], header["dmean"], header["rms"] = stats
    header["exttyp"] = exttyp
    header["nversion"] = 20140
    header["map"] = b"MAP "
    header["machst"] = (0x44, 0x44, 0, 0) if order == "<" else (0x11, 0x11, 0, 0)
    return bytes(header.tobytes())


def _write_with_mrcfile(path: Path, data: np.ndarray, voxel: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with mrcfile.new(path, overwrite=True) as handle:
            handle.set_data(data)
            handle.set_image_stack()
            handle.voxel_size = voxel


def _valid(path: Path) -> bool:
    with redirect_stdout(io.StringIO()):
        return bool(mrcfile.validate(str(path)))


@ORDERS
def test_written_header_is_the_mrc2014_layout(order: ByteOrder) -> None:
    stats = (-1.5, 2.25, 0.125, 0.75)
    warp_like = build_header(
        (7, 24, 32), 1.25, mode=MODE_FLOAT16, statistics=stats, exttyp=b"MRCO", order=order
    )
    cella = (40.0, 30.0, 8.75)
    assert warp_like == _reference_header(
        order, (32, 24, 7), (32, 24, 7), mode=12, cella=cella, stats=stats, exttyp=b"MRCO"
    )
    # the combined stack's: statistics not computed, MZ 1 while it is empty
    empty = build_header((0, 16, 16), 2.0, mz=1, order=order)
    assert empty == _reference_header(
        order, (16, 16, 0), (16, 16, 1), mode=2, cella=(32.0, 32.0, 2.0), stats=NOT_COMPUTED
    )
    assert NOT_COMPUTED[0] > NOT_COMPUTED[1] and NOT_COMPUTED[3] < 0  # MRC2014's "not computed"


@ORDERS
def test_a_stack_we_write_is_valid_for_mrcfile_and_reads_back(tmp_path: Path, order: str) -> None:
    data = np.random.default_rng(0).standard_normal((3, 8, 10)).astype(np.float32)
    path = tmp_path / "s.mrcs"
    stats = (float(data.min()), float(data.max()), float(data.mean()), float(data.std()))
    header = build_header(data.shape, 1.5, statistics=stats, order=order)
    path.write_bytes(header + data.astype(np.dtype("f4").newbyteorder(order)).tobytes())
    assert _valid(path)
    with mrcfile.open(path, permissive=False) as handle:
        assert handle.data.shape == (3, 8, 10)
        np.testing.assert_array_equal(handle.data, data)
        assert handle.voxel_size.x == pytest.approx(1.5)
    parsed = read_header(path)
    assert (parsed.nx, parsed.ny, parsed.nz, parsed.mode) == (10, 8, 3, 2)
    assert parsed.byte_order == order and parsed.pixel_size == pytest.approx(1.5)
    assert parsed.expected_size == path.stat().st_size
    slices = read_slices(path, parsed, np.array([3, 1], dtype=np.int64), flip=True)
    assert slices.dtype == np.float32 and slices.dtype.isnative
    np.testing.assert_array_equal(slices, -data[[2, 0]])


@ORDERS
@pytest.mark.parametrize("dtype", ["i1", "i2", "f4", "u2", "f2"])
def test_mrcfile_stacks_of_every_mode_read_the_same(tmp_path: Path, order: str, dtype: str) -> None:
    data = (np.arange(2 * 6 * 4).reshape(2, 6, 4) % 100).astype(np.dtype(dtype).newbyteorder(order))
    path = tmp_path / "m.mrcs"
    _write_with_mrcfile(path, data, 3.0)
    header = read_header(path)
    # bytes have no order: mrcfile stamps an int8 stack with this machine's (little endian)
    assert header.byte_order == (order if data.dtype.itemsize > 1 else "<")
    assert header.pixel_size == pytest.approx(3.0)
    got = read_slices(path, header, np.arange(1, 3, dtype=np.int64))
    np.testing.assert_array_equal(got, data.astype(np.float32))
    assert (read_shape(path).nx, read_shape(path).nz) == (4, 2)


@ORDERS
def test_stamped_pixel_size_is_what_mrcfile_reads(tmp_path: Path, order: str) -> None:
    path = tmp_path / "classes.mrc"
    data = np.zeros((3, 8, 8), dtype=np.dtype("f4").newbyteorder(order))
    _write_with_mrcfile(path, data, 1.0)  # cisTEM's dummy cell
    stamp_pixel_size(path, 2.75)
    assert voxel_size(path) == pytest.approx((2.75, 2.75, 2.75))
    assert read_header(path).pixel_size == pytest.approx(2.75)
    with mrcfile.open(path) as handle:
        assert handle.voxel_size.x == pytest.approx(2.75)
        assert handle.voxel_size.z == pytest.approx(2.75)
    assert _valid(path)


def test_bad_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    short = tmp_path / "short.mrc"
    short.write_bytes(b"\0" * 100)
    with pytest.raises(MrcError, match=r"short\.mrc"):
        read_header(short)
    mode = tmp_path / "mode.mrc"
    mode.write_bytes(build_header((1, 4, 4), 1.0, mode=4))  # complex: not an image
    with pytest.raises(MrcError, match="mode 4"):
        read_header(mode)
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(build_header((0, 4, 4), 1.0))
    assert read_header(empty).nz == 0
    with pytest.raises(MrcError, match="4×4×0"):
        read_shape(empty)
    cut = tmp_path / "cut.mrc"
    cut.write_bytes(build_header((2, 4, 4), 1.0) + bytes(4 * 4 * 4))
    assert read_shape(cut, check_size=False).nz == 2
    with pytest.raises(MrcError, match="truncated"):
        read_shape(cut)
    with pytest.raises(MrcError, match="shorter than the header"):
        read_slices(cut, read_header(cut), np.array([2], dtype=np.int64))


def test_a_writer_known_to_be_little_endian_overrides_the_stamp(tmp_path: Path) -> None:
    """Warp writes with .NET's BinaryWriter (always little endian): ingest reads its stacks so,
    whatever the stamp says; without that knowledge the stamp decides."""
    path = tmp_path / "stamped_big.mrcs"
    raw = bytearray(build_header((2, 4, 4), 1.5))
    raw[212:216] = b"\x11\x11\x00\x00"
    path.write_bytes(bytes(raw) + bytes(2 * 4 * 4 * 4))
    with pytest.raises(MrcError, match="not a big-endian MRC"):
        read_header(path)
    header = read_header(path, "<")
    assert (header.nx, header.nz, header.byte_order, header.pixel_size) == (4, 2, "<", 1.5)


def test_warp_and_combined_headers(tmp_path: Path) -> None:
    """The simulator's Warp header and the combined stack's header through the one writer."""
    data = np.random.default_rng(1).standard_normal((5, 6, 6)).astype(np.float16)
    path = tmp_path / "w.mrcs"
    path.write_bytes(mrc_header(data.shape, 2.0, data) + data.tobytes())
    assert _valid(path)
    with mrcfile.open(path) as handle:
        assert handle.header.mode == 12 and bytes(handle.header.exttyp) == b"MRCO"
        assert handle.header.dmax == pytest.approx(float(data.max()))
        assert handle.header.rms == pytest.approx(float(data.astype(np.float32).std()), rel=1e-5)
    assert read_header(path).expected_size == path.stat().st_size
    assert combined_header(6, 0, 2.0) == build_header((0, 6, 6), 2.0, mz=1)
    grown = read_header(tmp_path / "w.mrcs")
    stack = tmp_path / "combined.mrcs"
    stack.write_bytes(combined_header(6, 3, 2.0) + bytes(3 * 6 * 6 * 4))
    assert _valid(stack)
    assert (read_header(stack).nz, read_header(stack).pixel_size) == (3, grown.pixel_size)
