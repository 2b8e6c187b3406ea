"""A strict stand-in for cisTEM's ``refine2d`` and ``merge2d`` (run as a real subprocess).

Usage: ``python fake_cistem.py refine2d|merge2d`` with the answers on stdin.

It is written from docs/protocol.md and cisTEM's source, independently of the prompt table of
the code under test — and behaves like a scripted-mode cisTEM build:

- each answer is one stdin line; a blank line or EOF exits 255; the type (int: digit or '-'
  digit; float: digit or '-'/'.' then digit; yes/no: y/n first) and range of every answer is
  checked, a bad one exits 255; files that must exist are checked (exit 255);
- every accepted answer is echoed as ``<prompt padded to 50> : <answer>``;
- refine2d: random-start mode writes K class averages (no star); dump mode writes a dump and a
  star holding exactly the rows with first ≤ position ≤ last, phase shift written back in
  **radians** as cisTEM does; progress bars end in ``\\r``; ``Refine2D: Normal termination``;
- dumps have cisTEM's raw layout (§6): 4 ints (box, K, non-empty K, particles), 6 floats, the
  K-int map of non-empty classes, their class logs and two half-plane arrays per non-empty class.
  refine2d searches only the references with non-zero variance and adds each processed particle
  to one of them: 1 to the class sum's first value and ``position mod 97`` to its third, 1 to the
  CTF² sum's first value and ln(1) = 0 log-added to the class log, so sums count particles;
- merge2d: every dump seed+i must exist; like cisTEM it compares box, K, **the number** of
  non-empty classes and pixel size with the first dump's (exit 255 on a difference), keeps the
  last dump's map, sums slot by slot and log-adds the class logs; slice k of its output holds the
  first N×N values of class k's sum divided by |CTF² sum| + occupancy (zero for empty classes),
  with a dummy pixel size.

Test hooks (environment):
- ``FAKE_STATE``: folder for a concurrency counter (``peak``) and ``runs.jsonl`` (one record per
  run: program, pid, pgid, sid, nice, OMP_NUM_THREADS, answers);
- ``FAKE_SLEEP``: seconds of (sleeping) work per refine2d run; ``FAKE_SPIN``: seconds of busy
  work instead (that much CPU time is used);
- ``FAKE_FAIL_FIRST``: the first-particle value of the job that misbehaves; ``FAKE_FAIL_MODE``:
  ``once`` (exit 1 on the first try only), ``always`` (exit 1), ``noterm`` (exit 0 without the
  termination line), ``hang`` (sleep forever, no CPU), ``hangonce`` (sleep forever on the first
  try only), ``ignoreterm`` (ignore SIGTERM, sleep forever), ``droprow`` (succeed, but leave
  the last row out of the star), ``wrongset`` (succeed, but the dump's map names an empty class
  instead of its last non-empty one: the same count, another set);
- ``FAKE_MERGE_FAIL``: ``always`` makes merge2d exit 255.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import signal
import struct
import sys
import time
from array import array

REFINE2D = [
    ("Input particle images", "existing", None, None),
    ("Input cisTEM star file", "existing", None, None),
    ("Input class averages", "file", None, None),
    ("Output cisTEM star file", "file", None, None),
    ("Output class averages", "file", None, None),
    ("Number of classes (>0 = initialize classes)", "int", 0, None),
    ("First particle to refine (0 = first in stack)", "int", 0, None),
    ("Last particle to refine (0 = last in stack)", "int", 0, None),
    ("Percent of particles to use (1 = all)", "float", 0.0, 1.0),
    ("Pixel size of class averages (A)", "float", 0.0, None),
    ("Mask radius (A)", "float", 0.0, None),
    ("Low resolution limit (A)", "float", 0.0, None),
    ("High resolution limit (A)", "float", 0.0, None),
    ("Angular step (0.0 = set automatically)", "float", 0.0, None),
    ("Search range (A) (0.0 = max)", "float", 0.0, None),
    ("Tuning parameter: smoothing factor", "float", 0.01, None),
    ("Tuning parameter: padding factor for interpol.", "int", 1, None),
    ("Normalize particles", "yesno", None, None),
    ("Invert particle contrast", "yesno", None, None),
    ("Exclude images with blank edges", "yesno", None, None),
    ("Automatically mask class averages", "yesno", None, None),
    ("Automatically center class averages", "yesno", None, None),
    ("Dump intermediate arrays (merge later)", "yesno", None, None),
    ("Output dump filename for intermediate arrays", "file", None, None),
    ("Max. threads to use for calculation", "int", 1, None),
]
MERGE2D = [
    ("Output class averages", "file", None, None),
    ("Seed for input dump filenames for intermediate arrays", "file", None, None),
    ("Number of dump files", "int", 1, None),
]
LABELS = [
    "cisTEMPositionInStack", "cisTEMAnglePsi", "cisTEMXShift", "cisTEMYShift",
    "cisTEMDefocus1", "cisTEMDefocus2", "cisTEMDefocusAngle", "cisTEMPhaseShift",
    "cisTEMOccupancy", "cisTEMLogP", "cisTEMSigma", "cisTEMScore", "cisTEMScoreChange",
    "cisTEMPixelSize", "cisTEMMicroscopeVoltagekV", "cisTEMMicroscopeCsMM",
    "cisTEMAmplitudeContrast", "cisTEMBeamTiltX", "cisTEMBeamTiltY", "cisTEMImageShiftX",
    "cisTEMImageShiftY", "cisTEMBest2DClass",
]  # fmt: skip
FORMATS = (
    "%8u %7.2f %9.2f %9.2f %8.1f %8.1f %7.2f %7.2f %7.2f %9i %10.4f %7.2f %7.2f %8.5f %7.2f "
    "%7.2f %7.4f %7.3f %7.3f %7.3f %7.3f %5i\n"
)
HEADER = "<4i6f"
LOG_RANGE = 20.0
FLT_MAX = 3.4028234663852886e38


def out(text: str = "", end: str = "\n") -> None:
    sys.stdout.write(text + end)
    sys.stdout.flush()


def die(message: str) -> None:
    out(message)
    sys.exit(255)


def ask(prompts: list[tuple[str, str, float | None, float | None]]) -> list[str]:
    answers: list[str] = []
    for text, kind, low, high in prompts:
        raw = sys.stdin.buffer.readline().decode()
        line = raw[:-1] if raw.endswith("\n") else raw
        if not line.strip():
            die(" Error: Blank answer in scripted mode, exiting...")
        if line.startswith("*"):
            sys.exit(0)
        bad = ""
        if kind == "existing":
            if not os.path.isfile(line):
                out(" Error: File does not exist, please provide an existing file!")
                bad = "missing"
        elif kind == "int":
            ok = line[0].isdigit() or (line[0] == "-" and len(line) > 1 and line[1].isdigit())
            if not ok or not line.lstrip("-").isdigit():
                bad = "not an int"
            elif (low is not None and int(line) < low) or (high is not None and int(line) > high):
                bad = "out of range"
        elif kind == "float":
            ok = line[0].isdigit() or (
                line[0] in "-." and len(line) > 1 and (line[1].isdigit() or line[1] == ".")
            )
            try:
                value = float(line)
            except ValueError:
                ok = False
            if not ok or "e" in line.lower() or not math.isfinite(value):
                bad = "not a float"
            elif (low is not None and value < low) or (high is not None and value > high):
                bad = "out of range"
        elif kind == "yesno" and line[0] not in "yYnN":
            bad = "not yes/no"
        if bad:
            die(f" {bad}\n Error: Running as script, and answer is not recognized...")
        out(f"{text:<50} : {line}")
        answers.append(line)
    return answers


def state_dir() -> str | None:
    return os.environ.get("FAKE_STATE") or None


def concurrency(delta: int) -> None:
    folder = state_dir()
    if folder is None:
        return
    with open(os.path.join(folder, "counter.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(folder, "counter.json")
        try:
            with open(path) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            data = {"running": 0, "peak": 0}
        data["running"] += delta
        data["peak"] = max(data["peak"], data["running"])
        with open(path, "w") as handle:
            json.dump(data, handle)
        fcntl.flock(lock, fcntl.LOCK_UN)


def record(program: str, answers: list[str]) -> None:
    folder = state_dir()
    if folder is None:
        return
    entry = {
        "program": program,
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "cwd": os.getcwd(),
        "answers": answers,
    }
    with open(os.path.join(folder, "runs.jsonl"), "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def mrc_shape(path: str) -> tuple[int, int, int]:
    with open(path, "rb") as handle:
        return struct.unpack("<3i", handle.read(12))


def mrc_slices(path: str) -> list[array]:
    """The float32 slices of an MRC stack (mode 2)."""
    with open(path, "rb") as handle:
        data = handle.read()
    nx, ny, nz, mode = struct.unpack("<4i", data[:16])
    (extended,) = struct.unpack("<i", data[92:96])
    if mode != 2:
        die(f"\nError : class averages in mode {mode}\n")
    start = 1024 + extended
    slices = []
    for z in range(nz):
        values = array("f")
        values.frombytes(data[start + z * nx * ny * 4 : start + (z + 1) * nx * ny * 4])
        slices.append(values)
    return slices


def log_add(a: float, b: float) -> float:
    """cisTEM's ReturnSumOfLogP."""
    if b < a - LOG_RANGE:
        return a
    if a < b - LOG_RANGE:
        return b
    return a + math.log(1.0 + math.exp(b - a))


def write_dump(
    path: str,
    box: int,
    k: int,
    slots: list[int],
    counts: dict[int, int],
    checks: dict[int, float],
    processed: int,
) -> None:
    """A dump in cisTEM's layout; class j's sums count its particles (module docstring)."""
    size = 2 * (box // 2 + 1) * box
    head = struct.pack(HEADER, box, k, len(slots), processed, 0.0, 0.0, 2.5, 15.0, 20.0, 20.0)
    mapping = array("i", slots + [-1] * (k - len(slots)))
    logs = array("f", [math.log(counts[c]) if counts.get(c) else -FLT_MAX for c in slots])
    with open(path, "wb") as handle:
        handle.write(head + mapping.tobytes() + logs.tobytes())
        for c in slots:
            total = array("f", bytes(4 * size))
            ctf2 = array("f", bytes(4 * size))
            total[0], total[2], ctf2[0] = counts.get(c, 0), checks.get(c, 0.0), counts.get(c, 0)
            handle.write(total.tobytes() + ctf2.tobytes())


def write_mrc(path: str, box: int, slices: list[array]) -> None:
    header = bytearray(1024)
    nz = len(slices)
    struct.pack_into("<4i", header, 0, box, box, nz, 2)
    struct.pack_into("<3i", header, 28, box, box, nz)
    struct.pack_into("<3f", header, 40, float(box), float(box), float(nz))  # dummy 1 Å pixel
    struct.pack_into("<3f", header, 52, 90.0, 90.0, 90.0)
    struct.pack_into("<3i", header, 64, 1, 2, 3)
    struct.pack_into("<i", header, 104, 0)
    header[208:212] = b"MAP "
    header[212:216] = bytes([0x44, 0x44, 0, 0])
    with open(path, "wb") as handle:
        handle.write(header)
        for data in slices:
            handle.write(data.tobytes())


def read_star(path: str) -> list[list[str]]:
    rows: list[list[str]] = []
    in_loop = False
    seen_data = False
    with open(path, encoding="utf-8") as handle:
        lines = handle.readlines()
    for line in lines:
        stripped = line.strip()
        if not seen_data:
            seen_data = "data_" in stripped
            continue
        if not in_loop:
            in_loop = "loop_" in stripped
            continue
        if not stripped:
            if rows:
                break
            continue
        if stripped.startswith(("#", ";", "_")):
            continue
        fields = stripped.split()
        if len(fields) != 22:
            die(f"Error: star row with {len(fields)} columns")
        rows.append(fields)
    return rows


def progress(seconds: float, spin: bool) -> None:
    out("     0% [                              ] ???h:??m:??s   ", end="\r")
    steps = 4
    for i in range(1, steps + 1):
        if spin:  # busy until this much CPU time is used (on a shared machine, wall time is more)
            end = time.process_time() + seconds / steps
            while time.process_time() < end:
                pass
        elif seconds:
            time.sleep(seconds / steps)
        out(f"   {100 * i // steps:3d}% [{'=' * (30 * i // steps):<30}] 0h:00m00s   ", end="\r")
    out("   100% [==============================] done! (0h:00m00s)")


def misbehave(first: int) -> None:
    target = os.environ.get("FAKE_FAIL_FIRST")
    if target is None or int(target) != first:
        return
    mode = os.environ.get("FAKE_FAIL_MODE", "always")
    folder = state_dir() or "."
    if mode == "once":
        marker = os.path.join(folder, f"failed_once_{first}")
        if os.path.exists(marker):
            return
        open(marker, "w").close()
        out("Error : simulated crash")
        sys.exit(1)
    if mode == "always":
        out("Error : simulated crash")
        sys.exit(1)
    if mode == "noterm":
        sys.exit(0)
    if mode == "hang":
        while True:
            time.sleep(3600)
    if mode == "hangonce":
        marker = os.path.join(folder, f"hung_once_{first}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            while True:
                time.sleep(3600)
    if mode == "ignoreterm":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        concurrency(+1)
        while True:
            time.sleep(3600)


def refine2d() -> None:
    out("        **   Welcome to Refine2D   **\n")
    out("             Version : 1.02\n            Compiled : fake\n     Library Version : fake")
    out("         From Branch : fake\n                Mode : Scripted\n")
    a = ask(REFINE2D)
    stack, star, classes_in, star_out, classes_out = a[0:5]
    k, first, last = int(a[5]), int(a[6]), int(a[7])
    fraction = float(a[8])
    dump, dump_file = a[22][0] in "yY", a[23]
    record("refine2d", a)
    box, _, nz = mrc_shape(stack)
    first = first or 1
    last = nz if last == 0 or last > nz else last
    if last < first:
        die("\nError : last particle before first\n")
    rows = [r for r in read_star(star) if first <= int(r[0]) <= last]
    misbehave(first)
    concurrency(+1)
    try:
        sleep = float(os.environ.get("FAKE_SLEEP", "0") or 0)
        spin = float(os.environ.get("FAKE_SPIN", "0") or 0)
        out("Shift averages x, y = 0, 0, shift std x, y = 0, 0, average SNR = 1")
        if k > 0:
            out(f"Generating {k} starting class averages...")
            progress(sleep or spin, bool(spin))
            rng = random.Random(first)
            slices = [array("f", [rng.random() for _ in range(box * box)]) for _ in range(k)]
            write_mrc(classes_out, box, slices)
            out("Refine2D: Normal termination")
            return
        if not os.path.isfile(classes_in):
            die(f"\nError : Input class averages {classes_in} not found\n")
        references = mrc_slices(classes_in)
        kk = len(references)
        # cisTEM searches the references with non-zero variance only (refine2d.cpp)
        nonzero = [c for c, ref in enumerate(references) if max(ref) != min(ref)]
        if not nonzero:
            die("\nError : all class averages are empty\n")
        out("Calculating noise power spectrum...")
        progress(sleep / 2 or spin / 2, bool(spin))
        out("Calculating new class averages...")
        progress(sleep / 2 or spin / 2, bool(spin))
        rng = random.Random(first * 7919 + int(time.time()))
        lines = []
        counts: dict[int, int] = {}
        checks: dict[int, float] = {}
        for r in rows:
            values: list[float] = [float(v) for v in r]
            if rng.random() < fraction:
                chosen = rng.choice(nonzero)
                counts[chosen] = counts.get(chosen, 0) + 1
                checks[chosen] = checks.get(chosen, 0.0) + int(values[0]) % 97
                values[21] = chosen + 1
                values[1] = rng.uniform(0, 360)
                values[2], values[3] = rng.uniform(-5, 5), rng.uniform(-5, 5)
            else:
                values[21] = -abs(values[21])
            values[7] = math.radians(values[7])  # cisTEM writes the in-memory radians back
            values[0], values[9], values[21] = int(values[0]), int(values[9]), int(values[21])
            lines.append(FORMATS % tuple(values))
        if (
            os.environ.get("FAKE_FAIL_MODE") == "droprow"
            and int(os.environ.get("FAKE_FAIL_FIRST", "-1")) == first
        ):
            lines = lines[:-1]
        if star_out != "/dev/null":
            with open(star_out, "w") as handle:
                handle.write("# Written by cisTEM Version fake\n")
                for text, value in zip(REFINE2D, a, strict=True):
                    handle.write(f"# {text[0]} : {value}\n")
                handle.write("#\n \ndata_\n \nloop_\n")
                for i, label in enumerate(LABELS, start=1):
                    handle.write(f"_{label} #{i}\n")
                handle.write("#    POS     PSI ...\n")
                handle.writelines(lines)
        if dump:
            out("Dumping intermediate files...")
            slots = list(nonzero)
            if os.environ.get("FAKE_FAIL_MODE") == "wrongset" and int(
                os.environ.get("FAKE_FAIL_FIRST", "-1")
            ) in (first, 0):
                empty = [c for c in range(kk) if c not in nonzero]
                if empty:
                    slots[-1] = empty[0]
                    slots.sort()
            write_dump(dump_file, box, kk, slots, counts, checks, sum(counts.values()))
        else:
            write_mrc(classes_out, box, [array("f", [0.0] * box * box) for _ in range(kk)])
        out("Total logP = -1000.0")
        out("Refine2D: Normal termination")
    finally:
        concurrency(-1)


def merge2d() -> None:
    out("        **   Welcome to Merge2D   **\n")
    out("             Version : 1.00\n                Mode : Scripted\n")
    a = ask(MERGE2D)
    record("merge2d", a)
    if os.environ.get("FAKE_MERGE_FAIL") == "always":
        die("\nError : simulated merge failure\n")
    output, seed, count = a[0], a[1], int(a[2])
    slash, dot = seed.rfind("/"), seed.rfind(".")
    stem, ext = (seed[:dot], seed[dot:]) if dot > slash else (seed, "")
    first: tuple[int, int, int, float] | None = None
    mapping: list[int] = []
    sums: list[array] = []
    ctf2: list[array] = []
    logs: list[float] = []
    processed = 0
    for i in range(1, count + 1):
        name = f"{stem}{i}{ext}"
        if not os.path.isfile(name):
            die(f"\nError : Dump file {name} not found\n")
        with open(name, "rb") as handle:
            data = handle.read()
        size = struct.calcsize(HEADER)
        if len(data) < size:
            die(f"\nError : Dump file {name} is not a dump\n")
        box, kk, knz, images, _, _, pixel, _, _, _ = struct.unpack(HEADER, data[:size])
        if first is None:
            first = (box, kk, knz, pixel)
            out(
                f"Number of classes = {kk}, nonzero classes = {knz}, box size = {box}, "
                f"pixel size = {pixel:f}"
            )
            out("Reading intermediate arrays...")
            sums = [array("f", bytes(8 * (box // 2 + 1) * box)) for _ in range(knz)]
            ctf2 = [array("f", bytes(8 * (box // 2 + 1) * box)) for _ in range(knz)]
            logs = [-FLT_MAX] * knz
        elif (box, kk, knz, pixel) != first:  # cisTEM compares the count, not the set
            die("\nError : Dump file incompatible with 2D class averages\n")
        out(name)
        width = 2 * (box // 2 + 1) * box
        expected = size + 4 * kk + 4 * knz + knz * 2 * width * 4
        if len(data) != expected:
            die(f"\nError : Dump file {name} is {len(data)} bytes, expected {expected}\n")
        at = size
        mapping = list(array("i", data[at : at + 4 * kk]))  # the last dump's map wins
        at += 4 * kk
        class_logs = array("f", data[at : at + 4 * knz])
        at += 4 * knz
        for j in range(knz):
            block_sum = array("f", data[at : at + 4 * width])
            block_ctf = array("f", data[at + 4 * width : at + 8 * width])
            at += 8 * width
            for n in range(width):
                sums[j][n] += block_sum[n]
                ctf2[j][n] += block_ctf[n]
            logs[j] = log_add(logs[j], class_logs[j])
        processed += images
    assert first is not None
    box, kk, knz, _ = first
    slices = [array("f", bytes(4 * box * box)) for _ in range(kk)]
    occupancy = [0.0] * kk
    for j in range(knz):
        slot = mapping[j]
        if abs(logs[j]) > LOG_RANGE or processed == 0:
            continue
        occ = math.exp(logs[j] - math.log(processed))
        occupancy[slot] = occ
        for n in range(box * box):
            pair = 2 * (n // 2)
            magnitude = math.hypot(ctf2[j][pair], ctf2[j][pair + 1])
            slices[slot][n] = sums[j][n] / (magnitude + occ)
    write_mrc(output, box, slices)
    for k in range(1, kk + 1):
        out(f"Class = {k:4d}, average occupancy = {100.0 * occupancy[k - 1]:10.4f}")
    out("Total logp = -1")
    out("Merge2D: Normal termination")


if __name__ == "__main__":
    {"refine2d": refine2d, "merge2d": merge2d}[sys.argv[1]]()
