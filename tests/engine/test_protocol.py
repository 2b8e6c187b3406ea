"""refine2d/merge2d accept the runner's answer lists and reject wrong ones like cisTEM."""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from live2d_tui.engine.answers import ProgramExit, read_answers
from live2d_tui.engine.progress import ProgressBar
from live2d_tui.formats.cistem_star import COLUMNS, read_star, write_star
from live2d_tui.formats.prompts import (
    MERGE2D_PROMPTS,
    MERGE2D_TERMINATION,
    REFINE2D_PROMPTS,
    REFINE2D_TERMINATION,
)
from live2d_tui.formats.protocol import Merge2dRequest, check_echo
from live2d_tui.fourier import rotate_image
from live2d_tui.imaging import fourier_shift

from .helpers import merge_lines, ok, refine_lines, refine_ok, request, run_program
from .synth import SynthSet, make_set, make_views, true_star_shifts


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SynthSet:
    return make_set(tmp_path_factory.mktemp("small"), n_particles=60, box=32, n_views=2, seed=3)


def test_random_start_writes_k_classes_and_no_star(small: SynthSet, tmp_path: Path) -> None:
    out = tmp_path / "seed.mrc"
    star = tmp_path / "never.star"
    lines = refine_lines(
        request(
            small.stack,
            small.star,
            class_number=5,
            output_classes=str(out),
            output_star=str(star),
            high_res=40.0,
            angular_step=0.0,
            search_range=0.0,
            dump=True,
            dump_file=str(tmp_path / "never.dat"),
        )
    )
    result = run_program("refine2d", lines)
    ok(result, REFINE2D_TERMINATION)
    assert "Generating 5 starting class averages..." in result.stdout
    assert check_echo(result.stdout, REFINE2D_PROMPTS, lines) == []
    assert "Mode : Scripted" in result.stdout
    with mrcfile.open(out) as mrc:
        assert mrc.data.shape == (5, 32, 32)
        assert mrc.data.dtype == np.float32
        assert mrc.voxel_size.x == pytest.approx(3.0)
    assert not star.exists() and not (tmp_path / "never.dat").exists()


def test_refinement_outputs_star_rows_in_range_and_classes(small: SynthSet, tmp_path: Path) -> None:
    seed = tmp_path / "seed.mrc"
    refine_ok(small.stack, small.star, class_number=3, output_classes=str(seed), high_res=40.0)
    out_star, out_mrc = tmp_path / "c1.star", tmp_path / "c1.mrc"
    lines = refine_lines(
        request(
            small.stack,
            small.star,
            classes=str(seed),
            output_star=str(out_star),
            output_classes=str(out_mrc),
            first_particle=11,
            last_particle=50,
            fraction=0.5,
        )
    )
    result = run_program("refine2d", lines)
    ok(result, REFINE2D_TERMINATION)
    for stage in (
        "Calculating noise power spectrum...",
        "Calculating new class averages...",
        "Total logP = ",
    ):
        assert stage in result.stdout
    assert len(re.findall(r"^Class = +\d+, average occupancy = +[\d.]+$", result.stdout, re.M)) == 3
    rows = read_star(out_star)
    assert list(rows["position"]) == list(range(11, 51))
    used = rows["best_class"] > 0
    assert 0 < used.sum() < 40  # fraction 0.5: some used, the others keep −|previous| = 0
    assert set(np.abs(rows["best_class"][~used])) <= {0}
    assert np.all(rows["best_class"] <= 3)
    text = out_star.read_text()
    assert sum(1 for line in text.splitlines() if line.startswith("_cisTEM")) == len(COLUMNS)
    with mrcfile.open(out_mrc) as mrc:
        assert mrc.data.shape == (3, 32, 32) and mrc.voxel_size.x == pytest.approx(3.0)


def test_dump_mode_writes_dump_not_classes_and_merge_reads_it(
    small: SynthSet, tmp_path: Path
) -> None:
    seed = tmp_path / "seed.mrc"
    refine_ok(small.stack, small.star, class_number=2, output_classes=str(seed), high_res=40.0)
    classes = tmp_path / "never.mrc"
    for job, (first, last) in enumerate(((1, 30), (31, 60)), start=1):
        result = run_program(
            "refine2d",
            refine_lines(
                request(
                    small.stack,
                    small.star,
                    classes=str(seed),
                    output_classes=str(classes),
                    first_particle=first,
                    last_particle=last,
                    dump=True,
                    dump_file=str(tmp_path / f"dump_{job}.dat"),
                )
            ),
        )
        ok(result, REFINE2D_TERMINATION)
        assert "Dumping intermediate files..." in result.stdout
    assert not classes.exists()
    merged = tmp_path / "merged.mrc"
    lines = merge_lines(
        Merge2dRequest(
            output_classes=str(merged), dump_seed=str(tmp_path / "dump_.dat"), dump_count=2
        )
    )
    result = run_program("merge2d", lines)
    ok(result, MERGE2D_TERMINATION)
    assert check_echo(result.stdout, MERGE2D_PROMPTS, lines) == []
    assert "Reading intermediate arrays..." in result.stdout
    with mrcfile.open(merged) as mrc:
        assert mrc.data.shape == (2, 32, 32)
    # a missing dump is refused like cisTEM
    lines[2] = "3"
    result = run_program("merge2d", lines)
    assert result.returncode == 255 and "not found" in result.stdout
    assert MERGE2D_TERMINATION not in result.stdout


def test_merge_refuses_incompatible_dumps(small: SynthSet, tmp_path: Path) -> None:
    seed = tmp_path / "seed.mrc"
    refine_ok(small.stack, small.star, class_number=2, output_classes=str(seed), high_res=40.0)
    for job, high in ((1, 20.0), (2, 12.0)):  # different binned boxes
        refine_ok(
            small.stack,
            small.star,
            classes=str(seed),
            high_res=high,
            dump=True,
            dump_file=str(tmp_path / f"d_{job}.dat"),
        )
    result = run_program("merge2d", [str(tmp_path / "m.mrc"), str(tmp_path / "d_.dat"), "2"])
    assert result.returncode == 255
    assert "Dump file incompatible with 2D class averages" in result.stdout
    assert not (tmp_path / "m.mrc").exists()


def _answers(small: SynthSet) -> list[str]:
    return refine_lines(request(small.stack, small.star, class_number=2))


@pytest.mark.parametrize(
    ("index", "answer", "code", "message"),
    [
        (5, "", 255, "Error: Blank answer in scripted mode, exiting..."),
        (5, "*", 0, None),
        (5, "two", 255, "Error: Running as script, and answer is not recognized..."),
        (5, "+1", 255, "Error: Running as script, and answer is not recognized..."),
        (8, "1.5", 255, "Error: Running as script, and answer is not recognized..."),
        (17, "maybe", 255, "Error: Running as script, and answer is not recognized..."),
        (
            0,
            "/no/such/stack.mrcs",
            255,
            "Error: File does not exist, please provide an existing file!",
        ),
    ],
)
def test_wrong_answers_rejected_like_cistem(
    small: SynthSet, index: int, answer: str, code: int, message: str | None
) -> None:
    lines = _answers(small)
    lines[index] = answer
    result = run_program("refine2d", lines)
    assert result.returncode == code
    assert REFINE2D_TERMINATION not in result.stdout
    if message:
        assert message in result.stdout


def test_missing_threads_line_is_fatal(small: SynthSet) -> None:
    result = run_program("refine2d", _answers(small)[:24])
    assert result.returncode == 255
    assert "Blank answer in scripted mode" in result.stdout


def test_missing_references_fail_nonzero(small: SynthSet, tmp_path: Path) -> None:
    lines = refine_lines(request(small.stack, small.star, classes=str(tmp_path / "none.mrc")))
    result = run_program("refine2d", lines)
    assert result.returncode == 255
    assert "Input class averages" in result.stdout and "not found" in result.stdout
    assert REFINE2D_TERMINATION not in result.stdout


def test_parsing_rules_in_process() -> None:
    prompts = REFINE2D_PROMPTS[5:9]  # class number, first, last, fraction
    out = io.StringIO()
    values = read_answers(prompts, io.StringIO("3xyz\n-0\n12\n.5\n"), out, scripted=True)
    assert values == {"class_number": 3, "first_particle": 0, "last_particle": 12, "fraction": 0.5}
    first = out.getvalue().splitlines()[0]
    assert first == f"{prompts[0].text:<50} : 3xyz"
    with pytest.raises(ProgramExit) as stop:
        read_answers(prompts, io.StringIO("-3\n"), io.StringIO(), scripted=True)
    assert stop.value.code == 255


def test_progress_bar_format() -> None:
    out = io.StringIO()
    bar = ProgressBar(10, out)
    bar.update(5, force=True)
    bar.finish()
    parts = re.split(r"[\r\n]", out.getvalue())
    assert parts[0] == "     0% [" + " " * 30 + "] ???h:??m:??s   "
    assert re.match(r"^    50% \[={15} {15}\] \dh:\d\dm:\d\ds", parts[1])
    assert re.match(r"^   100% \[={30}\] done! \(\dh:\d\dm:\d\ds\)", parts[2])
    silent = io.StringIO()
    ProgressBar(1, silent).finish()
    assert silent.getvalue() == ""


def test_blank_edge_images_are_excluded_with_negative_class(tmp_path: Path) -> None:
    data = make_set(tmp_path, n_particles=40, box=32, n_views=2, seed=6)
    with mrcfile.open(data.stack, mode="r+") as mrc:
        images = np.array(mrc.data)
        images[:5, :, :6] = 0.0  # cut off at a micrograph edge
        mrc.set_data(images)
    seed = tmp_path / "seed.mrc"
    refine_ok(
        data.stack, data.star, class_number=2, output_classes=str(seed), high_res=40.0)  # fmt: skip
    out_star = tmp_path / "out.star"
    result = run_program("refine2d", refine_lines(request(
        data.stack, data.star, classes=str(seed), output_star=str(out_star),
        exclude_blank_edges=True))),  # fmt: skip
    ok(result[0], REFINE2D_TERMINATION)
    assert "Number of excluded images with blank edges = 5" in result[0].stdout
    rows = read_star(out_star)
    assert np.all(rows["best_class"][:5] <= 0)
    assert np.all(rows["best_class"][5:] > 0)


def test_star_without_voltage_fails_nonzero(small: SynthSet, tmp_path: Path) -> None:
    from live2d_tui.formats.cistem_star import write_star

    rows = read_star(small.star)
    rows["voltage"] = 0.0
    star = tmp_path / "novolt.star"
    write_star(star, rows)
    seed = tmp_path / "seed.mrc"
    refine_ok(
        small.stack, star, class_number=2, output_classes=str(seed), high_res=40.0)  # fmt: skip
    result = run_program("refine2d", refine_lines(request(small.stack, star, classes=str(seed))))
    assert result.returncode == 255
    assert "voltage" in result.stdout and REFINE2D_TERMINATION not in result.stdout


@pytest.mark.parametrize(("module", "count"), [("refine2d", 25), ("merge2d", 3)])
def test_any_argument_prints_usage_and_reads_nothing(
    module: str, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(f"live2d_tui.engine.{module}").main
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out == f"Usage: live2d-{module} < answers ({count} lines, cisTEM {module}'s prompts)\n"


def _aligned_star(data: SynthSet, path: Path, best_class: np.ndarray) -> Path:
    """The set's star with the true in-plane poses and the given classes."""
    rows = read_star(data.star)
    rows["best_class"] = best_class
    rows["psi"] = data.psi
    rows["x_shift"], rows["y_shift"] = true_star_shifts(data)
    write_star(path, rows, [])
    return path


def _write_classes(path: Path, images: list[np.ndarray], pixel_size: float) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.stack(images).astype(np.float32))
        mrc.voxel_size = pixel_size
    return path


def test_a_stray_class_is_emptied_and_its_slot_refilled_by_a_split(tmp_path: Path) -> None:
    """A class holding under 5 % of the mean membership is emptied before the search (the same
    classes in every job: the whole star decides); its slot takes one half of the largest class,
    and the class prior counts each half's share."""
    data = make_set(tmp_path, n_particles=200, box=32, n_views=2, seed=5)
    best = np.where(data.labels == 0, 1, 2)
    best[np.flatnonzero(data.labels == 0)[:2]] = 3  # 2 members; the mean is 66.7
    star = _aligned_star(data, tmp_path / "previous.star", best)
    classes = _write_classes(tmp_path / "previous.mrc", [*data.views, data.views[0]], 3.0)
    out_star = tmp_path / "c1.star"
    result = refine_ok(
        data.stack, star, classes=str(classes), output_star=str(out_star), high_res=20.0
    )
    assert "Emptied 1 classes with fewer than 5% of the mean membership: 3" in result.stdout
    assert "nonzero classes = 2" in result.stdout
    split = re.search(r"Split class (\d) \((\d+) members\) into classes \1 and 3", result.stdout)
    assert split is not None, result.stdout
    assert int(split.group(2)) == int(np.sum(best == int(split.group(1))))
    assert set(read_star(out_star)["best_class"]) <= {1, 2, 3}


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_a_class_of_two_views_is_split_into_an_empty_slot(tmp_path: Path) -> None:
    """Both views in class 1, slot 2 empty: the split gives each slot one view's average, and
    one round of refinement then keeps the views apart."""
    from live2d_tui.engine.particles import Preprocess, noise_spectrum, open_stack
    from live2d_tui.engine.split import SplitSource, fill_empty_slots

    data = make_set(tmp_path, n_particles=240, box=32, n_views=2, seed=11)
    star_path = _aligned_star(data, tmp_path / "previous.star", np.ones(240, dtype=np.int64))
    mixed = 0.5 * (data.views[0] + data.views[1])
    # in process: the two new references are the two views
    star, stack = read_star(star_path), open_stack(str(data.stack))
    prep = Preprocess(32, 3.0, 80.0 / 3.0, invert=True, normalize=True)
    noise = noise_spectrum(stack, star["position"], star["pixel_size"], prep, 16)
    references = np.stack([mixed, np.zeros_like(mixed)]).astype(np.float32)
    counts = np.array([240.0, 0.0])
    source = SplitSource(star, stack, prep, noise**-0.5, 12.0, 80.0)
    splits = fill_empty_slots(references, counts, source)
    assert [(s.parent, s.slot, s.members) for s in splits] == [(0, 1, 240)]
    assert counts.sum() == 240 and min(counts) > 0.3 * 240
    match = np.array([[_ncc(r, v) for v in data.views] for r in references])
    assert match[0].argmax() != match[1].argmax() and match.max(axis=1).min() > 0.95
    # as a program: the same split, then the search
    classes = _write_classes(tmp_path / "previous.mrc", [mixed, np.zeros_like(mixed)], 3.0)
    out_star = tmp_path / "c1.star"
    result = refine_ok(  # slots are refilled only while the limit is coarser than 15 Å
        data.stack, star_path, classes=str(classes), output_star=str(out_star), high_res=16.0
    )
    assert "Split class 1 (240 members) into classes 1 and 2" in result.stdout
    assigned = read_star(out_star)["best_class"]
    agreement = np.mean((assigned == 1) == (data.labels == 0))
    assert max(agreement, 1.0 - agreement) >= 0.85  # either way round


def test_a_class_average_leaves_out_its_lowest_scoring_members(tmp_path: Path) -> None:
    """One class holding both views: the members that scored lowest in the input star (the
    lowest 30 %) are searched and keep their class but are left out of the average, so the
    average leans towards the view that scored higher, whichever that is."""
    from live2d_tui.engine.refine2d import CORE_MIN
    from live2d_tui.similarity import aligned_similarity

    assert CORE_MIN <= 200  # the class below is large enough for the rule
    data = make_set(tmp_path, n_particles=200, box=32, n_views=2, snr=0.5, seed=13)
    rows = read_star(_aligned_star(data, tmp_path / "previous.star", np.ones(200, np.int64)))
    reference = _write_classes(tmp_path / "previous.mrc", [data.views[0]], 3.0)
    lean = []
    for low_view in (1, 0):
        rows["score"] = np.where(data.labels == low_view, 10.0, 50.0) + np.arange(200) / 200
        star = tmp_path / f"low_{low_view}.star"
        write_star(star, rows, [])
        out_classes, out_star = tmp_path / f"c_{low_view}.mrc", tmp_path / f"c_{low_view}.star"
        refine_ok(
            data.stack,
            star,
            classes=str(reference),
            output_classes=str(out_classes),
            output_star=str(out_star),
            high_res=12.0,
        )
        assert np.all(read_star(out_star)["best_class"] == 1)  # everyone keeps the class
        average = mrcfile.read(out_classes).reshape(32, 32)  # one class: one slice
        # view 1 enters the average turned to fit view 0: compare at its best rotation
        images = np.stack([average, *data.views]).astype(np.float32)
        match = aligned_similarity(images, np.array([0]), 3.0, (100.0, 8.0))[0]
        lean.append(match[1] - match[2])
    assert lean[0] > lean[1] + 0.05  # 0.09 apart; without the rule the two are equal


def test_core_members_rule() -> None:
    from live2d_tui.engine.refine2d import CORE_DROP, CORE_MIN, core_members
    from live2d_tui.formats.cistem_star import empty_rows

    n = 2 * CORE_MIN
    star = empty_rows(n)
    star["best_class"] = [1] * CORE_MIN + [2] * (CORE_MIN - 1) + [-1]
    star["score"] = np.arange(float(n))
    core = core_members(star, star)
    cut = int(np.ceil(np.quantile(np.arange(float(CORE_MIN)), CORE_DROP)))
    assert CORE_DROP == 0.3 and cut == int(np.ceil(0.3 * (CORE_MIN - 1)))
    assert not core[:cut].any() and core[cut:CORE_MIN].all()  # the lowest 30 % of class 1
    assert core[CORE_MIN:].all()  # a class under CORE_MIN members, and an unused particle
    # a job's rows are judged by the whole star's ranking
    part = slice(1, CORE_MIN + 2)
    assert np.array_equal(core_members(star, star[part]), core[part])
    fresh = empty_rows(5)  # a random start's star: no classes yet
    assert core_members(fresh, fresh).all()


def test_small_classes_rule() -> None:
    from live2d_tui.engine.refine2d import class_floor_fraction, memberships, small_classes
    from live2d_tui.formats.cistem_star import empty_rows

    references = np.ones((4, 8, 8), dtype=np.float32)
    rows = empty_rows(100)
    assert len(small_classes(memberships(rows, 4), references, 0.05)) == 0  # nothing assigned yet
    rows["best_class"] = np.r_[[1] * 60, [-2] * 34, [-3] * 6]  # |k| counts; 4 has no members
    assert list(small_classes(memberships(rows, 4), references, 0.05)) == [
        3
    ]  # floor 0.05 · 100/3 = 1.7
    assert list(small_classes(memberships(rows, 4), references, 0.2)) == [2, 3]  # floor 6.7
    references[3] = 0.0  # already empty: not reported again
    assert list(small_classes(memberships(rows, 4), references, 0.2)) == [2]
    # stricter once the search works at 15 Å or finer, where the classes have formed
    assert class_floor_fraction(40.0) == 0.05 and class_floor_fraction(15.0) == 0.1


def test_a_split_follows_structure_not_defocus(tmp_path: Path) -> None:
    """A class of ONE view over a wide defocus range (0.8-2.5 µm): CTF-weighted members differ
    most by their defocus, but the split looks at what the parent's average does not explain,
    so its halves are not near and far focus (the first version split exactly that way)."""
    from live2d_tui.engine.particles import Preprocess, noise_spectrum, open_stack
    from live2d_tui.engine.split import SplitSource, split_members

    data = make_set(tmp_path, n_particles=240, box=32, n_views=1, snr=0.3, seed=3)
    star_path = _aligned_star(data, tmp_path / "previous.star", np.ones(240, dtype=np.int64))
    star, stack = read_star(star_path), open_stack(str(data.stack))
    prep = Preprocess(32, 3.0, 40.0 / 3.0, invert=True, normalize=True)
    noise = noise_spectrum(stack, star["position"], star["pixel_size"], prep, 16)
    source = SplitSource(star, stack, prep, noise**-0.5, 12.0, 40.0)
    split = split_members(32, 0, data.views[0].astype(np.float32), source)
    assert split is not None and len(split.side) == 240
    assert abs(np.corrcoef(split.side, split.rows["defocus_1"])[0, 1]) < 0.3


def test_a_small_copy_of_a_class_is_emptied_but_a_small_distinct_class_is_kept(
    tmp_path: Path,
) -> None:
    """At 15 Å or finer, a class under 25 % of the mean membership that looks like a larger
    class (whatever its in-plane pose) is emptied; a small class unlike any other (a rare
    view) keeps its slot."""
    data = make_set(tmp_path, n_particles=300, box=64, n_views=3, seed=19)
    best = data.labels + 1
    best[np.flatnonzero(data.labels == 0)[:10]] = 4  # 10 members of view 0 in their own class
    best[np.flatnonzero(data.labels == 2)[12:]] = 0  # view 2 is rare: 12 members assigned
    star = _aligned_star(data, tmp_path / "previous.star", best)
    turned = fourier_shift(rotate_image(data.views[0], 36.0), 2.0, -2.0)
    classes = _write_classes(tmp_path / "previous.mrc", [*data.views, turned], 3.0)
    out_star = tmp_path / "c1.star"
    result = refine_ok(
        data.stack, star, classes=str(classes), output_star=str(out_star), high_res=12.0
    )
    copy = re.search(
        r"Emptied class 4 \(10 members, under 25% of the mean membership\): a copy of class 1 "
        r"\(correlation (0\.\d+)\)",
        result.stdout,
    )
    assert copy is not None, result.stdout
    assert float(copy.group(1)) > 0.95
    assert "Emptied class 3" not in result.stdout
    assert "nonzero classes = 3" in result.stdout
    # from 15 Å on, the slot stays empty: no split makes a half-size copy of a view
    assert "Split class" not in result.stdout
    assert 4 not in set(read_star(out_star)["best_class"])
    # at 20 Å the classes are still forming: nothing is emptied as a copy
    early = refine_ok(data.stack, star, classes=str(classes), high_res=20.0)
    assert "a copy of class" not in early.stdout and "nonzero classes = 4" in early.stdout


def test_aligned_similarity_sees_through_rotation_and_shift() -> None:
    from live2d_tui.similarity import aligned_similarity

    views = make_views(3, 64, np.random.default_rng(4))
    turned = fourier_shift(rotate_image(views[0], 123.0), -2.0, 4.0)
    references = np.stack([*views, turned, np.zeros_like(turned)]).astype(np.float32)
    similarity = aligned_similarity(references, np.array([3, 1]), 3.0, (100.0, 12.0), step=3.0)
    assert similarity.shape == (2, 5)
    assert similarity[0, 0] > 0.95 and similarity[0, 3] == -1.0 and similarity[0, 4] == -1.0
    assert similarity[0, 1] < 0.9 and similarity[0, 2] < 0.9
    assert abs(similarity[1, 3] - similarity[0, 1]) < 0.05  # about symmetric


def test_a_binary_cistem_input_star_gives_what_its_text_star_gives(tmp_path: Path) -> None:
    """Answer #2 ending in .cistem is read as cisTEM's binary parameter file (as its GUI sends
    it); the same rows as text give the same output star (same seed)."""
    from live2d_tui.formats.cistem_binary import write_binary_star

    data = make_set(tmp_path, n_particles=60, box=32, n_views=2, seed=6)
    rows = read_star(_aligned_star(data, tmp_path / "text.star", data.labels + 1))
    rows["phase_shift"] = 0.0
    binary = tmp_path / "input.cistem"
    write_binary_star(binary, rows)
    classes = _write_classes(tmp_path / "previous.mrc", list(data.views), 3.0)
    outputs = []
    for name, star in (("from_text", tmp_path / "text.star"), ("from_binary", binary)):
        out_star = tmp_path / f"{name}.star"
        refine_ok(data.stack, star, classes=str(classes), output_star=str(out_star))
        outputs.append(read_star(out_star))
    for field in ("best_class", "psi", "x_shift", "y_shift"):
        np.testing.assert_allclose(outputs[0][field], outputs[1][field], atol=0.02)


def test_a_truncated_binary_input_star_fails_clearly(tmp_path: Path) -> None:
    from live2d_tui.formats.cistem_binary import write_binary_star

    data = make_set(tmp_path, n_particles=20, box=32, n_views=2, seed=6)
    binary = tmp_path / "input.cistem"
    write_binary_star(binary, read_star(data.star))
    binary.write_bytes(binary.read_bytes()[:-10])
    result = run_program("refine2d", refine_lines(request(data.stack, binary)))
    assert result.returncode != 0
    assert "input.cistem: cut short: 20 lines of 88 bytes" in result.stdout + result.stderr
