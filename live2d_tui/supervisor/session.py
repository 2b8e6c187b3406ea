"""Opening a session: lock the output folder, load or create its state, recover from a crash.

A :class:`Session` bundles what belongs to one output folder — its lock, session log, state,
dataset (ingest) and cycle runner — so changing the Warp folder swaps one object.

Nothing is created before the Warp folder (``previous.settings``, particle export) and the
engine have been checked: a refused start leaves the disk as it was, and a start refused after
the output folder was created removes what it created.

Recovery on open (issue 6, item 8), in this order:

1. take the output folder's lock (a second supervisor is refused, naming the holder);
2. load ``latest_run.json`` (or its previous good copy, with a clear message);
3. end orphaned program runs of the last run: SLURM jobs (found by name and comment, cancelled
   and waited for) and local processes (the runner's registry and environment marker);
4. open the dataset, which reconciles stack, stars and ledger;
5. let the stream (``stream/``) remove the files of a streaming update that never committed and
   publish its last committed update again, and record that update if the state was not saved
   after it (:func:`~live2d_tui.supervisor.streamjob.adopt_committed_update`);
6. remove partial cycle outputs: ``cycle_<N>.*`` files of cycles the history does not hold and
   temporary files of interrupted atomic writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from live2d_tui.classify.engines import EnginePrograms, resolve_engine
from live2d_tui.classify.executors import Executor
from live2d_tui.classify.executors.slurm import SlurmExecutor
from live2d_tui.classify.executors.slurm_cli import SlurmSettings
from live2d_tui.classify.runner import CycleRunner
from live2d_tui.classify.streaming.index import StreamIndexError
from live2d_tui.classify.streaming.runner import StreamRunner
from live2d_tui.config import Config, ConfigError, ExecutorKind, JobSettings
from live2d_tui.dataset.ingest import Dataset, IngestError
from live2d_tui.events import Event
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.paths import session_name
from live2d_tui.supervisor.jobs import disk_note
from live2d_tui.supervisor.lock import LockHeldError, OutputLock
from live2d_tui.supervisor.model import OutputFolderInUse, SupervisorError, WarpSummary
from live2d_tui.supervisor.sessionlog import SessionLog
from live2d_tui.supervisor.state import SessionState, StateError, load_state
from live2d_tui.supervisor.streamhistory import adopt_committed_update
from live2d_tui.warp.source import initial_settings

_CYCLE_FILE = re.compile(r"^cycle_(\d+)(?:[._].*)?$")
_TEMP_FILE = re.compile(r"^\.(?:latest_run\.json|cycle_\d+).*\.tmp$")


@dataclass
class Session:
    """The open resources of one output folder."""

    warp_folder: Path
    output_folder: Path
    lock: OutputLock
    log: SessionLog
    state: SessionState
    dataset: Dataset
    programs: EnginePrograms
    runner: CycleRunner
    notes: list[str] = field(default_factory=list)
    """What recovery did (shown as log lines once the session is open)."""
    warnings: list[str] = field(default_factory=list)
    """Recovery messages the user must see (shown as errors)."""

    def warp_summary(self) -> WarpSummary | None:
        """Warp's particle settings, if they could be read."""
        ws = self.dataset.warp_settings
        if ws is None:
            return None
        return WarpSummary(
            model=ws.model, pixel_size=ws.pixel_size, box_size=ws.box_size, diameter=ws.diameter
        )


def remove_partial_outputs(folder: Path, completed: set[int]) -> list[str]:
    """Delete ``cycle_<N>.*`` files of cycles not in ``completed`` and interrupted temp files.

    Returns the names removed. Folders (``cycles/cycle_<N>/`` with per-run logs) are kept: the
    logs explain what happened, and the runner starts each attempt with fresh names.
    """
    removed: list[str] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _CYCLE_FILE.match(entry.name)
        partial = match is not None and int(match.group(1)) not in completed
        if (partial or _TEMP_FILE.match(entry.name)) and entry.is_file():
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry.name)
    return sorted(removed)


def guess_mask_radius(settings: JobSettings, dataset: Dataset) -> JobSettings:
    """``settings`` with the mask radius guessed as 0.6 × Warp's particle diameter (whole Å)."""
    ws = dataset.warp_settings
    if ws is None or not ws.diameter > 0:
        return settings
    return settings.with_changes(mask_radius=float(round(ws.mask_radius_guess)))


def open_session(
    config: Config,
    warp_folder: Path,
    output_folder: Path,
    *,
    log: Callable[[str], None],
    publish: Callable[[Event], None],
    reguess_mask: bool = False,
) -> Session:
    """Open (blocking; run in a thread) the session of ``warp_folder`` in ``output_folder``.

    Args:
        config: Server settings and the default job settings for a new session.
        warp_folder: The Warp session folder.
        output_folder: Where results go (see :func:`live2d_tui.paths.output_folder_for`).
        log: Thread-safe sink for progress lines of the dataset and runner.
        publish: Thread-safe sink for the runner's events.
        reguess_mask: Guess the mask radius from the particle diameter even if state exists.

    Raises:
        SupervisorError: the folder is locked, not a Warp folder, the state is beyond repair or
            the engine cannot be found; the message says which and what to do.
    """
    if not warp_folder.is_dir():
        raise SupervisorError(f"Warp folder {warp_folder} does not exist (or is not a folder)")
    # Everything that can refuse without the output folder is checked before it is created: a
    # refused start leaves the disk as it was (no lock file, no classification/ folder).
    try:
        initial_settings(warp_folder)
    except WarpFileError as exc:
        raise SupervisorError(str(exc)) from None
    try:
        programs = resolve_engine(config.server)
    except (ConfigError, OSError, ValueError) as exc:
        raise SupervisorError(f"classification engine: {exc}") from None
    created = _missing_folders(output_folder)
    try:
        output_folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_created(created, None)
        raise SupervisorError(f"cannot create output folder {output_folder}: {exc}") from None
    lock = OutputLock(output_folder)
    try:
        lock.acquire()
    except LockHeldError as exc:
        holder = exc.holder.describe() if exc.holder else "another live2d (holder unknown)"
        raise OutputFolderInUse(str(exc), output_folder, holder) from None
    except OSError as exc:
        _remove_created(created, None)
        raise SupervisorError(f"cannot lock output folder {output_folder}: {exc}") from None
    try:
        return _open_locked(
            config, warp_folder, output_folder, lock, programs, log, publish, reguess_mask
        )
    except BaseException:
        _remove_created(created, lock)
        lock.release()
        raise


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing


def _remove_created(created: list[Path], lock: OutputLock | None) -> None:
    """Undo the creation of the output folder after a refused start: its lock file and the
    folders this start created, if nothing else was put in them."""
    if not created:
        return
    if lock is not None:
        with contextlib.suppress(OSError):
            lock.path.unlink()
    for folder in created:  # deepest first; a folder something else wrote into stays
        with contextlib.suppress(OSError):
            folder.rmdir()


def _open_locked(
    config: Config,
    warp_folder: Path,
    output_folder: Path,
    lock: OutputLock,
    programs: EnginePrograms,
    log: Callable[[str], None],
    publish: Callable[[Event], None],
    reguess_mask: bool,
) -> Session:
    server = config.server
    notes: list[str] = []
    warnings: list[str] = []
    try:
        loaded = load_state(output_folder)
    except StateError as exc:
        raise SupervisorError(str(exc)) from None
    if loaded is not None and loaded.recovered_from_prev:
        warnings.append(loaded.message)
    executor: Executor | None = None
    if server.executor == ExecutorKind.SLURM:
        executor = SlurmExecutor(SlurmSettings.from_server(server), output_folder, log=log)
    runner = CycleRunner(
        output_folder,
        programs,
        pool_size=server.effective_pool_size(),
        jobs_per_cycle=server.effective_jobs_per_cycle(),
        niceness=server.niceness,
        watchdog_seconds=server.watchdog_minutes * 60.0,
        publish=publish,
        log=log,
        executor=executor,
        merge2d_local=not server.slurm_merge2d,
    )
    ended = runner.end_orphans(log)
    if ended:
        notes.append(f"Ended {ended} orphaned program run(s) of the last run")
    try:
        dataset = Dataset(
            warp_folder,
            output_folder,
            source=server.particle_source,
            min_free_gb=server.min_free_gb,
            log=log,
        )
    except IngestError as exc:
        raise SupervisorError(str(exc)) from None
    except (OSError, sqlite3.Error) as exc:
        raise SupervisorError(
            f"cannot open the particle ledger and stack in {output_folder}: {exc}"
            f"{disk_note(output_folder)}"
        ) from None
    name = session_name(warp_folder, server)
    if loaded is None:
        state = SessionState(
            warp_folder=str(warp_folder),
            output_folder=str(output_folder),
            session_name=name,
            settings=guess_mask_radius(config.job, dataset),
        )
        notes.append(f"New session {name}: output folder {output_folder}")
    else:
        state = loaded.state
        if reguess_mask:
            state = replace(state, settings=guess_mask_radius(state.settings, dataset))
        state = replace(
            state, warp_folder=str(warp_folder), output_folder=str(output_folder), session_name=name
        )
    stream = StreamRunner(runner)
    try:
        stream.recover()
    except (StreamIndexError, OSError) as exc:
        warnings.append(f"The streaming state in {stream.folder} cannot be read: {exc}")
    else:
        state, note = adopt_committed_update(
            state, stream, generation=dataset.generation, stack=dataset.stack_path
        )
        if note:
            notes.append(note)
    removed = remove_partial_outputs(output_folder, {c.number for c in state.history})
    if removed:
        notes.append(f"Removed partial outputs of an interrupted run: {', '.join(removed)}")
    if loaded is not None:
        last = state.last_cycle
        notes.append(
            f"Reloaded session {name}: "
            + (f"last completed cycle {last.number}" if last else "no cycles yet")
        )
    return Session(
        warp_folder=warp_folder,
        output_folder=output_folder,
        lock=lock,
        log=SessionLog(output_folder),
        state=state,
        dataset=dataset,
        programs=programs,
        runner=runner,
        notes=notes,
        warnings=warnings,
    )


async def close_session(session: Session, dataset_lock: threading.Lock) -> None:
    """Close the dataset (in a thread, under ``dataset_lock``, so never during a poll) and
    release the output folder's lock."""

    def close() -> None:
        with dataset_lock:
            session.dataset.close()

    try:
        await asyncio.to_thread(close)
    finally:
        session.lock.release()
