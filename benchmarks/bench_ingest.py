"""Ingest benchmarks (issue 3). Run from the repository root:

    .venv/bin/python benchmarks/bench_ingest.py throughput [--dir D] [--micrographs 60] [--box 128]
    .venv/bin/python benchmarks/bench_ingest.py scaling    [--dir D] [--present 10000 500000]
    .venv/bin/python benchmarks/bench_ingest.py parse      [--rows 10000 100000 500000]
    .venv/bin/python benchmarks/bench_ingest.py rss        [--dir D] [--particles 500000]
    .venv/bin/python benchmarks/bench_ingest.py all

- throughput: ingest N Warp stacks vs ``cp`` of the same stacks on the same disk, one run each
  (files are in the page cache for both; ingest fsyncs, so ``cp`` + fsync is shown too);
- scaling: our own work (stack append, both stars, ledger; the pass after Warp's star was
  parsed) for 1,000 new particles with 10,000 vs 500,000 already present; the present state is
  built synthetically (sparse stack, generated stars and ledger, hard-linked source stacks);
- parse: Warp's own star (it rewrites the whole file, so this part grows with the session);
- rss: peak RSS of a child process ingesting 500,000 particles at 64 px (real 8 GB output).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live2d_tui.dataset import ingest
from live2d_tui.dataset.ledger import Ledger, NewRange
from live2d_tui.dataset.micrographs import Params
from live2d_tui.dataset.stack import combined_header
from live2d_tui.dataset.writer import Defaults, GenerationFiles
from live2d_tui.formats import relion_star
from live2d_tui.formats.cistem_star import empty_rows, format_rows
from live2d_tui.formats.mrc import build_header
from live2d_tui.formats.warp_star import parse_warp_star, star_text
from live2d_tui.simulate.documents import PARTICLE_COLUMNS

MODEL = "BoxNet2Mask_20180918"
PIXEL = 2.0
PER_MIC = 100


def settings_bytes(box: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<Settings>\n'
        f'  <Param Name="PixelSizeX" Value="{PIXEL}" />\n'
        f'  <Param Name="PixelSizeY" Value="{PIXEL}" />\n'
        '  <Import>\n    <Param Name="BinTimes" Value="0" />\n  </Import>\n'
        f'  <Picking>\n    <Param Name="ModelPath" Value="{MODEL}" />\n'
        f'    <Param Name="BoxSize" Value="{box}" />\n'
        '    <Param Name="Diameter" Value="100" />\n'
        '    <Param Name="DoExport" Value="True" />\n  </Picking>\n</Settings>\n'
    ).encode()


def stack_name(i: int) -> str:
    return f"particles/mic{i:06d}_{MODEL}.mrcs"


def star_bytes(mics: list[int], per_mic: int) -> bytes:
    # the header from the simulator's writer; rows formatted here with fixed widths (Warp
    # right-aligns to the widest value), streaming 500,000 rows without a per-field list
    head = star_text(PARTICLE_COLUMNS, [])
    rows = [
        f"  {j * 7.0:9.2f}  {j * 3.0:9.2f}  10000.0  {PIXEL:.5f}  300.0  2.7000  0.070  0.0"
        f"  {15000.0 + j:9.1f}  {14500.0 + j:9.1f}  45.0  4.0  {j + 1:07d}@{stack_name(i)}"
        f"  mic{i:06d}.tif\n"
        for i in mics
        for j in range(per_mic)
    ]
    return (head + "".join(rows)).encode()


def write_stack(path: Path, count: int, box: int, seed: int, mode12: bool = False) -> None:
    data = np.random.default_rng(seed).standard_normal((count, box, box)).astype(np.float32)
    header = bytearray(build_header((count, box, box), PIXEL))
    if mode12:
        header[12:16] = (12).to_bytes(4, "little")
        payload = data.astype(np.float16).tobytes()
    else:
        payload = data.tobytes()
    path.write_bytes(bytes(header) + payload)


def make_warp(root: Path, box: int) -> None:
    (root / "particles").mkdir(parents=True)
    (root / "previous.settings").write_bytes(settings_bytes(box))


def link_sources(root: Path, first: int, count: int, box: int) -> None:
    """``count`` micrograph stacks of PER_MIC particles as hard links to one file."""
    src = root / "particles" / "source.mrcs"
    if not src.exists():
        write_stack(src, PER_MIC, box, seed=0)
    for i in range(first, first + count):
        os.link(src, root / stack_name(i))


def poll_until(ds: ingest.Dataset, total: int, limit: float = 3600) -> float:
    start = time.perf_counter()
    while ds.particle_count() < total and time.perf_counter() - start < limit:
        ds.poll()
    return time.perf_counter() - start


# --- throughput ---------------------------------------------------------------------------


def throughput(base: Path, micrographs: int, box: int, per_mic: int, float16: bool) -> None:
    work = Path(tempfile.mkdtemp(dir=base, prefix="bench_tp_"))
    try:
        warp = work / "warp"
        make_warp(warp, box)
        for i in range(micrographs):
            write_stack(warp / stack_name(i), per_mic, box, seed=i, mode12=float16)
        (warp / f"goodparticles_{MODEL}.star").write_bytes(
            star_bytes(list(range(micrographs)), per_mic)
        )
        nbytes = sum(p.stat().st_size for p in (warp / "particles").iterdir())
        os.sync()  # start both runs with no dirty pages waiting
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(warp / "particles"), str(work / "copy")], check=True)
        t_cp = time.perf_counter() - t0
        for p in (work / "copy").iterdir():
            fd = os.open(p, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        t_cp_sync = time.perf_counter() - t0
        ds = ingest.Dataset(warp, work / "out", settle_seconds=0.0)
        ds.poll()
        ds.poll()  # star parsed; stacks seen once
        os.sync()
        t0 = time.perf_counter()
        ds.poll()  # the appending pass
        t_ingest = time.perf_counter() - t0
        assert ds.particle_count() == micrographs * per_mic
        ds.close()
        mb = nbytes / 1e6
        print(
            f"throughput: {micrographs} stacks × {per_mic} particles × {box}² "
            f"{'float16 (W2; converted to float32)' if float16 else 'float32'} = {mb:.0f} MB read"
            f"\n  cp -r        {t_cp:6.2f} s  {mb / t_cp:7.0f} MB/s"
            f"\n  cp + fsync   {t_cp_sync:6.2f} s  {mb / t_cp_sync:7.0f} MB/s"
            f"\n  ingest       {t_ingest:6.2f} s  {mb / t_ingest:7.0f} MB/s"
            f"  = {t_cp / t_ingest:.2f}× cp, {t_cp_sync / t_ingest:.2f}× cp+fsync"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- scaling ------------------------------------------------------------------------------


def synthetic_present(warp: Path, out: Path, present: int, box: int) -> None:
    """Output folder as if ``present`` particles (PER_MIC per micrograph) had been ingested."""
    mics = present // PER_MIC
    link_sources(warp, 0, mics, box)
    files = GenerationFiles.create(
        out, 0, Params(box, PIXEL, True, True), Defaults(PIXEL, 300.0, 2.7, 0.07)
    )
    with open(files.stack.path, "r+b") as f:
        f.truncate(1024 + present * box * box * 4)  # sparse: no disk blocks
        f.seek(0)
        f.write(combined_header(box, present, PIXEL))
    rows = empty_rows(present)
    rows["position"] = np.arange(1, present + 1)
    rows["pixel_size"] = PIXEL
    rows["voltage"] = 300.0
    with open(files.star_path, "a") as f:
        f.write(format_rows(rows))
    with open(files.relion_path, "a") as f:
        f.writelines(
            f"{p:07d}@combined_stack.mrcs {p:07d}@x mic.tif 0 0 15000 14500 45 0 1\n"
            for p in range(1, present + 1)
        )
    src = (warp / stack_name(0)).stat()
    ledger = Ledger(out / "ledger.sqlite")
    ledger.start_generation(files.generation, abinitio=False)
    ledger.commit_append(
        [
            NewRange(
                stack_name(i),
                f"mic{i:06d}.tif",
                src.st_size,
                src.st_mtime_ns,
                "float32",
                "",
                PER_MIC,
                i * PER_MIC + 1,
            )
            for i in range(mics)
        ],
        [],
        nz=present,
        star_bytes=files.star_path.stat().st_size,
        relion_bytes=files.relion_path.stat().st_size,
    )
    ledger.close()
    _ = relion_star  # (format written inline above for speed)


def scaling(base: Path, present_list: list[int], box: int, rounds: int = 7) -> None:
    """Both sizes are built first, then measured in alternating rounds (this machine is shared,
    so alternating and taking medians keeps background load from favouring one size)."""
    works, sets = [], {}
    try:
        for present in present_list:
            work = Path(tempfile.mkdtemp(dir=base, prefix="bench_sc_"))
            works.append(work)
            warp, out = work / "warp", work / "out"
            make_warp(warp, box)
            synthetic_present(warp, out, present, box)
            ds = ingest.Dataset(warp, out, settle_seconds=0.0)
            sets[present] = (warp, ds, list(range(present // PER_MIC)), [], [])
        os.sync()  # the synthetic state must not be flushed inside a measured pass
        for r in range(rounds):
            for warp, ds, mics, own, parse_pass in sets.values():
                new = list(range(len(mics), len(mics) + 10))
                for i in new:
                    write_stack(warp / stack_name(i), PER_MIC, box, seed=1000 * r + i)
                mics += new
                (warp / f"goodparticles_{MODEL}.star").write_bytes(star_bytes(mics, PER_MIC))
                ds.poll()
                t0 = time.perf_counter()
                ds.poll()  # parse Warp's star + diff (new stacks seen once)
                parse_pass.append(time.perf_counter() - t0)
                before = ds.particle_count()
                t0 = time.perf_counter()
                report = ds.poll()  # append 1,000: stack, stars, ledger
                own.append(time.perf_counter() - t0)
                assert report.particles_appended == 1000 == ds.particle_count() - before, report
        medians = {}
        for present, (_w, ds, mics, own, parse_pass) in sets.items():
            medians[present] = float(np.median(own))
            print(
                f"scaling: {present:>7} present: own work for 1,000 new = "
                f"{medians[present] * 1000:6.1f} ms (median of {rounds}: "
                f"{', '.join(f'{t * 1000:.0f}' for t in own)}); pass that parses Warp's star "
                f"({len(mics) * PER_MIC} rows) = {np.median(parse_pass) * 1000:7.1f} ms"
            )
            ds.close()
        if len(medians) >= 2:
            lo, hi = min(medians), max(medians)
            print(f"scaling: ratio {hi} vs {lo} present = {medians[hi] / medians[lo]:.2f}")
    finally:
        for work in works:
            shutil.rmtree(work, ignore_errors=True)


# --- parse --------------------------------------------------------------------------------


def parse(rows_list: list[int]) -> None:
    for rows in rows_list:
        data = star_bytes(list(range(rows // PER_MIC)), PER_MIC)
        t0 = time.perf_counter()
        table = parse_warp_star(data, "bench")
        dt = time.perf_counter() - t0
        assert table.rows == rows
        print(f"parse: Warp star {rows:>7} rows ({len(data) / 1e6:6.1f} MB) {dt * 1000:8.1f} ms")


# --- rss ----------------------------------------------------------------------------------


def rss(base: Path, particles: int, box: int) -> None:
    work = Path(tempfile.mkdtemp(dir=base, prefix="bench_rss_"))
    try:
        warp = work / "warp"
        make_warp(warp, box)
        mics = particles // PER_MIC
        link_sources(warp, 0, mics, box)
        (warp / f"goodparticles_{MODEL}.star").write_bytes(star_bytes(list(range(mics)), PER_MIC))
        done = subprocess.run(
            [sys.executable, __file__, "rss-child", str(warp), str(work / "out"), str(particles)],
            check=True,
            capture_output=True,
            text=True,
        )
        print(done.stdout.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's peak into a
    child across fork/exec, which would report the benchmark's own star generation."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(warp: Path, out: Path, particles: int) -> None:
    ds = ingest.Dataset(warp, out, settle_seconds=0.0, min_free_gb=1.0)
    elapsed = poll_until(ds, particles)
    count = ds.particle_count()
    ds.close()
    peak_mb = peak_rss_mb()
    size = (out / "combined_stack.mrcs").stat().st_size / 1e9
    print(
        f"rss: ingested {count} particles ({size:.2f} GB stack) in {elapsed:.1f} s "
        f"({size * 1e3 / elapsed:.0f} MB/s); peak RSS {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", choices=["throughput", "scaling", "parse", "rss", "all", "rss-child"]
    )
    parser.add_argument("args", nargs="*")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--micrographs", type=int, default=60)
    parser.add_argument("--per-mic", type=int, default=100)
    parser.add_argument("--box", type=int, default=0, help="box (default 128 throughput, else 64)")
    parser.add_argument("--present", type=int, nargs="+", default=[10_000, 500_000])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 500_000])
    parser.add_argument("--particles", type=int, default=500_000)
    parser.add_argument("--float16", action="store_true", help="throughput: Warp 2 stacks")
    a = parser.parse_args()
    if a.what == "rss-child":
        rss_child(Path(a.args[0]), Path(a.args[1]), int(a.args[2]))
        return
    if a.what in ("throughput", "all"):
        throughput(a.dir, a.micrographs, a.box or 128, a.per_mic, a.float16)
    if a.what in ("scaling", "all"):
        scaling(a.dir, a.present, a.box or 64)
    if a.what in ("parse", "all"):
        parse(a.rows)
    if a.what in ("rss", "all"):
        rss(a.dir, a.particles, a.box or 64)


if __name__ == "__main__":
    main()
