"""The per-micrograph ledger (``ledger.sqlite``): what was ingested, where it sits, if active.

One row per *range*: a contiguous run of positions in a generation's combined stack holding one
version of one micrograph's particles (a reprocessed micrograph gets a new range; the old one
stays, inactive). Per generation the ledger also records the committed NZ and the committed byte
lengths of both stars — the truth that crash recovery cuts the files back to.

Invariants:
- a range is committed in the same transaction as the generation's new NZ and star lengths, and
  only after the stack and stars were written and fsynced;
- at most one range per (generation, stack) is ``current``; only current ranges may be active;
- journal: WAL on local disks, rollback (``DELETE``) on network filesystems where WAL is unsafe;
  ``synchronous=FULL`` either way.
The ledger keeps an in-memory mirror of the current generation so queries cost no I/O. Callers
serialise writers; queries may come from other threads (one lock guards the connection).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import NEW_FILE_MODE
from live2d_tui.warp.mounts import is_network_filesystem

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY,
    folder TEXT NOT NULL,
    box INTEGER NOT NULL,
    pixel_size REAL NOT NULL,
    invert INTEGER NOT NULL,
    normalize INTEGER NOT NULL,
    nz INTEGER NOT NULL,
    star_bytes INTEGER NOT NULL,
    relion_bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ranges (
    id INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL,
    stack TEXT NOT NULL,
    micrograph TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    export TEXT NOT NULL,
    rows INTEGER NOT NULL,
    first INTEGER NOT NULL,
    active INTEGER NOT NULL,
    current INTEGER NOT NULL,
    appended REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ranges_by_generation ON ranges (generation, current);
"""


@dataclass(frozen=True, slots=True)
class Generation:
    """One dataset generation: a combined stack with fixed box, pixel size and contrast."""

    generation: int
    folder: str
    """Folder of its files, relative to the output folder ('' for generation 0)."""
    box: int
    pixel_size: float
    invert: bool
    """Warp's export inversion of its particles (our stack is protein white either way)."""
    normalize: bool
    nz: int
    star_bytes: int
    relion_bytes: int


@dataclass(slots=True)
class Range:
    """One micrograph version's particles in the combined stack."""

    id: int
    stack: str
    micrograph: str
    size: int
    mtime_ns: int
    dtype: str
    export: str
    """Export options as text (box, pixel size, invert, normalize)."""
    rows: int
    first: int
    """1-based position of its first particle."""
    active: bool
    appended: float = 0.0
    """``time.time()`` when it was appended to the stack."""


@dataclass(frozen=True, slots=True)
class NewRange:
    """A range about to be committed."""

    stack: str
    micrograph: str
    size: int
    mtime_ns: int
    dtype: str
    export: str
    rows: int
    first: int


class Ledger:
    """The sqlite ledger plus an in-memory mirror of the current generation."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        # sqlite creates a database 0644 whatever the umask (its journal and WAL files copy the
        # database's mode): create it first, as any new file, so it follows the umask
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, NEW_FILE_MODE))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        network = is_network_filesystem(self.path.parent)
        self.journal_mode = "delete" if network else "wal"
        self._db.execute(f"PRAGMA journal_mode={self.journal_mode}")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self.generation: Generation | None = None
        self.ranges: dict[str, Range] = {}
        self._load()

    def _load(self) -> None:
        with self._lock:
            row = self._db.execute(
                "SELECT generation, folder, box, pixel_size, invert, normalize, nz, star_bytes,"
                " relion_bytes FROM generations ORDER BY generation DESC LIMIT 1"
            ).fetchone()
            self.generation = None if row is None else _generation(row)
            self.ranges = {}
            if self.generation is None:
                return
            for r in self._db.execute(
                "SELECT id, stack, micrograph, size, mtime_ns, dtype, export, rows, first, active,"
                " appended FROM ranges WHERE generation = ? AND current = 1 ORDER BY first",
                (self.generation.generation,),
            ):
                rng = Range(
                    int(r[0]),
                    str(r[1]),
                    str(r[2]),
                    int(r[3]),
                    int(r[4]),
                    str(r[5]),
                    str(r[6]),
                    int(r[7]),
                    int(r[8]),
                    active=bool(r[9]),
                    appended=float(r[10]),
                )
                self.ranges[rng.stack] = rng

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # -- meta ------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str = "") -> str:
        """A value of the meta table."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (own transaction)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def take_flag(self, key: str) -> bool:
        """True (and clear it) when meta ``key`` is '1' — atomic against other threads."""
        with self._lock:
            if self.get_meta(key) != "1":
                return False
            self.set_meta(key, "0")
            return True

    # -- generations -----------------------------------------------------------------------

    def start_generation(self, gen: Generation, *, abinitio: bool) -> None:
        """Record a new (empty) generation; it becomes current. Optionally flag ab initio."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        gen.generation,
                        gen.folder,
                        gen.box,
                        gen.pixel_size,
                        int(gen.invert),
                        int(gen.normalize),
                        gen.nz,
                        gen.star_bytes,
                        gen.relion_bytes,
                        time.time(),
                    ),
                )
                if abinitio:
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('abinitio', '1')"
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.generation = gen
            self.ranges = {}

    # -- appends and state changes ---------------------------------------------------------

    def commit_append(
        self,
        new: list[NewRange],
        retire: list[str],
        *,
        nz: int,
        star_bytes: int,
        relion_bytes: int,
    ) -> None:
        """In one transaction: retire the current ranges of ``retire`` stacks (inactive, not
        current), insert ``new`` ranges (active, current), and record NZ and star lengths."""
        gen = self.generation
        if gen is None:
            raise RuntimeError("no generation")
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stack in retire:
                    old = self.ranges.get(stack)
                    if old is not None:
                        self._db.execute(
                            "UPDATE ranges SET active = 0, current = 0 WHERE id = ?", (old.id,)
                        )
                ids = []
                for r in new:
                    cur = self._db.execute(
                        "INSERT INTO ranges (generation, stack, micrograph, size, mtime_ns, dtype,"
                        " export, rows, first, active, current, appended)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 1, ?)",
                        (
                            gen.generation,
                            r.stack,
                            r.micrograph,
                            r.size,
                            r.mtime_ns,
                            r.dtype,
                            r.export,
                            r.rows,
                            r.first,
                            now,
                        ),
                    )
                    ids.append(int(cur.lastrowid or 0))
                self._db.execute(
                    "UPDATE generations SET nz = ?, star_bytes = ?, relion_bytes = ?"
                    " WHERE generation = ?",
                    (nz, star_bytes, relion_bytes, gen.generation),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for stack in retire:
                self.ranges.pop(stack, None)
            for rid, r in zip(ids, new, strict=True):
                self.ranges[r.stack] = Range(
                    rid,
                    r.stack,
                    r.micrograph,
                    r.size,
                    r.mtime_ns,
                    r.dtype,
                    r.export,
                    r.rows,
                    r.first,
                    active=True,
                    appended=now,
                )
            self.generation = Generation(
                gen.generation,
                gen.folder,
                gen.box,
                gen.pixel_size,
                gen.invert,
                gen.normalize,
                nz,
                star_bytes,
                relion_bytes,
            )

    def set_active(self, stacks: list[str], active: bool) -> int:
        """Mark the current ranges of ``stacks`` active or inactive; returns rows changed."""
        changed = [
            self.ranges[s] for s in stacks if s in self.ranges and self.ranges[s].active != active
        ]
        if not changed:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE ranges SET active = ? WHERE id = ?",
                    [(int(active), r.id) for r in changed],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for r in changed:
                r.active = active
        return len(changed)

    # -- queries ---------------------------------------------------------------------------

    def active_positions(self, up_to: int | None = None) -> npt.NDArray[np.int64]:
        """Sorted 1-based positions of active particles (≤ ``up_to`` when given)."""
        with self._lock:
            spans = [(r.first, r.rows) for r in self.ranges.values() if r.active and r.rows]
            limit = self.generation.nz if self.generation else 0
        if up_to is not None:
            limit = min(limit, up_to)
        spans.sort()
        parts = [
            np.arange(f, min(f + n, limit + 1), dtype=np.int64) for f, n in spans if f <= limit
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def active_count(self) -> int:
        """Number of active particles in the current generation."""
        with self._lock:
            return sum(r.rows for r in self.ranges.values() if r.active)

    def active_count_after(self, position: int) -> int:
        """Active particles of the current generation at positions after ``position``."""
        with self._lock:
            limit = self.generation.nz if self.generation else 0
            return sum(
                max(0, min(r.first + r.rows - 1, limit) - max(r.first, position + 1) + 1)
                for r in self.ranges.values()
                if r.active
            )

    def appended_at(self, position: int) -> float | None:
        """``time.time()`` when the particle at ``position`` was appended (``None``: no range of
        the current generation holds it)."""
        with self._lock:
            for r in self.ranges.values():
                if r.first <= position < r.first + r.rows:
                    return r.appended
            if self.generation is None:
                return None
            row = self._db.execute(
                "SELECT appended FROM ranges WHERE generation = ? AND first <= ? AND "
                "first + rows > ? ORDER BY id DESC LIMIT 1",
                (self.generation.generation, position, position),
            ).fetchone()
        return None if row is None else float(row[0])


def read_generation_ranges(path: Path, generation: int) -> tuple[Generation, list[Range]]:
    """A generation and its active ranges, read through a read-only connection: nothing in the
    ledger changes (for commands that only read a session, such as ``live2d export``, which may
    run while the supervisor works on the folder).

    Raises:
        ValueError: the ledger cannot be opened or has no such generation.
    """
    uri = f"{Path(path).absolute().as_uri()}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot open the ledger ({exc})") from None
    try:
        row = db.execute(
            "SELECT generation, folder, box, pixel_size, invert, normalize, nz, star_bytes,"
            " relion_bytes FROM generations WHERE generation = ?",
            (generation,),
        ).fetchone()
        if row is None:
            raise ValueError(f"{path}: no dataset generation {generation}")
        ranges = [
            Range(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                int(r[3]),
                int(r[4]),
                str(r[5]),
                str(r[6]),
                int(r[7]),
                int(r[8]),
                active=True,
            )
            for r in db.execute(
                "SELECT id, stack, micrograph, size, mtime_ns, dtype, export, rows, first"
                " FROM ranges WHERE generation = ? AND active = 1 ORDER BY first",
                (generation,),
            )
        ]
    except sqlite3.Error as exc:
        raise ValueError(f"{path}: cannot read the ledger ({exc})") from None
    finally:
        db.close()
    return _generation(row), ranges


def _generation(row: tuple[object, ...]) -> Generation:
    g, folder, box, px, inv, norm, nz, sb, rb = row
    return Generation(
        int(str(g)),
        str(folder),
        int(str(box)),
        float(str(px)),
        bool(inv),
        bool(norm),
        int(str(nz)),
        int(str(sb)),
        int(str(rb)),
    )
