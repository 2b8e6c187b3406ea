"""Which refine2d/merge2d pair runs the classification: an engine is always a *pair*.

A refine2d's dump files are only meaningful to the merge2d of the same engine (cisTEM's raw dump
format vs ours), so mixing one engine's refine2d with another's merge2d is refused here, when the
configuration is resolved — not discovered as a garbled merge hours later.

Resolution (:func:`resolve_engine`):

- ``cistem``: the configured ``refine2d``/``merge2d`` paths, else both from ``PATH``;
- ``builtin``: this package's console scripts ``live2d-refine2d``/``live2d-merge2d`` next to
  ``sys.executable``, else ``python -m live2d_tui.engine.refine2d`` / ``.merge2d``;
- ``auto``: configured paths when set, else cisTEM's pair when both are on ``PATH``, else builtin.

Programs are argv *prefixes* (``list[str]``): the runner appends nothing (cisTEM treats any
argument count other than 0 or 4 as a usage request) and speaks the stdin protocol.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from live2d_tui.config import ConfigError, EngineKind, ServerConfig

BUILTIN_REFINE2D = "live2d-refine2d"
BUILTIN_MERGE2D = "live2d-merge2d"


class EngineConfigError(ConfigError):
    """No usable refine2d/merge2d pair: the message says what was looked for and where."""


@dataclass(frozen=True)
class EnginePrograms:
    """A matched refine2d/merge2d pair as argv prefixes."""

    kind: EngineKind
    """``BUILTIN`` or ``CISTEM`` (never ``AUTO``: resolution decided)."""
    refine2d: list[str] = field(default_factory=list)
    merge2d: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One short line for logs and the UI: ``built-in (live2d-refine2d + live2d-merge2d)`` or
        ``cisTEM /opt/cistem/bin/refine2d + merge2d`` (merge2d's folder only when it differs)."""
        if self.kind is EngineKind.BUILTIN:
            return f"built-in ({BUILTIN_REFINE2D} + {BUILTIN_MERGE2D})"
        refine, merge = Path(self.refine2d[-1]), Path(self.merge2d[-1])
        shown = merge.name if merge.parent == refine.parent else str(merge)
        return f"cisTEM {refine} + {shown}"


def _is_builtin_name(path: str) -> bool:
    return Path(path).name.startswith("live2d-")


def _executable(path: str, setting: str) -> str:
    """The configured program as an absolute path; raises when it is missing."""
    if os.sep not in path:
        found = shutil.which(path)
        if found is None:
            raise EngineConfigError(f"{setting} = {path!r} is not on PATH")
        return found
    candidate = Path(path).expanduser()
    if not candidate.is_file() or not os.access(candidate, os.X_OK):
        raise EngineConfigError(f"{setting} = {path!r} is not an executable file")
    return str(candidate.absolute())


def _configured_pair(server: ServerConfig) -> EnginePrograms:
    refine = _executable(server.refine2d, "refine2d")
    merge = _executable(server.merge2d, "merge2d")
    builtin_refine, builtin_merge = _is_builtin_name(refine), _is_builtin_name(merge)
    if builtin_refine != builtin_merge:
        raise EngineConfigError(
            f"refine2d ({refine}) and merge2d ({merge}) belong to different engines; their dump "
            "files are not compatible — configure a matching pair"
        )
    if Path(refine).parent != Path(merge).parent:
        raise EngineConfigError(
            f"refine2d ({refine}) and merge2d ({merge}) come from different installations; "
            "configure both from the same folder"
        )
    kind = EngineKind.BUILTIN if builtin_refine else EngineKind.CISTEM
    if server.engine is EngineKind.BUILTIN and kind is EngineKind.CISTEM:
        raise EngineConfigError(
            "engine = builtin, but refine2d/merge2d name cisTEM's programs; clear them or set "
            "engine = cistem"
        )
    if server.engine is EngineKind.CISTEM and kind is EngineKind.BUILTIN:
        raise EngineConfigError(
            "engine = cistem, but refine2d/merge2d name the built-in programs; set engine = "
            "builtin or name cisTEM's programs"
        )
    return EnginePrograms(kind=kind, refine2d=[refine], merge2d=[merge])


def builtin_programs() -> EnginePrograms:
    """This package's engine: console scripts beside the interpreter, else ``python -m``."""
    bindir = Path(sys.executable).parent
    refine = bindir / BUILTIN_REFINE2D
    merge = bindir / BUILTIN_MERGE2D
    if all(p.is_file() and os.access(p, os.X_OK) for p in (refine, merge)):
        return EnginePrograms(EngineKind.BUILTIN, [str(refine)], [str(merge)])
    return EnginePrograms(
        EngineKind.BUILTIN,
        [sys.executable, "-m", "live2d_tui.engine.refine2d"],
        [sys.executable, "-m", "live2d_tui.engine.merge2d"],
    )


def cistem_on_path() -> EnginePrograms | None:
    """cisTEM's pair when both programs are on ``PATH`` in the same folder, else ``None``."""
    refine, merge = shutil.which("refine2d"), shutil.which("merge2d")
    if refine is None or merge is None or Path(refine).parent != Path(merge).parent:
        return None
    return EnginePrograms(EngineKind.CISTEM, [refine], [merge])


def resolve_engine(server: ServerConfig) -> EnginePrograms:
    """The refine2d/merge2d pair the configuration asks for.

    Raises:
        EngineConfigError: Only one program of a pair is configured, the pair mixes engines or
            installations, a configured program is missing, or ``engine = cistem`` and cisTEM's
            programs are neither configured nor on ``PATH``.
    """
    if bool(server.refine2d) != bool(server.merge2d):
        raise EngineConfigError(
            "refine2d and merge2d are a pair: set both programs or neither "
            f"(refine2d={server.refine2d!r}, merge2d={server.merge2d!r})"
        )
    if server.refine2d:
        return _configured_pair(server)
    if server.engine is EngineKind.BUILTIN:
        return builtin_programs()
    found = cistem_on_path()
    if found is not None:
        return found
    if server.engine is EngineKind.CISTEM:
        raise EngineConfigError(
            "engine = cistem, but refine2d and merge2d were not found: set their paths in "
            "[server] refine2d / merge2d of the configuration, put cisTEM's folder on PATH, or "
            "use engine = builtin"
        )
    return builtin_programs()
