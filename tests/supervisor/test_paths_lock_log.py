"""Output-folder rule, Warp-folder resolution, last-session pointer, lock and session log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from live2d_tui.config import ServerConfig
from live2d_tui.paths import (
    PathError,
    output_folder_for,
    read_last_session,
    resolve_warp_folder,
    session_name,
    write_last_session,
)
from live2d_tui.supervisor.lock import LockHeldError, OutputLock, read_holder
from live2d_tui.supervisor.sessionlog import SessionLog


def test_output_folder_rule(tmp_path: Path) -> None:
    warp = tmp_path / "warp" / "sess1"
    plain = ServerConfig()
    assert output_folder_for(warp, plain) == warp / "classification"
    assert output_folder_for(warp, plain, tmp_path / "o") == tmp_path / "o"
    prefixed = ServerConfig(
        warp_prefix=str(tmp_path / "warp"),
        warp_suffix="data",
        live2d_prefix=str(tmp_path / "l2d"),
        live2d_suffix="classification",
    )
    assert session_name(warp / "data", prefixed) == "sess1"
    assert (
        output_folder_for(warp / "data", prefixed) == tmp_path / "l2d" / "sess1" / "classification"
    )
    # outside the prefix: the folder's own name, or its parent's when it is the suffix folder
    assert session_name(tmp_path / "other" / "s2" / "data", prefixed) == "s2"
    assert session_name(tmp_path / "other" / "s3", prefixed) == "s3"


def test_resolve_warp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ServerConfig(warp_prefix=str(tmp_path / "w"), warp_suffix="sub")
    assert resolve_warp_folder("sess", server) == tmp_path / "w" / "sess" / "sub"
    assert resolve_warp_folder(str(tmp_path / "abs"), server) == tmp_path / "abs"
    monkeypatch.chdir(tmp_path)
    assert resolve_warp_folder("sess", ServerConfig()) == tmp_path / "sess"
    assert resolve_warp_folder("./x/y", server) == tmp_path / "x" / "y"
    with pytest.raises(PathError):
        resolve_warp_folder("  ", server)


def test_last_session_pointer(tmp_path: Path) -> None:
    assert read_last_session() is None
    write_last_session(tmp_path / "w", tmp_path / "o")
    last = read_last_session()
    assert last is not None
    assert (last.warp_folder, last.output_folder) == (tmp_path / "w", tmp_path / "o")


def test_lock_refuses_second_holder_and_names_first(tmp_path: Path) -> None:
    first = OutputLock(tmp_path / "out")
    first.acquire()
    holder = read_holder(tmp_path / "out")
    assert holder is not None and holder.pid == os.getpid()
    with pytest.raises(LockHeldError) as info:
        OutputLock(tmp_path / "out").acquire()
    assert f"pid {os.getpid()}" in str(info.value)
    first.release()
    with OutputLock(tmp_path / "out") as again:
        assert again.held


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path;"
        "from live2d_tui.supervisor.lock import OutputLock;"
        "OutputLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError) as info:
            OutputLock(tmp_path).acquire()
        assert f"pid {proc.pid}" in str(info.value)
        proc.kill()
        proc.wait()
    lock = OutputLock(tmp_path)
    lock.acquire()  # the kernel released the dead holder's lock
    lock.release()


def test_session_log_appends_and_tails(tmp_path: Path) -> None:
    log = SessionLog(tmp_path)
    for i in range(5):
        log.write(f"line {i}")
    log.write("two\nlines", "error")
    tail = log.tail(3)
    assert tail[0].endswith("line 4")
    assert tail[1].endswith("ERROR: two") and tail[2].endswith("ERROR: lines")


def test_session_log_never_raises(tmp_path: Path) -> None:
    log = SessionLog(tmp_path / "missing" / "folder")
    log.write("lost")
    assert "cannot write" in log.last_error
    assert log.tail() == []
