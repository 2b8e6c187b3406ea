"""Good and bad classes per cycle, kept beside the cycle, and how they carry to the next one.

A user marks a class *good* (selected: its particles are what ``live2d export --selected``
exports) or *bad* (rejected), or leaves it unmarked. The marks of cycle N live in
``cycle_<N>.selection.json`` in the output folder, written atomically::

    {"version": 1, "cycle": 14, "carried_from": 13, "source_revision": 2, "revision": 0,
     "classes": {"3": {"mark": "good", "reviewed_cycle": 12, "overlap": 0.81},
                 "7": {"mark": null, "previous": "bad", "reviewed_cycle": 12,
                       "overlap": 0.12, "unreviewed": true}}}

``revision`` counts the user's changes on this cycle (0: carried, never edited here);
``carried_from`` and ``source_revision`` name the cycle the user last edited and that edit's
revision, whose marks these are: a carried file that no longer matches them (the user changed
that cycle's marks since) is carried again when read.

**Carrying over.** A cycle that is not a random seed refines the classes of the cycle before it,
slot by slot, so class k of cycle N+1 descends from class k of cycle N (seeded, refinement and
streaming jobs alike), and marks carry by class number. A slot can be refilled with other
particles, though (an emptied class reseeded from half of a large one), so each carried mark is
checked against the cycle the user set it on (``reviewed_cycle``): the Jaccard overlap of the
class's members there and here, counted over the particles both cycles hold (new particles do
not count against a class). Below :data:`CHANGED_OVERLAP` the class is marked **unreviewed**:
its mark is dropped (kept as ``previous``) and the user is asked to look again. Marks never carry
across a random-seed cycle, a new dataset generation or a change of the number of classes.

**Writers.** The user's changes (the UI) and the carried marks (the background estimate after a
cycle) are written under one lock (:func:`selection_lock`, ``flock`` on ``.selection.lock`` in
the output folder), each reading the marks it changes inside it: a carried file written from an
older read never replaces a change the user made meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from live2d_tui.atomic import atomic_write_json
from live2d_tui.formats.cistem_star import read_star

SCHEMA = 1

CHANGED_OVERLAP = 0.5
"""Jaccard overlap with the reviewed cycle's members below which a carried mark becomes
"unreviewed" (measured between consecutive cycles in ``benchmarks/bench_quality.py``)."""

MarkState = Literal["good", "bad"]
GOOD: MarkState = "good"
BAD: MarkState = "bad"


def selection_path(output_folder: Path, cycle: int) -> Path:
    """``<output folder>/cycle_<N>.selection.json``."""
    return Path(output_folder) / f"cycle_{cycle}.selection.json"


@dataclass(frozen=True, slots=True)
class Mark:
    """One class's mark."""

    mark: MarkState | None
    """``good``, ``bad``, or ``None`` (an unreviewed class that lost its carried mark)."""
    reviewed_cycle: int
    """The cycle on which the user set it."""
    overlap: float | None = None
    """Jaccard overlap of the class's members with the reviewed cycle's (when carried)."""
    unreviewed: bool = False
    """The class changed a lot since the user looked at it: its mark was not carried."""
    previous: MarkState | None = None
    """The mark an unreviewed class had."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (only the keys that say something)."""
        data: dict[str, Any] = {"mark": self.mark, "reviewed_cycle": self.reviewed_cycle}
        if self.overlap is not None:
            data["overlap"] = round(self.overlap, 4)
        if self.unreviewed:
            data["unreviewed"] = True
            data["previous"] = self.previous
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mark:
        """Read :meth:`to_dict`'s values."""
        mark, previous = data.get("mark"), data.get("previous")
        if mark not in (GOOD, BAD, None) or previous not in (GOOD, BAD, None):
            raise ValueError(f"unknown mark {mark!r}")
        overlap = data.get("overlap")
        return cls(
            mark=mark,
            reviewed_cycle=int(data["reviewed_cycle"]),
            overlap=None if overlap is None else float(overlap),
            unreviewed=bool(data.get("unreviewed", False)),
            previous=previous,
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """The marks of one cycle's classes."""

    cycle: int
    marks: dict[int, Mark] = field(default_factory=dict)
    revision: int = 0
    """The user's changes to this cycle's marks (0: carried or empty, never edited here)."""
    carried_from: int | None = None
    source_revision: int = 0

    @property
    def good(self) -> list[int]:
        """Selected classes, in order."""
        return sorted(k for k, m in self.marks.items() if m.mark == GOOD)

    @property
    def bad(self) -> list[int]:
        """Rejected classes, in order."""
        return sorted(k for k, m in self.marks.items() if m.mark == BAD)

    @property
    def unreviewed(self) -> list[int]:
        """Classes whose carried mark was dropped because they changed a lot."""
        return sorted(k for k, m in self.marks.items() if m.unreviewed)

    def state(self, class_number: int) -> MarkState | None:
        """The class's mark (``None``: unmarked or unreviewed)."""
        found = self.marks.get(class_number)
        return None if found is None else found.mark

    def with_marks(self, changes: dict[int, MarkState | None]) -> Selection:
        """A user's change on this cycle: each class gets its new mark (``None`` clears it),
        reviewed here; the revision goes up."""
        marks = dict(self.marks)
        for k, state in changes.items():
            if state is None:
                marks.pop(k, None)
            else:
                marks[k] = Mark(state, self.cycle)
        return replace(self, marks=marks, revision=self.revision + 1)

    def toggled(self, class_number: int) -> Selection:
        """The one-key toggle: unmarked (or unreviewed) → good → bad → unmarked."""
        after: dict[MarkState | None, MarkState | None] = {None: GOOD, GOOD: BAD, BAD: None}
        return self.with_marks({class_number: after[self.state(class_number)]})

    def to_dict(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "version": SCHEMA,
            "cycle": self.cycle,
            "revision": self.revision,
            "carried_from": self.carried_from,
            "source_revision": self.source_revision,
            "classes": {str(k): self.marks[k].to_dict() for k in sorted(self.marks)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        """Read a selection file's content.

        Raises:
            ValueError: another layout version, or a bad value.
        """
        if int(data.get("version", 0)) != SCHEMA:
            raise ValueError(f"selection version {data.get('version')} (expected {SCHEMA})")
        try:
            carried = data.get("carried_from")
            return cls(
                cycle=int(data["cycle"]),
                marks={int(k): Mark.from_dict(v) for k, v in dict(data["classes"]).items()},
                revision=int(data.get("revision", 0)),
                carried_from=None if carried is None else int(carried),
                source_revision=int(data.get("source_revision", 0)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"selection: missing or bad value ({exc})") from None


class SelectionError(ValueError):
    """A selection file cannot be read; the message names it."""


def read_selection(output_folder: Path, cycle: int) -> Selection | None:
    """The cycle's own selection file, or ``None`` when it has none.

    Raises:
        SelectionError: the file exists but cannot be read.
    """
    path = selection_path(output_folder, cycle)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SelectionError(f"{path}: {exc}") from None
    try:
        return Selection.from_dict(json.loads(text))
    except ValueError as exc:
        raise SelectionError(f"{path}: {exc}") from None


def write_selection(output_folder: Path, selection: Selection) -> Path:
    """Write ``cycle_<N>.selection.json`` atomically; returns its path (callers that read the
    marks they change hold :func:`selection_lock`)."""
    path = selection_path(output_folder, selection.cycle)
    atomic_write_json(path, selection.to_dict())
    return path


LOCK_NAME = ".selection.lock"


@contextlib.contextmanager
def selection_lock(output_folder: Path) -> Iterator[None]:
    """Hold the output folder's selection lock (an exclusive ``flock``; blocks until free)."""
    fd = os.open(Path(output_folder) / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class CycleLink:
    """What decides whether class numbers carry from one cycle to the next."""

    number: int
    generation: int
    seed: bool
    """A random-seed cycle: its classes start afresh."""
    classes: int


def carries(links: Sequence[CycleLink], source: int, target: int) -> bool:
    """Class k of cycle ``target`` descends from class k of cycle ``source``: every cycle
    after ``source`` up to ``target`` is a completed, non-seed cycle of the same generation and
    number of classes (``links`` are the session's completed cycles)."""
    by_number = {c.number: c for c in links}
    first = by_number.get(source)
    if first is None or target not in by_number or target <= source:
        return False
    after = [c for c in links if source < c.number <= target]
    return all(
        not c.seed and c.generation == first.generation and c.classes == first.classes
        for c in after
    )


def membership(star: Path) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(positions, |class|) of a cycle star's rows, sorted by position."""
    rows = read_star(star)
    order = np.argsort(rows["position"], kind="stable")
    positions = rows["position"][order].astype(np.int64)
    return positions, np.abs(rows["best_class"][order]).astype(np.int64)


Members = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


def class_overlap(before: Members, after: Members, class_number: int) -> float:
    """Jaccard overlap of class k's members in two cycles, over the particles both hold
    (1.0 when the class is empty in both)."""
    common, i, j = np.intersect1d(before[0], after[0], assume_unique=True, return_indices=True)
    a = before[1][i] == class_number
    b = after[1][j] == class_number
    union = int((a | b).sum())
    if common.size == 0 or union == 0:
        return 1.0
    return float((a & b).sum()) / union


def carry(
    source: Selection,
    target_cycle: int,
    members_of: Callable[[int], Members],
    *,
    threshold: float = CHANGED_OVERLAP,
) -> Selection:
    """Cycle ``target_cycle``'s marks carried from ``source`` (see the module docstring).

    Args:
        source: The marks of an earlier cycle whose class numbers carry to this one.
        target_cycle: The cycle to carry to.
        members_of: Cycle number → :func:`membership` of its star (called once per cycle).
        threshold: The overlap below which a class becomes unreviewed.
    """
    cache: dict[int, Members] = {}

    def get(cycle: int) -> Members:
        if cycle not in cache:
            cache[cycle] = members_of(cycle)
        return cache[cycle]

    marks: dict[int, Mark] = {}
    for k, mark in source.marks.items():
        try:
            overlap = class_overlap(get(mark.reviewed_cycle), get(target_cycle), k)
        except (OSError, ValueError):
            overlap = 0.0  # the reviewed cycle's star is gone: the class must be looked at
        if mark.unreviewed or overlap < threshold:
            previous = mark.previous if mark.unreviewed else mark.mark
            marks[k] = Mark(None, mark.reviewed_cycle, overlap, True, previous)
        else:
            marks[k] = Mark(mark.mark, mark.reviewed_cycle, overlap)
    return Selection(
        cycle=target_cycle,
        marks=marks,
        revision=0,
        carried_from=source.cycle,
        source_revision=source.revision,
    )


def selection_for(
    output_folder: Path,
    cycle: int,
    links: Sequence[CycleLink],
    *,
    members_of: Callable[[int], Members] | None = None,
) -> tuple[Selection, bool]:
    """The marks of ``cycle``, and whether they are new (not what its file holds), so a caller
    that may write can save them.

    The cycle's own file when the user edited it here. Otherwise the marks carried from the
    newest earlier cycle the user edited whose class numbers carry here (each mark checked
    against the cycle it was set on), taken from this cycle's file when that was carried from
    the same revision of the same cycle. Otherwise no marks.

    Raises:
        SelectionError: a selection file cannot be read.
    """
    folder = Path(output_folder)
    own = read_selection(folder, cycle)
    if own is not None and own.revision > 0:
        return own, False
    root: Selection | None = None
    for earlier in sorted((c.number for c in links if c.number < cycle), reverse=True):
        if not carries(links, earlier, cycle):
            break
        found = read_selection(folder, earlier)
        if found is not None and found.revision > 0:
            root = found
            break
    if root is None:
        return (own if own is not None else Selection(cycle=cycle)), False
    if own is not None and (own.carried_from, own.source_revision) == (root.cycle, root.revision):
        return own, False
    reader = members_of or (lambda n: membership(folder / f"cycle_{n}.star"))
    return carry(root, cycle, reader), True


RuleResult = dict[int, MarkState]


def rule_marks(
    classes: Sequence[tuple[int, int, float | None]],
    *,
    min_members: int | None = None,
    better_than: float | None = None,
) -> RuleResult:
    """Marks from rules: a class meeting every rule given is good, any other bad.

    Args:
        classes: (class number, members, half-set figure in Å or ``None``) per class.
        min_members: At least this many members.
        better_than: A figure finer (smaller) than this many Å; a class without one fails.

    Raises:
        ValueError: no rule given.
    """
    if min_members is None and better_than is None:
        raise ValueError("give at least one rule (minimum members, resolution)")
    out: RuleResult = {}
    for k, members, figure in classes:
        ok = (min_members is None or members >= min_members) and (
            better_than is None or (figure is not None and figure < better_than)
        )
        out[k] = GOOD if ok else BAD
    return out


def change_selection(
    output_folder: Path,
    cycle: int,
    links: Sequence[CycleLink],
    change: Callable[[Selection], Selection],
) -> Selection:
    """Apply a user's ``change`` to the cycle's current marks (carried ones included) and write
    the result, under the selection lock; returns it.

    Raises:
        SelectionError: a selection file cannot be read.
        OSError: the file cannot be written.
    """
    with selection_lock(output_folder):
        current, _ = selection_for(output_folder, cycle, links)
        changed = change(current)
        write_selection(output_folder, changed)
        return changed


def save_carried(output_folder: Path, cycle: int, links: Sequence[CycleLink]) -> Selection:
    """Write the cycle's carried marks when its file does not hold them yet (after a cycle),
    under the selection lock; returns the cycle's marks.

    Raises:
        SelectionError: a selection file cannot be read.
        OSError: the file cannot be written.
    """
    with selection_lock(output_folder):
        selection, new = selection_for(output_folder, cycle, links)
        if new:
            write_selection(output_folder, selection)
        return selection
