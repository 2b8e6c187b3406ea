"""The Warp side of live ingest: settings, the particle table and movie XML of one session.

:class:`WarpSource` keeps the latest *valid, stable* ``previous.settings`` and particle table
(``goodparticles_<Model>.star`` or ``allparticles_<Model>.star``, exact name), follows a model
change to the new table once it exists, and reads movie XML on demand, cached by
``(size, mtime)``. Nothing here writes anything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from live2d_tui.formats.warp_star import WarpTable, read_warp_star, source_star_path
from live2d_tui.formats.warp_xml import WarpFileError
from live2d_tui.warp import watch
from live2d_tui.warp.movie import MovieInfo, read_movie_xml
from live2d_tui.warp.settings import (
    SETTINGS_NAME,
    WarpSettings,
    parse_warp_settings,
    read_warp_settings,
    resolve_processing_folder,
)
from live2d_tui.warp.snapshot import CopiedSnapshot, Signature, StableSnapshot, file_signature

SETTINGS_RETRY_SECONDS = 5.0
"""How long opening a session re-reads a torn ``previous.settings`` before giving up."""


class ExportOff(WarpFileError):
    """``Picking/DoExport`` is False: Warp writes no particle stacks."""


@dataclass(slots=True)
class SourcePoll:
    """What one :meth:`WarpSource.poll` found."""

    settings_changed: bool = False
    table_changed: bool = False
    table_missing: bool = False
    settling: bool = False
    """Settings or table changed and are not stable yet (look again soon)."""
    messages: list[str] = field(default_factory=list)


def initial_settings(folder: Path, retry_seconds: float = SETTINGS_RETRY_SECONDS) -> WarpSettings:
    """Read ``previous.settings``, re-reading a torn file for up to ``retry_seconds``.

    Raises:
        WarpSettingsMissing: no such file (not a Warp folder).
        ExportOff: particle export is off.
        WarpFileError: still malformed after retrying, or the folder does not exist.
    """
    if not folder.is_dir():
        raise WarpFileError(f"{folder}: no such folder")
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            settings = read_warp_settings(folder)
            break
        except WarpFileError as exc:
            if type(exc) is not WarpFileError or time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    if not settings.export_enabled:
        raise ExportOff(
            f"{folder / SETTINGS_NAME}: particle export is off (Picking/DoExport=False); "
            "turn on particle export in Warp"
        )
    return settings


class WarpSource:
    """Stable snapshots of one Warp session's settings and particle table."""

    def __init__(
        self,
        warp_folder: Path,
        kind: str,
        *,
        settle_seconds: float = 1.0,
        scratch_folder: Path | None = None,
    ) -> None:
        """Open the session (see :func:`initial_settings` for the errors raised).

        Args:
            warp_folder: the folder holding ``previous.settings``.
            kind: ``goodparticles`` or ``allparticles``.
            settle_seconds: see :class:`~live2d_tui.warp.snapshot.StabilityTracker`.
            scratch_folder: where the particle table is copied to be parsed (see
                :class:`~live2d_tui.warp.snapshot.CopiedSnapshot`); the system's temporary
                folder by default.
        """
        self.warp_folder = Path(warp_folder)
        self.kind = kind
        self.settle = settle_seconds
        self.scratch_folder = scratch_folder
        settings = initial_settings(self.warp_folder)
        self._settings = StableSnapshot(
            self.warp_folder / SETTINGS_NAME, parse_warp_settings, min_interval=settle_seconds
        )
        self._settings.value = settings
        self._settings.poll()
        self.processing_folder = resolve_processing_folder(self.warp_folder, settings)
        self._table = self._table_snapshot(self._table_path(settings))
        self.table: WarpTable | None = None
        """The latest valid snapshot of the particle table (kept when a read is invalid)."""
        self._xml: dict[str, tuple[Signature, MovieInfo]] = {}

    @property
    def settings(self) -> WarpSettings | None:
        """The latest valid ``previous.settings``."""
        return self._settings.value

    def poll(self) -> SourcePoll:
        """Look at settings and table once; accept them if stable, complete and new."""
        out = SourcePoll()
        result = self._settings.poll()
        out.settling = result.settling
        if result.error:
            out.messages.append(f"{result.error}; keeping the previous settings")
        settings = self._settings.value
        if result.changed and settings is not None:
            out.settings_changed = True
            if not settings.export_enabled:
                out.messages.append(
                    f"{self.warp_folder / SETTINGS_NAME}: particle export is off "
                    "(Picking/DoExport=False); Warp exports no new particles"
                )
            path = self._table_path(settings)
            if path != self._table.path and path.exists():  # model changed: follow its table
                self._table = self._table_snapshot(path)
        table = self._table.poll()
        out.table_missing = table.missing
        out.settling = out.settling or table.settling
        if table.error:
            out.messages.append(f"{table.error}; keeping the previous snapshot")
        if table.changed:
            self.table = table.value
            out.table_changed = True
        return out

    def movie(self, stack: str) -> tuple[MovieInfo | None, str | None]:
        """The XML of the micrograph of ``stack`` (cached by signature) and an error message.

        Warp 1 keeps XML next to the movies, Warp 2 in the processing folder; both are tried.
        A missing XML gives (None, None); an unreadable one the last good read, or None.
        """
        settings = self._settings.value
        suffix = f"_{settings.model}.mrcs" if settings else ".mrcs"
        name = Path(stack).name
        root = name[: -len(suffix)] if name.endswith(suffix) else Path(name).stem
        for folder in dict.fromkeys((self.processing_folder, self.warp_folder)):
            path = folder / f"{root}.xml"
            signature = file_signature(path)
            if signature is None:
                continue
            cached = self._xml.get(str(path))
            if cached is not None and cached[0] == signature:
                return cached[1], None
            try:
                info = read_movie_xml(path)
            except (WarpFileError, OSError) as exc:
                return (cached[1] if cached else None), str(exc)
            self._xml[str(path)] = (signature, info)
            return info, None
        return None, None

    def watch_targets(self) -> watch.Targets:
        """The files worth watching: ``previous.settings`` and the particle table."""
        return watch.Targets(
            folders=tuple(dict.fromkeys((self.warp_folder, self.processing_folder))),
            names=frozenset({SETTINGS_NAME, self._table.path.name}),
            files=(self.warp_folder / SETTINGS_NAME, self._table.path),
        )

    def _table_snapshot(self, path: Path) -> CopiedSnapshot[WarpTable]:
        return CopiedSnapshot(
            path, read_warp_star, scratch_folder=self.scratch_folder, min_interval=self.settle
        )

    def _table_path(self, settings: WarpSettings) -> Path:
        paths = [
            source_star_path(self.processing_folder, self.kind, m)
            for m in settings.model_candidates
        ] or [source_star_path(self.processing_folder, self.kind, settings.model)]
        return next((p for p in paths if p.exists()), paths[0])
