"""Options shared by the commands that run the supervisor: server-setting overrides and
``--set KEY=VALUE`` job-setting overrides, applied on top of ``~/.live2d/config.toml``."""

from __future__ import annotations

import argparse
from pathlib import Path

from live2d_tui.config import Config, ConfigError, load_config, parse_assignment

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
    "--stall-minutes": "stall_minutes",
    "--disk-alert-gb": "disk_alert_gb",
    "--desktop-notifications": "desktop_notifications",
}


def add_config_arguments(parser: argparse.ArgumentParser, *, job: bool = True) -> None:
    """Add ``--config``, one flag per overridable server setting and (optionally) ``--set``."""
    group = parser.add_argument_group("configuration (overrides ~/.live2d/config.toml)")
    group.add_argument("--config", type=Path, default=None, help="configuration file to read")
    for flag, name in SERVER_FLAGS.items():
        group.add_argument(
            flag,
            dest=f"server_{name}",
            default=None,
            metavar="VALUE",
            help=f"server setting {name}",
        )
    if job:
        group.add_argument(
            "--set",
            dest="job_overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a job setting by its name, e.g. --set class_number=20 (repeatable)",
        )


def config_from_args(args: argparse.Namespace) -> Config:
    """The configuration file with the command line's overrides applied (validated)."""
    config = load_config(getattr(args, "config", None))
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
    "SERVER_FLAGS",
    "ConfigError",
    "add_config_arguments",
    "config_from_args",
    "job_overrides",
]
