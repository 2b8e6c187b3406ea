"""Dumps of both engines as one model: read, add, subtract, write — and what merge2d makes of
them (the strict fake cisTEM follows cisTEM's merge2d, its count-only check included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.formats.dumps import (
    DumpFormat,
    Partials,
    PartialsError,
    check_same_classes,
    from_class_sums,
    log_add,
    read_cistem_dump,
    read_engine_dump,
    read_total,
    to_class_sums,
    write_cistem_dump,
    write_engine_dump,
    write_total,
)
from live2d_tui.formats.live2d_dump import ClassSums, write_dump

from .conftest import FAKE, Dataset

K = 5


def references(path: Path, box: int, empty: list[int]) -> Path:
    rng = np.random.default_rng(1)
    data = rng.standard_normal((K, box, box)).astype(np.float32)
    data[empty] = 0.0
    with mrcfile.new(path, overwrite=True) as handle:
        handle.set_data(data)
    return path


def fake_refine(
    dataset: Dataset, refs: Path, first: int, last: int, dump: Path, **env: str
) -> None:
    answers = [
        dataset.stack, dataset.star, refs, dataset.folder / f"out_{first}.star",
        dataset.folder / "unused.mrc", 0, first, last, 1.0, 2.5, 15.0, 300.0, 8.0, 15.0, 20.0,
        1.0, 2, "Yes", "Yes", "No", "No", "No", "Yes", dump, 1,
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(FAKE), "refine2d"],
        input="".join(f"{a}\n" for a in answers),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )
    assert result.returncode == 0, result.stdout


def fake_merge(seed: Path, count: int, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FAKE), "merge2d"],
        input=f"{output}\n{seed}\n{count}\n",
        capture_output=True,
        text=True,
        check=False,
    )


def test_cistem_dumps_read_by_their_own_map_and_add_by_class(dataset: Dataset) -> None:
    folder = dataset.folder
    refs = references(folder / "refs.mrc", dataset.box, empty=[1, 3])
    fake_refine(dataset, refs, 1, 25, folder / "dump_1.dat")
    fake_refine(dataset, refs, 26, 40, folder / "dump_2.dat")
    a, b = read_cistem_dump(folder / "dump_1.dat"), read_cistem_dump(folder / "dump_2.dat")
    assert a.searched.tolist() == [True, False, True, False, True]
    assert a.processed == 25 and b.processed == 15
    assert a.weight.sum() == pytest.approx(25.0) and a.sums[:, 0, 0].real.sum() == 25
    total = a.zeroed()
    total.add(a)
    total.add(b)
    assert total.weight.sum() == pytest.approx(40.0) and total.processed == 40
    checksum = sum(p % 97 for p in range(1, 41))
    assert total.sums[:, 0, 1].real.sum() == pytest.approx(checksum)  # 3rd float = 2nd value
    # one consolidated dump gives merge2d's averages of both dumps
    write_cistem_dump(folder / "one_1.dat", total)
    both = fake_merge(folder / "dump_.dat", 2, folder / "both.mrc")
    one = fake_merge(folder / "one_.dat", 1, folder / "one.mrc")
    assert both.returncode == 0 and one.returncode == 0, both.stdout + one.stdout
    assert np.allclose(mrcfile.read(folder / "one.mrc"), mrcfile.read(folder / "both.mrc"))
    # subtracting a block gives back the other
    total.add(a, sign=-1)
    assert np.allclose(total.sums, b.sums) and total.processed == 15
    assert np.allclose(total.weight, b.weight)


def test_merge2d_checks_only_the_count_and_mis_sums_other_sets(dataset: Dataset) -> None:
    """cisTEM's merge2d: equal counts, different sets → summed into the wrong classes silently;
    the runner's check refuses the pair before merge2d."""
    folder = dataset.folder
    refs = references(folder / "refs.mrc", dataset.box, empty=[3, 4])
    fake_refine(dataset, refs, 1, 20, folder / "d_1.dat")
    fake_refine(
        dataset, refs, 21, 40, folder / "d_2.dat", FAKE_FAIL_MODE="wrongset", FAKE_FAIL_FIRST="21"
    )
    a, b = read_cistem_dump(folder / "d_1.dat"), read_cistem_dump(folder / "d_2.dat")
    assert a.searched.sum() == b.searched.sum() == 3
    assert not np.array_equal(a.searched, b.searched)
    merged = fake_merge(folder / "d_.dat", 2, folder / "wrong.mrc")
    assert merged.returncode == 0  # no error, as in cisTEM
    total = a.zeroed()
    total.add(a)
    total.add(b)
    write_cistem_dump(folder / "right_1.dat", total)
    assert fake_merge(folder / "right_.dat", 1, folder / "right.mrc").returncode == 0
    assert not np.allclose(mrcfile.read(folder / "wrong.mrc"), mrcfile.read(folder / "right.mrc"))
    with pytest.raises(PartialsError, match="different sets of non-empty classes"):
        check_same_classes([("d_1.dat", a.searched), ("d_2.dat", b.searched)])
    check_same_classes([("d_1.dat", a.searched), ("again", a.searched.copy())])


def test_merge2d_refuses_a_different_count(dataset: Dataset) -> None:
    folder = dataset.folder
    fake_refine(dataset, references(folder / "r1.mrc", dataset.box, [1]), 1, 20, folder / "x_1.dat")
    fake_refine(dataset, references(folder / "r2.mrc", dataset.box, []), 21, 40, folder / "x_2.dat")
    result = fake_merge(folder / "x_.dat", 2, folder / "x.mrc")
    assert result.returncode == 255
    assert "Dump file incompatible with 2D class averages" in result.stdout


def test_a_damaged_cistem_dump_is_refused(dataset: Dataset, tmp_path: Path) -> None:
    fake_refine(dataset, references(tmp_path / "r.mrc", dataset.box, []), 1, 40, tmp_path / "d.dat")
    data = (tmp_path / "d.dat").read_bytes()
    (tmp_path / "short.dat").write_bytes(data[:-4])
    with pytest.raises(PartialsError, match="bytes"):
        read_cistem_dump(tmp_path / "short.dat")
    with pytest.raises(PartialsError, match="not a cisTEM dump"):
        (tmp_path / "junk.dat").write_bytes(b"\xff" * 64)
        read_cistem_dump(tmp_path / "junk.dat")


def _ours(seed: int, nonzero: list[bool]) -> ClassSums:
    rng = np.random.default_rng(seed)
    k, na = len(nonzero), 8
    mask = np.array(nonzero)[:, None, None]
    return ClassSums(
        box=16,
        binned_box=na,
        pixel_size=2.5,
        mask_radius=15.0,
        nonzero=np.array(nonzero),
        sums=(rng.standard_normal((k, na, na // 2 + 1)) + 1j) * mask,
        ctf2=rng.uniform(0, 1, (k, na, na // 2 + 1)) * mask,
        class_weight=rng.uniform(1, 5, k) * np.array(nonzero),
        processed=7,
        total_logp=-12.5,
    )


def test_our_dumps_and_the_total_round_trip(tmp_path: Path) -> None:
    one, two = _ours(1, [True, True, False]), _ours(2, [True, False, True])
    write_dump(tmp_path / "a.dat", one)
    a = read_engine_dump(tmp_path / "a.dat", DumpFormat.LIVE2D)
    total = from_class_sums(two)
    total.add(a)
    write_total(tmp_path / "t.npz", total)
    back = read_total(tmp_path / "t.npz")
    assert back.format is DumpFormat.LIVE2D and back.binned_box == 8
    assert np.array_equal(back.sums, total.sums) and back.processed == 14
    assert back.total_logp == pytest.approx(-25.0)
    mapped = write_engine_dump(tmp_path / "m.dat", back)
    assert mapped.tolist() == [0, 1, 2]
    assert np.allclose(to_class_sums(back).sums, one.sums + two.sums)
    back.add(a, sign=-1)
    assert np.allclose(back.sums, two.sums) and np.allclose(back.weight, two.class_weight)


def test_partials_of_different_grids_do_not_mix(tmp_path: Path) -> None:
    a = from_class_sums(_ours(1, [True, True]))
    b = from_class_sums(_ours(1, [True, True]))
    b.box = 20
    with pytest.raises(PartialsError, match="do not match"):
        a.add(b)


def test_a_class_below_cistems_log_range_is_left_out_of_the_map(tmp_path: Path) -> None:
    k, box = 3, 8
    data = Partials(
        format=DumpFormat.CISTEM,
        box=box,
        pixel_size=2.0,
        mask_radius=10.0,
        searched=np.ones(k, bool),
        weight=np.array([3.0, 1e-12, 0.0]),
        sums=np.ones((k, box, box // 2 + 1), complex),
        ctf2=np.ones((k, box, box // 2 + 1), complex),
        processed=3,
        total_logp=0.0,
    )
    assert write_cistem_dump(tmp_path / "d.dat", data).tolist() == [0]
    back = read_cistem_dump(tmp_path / "d.dat")
    assert back.searched.tolist() == [True, False, False]
    assert back.weight[0] == pytest.approx(3.0, rel=1e-6)
    assert log_add(0.0, -30.0) == 0.0 and log_add(0.0, 0.0) == pytest.approx(np.log(2))
