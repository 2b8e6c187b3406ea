"""The ``live2d`` command line: help, version, configuration errors, refused starts."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from live2d_tui import __version__
from live2d_tui.cli import COMMANDS, HelpFormatter, build_parser, main


def test_version_and_help_run_as_a_real_program() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert __version__ in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMANDS:
        assert name in out.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: live2d" in capsys.readouterr().out


def _tree(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root``: (is a folder, size, mtime), what a refused start must keep."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _live2d(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "live2d_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("case", ["not-warp", "not-warp-out", "output-folder", "no-engine"])
def test_a_refused_start_writes_nothing(tmp_path: Path, make_warp_session, case: str) -> None:  # type: ignore[no-untyped-def]
    # nothing may be created by a start that is refused: not classification/, not the --out
    # folder, not a lock file, not the configuration file in LIVE2D_HOME
    home = Path(os.environ["LIVE2D_HOME"])
    plain = tmp_path / "data"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a Warp folder\n")
    args = [str(plain), "--once"]
    env: dict[str, str] = {}
    if case == "not-warp-out":
        args += ["--out", str(tmp_path / "results" / "session")]
    elif case == "output-folder":  # an output folder given where the Warp folder belongs
        (plain / "latest_run.json").write_text("{}\n")
        (plain / "combined_stack.star").write_text("")
    elif case == "no-engine":  # a real Warp folder, but cisTEM is asked for and not installed
        plain = make_warp_session(micrographs=1, particles_per_micrograph=5, box=64, seed=1)
        args = [str(plain), "--once", "--engine", "cistem"]
        env = {"PATH": str(tmp_path / "empty-bin")}
    before, home_before = _tree(tmp_path), _tree(home)
    warp_before = _tree(plain)
    result = _live2d("run", *args, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") <= 2, result.stderr  # one clear line, no traceback
    assert "Traceback" not in result.stderr
    assert _tree(tmp_path) == before
    assert _tree(plain) == warp_before
    assert _tree(home) == home_before


def test_the_configuration_file_is_written_once_a_session_opens(tmp_path: Path) -> None:
    from live2d_tui.config import config_path, load_config, write_default_config

    assert not config_path().exists()
    assert load_config(create=False) == load_config(create=False)
    assert not config_path().exists()
    assert write_default_config() and config_path().exists()
    assert not write_default_config()  # an existing file is never replaced


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "class_number=abc"], "class_number must be a whole number (got 'abc')"),
        (["--pool-size", "abc"], "pool_size must be a whole number (got 'abc')"),
        (["--set", "mask_radius=100000"], "mask_radius 100000 Å is larger than half the particle"),
    ],
)
def test_bad_values_are_refused_with_one_clear_line(
    tmp_path: Path,
    make_warp_session,  # type: ignore[no-untyped-def]
    args: list[str],
    message: str,
) -> None:
    # a 64 px box of 3 Å/px: half the box is 96 Å
    warp = make_warp_session(micrographs=1, particles_per_micrograph=5, box=64, seed=1)
    before = _tree(warp)
    result = _live2d("run", str(warp), "--once", "--engine", "builtin", *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "could not convert" not in result.stderr
    assert _tree(warp) == before  # refused before anything was written


def test_a_mistyped_subcommand_is_an_invalid_choice(tmp_path: Path) -> None:
    # not the UI on a folder named "frobnicate": argparse's line with the list of subcommands
    result = subprocess.run(
        [sys.executable, "-m", "live2d_tui", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert all(name in result.stderr for name in COMMANDS), result.stderr


def test_a_folder_or_session_name_is_short_for_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from live2d_tui.cli import opens_by_default
    from live2d_tui.config import Config, ServerConfig, config_path, render_toml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    sessions = tmp_path / "warp"
    (sessions / "20261126_krios").mkdir(parents=True)
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(render_toml(Config(server=ServerConfig(warp_prefix=str(sessions)))))
    assert opens_by_default(str(tmp_path / "here"))  # a path
    assert opens_by_default("here")  # a folder in the current directory
    assert opens_by_default("20261126_krios")  # a session name under warp_prefix
    assert opens_by_default("--out")  # an option of open
    assert not opens_by_default("frobnicate")
    assert not opens_by_default("run") and not opens_by_default("--version")


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser([name])
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub = action.choices[name]
    assert isinstance(sub, argparse.ArgumentParser)
    return sub


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_gives_every_options_default_and_choices(name: str) -> None:
    sub = _subparser(name)
    text = " ".join(sub.format_help().split())
    formatter = HelpFormatter(f"live2d {name}")
    for action in sub._actions:
        if not action.option_strings or action.nargs == 0:
            continue  # positionals and switches
        help_text = formatter._get_help_string(action) or ""
        assert "default" in help_text, (action.option_strings, help_text)
    if name in {"open", "run", "demo"}:  # the server settings' choices, spelled out
        for choices in (
            "{auto,builtin,cistem}",
            "{auto,sixel,tgp,halfcell,unicode}",
            "{local,slurm}",
            "{goodparticles,allparticles}",
        ):
            assert choices in text, choices
        assert "(default: auto, or [server] engine" in text
    if name in {"open", "run", "ingest"}:  # the output-folder rule, not "rule"
        assert "else WARP_FOLDER/classification" in text


def test_run_help_says_what_a_closed_stdout_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit status" in out and "printing stops quietly and the run carries on" in out
