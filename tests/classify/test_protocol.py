"""Answer lists: 25/3 lines, validation of types, ranges, files and cisTEM's path pitfalls; the
strict fake accepts exactly the lists we build and rejects a wrong or missing line."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pytest

from live2d_tui.engine.answers import read_answers
from live2d_tui.formats.prompts import MERGE2D_PROMPTS, REFINE2D_PROMPTS, AnswerKind
from live2d_tui.formats.protocol import (
    DEV_NULL,
    Merge2dRequest,
    ProtocolError,
    Refine2dRequest,
    check_echo,
    format_answer,
    stdin_text,
    validate_merge2d,
    validate_refine2d,
)

from .conftest import FAKE, Dataset


def refine_request(dataset: Dataset, **changes: object) -> Refine2dRequest:
    base = Refine2dRequest(
        input_stack=str(dataset.stack),
        input_star=str(dataset.star),
        input_classes=DEV_NULL,
        output_star=DEV_NULL,
        output_classes=str(dataset.folder / "seed.mrc"),
        class_number=4,
        first_particle=1,
        last_particle=dataset.count,
        fraction=1.0,
        pixel_size=2.5,
        mask_radius=15.0,
        low_res=300.0,
        high_res=40.0,
        angular_step=0.0,
        search_range=0.0,
        smoothing=1.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def run_fake(program: str, lines: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FAKE), program],
        input=stdin_text(lines),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_random_start_list_has_25_lines_and_is_accepted(dataset: Dataset) -> None:
    lines = validate_refine2d(refine_request(dataset))
    assert len(lines) == 25
    assert lines[5] == "4" and lines[8] == "1.0" and lines[17] == "Yes" and lines[24] == "1"
    result = run_fake("refine2d", lines, dataset.folder)
    assert result.returncode == 0, result.stdout
    assert "Refine2D: Normal termination" in result.stdout
    assert (dataset.folder / "seed.mrc").is_file()
    assert check_echo(result.stdout, REFINE2D_PROMPTS, lines) == []


@pytest.mark.parametrize("drop", [0, 5, 12, 24])
def test_fake_rejects_a_missing_line(dataset: Dataset, drop: int) -> None:
    lines = validate_refine2d(refine_request(dataset))
    del lines[drop]
    result = run_fake("refine2d", lines, dataset.folder)
    assert result.returncode == 255


@pytest.mark.parametrize(
    ("index", "value"),
    [(5, "four"), (5, "+4"), (8, "1.5"), (8, "1e-1"), (17, "maybe"), (9, "abc"), (1, "nope.star")],
)
def test_fake_rejects_a_wrong_line(dataset: Dataset, index: int, value: str) -> None:
    lines = validate_refine2d(refine_request(dataset))
    lines[index] = value
    result = run_fake("refine2d", lines, dataset.folder)
    assert result.returncode == 255


def test_fake_rejects_swapped_lines(dataset: Dataset) -> None:
    lines = validate_refine2d(refine_request(dataset))
    lines[6], lines[17] = lines[17], lines[6]
    assert run_fake("refine2d", lines, dataset.folder).returncode == 255


def test_float_answers_are_positional() -> None:
    assert format_answer(1e-05, AnswerKind.FLOAT) == "0.00001"
    assert format_answer(37.714285714285715, AnswerKind.FLOAT) == "37.714285714285715"
    assert format_answer(True, AnswerKind.YES_NO) == "Yes"
    assert format_answer(False, AnswerKind.YES_NO) == "No"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class_number": -1}, "below the minimum"),
        ({"class_number": True}, "whole number"),
        ({"fraction": 1.5}, "above the maximum"),
        ({"fraction": 0.0}, "fraction"),
        ({"fraction": float("nan")}, "finite"),
        ({"pixel_size": 0.0}, "Pixel size"),
        ({"smoothing": 0.001}, "smoothing"),
        ({"padding": 0}, "padding"),
        ({"threads": 0}, "threads"),
        ({"normalize": "Yes"}, "yes/no"),
        ({"first_particle": 30, "last_particle": 10}, "before first"),
        ({"input_stack": "/nonexistent/stack.mrcs"}, "does not exist"),
        ({"output_classes": "/x/data_run/seed.mrc"}, "data_"),
        ({"output_star": "/x/loop_1/out.star", "class_number": 0}, "loop_"),
        ({"output_classes": "a\nb.mrc"}, "line break"),
        ({"input_classes": DEV_NULL, "class_number": 0}, "needs input class averages"),
    ],
)
def test_refine2d_validation(dataset: Dataset, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        validate_refine2d(refine_request(dataset, **changes))


def test_cistem_suffix_is_refused(dataset: Dataset) -> None:
    binary = dataset.folder / "input.cistem"
    binary.write_text("x")
    with pytest.raises(ProtocolError, match="binary"):
        validate_refine2d(refine_request(dataset, input_star=str(binary)))
    with pytest.raises(ProtocolError, match="read back as binary"):
        validate_refine2d(
            refine_request(
                dataset,
                class_number=0,
                input_classes="c.mrc",
                output_star="out.cistem",
                dump=True,
                dump_file="d_1.dat",
            )
        )


def test_relative_existing_files_are_checked_against_cwd(dataset: Dataset) -> None:
    request = refine_request(dataset, input_stack=dataset.stack.name, input_star=dataset.star.name)
    assert len(validate_refine2d(request, cwd=dataset.folder)) == 25
    with pytest.raises(ProtocolError, match="does not exist"):
        validate_refine2d(request, cwd=dataset.folder / "elsewhere")


def test_merge2d_list_and_dump_seed_dots(tmp_path: Path) -> None:
    lines = validate_merge2d(
        Merge2dRequest(output_classes="c.mrc", dump_seed="d/dump_.dat", dump_count=3)
    )
    assert lines == ["c.mrc", "d/dump_.dat", "3"]
    for seed in ("dump.v2_.dat", "dump_", ".dat", "d/dump_.dat."):
        with pytest.raises(ProtocolError, match="exactly one dot"):
            validate_merge2d(Merge2dRequest(output_classes="c.mrc", dump_seed=seed, dump_count=3))
    with pytest.raises(ProtocolError, match="minimum"):
        validate_merge2d(Merge2dRequest(output_classes="c.mrc", dump_seed="d_.dat", dump_count=0))


def test_fake_merge2d_requires_every_dump(tmp_path: Path) -> None:
    lines = validate_merge2d(
        Merge2dRequest(output_classes="c.mrc", dump_seed="dump_.dat", dump_count=2)
    )
    result = run_fake("merge2d", lines, tmp_path)
    assert result.returncode == 255
    assert "dump_1.dat not found" in result.stdout
    assert check_echo(result.stdout, MERGE2D_PROMPTS, lines) == []


def test_engine_parses_the_runners_lines_back_into_the_same_request(dataset: Dataset) -> None:
    request = refine_request(dataset, dump=True, dump_file="dump_1.dat", fraction=0.25)
    lines = validate_refine2d(request)
    answers = read_answers(REFINE2D_PROMPTS, io.StringIO(stdin_text(lines)), io.StringIO())
    assert Refine2dRequest.from_answers(answers) == request
    merge = Merge2dRequest(output_classes="c.mrc", dump_seed="dump_.dat", dump_count=3)
    parsed = read_answers(
        MERGE2D_PROMPTS, io.StringIO(stdin_text(validate_merge2d(merge))), io.StringIO()
    )
    assert Merge2dRequest.from_answers(parsed) == merge
    with pytest.raises(ProtocolError, match=r"missing \['dump_count'\]"):
        Merge2dRequest.from_answers({"output_classes": "c.mrc", "dump_seed": "dump_.dat"})
    with pytest.raises(ProtocolError, match=r"unknown \['extra'\]"):
        Merge2dRequest.from_answers({**dataclasses.asdict(merge), "extra": 1})


def test_check_echo_reports_a_changed_prompt_order() -> None:
    lines = ["a.mrc", "d_.dat", "2"]
    echoed = (
        "Library Version : 2\n"
        f"{'Output class averages':<50} : a.mrc\n"
        f"{'Number of dump files':<50} : 2\n"
        f"{'Seed for input dump filenames for intermediate arrays':<50} : d_.dat\n"
    )
    problems = check_echo(echoed, MERGE2D_PROMPTS, lines)
    assert len(problems) == 2 and "prompt 2" in problems[0]
    assert check_echo("nothing here", MERGE2D_PROMPTS, lines) == [
        "no echoed answers found in the program's output"
    ]
