"""Which blocks an update makes, revisits and fuses: pure functions of the index and settings.

- **New blocks** take the stack positions after the index's cursor, up to the stack size the
  update was given: the particles that arrived since the last update. There are
  round(new / ``stream_batch``) blocks (at least one), cut so each holds about the same number
  of active particles; inactive positions inside the range belong to the block too (a particle
  that becomes active again is refined when its block is next visited).
- **Revisits**: the ``stream_revisit`` earlier blocks visited least recently (ties: lowest
  positions first), so every block is refined again against the latest classes every
  ⌈B / R⌉ updates, round robin; ``all_blocks`` revisits every block (the bootstrap of a stream,
  and an update that equals a full refinement cycle).
- **Fusions** keep the disk bounded: after an update, while the blocks' dumps (one per block)
  exceed ``stream_dump_gb``, the neighbouring pair with the fewest particles becomes one block
  (its dumps summed into one), so the number of blocks is bounded by the budget divided by one
  dump's size; the fused block has the older visit, so it is revisited soon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from live2d_tui.classify.streaming.index import Block, StreamIndex

GB = 1e9


@dataclass(frozen=True)
class NewBlock:
    """A range of new stack positions (inclusive) and its active particles."""

    first: int
    last: int
    active: int


@dataclass(frozen=True)
class UpdatePlan:
    """One update: its new blocks and the blocks it revisits."""

    number: int
    new: tuple[NewBlock, ...]
    revisit: tuple[int, ...]
    """Block ids, in visiting order."""
    waiting: int
    """Active particles not yet in a block when the update was planned."""

    @property
    def new_particles(self) -> int:
        return sum(block.active for block in self.new)


def new_blocks(
    positions: npt.NDArray[np.int64], start: int, end: int, batch: int
) -> tuple[NewBlock, ...]:
    """Blocks covering positions ``start``..``end`` whose sorted active ``positions`` (all
    within the range) are split evenly into round(len / batch) parts (at least one)."""
    if end < start:
        return ()
    count = len(positions)
    parts = max(1, round(count / batch)) if count else 1
    cuts = [round(count * i / parts) for i in range(parts + 1)]
    blocks: list[NewBlock] = []
    first = start
    for i in range(parts):
        # a block ends just before the first active particle of the next one
        last = end if i == parts - 1 else int(positions[cuts[i + 1]]) - 1
        blocks.append(NewBlock(first, last, cuts[i + 1] - cuts[i]))
        first = last + 1
    return tuple(blocks)


def revisits(index: StreamIndex, count: int, *, all_blocks: bool = False) -> tuple[int, ...]:
    """Every block that holds particles but no dumps yet (a stream's first update), then the
    ``count`` blocks visited least recently (every block with ``all_blocks``)."""
    pending = [b for b in index.blocks if not b.dumps and b.rows > 0]
    order = sorted(
        (b for b in index.blocks if b not in pending), key=lambda b: (b.visited, b.first)
    )
    chosen = pending + (order if all_blocks else order[: max(0, count)])
    return tuple(block.id for block in chosen)


def fusions(
    blocks: tuple[Block, ...], extra_bytes: int, budget_gb: float
) -> tuple[tuple[int, int], ...]:
    """Neighbouring pairs to fuse until the dumps fit ``budget_gb`` (see the module docstring).

    A fused pair's dumps become one dump of one block's size, so each fusion frees about one
    block's bytes."""
    ordered = sorted(blocks, key=lambda b: b.first)
    sizes = [b.bytes for b in ordered]
    rows = [b.rows for b in ordered]
    ids = [[b.id] for b in ordered]
    total = sum(sizes) + extra_bytes
    pairs: list[tuple[int, int]] = []
    while total > budget_gb * GB and len(ordered) >= 2 and len(ids) >= 2:
        i = min(range(len(ids) - 1), key=lambda j: rows[j] + rows[j + 1])
        pairs.append((ids[i][0], ids[i + 1][0]))
        freed = min(sizes[i], sizes[i + 1])
        total -= freed
        sizes[i] = max(sizes[i], sizes[i + 1])
        rows[i] += rows[i + 1]
        ids[i] = ids[i] + ids[i + 1]
        del sizes[i + 1], rows[i + 1], ids[i + 1]
    return tuple(pairs)


def plan_update(
    index: StreamIndex,
    active_positions: npt.ArrayLike,
    available: int,
    *,
    number: int,
    batch: int,
    revisit: int,
    force: bool = False,
    all_blocks: bool = False,
) -> UpdatePlan | None:
    """The next update, or ``None`` when fewer than ``batch`` new active particles wait (unless
    ``force`` or ``all_blocks`` is set, or blocks wait for their first sums).

    Args:
        index: The committed state.
        active_positions: 1-based positions of the active particles.
        available: The last stack position whose dataset row can be read (≤ the stack size).
        number: The update's cycle number.
    """
    active = np.unique(np.asarray(active_positions, dtype=np.int64))
    start = index.cursor.position + 1
    waiting = active[(active >= start) & (active <= available)]
    pending = any(not b.dumps and b.rows > 0 for b in index.blocks)
    if len(waiting) < batch and not (force or all_blocks or pending):
        return None
    # every new position goes into a block, active or not (one may become active later)
    fresh = new_blocks(waiting, start, available, batch) if available >= start else ()
    visited = revisits(index, revisit, all_blocks=all_blocks)
    return UpdatePlan(number, fresh, visited, len(waiting))
