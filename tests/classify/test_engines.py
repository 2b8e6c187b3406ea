"""Engine resolution: a matched pair from the configuration, else PATH, else the built-in one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from live2d_tui.classify.engines import EngineConfigError, builtin_programs, resolve_engine
from live2d_tui.config import EngineKind, ServerConfig


def make_program(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_builtin_prefers_console_scripts_next_to_python() -> None:
    programs = builtin_programs()
    assert programs.kind is EngineKind.BUILTIN
    bindir = Path(sys.executable).parent
    if (bindir / "live2d-refine2d").exists() and (bindir / "live2d-merge2d").exists():
        assert programs.refine2d == [str(bindir / "live2d-refine2d")]
        assert programs.merge2d == [str(bindir / "live2d-merge2d")]
    else:
        assert programs.refine2d == [sys.executable, "-m", "live2d_tui.engine.refine2d"]


def test_auto_without_cistem_is_builtin(empty_path: Path) -> None:
    assert resolve_engine(ServerConfig()).kind is EngineKind.BUILTIN


def test_auto_finds_cistem_on_path(empty_path: Path) -> None:
    refine = make_program(empty_path, "refine2d")
    merge = make_program(empty_path, "merge2d")
    programs = resolve_engine(ServerConfig())
    assert programs.kind is EngineKind.CISTEM
    assert programs.refine2d == [str(refine)] and programs.merge2d == [str(merge)]
    assert "cisTEM" in programs.describe()


def test_auto_ignores_half_a_cistem_pair(empty_path: Path) -> None:
    make_program(empty_path, "refine2d")
    assert resolve_engine(ServerConfig()).kind is EngineKind.BUILTIN


def test_cistem_not_found_is_a_clear_error(empty_path: Path) -> None:
    with pytest.raises(EngineConfigError, match="were not found"):
        resolve_engine(ServerConfig(engine=EngineKind.CISTEM))


def test_configured_pair_wins(tmp_path: Path, empty_path: Path) -> None:
    refine = make_program(tmp_path / "cistem", "refine2d")
    merge = make_program(tmp_path / "cistem", "merge2d")
    server = ServerConfig(engine=EngineKind.CISTEM, refine2d=str(refine), merge2d=str(merge))
    programs = resolve_engine(server)
    assert programs.kind is EngineKind.CISTEM and programs.refine2d == [str(refine)]


def test_mixing_engines_is_refused(tmp_path: Path, empty_path: Path) -> None:
    refine = make_program(tmp_path / "cistem", "refine2d")
    merge = make_program(tmp_path / "cistem", "live2d-merge2d")
    with pytest.raises(EngineConfigError, match="different engines"):
        resolve_engine(ServerConfig(refine2d=str(refine), merge2d=str(merge)))


def test_mixing_installations_is_refused(tmp_path: Path, empty_path: Path) -> None:
    refine = make_program(tmp_path / "a", "refine2d")
    merge = make_program(tmp_path / "b", "merge2d")
    with pytest.raises(EngineConfigError, match="different installations"):
        resolve_engine(ServerConfig(refine2d=str(refine), merge2d=str(merge)))


def test_engine_kind_must_match_configured_programs(tmp_path: Path, empty_path: Path) -> None:
    refine = make_program(tmp_path / "c", "refine2d")
    merge = make_program(tmp_path / "c", "merge2d")
    with pytest.raises(EngineConfigError, match="engine = builtin"):
        resolve_engine(
            ServerConfig(engine=EngineKind.BUILTIN, refine2d=str(refine), merge2d=str(merge))
        )


def test_missing_configured_program(tmp_path: Path, empty_path: Path) -> None:
    server = ServerConfig(refine2d=str(tmp_path / "no" / "refine2d"), merge2d="merge2d")
    with pytest.raises(EngineConfigError, match="not an executable"):
        resolve_engine(server)
    with pytest.raises(EngineConfigError, match="not on PATH"):
        resolve_engine(ServerConfig(refine2d="refine2d", merge2d="merge2d"))
