"""Class selection: the toggle, the file beside the cycle, and carrying marks by class number
with a check of each class's membership against the cycle the user selected on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from live2d_tui.formats.cistem_star import empty_rows, write_star
from live2d_tui.results import selection as sel
from live2d_tui.results.selection import CycleLink, Selection


def write_cycle(folder: Path, number: int, classes: list[int]) -> None:
    """``cycle_<number>.star`` whose row i (position i + 1) is in class ``classes[i]``."""
    rows = empty_rows(len(classes))
    rows["position"] = np.arange(1, len(classes) + 1)
    rows["best_class"] = classes
    write_star(folder / f"cycle_{number}.star", rows)


def links(*numbers: int, seed: tuple[int, ...] = (), generation: int = 0) -> list[CycleLink]:
    return [CycleLink(n, generation, n in seed, 3) for n in numbers]


def test_toggle_cycles_through_good_bad_and_unmarked() -> None:
    s = Selection(cycle=5)
    s = s.toggled(2)
    assert s.good == [2] and s.revision == 1 and s.marks[2].reviewed_cycle == 5
    s = s.toggled(2)
    assert s.bad == [2] and s.good == []
    s = s.toggled(2)
    assert s.marks == {} and s.revision == 3


def test_selection_file_round_trip_and_damage(tmp_path: Path) -> None:
    s = Selection(cycle=3).with_marks({1: "good", 4: "bad"})
    path = sel.write_selection(tmp_path, s)
    assert path.name == "cycle_3.selection.json"
    assert json.loads(path.read_text())["classes"]["1"] == {"mark": "good", "reviewed_cycle": 3}
    assert sel.read_selection(tmp_path, 3) == s
    assert sel.read_selection(tmp_path, 4) is None
    path.write_text('{"version": 1, "cycle": 3, "classes": {"1": {"mark": "maybe"}}}')
    with pytest.raises(sel.SelectionError, match=r"cycle_3\.selection\.json"):
        sel.read_selection(tmp_path, 3)
    assert not list(tmp_path.glob(".*.tmp"))


def test_class_numbers_carry_only_through_plain_cycles() -> None:
    assert sel.carries(links(1, 2, 3), 1, 3)
    assert not sel.carries(links(1, 2, 3, seed=(2,)), 1, 3)
    assert sel.carries(links(1, 2, 3, seed=(1,)), 1, 3)  # the seed's own classes carry on
    assert not sel.carries([*links(1, 2), CycleLink(3, 1, False, 3)], 1, 3)  # new generation
    assert not sel.carries([*links(1, 2), CycleLink(3, 0, False, 4)], 1, 3)  # other K
    assert not sel.carries(links(1, 3), 1, 2) and not sel.carries(links(1, 2), 2, 1)


def test_marks_carry_and_a_refilled_class_becomes_unreviewed(tmp_path: Path) -> None:
    # cycle 1: class 1 = particles 1-40, class 2 = 41-80, class 3 = 81-100
    write_cycle(tmp_path, 1, [1] * 40 + [2] * 40 + [3] * 20)
    # cycle 2: class 1 keeps 36 of its 40; class 2 is refilled from class 3's particles and new
    # ones (an emptied slot reseeded); 100 new particles join class 1 (they do not count)
    write_cycle(tmp_path, 2, [1] * 36 + [3] * 4 + [3] * 40 + [2] * 20 + [1] * 50 + [2] * 50)
    user = Selection(cycle=1).with_marks({1: "good", 2: "good", 3: "bad"})
    sel.write_selection(tmp_path, user)
    carried, new = sel.selection_for(tmp_path, 2, links(1, 2))
    assert new and carried.carried_from == 1 and carried.source_revision == 1
    assert carried.good == [1] and carried.unreviewed == [2, 3]
    assert carried.marks[1].overlap == pytest.approx(36 / 40)
    assert carried.marks[2].previous == "good" and carried.marks[2].mark is None
    assert carried.marks[3].previous == "bad"
    # persisted beside cycle 2, it is read back as it is until cycle 1's marks change
    sel.write_selection(tmp_path, carried)
    assert sel.selection_for(tmp_path, 2, links(1, 2)) == (carried, False)
    sel.write_selection(tmp_path, user.with_marks({1: "bad"}))
    again, new = sel.selection_for(tmp_path, 2, links(1, 2))
    assert new and again.bad == [1] and again.source_revision == 2
    # the user's own change on cycle 2 wins from now on
    mine = again.toggled(2)
    sel.write_selection(tmp_path, mine)
    assert sel.selection_for(tmp_path, 2, links(1, 2)) == (mine, False)
    # and carries on to cycle 3 (same members: all kept), but not across a seed cycle
    write_cycle(tmp_path, 3, [1] * 36 + [3] * 44 + [2] * 20 + [1] * 50 + [2] * 50)
    third, _ = sel.selection_for(tmp_path, 3, links(1, 2, 3))
    assert third.carried_from == 2 and third.good == [2] and third.bad == [1]
    assert sel.selection_for(tmp_path, 3, links(1, 2, 3, seed=(3,)))[0] == Selection(cycle=3)


def test_rules() -> None:
    classes = [(1, 500, 7.5), (2, 40, 6.0), (3, 800, None), (4, 900, 12.0)]
    assert sel.rule_marks(classes, min_members=100) == {1: "good", 2: "bad", 3: "good", 4: "good"}
    assert sel.rule_marks(classes, better_than=10.0) == {1: "good", 2: "good", 3: "bad", 4: "bad"}
    both = sel.rule_marks(classes, min_members=100, better_than=10.0)
    assert both == {1: "good", 2: "bad", 3: "bad", 4: "bad"}
    with pytest.raises(ValueError, match="at least one rule"):
        sel.rule_marks(classes)


def test_changes_and_the_carry_are_written_under_one_lock(tmp_path: Path) -> None:
    import threading

    from live2d_tui.results.selection import (
        change_selection,
        read_selection,
        save_carried,
        selection_lock,
    )

    done = threading.Event()

    def user_change() -> None:
        change_selection(tmp_path, 5, [], lambda s: s.toggled(2))
        done.set()

    with selection_lock(tmp_path):
        worker = threading.Thread(target=user_change)
        worker.start()
        # the change waits for the lock: nothing is written while another writer holds it
        assert not done.wait(0.5)
        assert read_selection(tmp_path, 5) is None
    worker.join(10)
    saved = read_selection(tmp_path, 5)
    assert done.is_set() and saved is not None and saved.good == [2] and saved.revision == 1
    # the background carry afterwards keeps the user's change (it reads inside the lock)
    assert save_carried(tmp_path, 5, []) == saved
    assert read_selection(tmp_path, 5) == saved
