"""The block index: the streaming state, persisted atomically, and the stream folder's files.

Everything a streaming update needs lives in ``<output folder>/stream/``; ``index.json`` names
the files of the committed state and nothing else is part of it:

- per block (a contiguous range of stack positions): its dataset rows as they were when it was
  made (``blocks/b<id>_data.star``, written once: CTF columns in degrees, every position of the
  range, active or not), its rows as its last visit left them (``blocks/b<id>_v<N>.star``) and
  the dumps of that visit (``blocks/b<id>_v<N>_<j>.dat``, in the engine's format);
- the running total of every block's dumps (``total_v<N>.npz``, float64), the class statistics
  (``stats_v<N>.npz``), the class averages of update N (``classes_v<N>.mrc``: the references of
  the next update, published as ``cycle_<N>.mrc``), a sample of rows for cisTEM's parameter
  statistics (``context_v<N>.star``) and the particles that fit their classes badly
  (``pool_v<N>.star``, for :mod:`.reseed`).

An update writes new files only (new names carry its cycle number), then replaces
``index.json`` (temp, fsync, rename): that rename is the commit. Files of the previous state are
deleted after it. A crash or kill at any point leaves either the old index with all its files,
or the new one with all its files; whatever else is in the folder is an orphan, removed by
:func:`remove_orphans` on the next start.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from live2d_tui.atomic import atomic_write_json
from live2d_tui.classify.streaming.startail import StarCursor
from live2d_tui.formats.dumps import DumpFormat

FOLDER = "stream"
INDEX = "index.json"
FORMAT = "live2d-stream-index"
VERSION = 1


class StreamIndexError(ValueError):
    """The block index is missing, damaged or of another version."""


@dataclass(frozen=True)
class Block:
    """A contiguous range of stack positions and the files of its last visit."""

    id: int
    first: int
    last: int
    visited: int
    """Cycle number of its last visit (the update that made its dumps)."""
    data: str
    """Its dataset rows at creation (relative to the stream folder)."""
    star: str
    """Its rows as the last visit left them."""
    dumps: tuple[str, ...]
    rows: int
    """Rows refined at the last visit (the active particles then)."""
    bytes: int
    """Bytes of its dumps."""
    stale: tuple[int, ...] = ()
    """0-based classes emptied since its visit: its dumps' sums for them are not in the
    running total (never subtract them)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first": self.first,
            "last": self.last,
            "visited": self.visited,
            "data": self.data,
            "star": self.star,
            "dumps": list(self.dumps),
            "rows": self.rows,
            "bytes": self.bytes,
            "stale": list(self.stale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        return cls(
            id=int(data["id"]),
            first=int(data["first"]),
            last=int(data["last"]),
            visited=int(data["visited"]),
            data=str(data["data"]),
            star=str(data["star"]),
            dumps=tuple(str(d) for d in data["dumps"]),
            rows=int(data["rows"]),
            bytes=int(data["bytes"]),
            stale=tuple(int(c) for c in data.get("stale", [])),
        )


@dataclass(frozen=True)
class StreamIndex:
    """The committed streaming state (see the module docstring)."""

    engine: DumpFormat
    stack: str
    """The stack the blocks' positions refer to (as given at the start)."""
    box: int
    pixel_size: float
    classes: int
    """K."""
    base_cycle: int
    """The cycle the stream was started from."""
    cycle: int
    """The last committed update's cycle number (the base cycle before the first update)."""
    cursor: StarCursor
    """Where the dataset star's rows not yet in a block begin."""
    next_block: int
    blocks: tuple[Block, ...]
    total: str
    stats: str
    averages: str
    """Class averages of :attr:`cycle` (the next update's references)."""
    context: str
    pool: str
    key: dict[str, float]
    """The settings every dump must share (limits, mask, sampling); a change needs a restart."""
    updates: int = 0
    full_star_cycle: int = -1
    """The last update whose full cycle star was written (−1: none)."""
    full_star_time: float = 0.0
    """``time.time()`` of that write."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def particles(self) -> int:
        """Particles in the classes (rows refined at the blocks' last visits)."""
        return sum(block.rows for block in self.blocks)

    @property
    def dump_bytes(self) -> int:
        return sum(block.bytes for block in self.blocks)

    def block(self, block_id: int) -> Block:
        for block in self.blocks:
            if block.id == block_id:
                return block
        raise KeyError(block_id)

    def files(self) -> set[str]:
        """Every file of the committed state, relative to the stream folder."""
        names = {self.total, self.stats, self.averages, self.context, self.pool}
        names.add(str(self.extra.get("full_star", "")))
        for block in self.blocks:
            names |= {block.data, block.star, *block.dumps}
        return {name for name in names if name}

    def with_changes(self, **changes: Any) -> StreamIndex:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "engine": self.engine.value,
            "stack": self.stack,
            "box": self.box,
            "pixel_size": self.pixel_size,
            "classes": self.classes,
            "base_cycle": self.base_cycle,
            "cycle": self.cycle,
            "cursor": self.cursor.to_dict(),
            "next_block": self.next_block,
            "blocks": [block.to_dict() for block in self.blocks],
            "total": self.total,
            "stats": self.stats,
            "averages": self.averages,
            "context": self.context,
            "pool": self.pool,
            "key": self.key,
            "updates": self.updates,
            "full_star_cycle": self.full_star_cycle,
            "full_star_time": self.full_star_time,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamIndex:
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise StreamIndexError(f"not a version-{VERSION} streaming index")
        return cls(
            engine=DumpFormat(str(data["engine"])),
            stack=str(data["stack"]),
            box=int(data["box"]),
            pixel_size=float(data["pixel_size"]),
            classes=int(data["classes"]),
            base_cycle=int(data["base_cycle"]),
            cycle=int(data["cycle"]),
            cursor=StarCursor.from_dict(data["cursor"]),
            next_block=int(data["next_block"]),
            blocks=tuple(Block.from_dict(b) for b in data["blocks"]),
            total=str(data["total"]),
            stats=str(data["stats"]),
            averages=str(data["averages"]),
            context=str(data["context"]),
            pool=str(data["pool"]),
            key={str(k): float(v) for k, v in data["key"].items()},
            updates=int(data.get("updates", 0)),
            full_star_cycle=int(data.get("full_star_cycle", -1)),
            full_star_time=float(data.get("full_star_time", 0.0)),
            extra=dict(data.get("extra", {})),
        )


def stream_folder(output_folder: Path) -> Path:
    return Path(output_folder) / FOLDER


def load_index(folder: Path) -> StreamIndex | None:
    """The committed index of a stream folder; ``None`` when there is none.

    Raises:
        StreamIndexError: The index exists but cannot be read.
    """
    path = Path(folder) / INDEX
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StreamIndexError(f"cannot read {path}: {exc}") from None
    try:
        return StreamIndex.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        raise StreamIndexError(f"{path} is damaged: {exc}") from None


def save_index(folder: Path, index: StreamIndex) -> None:
    """Commit ``index`` (atomic replace of ``index.json``)."""
    atomic_write_json(Path(folder) / INDEX, index.to_dict())


def remove_orphans(folder: Path, index: StreamIndex | None) -> list[Path]:
    """Delete every file in the stream folder that the committed index does not name (the
    files of an update that never committed, or of a state it replaced); returns them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    keep = index.files() if index is not None else set()
    keep.add(INDEX)
    removed: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(folder).as_posix()
        if name in keep:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
