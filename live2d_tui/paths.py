"""Where things live: the one output-folder rule, Warp-folder resolution, the last-session pointer.

Every command that needs an output folder asks :func:`output_folder_for`, so ``live2d run``,
``live2d open`` and the UI agree on one rule:

1. ``--out`` when given;
2. else ``<live2d_prefix>/<session name>[/<live2d_suffix>]`` when a Live2D prefix is configured,
   where the session name is the Warp folder's name under ``warp_prefix`` (the original Live2D's
   mapping);
3. else ``<warp folder>/classification``.

The last-session pointer (``~/.live2d/last_session.json``, moved by ``$LIVE2D_HOME``) names the
Warp folder and output folder the supervisor last worked on; it is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from live2d_tui.atomic import atomic_write_json
from live2d_tui.config import ServerConfig, config_dir

DEFAULT_OUTPUT_NAME = "classification"
"""Sub-folder of the Warp folder used when no Live2D prefix is configured (the seed's default)."""


class PathError(ValueError):
    """A session name or folder cannot be resolved; the message says why."""


def _absolute(path: Path) -> Path:
    return Path(path).expanduser().absolute()


def session_name(warp_folder: Path, server: ServerConfig) -> str:
    """The session name of a Warp folder: its first component under ``warp_prefix``.

    Without a prefix (or for a folder outside it) the name is the folder's own name, or its
    parent's name when the folder is the configured ``warp_suffix`` sub-folder.
    """
    folder = _absolute(warp_folder)
    if server.warp_prefix:
        prefix = _absolute(Path(server.warp_prefix))
        try:
            relative = folder.relative_to(prefix)
        except ValueError:
            relative = None
        if relative is not None and relative.parts:
            return relative.parts[0]
    suffix_parts = Path(server.warp_suffix).parts if server.warp_suffix else ()
    if suffix_parts and folder.parts[-len(suffix_parts) :] == suffix_parts:
        base = folder.parents[len(suffix_parts) - 1]
        if base.name:
            return base.name
    return folder.name


def resolve_warp_folder(name_or_path: str, server: ServerConfig) -> Path:
    """The Warp folder meant by a session name or a path.

    An absolute path (or one starting with ``~``, ``.`` or containing a separator) is taken as
    it is. A bare name is ``<warp_prefix>/<name>[/<warp_suffix>]`` when a prefix is configured,
    else a folder relative to the current directory.

    Raises:
        PathError: the text is empty.
    """
    text = name_or_path.strip()
    if not text:
        raise PathError("no Warp folder given: type a session name or an absolute path")
    path = Path(text).expanduser()
    bare = not path.is_absolute() and len(path.parts) == 1 and text not in {".", ".."}
    if bare and server.warp_prefix:
        folder = Path(server.warp_prefix).expanduser() / text
        if server.warp_suffix:
            folder = folder / server.warp_suffix
        return _absolute(folder)
    return _absolute(path)


def output_folder_for(warp_folder: Path, server: ServerConfig, out: Path | None = None) -> Path:
    """The output folder of a Warp folder (the one rule; see the module docstring)."""
    if out is not None:
        return _absolute(out)
    if server.live2d_prefix:
        folder = Path(server.live2d_prefix).expanduser() / session_name(warp_folder, server)
        if server.live2d_suffix:
            folder = folder / server.live2d_suffix
        return _absolute(folder)
    return _absolute(warp_folder) / DEFAULT_OUTPUT_NAME


def last_session_pointer() -> Path:
    """The file naming the last session: ``<config dir>/last_session.json``."""
    return config_dir() / "last_session.json"


@dataclass(frozen=True, slots=True)
class LastSession:
    """What the last-session pointer holds."""

    warp_folder: Path
    output_folder: Path


def write_last_session(warp_folder: Path, output_folder: Path) -> None:
    """Point ``~/.live2d/last_session.json`` at this session (atomically)."""
    pointer = last_session_pointer()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        pointer,
        {
            "warp_folder": str(_absolute(warp_folder)),
            "output_folder": str(_absolute(output_folder)),
        },
    )


def read_last_session() -> LastSession | None:
    """The last session, or ``None`` when there is none or the pointer is unreadable."""
    try:
        data = json.loads(last_session_pointer().read_text(encoding="utf-8"))
        return LastSession(Path(data["warp_folder"]), Path(data["output_folder"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
