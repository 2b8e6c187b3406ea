"""What the Session tab's data costs at 1,000 and 10,000 micrographs, in its worker thread.

A synthetic Warp folder of N movie XML (the simulator's documents, padded with a power-spectrum
element of ``--ps1d`` points as Warp writes one, so each file has a realistic size) and a
particle table that keeps 90 % of the movies. Measured, each the median of ``--repeat`` runs:

- **first scan**: the catalog reads and parses every XML (once per session);
- **steady scan**: 10 new movies since the last look: one directory listing, a ``stat`` per XML,
  10 parses, the per-movie arrays and :func:`~live2d_tui.health.prepare_health`: what the health
  monitor does every scan while the session grows;
- **quiet scan**: the same with nothing new;
- **prepare**: :func:`~live2d_tui.health.prepare_health` alone.

The steady scan's ratio between the two sizes shows how the cost grows with the session.

Usage: ``flock /tmp/live2d-bench.lock .venv/bin/python benchmarks/bench_health.py
[--sizes 1000 10000] [--repeat 5] [--ps1d 512] [--warp1] [--dir D] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from live2d_tui.health import prepare_health  # noqa: E402
from live2d_tui.simulate import documents as docs  # noqa: E402
from live2d_tui.simulate.particles import draw_micrograph_ctf  # noqa: E402
from live2d_tui.supervisor.monitor import cycle_classes, movie_arrays  # noqa: E402
from live2d_tui.warp.catalog import MovieCatalog  # noqa: E402
from live2d_tui.warp.source import TableView  # noqa: E402

GEOMETRY = docs.Geometry(
    box=128,
    bin_times=1.0,
    unbinned_pixel=0.8,
    model="BoxNet2Mask_20180918",
    diameter=150,
    invert=True,
)
START = 1_700_000_000.0


def movie_bytes(index: int, *, warp2: bool, ps1d: int) -> bytes:
    rng = np.random.default_rng(index)
    ctf = draw_micrograph_ctf(rng, defocus_min=0.8, defocus_max=2.5, phase_plate=False, bad=False)
    data = docs.movie_document(
        GEOMETRY,
        ctf,
        voltage=300,
        cs=2.7,
        amplitude_contrast=0.07,
        unselect_manual=None,
        motion=1.0,
        warp2=warp2,
        data_directory="/data" if warp2 else None,
        picking_suffix="_BoxNet2Mask_20180918",
    )
    points = ";".join(f"{i / ps1d:.6f}|{v:.6f}" for i, v in enumerate(rng.random(ps1d)))
    encoding = "utf-8" if warp2 else "utf-16-le"
    text = data.decode(encoding).replace("</Movie>", f"  <PS1D>{points}</PS1D>\n</Movie>")
    body = text.removeprefix("\ufeff").encode(encoding)
    return (b"\xef\xbb\xbf" if warp2 else b"\xff\xfe") + body


def write_movies(folder: Path, first: int, count: int, *, warp2: bool, ps1d: int) -> None:
    for i in range(first, first + count):
        path = folder / f"FoilHole_{i:08d}.xml"
        path.write_bytes(movie_bytes(i, warp2=warp2, ps1d=ps1d))
        when = START + 60.0 * i
        os.utime(path, (when, when))


def table(total: int) -> TableView:
    counts = {f"FoilHole_{i:08d}": 150 for i in range(total) if i % 10}
    return TableView(
        name="goodparticles_BoxNet2Mask_20180918.star", counts=counts, time=START + 60.0 * total
    )


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def steady_scan(catalog: MovieCatalog, view: TableView, new: int) -> None:
    """What the monitor does at a scan: read what changed, arrays, series."""
    scan = catalog.scan()
    assert scan.parsed == new
    prepare_health(movie_arrays(scan.movies, view), cycle_classes([]), table_name=view.name)


def measure(base: Path, n: int, repeat: int, *, warp2: bool, ps1d: int) -> dict[str, float]:
    folder = base / f"warp_{n}"
    folder.mkdir()
    write_movies(folder, 0, n, warp2=warp2, ps1d=ps1d)
    size = sum(p.stat().st_size for p in folder.iterdir()) / n
    firsts, steadies, quiets, prepares = [], [], [], []
    total = n
    for _ in range(repeat):
        catalog = MovieCatalog([folder])
        firsts.append(timed(catalog.scan))
        write_movies(folder, total, 10, warp2=warp2, ps1d=ps1d)
        total += 10
        view = table(total)
        steadies.append(timed(partial(steady_scan, catalog, view, 10)))
        quiets.append(timed(partial(steady_scan, catalog, view, 0)))
        arrays = movie_arrays(catalog.scan().movies, view)
        prepares.append(timed(partial(prepare_health, arrays, [], table_name=view.name)))
    return {
        "micrographs": n,
        "xml_bytes": size,
        "first_scan_s": statistics.median(firsts),
        "steady_scan_s": statistics.median(steadies),
        "quiet_scan_s": statistics.median(quiets),
        "prepare_s": statistics.median(prepares),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ps1d", type=int, default=512, help="power-spectrum points per XML")
    parser.add_argument("--warp1", action="store_true", help="Warp 1 XML (UTF-16)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_health_", dir=args.dir) as tmp:
        for n in args.sizes:
            rows.append(measure(Path(tmp), n, args.repeat, warp2=not args.warp1, ps1d=args.ps1d))
    for row in rows:
        print(
            f"{row['micrographs']:>7,} micrographs ({row['xml_bytes'] / 1e3:.1f} kB XML): "
            f"first scan {row['first_scan_s'] * 1e3:8.1f} ms, steady scan (10 new) "
            f"{row['steady_scan_s'] * 1e3:7.1f} ms, "
            f"quiet scan {row['quiet_scan_s'] * 1e3:7.1f} ms, "
            f"prepare {row['prepare_s'] * 1e3:6.1f} ms"
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        print(
            f"steady scan {b['micrographs']:,} / {a['micrographs']:,}: "
            f"{b['steady_scan_s'] / a['steady_scan_s']:.2f}× "
            f"(sessions {b['micrographs'] / a['micrographs']:.0f}× larger)"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
