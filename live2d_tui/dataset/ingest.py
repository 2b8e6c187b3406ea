"""Live ingest of a Warp session into the append-only combined stack.

:class:`Dataset` is the one object the supervisor and ``live2d ingest`` use. Each
:meth:`Dataset.poll` is one blocking pass:

1. re-read ``previous.settings`` once stable (a torn read keeps the previous settings);
2. take the latest stable, *valid* snapshot of ``goodparticles_<Model>.star`` (or
   ``allparticles``); an invalid one keeps the previous snapshot;
3. diff it by micrograph against the ledger: unchanged → active; gone or ``UnselectManual`` →
   inactive (never deleted); reprocessed (size, mtime or row count changed) → old range inactive,
   new particles appended; new → appended once its stack is complete, else deferred (logged
   after 60 s);
4. a micrograph exported with other box / pixel size / inversion / normalisation that matches
   what Warp exports now starts a new dataset generation (and flags ab initio);
5. append ready micrographs in batches (stack → stars → ledger, see :mod:`.writer`), after a
   free-space check.

The cost of a pass with nothing new is a few ``stat`` calls; a changed snapshot costs its parse
plus one ``stat`` per micrograph in it; appending costs only the new particles.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from live2d_tui import disk
from live2d_tui.config import ParticleSource
from live2d_tui.dataset.ledger import Ledger
from live2d_tui.dataset.micrographs import NotReady, Params, Ready, check_stack, settings_params
from live2d_tui.dataset.report import IngestError, IngestReport
from live2d_tui.dataset.stack import SliceSource, StackError
from live2d_tui.dataset.writer import Defaults, GenerationFiles, Piece
from live2d_tui.formats.mrc import MrcError
from live2d_tui.formats.warp_star import MicrographRows, WarpTable
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.warp import watch
from live2d_tui.warp.mounts import is_network_filesystem, polling_forced_by_env
from live2d_tui.warp.settings import WarpSettings
from live2d_tui.warp.snapshot import StabilityTracker, file_signature
from live2d_tui.warp.source import TableView, WarpSource

__all__ = ["Dataset", "IngestError", "IngestReport", "ParticleSource"]

DEFER_LOG_SECONDS = 60.0
"""A micrograph deferred this long is named in the log (once)."""
BATCH_BYTES = 64 << 20
"""Particle data appended between two ledger commits (the work a crash can cost). Memory does
not depend on it: data is copied by the kernel or streamed through a small buffer."""


class Dataset:
    """A Warp session folder ingested into an output folder (see module docstring)."""

    def __init__(
        self,
        warp_folder: Path,
        output_folder: Path,
        *,
        source: ParticleSource = ParticleSource.GOOD,
        min_free_gb: float = 2.0,
        log: Callable[[str], None] | None = None,
        settle_seconds: float = 1.0,
    ) -> None:
        """Open (or create) the output folder's ledger and reconcile it with the files.

        Args:
            warp_folder: the folder holding ``previous.settings``.
            output_folder: where the ledger, stack and stars live (created if needed).
            source: goodparticles (default) or allparticles.
            min_free_gb: appending stops while less than this would remain free.
            log: called with each message (deferred stacks, torn files, new generation).
            settle_seconds: how long a file's size and mtime must stay unchanged (two polls
                at least this far apart) before it is read.

        Raises:
            IngestError: not a Warp folder, particle export off, or a damaged output folder.
        """
        self.warp_folder = Path(warp_folder)
        self.output_folder = Path(output_folder)
        self.source = ParticleSource(source)
        self.min_free_gb = min_free_gb
        self._log = log
        self._poll_lock = threading.Lock()
        try:
            # Warp's table is copied to a local scratch file and parsed from there: into the
            # output folder, unless that is on a share too (then the system's temp folder).
            local = not is_network_filesystem(self.output_folder)
            self._warp = WarpSource(
                self.warp_folder,
                self.source.value,
                settle_seconds=settle_seconds,
                scratch_folder=self.output_folder if local else None,
            )
        except WarpFileError as exc:
            raise IngestError(str(exc)) from None
        self.processing_folder = self._warp.processing_folder
        try:
            self.output_folder.mkdir(parents=True, exist_ok=True)
            self._ledger = Ledger(self.output_folder / "ledger.sqlite")
        except OSError as exc:
            raise IngestError(
                f"{self.output_folder}: cannot create the output folder ({exc})"
            ) from exc
        self._files: GenerationFiles | None = None
        self._reconcile()
        self._tracker = StabilityTracker(settle_seconds)
        self._deferred_since: dict[str, float] = {}
        self._deferred_logged: set[str] = set()
        self._reported: set[str] = set()
        self._reimport = False
        self._source_missing = False
        self._full = True
        """The next pass diffs every micrograph (new snapshot, settings, generation)."""
        self._pending: set[str] = set()
        """Stacks to look at again even when nothing else changed (still being written)."""
        self._appended_now: set[str] = set()
        self._last_counts = IngestReport()
        self._network = is_network_filesystem(self.processing_folder) or polling_forced_by_env()

    # -- public API ------------------------------------------------------------------------

    @property
    def warp_settings(self) -> WarpSettings | None:
        """The latest valid ``previous.settings``."""
        return self._warp.settings

    @property
    def xml_folders(self) -> tuple[Path, ...]:
        """Where Warp's movie XML live (see :attr:`WarpSource.xml_folders`)."""
        return self._warp.xml_folders

    def table_view(self) -> TableView | None:
        """The latest valid particle table as movie roots and counts; safe from any thread
        (see :meth:`WarpSource.table_view`)."""
        return self._warp.table_view()

    @property
    def generation(self) -> int:
        """Number of the current dataset generation (0 before anything was ingested)."""
        gen = self._ledger.generation
        return 0 if gen is None else gen.generation

    @property
    def stack_path(self) -> Path:
        """``combined_stack.mrcs`` of the current generation."""
        return self._generation_folder() / "combined_stack.mrcs"

    @property
    def star_path(self) -> Path:
        """``combined_stack.star`` (cisTEM) of the current generation."""
        return self._generation_folder() / "combined_stack.star"

    @property
    def relion_star_path(self) -> Path:
        """``combined_stack_relion.star`` of the current generation."""
        return self._generation_folder() / "combined_stack_relion.star"

    @property
    def snapshot_loaded(self) -> bool:
        """A valid snapshot of Warp's particle table has been accepted."""
        return self._warp.table is not None

    @property
    def source_missing(self) -> bool:
        """Warp's particle table did not exist at the last poll."""
        return self._source_missing

    def particle_count(self) -> int:
        """Committed NZ of the current stack (a cycle reads positions up to this)."""
        gen = self._ledger.generation
        return 0 if gen is None else gen.nz

    def active_positions(self, up_to: int | None = None) -> npt.NDArray[np.int64]:
        """Sorted 1-based positions of active particles, optionally only those ≤ ``up_to``."""
        return self._ledger.active_positions(up_to)

    def active_count(self) -> int:
        """Number of active particles."""
        return self._ledger.active_count()

    def active_count_after(self, position: int) -> int:
        """Active particles at stack positions after ``position`` (those a stream has not
        taken yet)."""
        return self._ledger.active_count_after(position)

    def appended_at(self, position: int) -> float | None:
        """``time.time()`` when the particle at ``position`` was ingested (``None``: unknown)."""
        return self._ledger.appended_at(position)

    def consume_abinitio_flag(self) -> bool:
        """True once after a new generation started (the next job must be ab initio)."""
        return self._ledger.take_flag("abinitio")

    def request_reimport(self) -> None:
        """Re-import everything into a fresh generation at the next poll (flags ab initio)."""
        self._reimport = True

    def close(self) -> None:
        """Close the ledger."""
        with self._poll_lock:
            self._ledger.close()

    def poll_until_settled(self, timeout: float, interval: float = 1.1) -> IngestReport:
        """Poll until Warp's snapshot is loaded and no file is still settling, Warp's table
        has been missing for three polls running, or ``timeout`` s passed; the last report.
        ``interval`` must exceed the settle time (stability takes two polls that far apart)."""
        deadline = time.monotonic() + timeout
        missing = 0
        report = self.poll()
        while time.monotonic() < deadline:
            if self.snapshot_loaded and not report.pending:
                break
            missing = missing + 1 if self.source_missing else 0
            if missing >= 3:
                break
            time.sleep(interval)
            report = self.poll()
        return report

    async def follow(
        self,
        stop: asyncio.Event,
        on_report: Callable[[IngestReport], None],
        interval: float = 5.0,
    ) -> None:
        """Poll (in a thread) whenever watched files change or every ``interval`` s, until
        ``stop`` is set. Polls sooner (settle time + 0.2 s) while files are settling."""
        while not stop.is_set():
            report = await asyncio.to_thread(self.poll)
            on_report(report)
            if stop.is_set():
                break
            wait = min(interval, self._warp.settle + 0.2) if report.pending else interval
            await watch.wait_for_change(
                self._warp.watch_targets(), stop, heartbeat=wait, force_polling=self._network
            )

    def poll(self) -> IngestReport:
        """One blocking ingest pass (see the module docstring)."""
        with self._poll_lock:
            report = IngestReport()
            try:
                self._poll(report)
            except (IngestError, MrcError, StackError, OSError, sqlite3.Error) as exc:
                self._say(report, f"ingest stopped this pass: {exc}")
            gen = self._ledger.generation
            report.particles_total = 0 if gen is None else gen.nz
            report.particles_active = self._ledger.active_count()
            report.micrographs_inactive = sum(
                1 for r in self._ledger.ranges.values() if not r.active
            )
            return report

    # -- one pass ---------------------------------------------------------------------------

    def _poll(self, report: IngestReport) -> None:
        found = self._warp.poll()
        for message in found.messages:
            self._say(report, message)
        self._source_missing = found.table_missing
        if found.settings_changed or found.table_changed:
            self._full = True
        settings = self._warp.settings
        table = self._warp.table
        if found.settling or (found.table_missing and table is None):
            report.pending = True
        if table is None:
            return
        if self._reimport:
            self._reimport = False
            params = self._current_params() or (settings_params(settings) if settings else None)
            if params is not None:
                self._start_generation(params, report, reason="re-import requested")
                self._full = True
        if not self._full and not self._pending:
            report.micrographs_seen = self._last_counts.micrographs_seen
            report.micrographs_ingested = self._last_counts.micrographs_ingested
            report.micrographs_deferred = self._last_counts.micrographs_deferred
            return
        only = None if self._full else set(self._pending)
        self._diff_and_append(table, settings, report, only)

    def _diff_and_append(
        self,
        table: WarpTable,
        settings: WarpSettings | None,
        report: IngestReport,
        only: set[str] | None,
    ) -> None:
        """Diff the snapshot against the ledger and append what is ready. ``only``: look at just
        these stacks (a pass with no new snapshot re-checks only stacks that were settling, so a
        quiet pass does not grow with the session)."""
        ranges = self._ledger.ranges
        generation_before = self.generation if self._ledger.generation else None
        check_all_xml = self.source is ParticleSource.ALL
        want_active: list[str] = []
        candidates: list[tuple[MicrographRows, Ready | NotReady]] = []
        retire: set[str] = set()
        items = (
            table.micrographs.items()
            if only is None
            else [(s, rows) for s, rows in table.micrographs.items() if s in only]  # table order
        )
        for stack, rows in items:
            path = self.processing_folder / stack
            signature = file_signature(path)
            existing = ranges.get(stack)
            unchanged = (
                existing is not None
                and signature is not None
                and (existing.size, existing.mtime_ns, existing.rows)
                == (signature[0], signature[1], rows.count)
            )
            movie, xml_error = None, None
            if check_all_xml or not unchanged:
                movie, xml_error = self._warp.movie(stack)
                if xml_error:
                    self._say_once(report, f"{xml_error}; micrograph deferred")
            if movie is not None and movie.unselect_manual is True:
                continue
            if unchanged:
                want_active.append(stack)
                continue
            if existing is not None:
                retire.add(stack)
            if xml_error and movie is None:  # cannot tell its selection or export options yet
                candidates.append((rows, NotReady(xml_error)))
                continue
            candidates.append(
                (rows, check_stack(rows, path, signature, self._tracker, movie, settings))
            )
        if only is None:
            keep = set(want_active)
            self._ledger.set_active([s for s in ranges if s not in keep], False)
        self._ledger.set_active(want_active, True)
        ready = self._choose_generation(candidates, settings, report)
        self._append(ready, retire, settings, report)
        deferred = [rows.stack for rows, c in candidates if rows.stack not in self._appended_now]
        self._note_deferred(deferred, candidates, report)
        ranges = self._ledger.ranges
        report.micrographs_seen = len(table.micrographs)
        report.micrographs_ingested = sum(
            1 for s in table.micrographs if s in ranges and ranges[s].active
        )
        report.micrographs_deferred = len(deferred)
        # Stacks still being written (or not yet stable) need another look soon; a complete
        # but incompatible stack waits for a new snapshot instead of being re-checked.
        waiting = {rows.stack for rows, c in candidates if isinstance(c, NotReady)}
        report.pending = report.pending or any(s in waiting for s in deferred)
        self._pending = {s for s in deferred if s in waiting}
        # A generation started in this pass: every micrograph must be diffed against it.
        self._full = (self.generation if self._ledger.generation else None) != generation_before
        self._last_counts = IngestReport(
            micrographs_seen=report.micrographs_seen,
            micrographs_ingested=report.micrographs_ingested,
            micrographs_deferred=report.micrographs_deferred,
        )

    def _choose_generation(
        self,
        candidates: list[tuple[MicrographRows, Ready | NotReady]],
        settings: WarpSettings | None,
        report: IngestReport,
    ) -> list[Ready]:
        """Start a new generation if a ready micrograph matches what Warp exports now but not
        the dataset; return the ready micrographs compatible with the (new) generation."""
        current = self._current_params()
        target = settings_params(settings) if settings is not None else None
        ready = [c for _, c in candidates if isinstance(c, Ready)]
        for item in ready:
            p = item.params
            if current is not None and p.matches(current):
                continue
            if target is None or p.matches(target):
                reason = (
                    "first particles"
                    if current is None
                    else f"export changed: {p.difference(current)}"
                )
                self._start_generation(p, report, reason=reason)
                current = self._current_params()
                break
        compatible, skipped = [], []
        for item in ready:
            if current is not None and item.params.matches(current):
                compatible.append(item)
                continue
            key = f"incompatible:{item.path}:{item.signature}"
            if key not in self._reported:
                self._reported.add(key)
                skipped.append(item)
        if skipped:  # one line, however many micrographs a settings change left behind
            first = skipped[0]
            self._say(
                report,
                f"{len(skipped)} micrograph(s) exported with settings that fit neither the "
                f"dataset nor Warp's current ones, e.g. {first.path} "
                f"({first.params.describe()}); waiting for Warp to reprocess them",
            )
        return compatible

    def _start_generation(self, params: Params, report: IngestReport, *, reason: str) -> None:
        old = self._ledger.generation
        number = 0 if old is None else old.generation + 1
        files = GenerationFiles.create(self.output_folder, number, params, self._defaults())
        self._ledger.start_generation(files.generation, abinitio=old is not None)
        self._files = files
        if old is not None:
            report.new_generation = True
            self._say(
                report,
                f"new dataset generation {number} in {files.folder} ({reason}); "
                "the next classification must start ab initio",
            )

    def _append(
        self,
        ready: list[Ready],
        retire: set[str],
        settings: WarpSettings | None,
        report: IngestReport,
    ) -> None:
        self._appended_now = set()
        files = self._files
        if files is None:
            return
        box = files.generation.box
        need = sum(r.rows.count for r in ready) * box * box * 4 * 1.05 + (1 << 20) * len(ready)
        free = disk.free_bytes(self.output_folder)
        if ready and free - need < self.min_free_gb * 1e9:
            self._say(
                report,
                f"{self.output_folder}: only {free / 1e9:.1f} GB free, "
                f"{need / 1e9:.2f} GB needed and {self.min_free_gb:g} GB must stay "
                "free; ingest paused (nothing was written)",
            )
            return
        defaults = self._defaults()
        batch: list[Piece] = []
        batch_bytes = 0
        for item in ready:
            source = SliceSource(item.path, item.header, item.rows.indices, not item.params.invert)
            batch.append(
                Piece(
                    item.rows,
                    source,
                    item.signature[0],
                    item.signature[1],
                    str(item.header.dtype),
                    item.params.describe(),
                )
            )
            batch_bytes += source.count * files.stack.slice_bytes
            if batch_bytes >= BATCH_BYTES:
                self._commit(files, batch, retire, defaults, report)
                batch, batch_bytes = [], 0
        self._commit(files, batch, retire, defaults, report)

    def _commit(
        self,
        files: GenerationFiles,
        batch: list[Piece],
        retire: set[str],
        defaults: Defaults,
        report: IngestReport,
    ) -> None:
        if not batch:
            return
        try:
            new = files.append(batch, defaults)
            changed = [p for p in batch if file_signature(p.source.path) != (p.size, p.mtime_ns)]
            if changed:
                raise StackError(
                    f"{changed[0].source.path}: changed while it was read; retrying next poll"
                )
        except BaseException:
            # Cut anything half-appended so memory and disk agree with the ledger again.
            self._files = None
            self._reconcile()
            self._full = True
            raise
        self._ledger.commit_append(
            new,
            [p.rows.stack for p in batch if p.rows.stack in retire],
            nz=files.stack.nz,
            star_bytes=files.star_bytes,
            relion_bytes=files.relion_bytes,
        )
        for p in batch:
            self._appended_now.add(p.rows.stack)
            self._deferred_since.pop(p.rows.stack, None)
        report.particles_appended += sum(p.rows.count for p in batch)
        batch.clear()

    # -- helpers ----------------------------------------------------------------------------

    def _note_deferred(
        self,
        deferred: list[str],
        candidates: list[tuple[MicrographRows, Ready | NotReady]],
        report: IngestReport,
    ) -> None:
        now = time.monotonic()
        reasons = {rows.stack: c for rows, c in candidates}
        for stack in deferred:
            since = self._deferred_since.setdefault(stack, now)
            reason = reasons.get(stack)
            if isinstance(reason, NotReady) and reason.malformed:
                self._say_once(report, f"{reason.reason}; micrograph deferred")
            elif now - since >= DEFER_LOG_SECONDS and stack not in self._deferred_logged:
                self._deferred_logged.add(stack)
                why = reason.reason if isinstance(reason, NotReady) else "incompatible export"
                self._say(report, f"deferred for {now - since:.0f} s: {why}")
        for stack in list(self._deferred_since):
            if stack not in reasons:
                self._deferred_since.pop(stack, None)

    def _current_params(self) -> Params | None:
        gen = self._ledger.generation
        return None if gen is None else Params(gen.box, gen.pixel_size, gen.invert, gen.normalize)

    def _defaults(self) -> Defaults:
        s = self._warp.settings
        if s is None:
            return Defaults(1.0, 300.0, 2.7, 0.07)
        return Defaults(s.pixel_size, s.voltage, s.cs, s.amplitude_contrast)

    def _generation_folder(self) -> Path:
        gen = self._ledger.generation
        return self.output_folder / (gen.folder if gen else "")

    def _reconcile(self) -> None:
        gen = self._ledger.generation
        if gen is None:
            return
        files = GenerationFiles(self.output_folder, gen)
        try:
            repaired = files.reconcile()
        except (MrcError, StackError) as exc:
            raise IngestError(f"{exc}; the output folder is damaged (use a new --out)") from exc
        for line in repaired:
            self._emit(f"recovered: {line}")
        self._files = files

    def _say(self, report: IngestReport, message: str) -> None:
        report.messages.append(message)
        self._emit(message)

    def _say_once(self, report: IngestReport, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self._say(report, message)

    def _emit(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
