"""Options shared by the commands that run the supervisor: server-setting overrides and
``--set KEY=VALUE`` job-setting overrides, applied on top of ``~/.live2d/config.toml``."""

from __future__ import annotations

import argparse
import dataclasses
from enum import StrEnum
from pathlib import Path
from typing import get_type_hints

from live2d_tui.config import Config, ConfigError, ServerConfig, load_config, parse_assignment

# flag → ServerConfig field
SERVER_FLAGS: dict[str, str] = {
    "--warp-prefix": "warp_prefix",
    "--warp-suffix": "warp_suffix",
    "--live2d-prefix": "live2d_prefix",
    "--live2d-suffix": "live2d_suffix",
    "--pool-size": "pool_size",
    "--jobs-per-cycle": "jobs_per_cycle",
    "--engine": "engine",
    "--refine2d": "refine2d",
    "--merge2d": "merge2d",
    "--executor": "executor",
    "--interval": "interval",
    "--niceness": "niceness",
    "--microscope-name": "microscope_name",
    "--particle-source": "particle_source",
    "--images": "images",
}


OUT_RULE = (
    "<live2d_prefix>/<session>[/<live2d_suffix>] when live2d_prefix is configured, "
    "else WARP_FOLDER/classification"
)
"""The output-folder rule (:func:`live2d_tui.paths.output_folder_for`) in ``--help`` words."""

_METAVARS: dict[type, str] = {int: "N", float: "X", str: "TEXT"}
_PATH_SETTINGS = frozenset(
    {"warp_prefix", "warp_suffix", "live2d_prefix", "live2d_suffix", "refine2d", "merge2d"}
)


def server_flag_help(name: str) -> tuple[str, str]:
    """(metavar, help) of the flag of server setting ``name``: the setting's documentation,
    the values it takes and its default (before the configuration file changes it)."""
    field = next(f for f in dataclasses.fields(ServerConfig) if f.name == name)
    kind = get_type_hints(ServerConfig)[name]
    default = getattr(ServerConfig(), name)
    choices: tuple[str, ...] = ()
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        choices = tuple(member.value for member in kind)
    if choices:
        metavar = "{" + ",".join(choices) + "}"
    elif name in _PATH_SETTINGS:
        metavar = "PATH"
    else:
        metavar = _METAVARS.get(kind, "VALUE")
    shown = default.value if isinstance(default, StrEnum) else default
    shown = "empty" if shown == "" else shown
    text = str(field.metadata.get("help", "")).replace("%", "%%")
    return metavar, f"{text} (default: {shown}, or [server] {name} in the configuration file)"


def add_config_arguments(parser: argparse.ArgumentParser, *, job: bool = True) -> None:
    """Add ``--config``, one flag per overridable server setting and (optionally) ``--set``."""
    group = parser.add_argument_group("configuration (overrides ~/.live2d/config.toml)")
    group.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="configuration file to read (default: ~/.live2d/config.toml; $LIVE2D_HOME moves "
        "~/.live2d)",
    )
    for flag, name in SERVER_FLAGS.items():
        metavar, help_text = server_flag_help(name)
        group.add_argument(
            flag, dest=f"server_{name}", default=None, metavar=metavar, help=help_text
        )
    if job:
        group.add_argument(
            "--set",
            dest="job_overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a job setting by its name, e.g. --set class_number=20 (repeatable; "
            "the settings and their defaults are listed in the configuration file's [job] table)",
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """The configuration file with the command line's overrides applied (validated)."""
    path = getattr(args, "config", None)
    # the default file is written once a session opens (Supervisor), not by a start that is
    # refused: a refused start leaves the disk as it was
    config = load_config(path, create=path is not None)
    server_changes = {
        name: getattr(args, f"server_{name}")
        for name in SERVER_FLAGS.values()
        if getattr(args, f"server_{name}", None) is not None
    }
    server = config.server.with_changes(**server_changes) if server_changes else config.server
    job = config.job
    overrides = job_overrides(args)
    if overrides:
        job = job.with_changes(**overrides)
    return Config(server=server, job=job)


def job_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--set`` assignments as a dict (later ones win); raises ConfigError on a bad one."""
    result: dict[str, str] = {}
    for text in getattr(args, "job_overrides", []) or []:
        key, value = parse_assignment(text)
        result[key] = value
    return result


__all__ = [
    "OUT_RULE",
    "SERVER_FLAGS",
    "ConfigError",
    "add_config_arguments",
    "config_from_args",
    "job_overrides",
]
