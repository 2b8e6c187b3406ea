"""Configuration: one validated model for the server settings, one for the job settings.

Both live in ``~/.live2d/config.toml`` (``$LIVE2D_HOME`` moves the folder), which is written with
a comment above every key the first time the program runs. The command line overrides the file;
a session's saved state (``latest_run.json``) stores the job settings under the same names.

**Job-setting names are the original Live2D's keys** (``mask_radius``, ``classification_type``,
``high_res_initial``, ...). They are the same in TOML, on the command line (``--set KEY=VALUE``)
and in saved state; there is no second settings mechanism. Later features add fields here.

Every field carries its documentation in ``metadata["help"]``: the TOML comments, ``--help``
texts and the settings form all read it from there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Self, get_type_hints

from live2d_tui.atomic import atomic_write_text


class ConfigError(ValueError):
    """A setting has a wrong type or value, or the configuration file cannot be read."""


def _doc(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


class ClassificationType(StrEnum):
    """The three classification macros of the original Live2D, and streaming."""

    ABINIT = "abinit"
    """Ab initio: random seed classes, a startup ramp on a subset, then refinement cycles."""
    SEEDED = "seeded"
    """Seeded startup: the startup ramp with all particles, from the latest classes."""
    REFINE = "refine"
    """Refinement: cycles at the final resolution limit from the latest classes."""
    STREAMING = "streaming"
    """Streaming: each update classifies only the particles that arrived since the last one
    (plus a few revisited blocks) and folds them into the latest classes
    (:mod:`live2d_tui.classify.streaming`)."""

    @property
    def label(self) -> str:
        """The name a user sees."""
        return {
            ClassificationType.ABINIT: "Ab Initio",
            ClassificationType.SEEDED: "Seeded Startup",
            ClassificationType.REFINE: "Refinement",
            ClassificationType.STREAMING: "Streaming",
        }[self]


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """Settings of a classification job (the original Live2D's ``settings`` block)."""

    mask_radius: float = field(
        default=120.0,
        metadata=_doc(
            "Radius of the circular mask applied to particles and classes, in Å. "
            "Guessed as 0.6 × Warp's particle diameter when a session is created.",
            group="user",
            label="Mask radius (Å)",
        ),
    )
    classification_type: ClassificationType = field(
        default=ClassificationType.ABINIT,
        metadata=_doc(
            "abinit (new classes from random seeds), seeded (startup ramp from the latest "
            "classes, all particles), refine (refinement cycles only) or streaming (each update "
            "classifies only the new particles against the latest classes). A successful ab "
            "initio job switches this to streaming (stream_after_abinit) or else to seeded.",
            group="user",
            label="Classification type",
        ),
    )
    high_res_initial: float = field(
        default=40.0,
        metadata=_doc(
            "High-resolution limit of the first startup cycle, in Å.", label="Initial high res (Å)"
        ),
    )
    high_res_final: float = field(
        default=8.0,
        metadata=_doc(
            "High-resolution limit of the last startup cycle and of every refinement cycle, Å.",
            label="Final high res (Å)",
        ),
    )
    run_count_startup: int = field(
        default=15,
        metadata=_doc(
            "Startup cycles; the limit ramps linearly from initial to final over them.",
            label="Startup cycles",
        ),
    )
    run_count_refine: int = field(
        default=5,
        metadata=_doc(
            "Refinement cycles at the final limit with all particles (≥ 3 recommended; 2 beyond "
            "about a million particles).",
            label="Refinement cycles",
        ),
    )
    particle_count_initial: int = field(
        default=50_000,
        metadata=_doc(
            "Active particles needed before the first automatic job starts.",
            label="Particles before first job",
        ),
    )
    particle_count_update: int = field(
        default=50_000,
        metadata=_doc(
            "New particles (ingested after the last cycle's input was built) needed before the "
            "next automatic job.",
            label="New particles per update",
        ),
    )
    class_number: int = field(
        default=50,
        metadata=_doc(
            "Number of classes (ab initio only; seeded and refine keep the latest classes).",
            label="Number of classes",
        ),
    )
    particles_per_class: int = field(
        default=300,
        metadata=_doc(
            "Particles per class used in each ab initio startup cycle: the fraction used is "
            "min(1, classes × this / particles). Try 1000 for preferred orientation.",
            label="Particles per class",
        ),
    )
    automask: bool = field(
        default=False,
        metadata=_doc(
            "Automatically mask the class averages (refine2d's auto-mask).", label="Automask"
        ),
    )
    autocenter: bool = field(
        default=True,
        metadata=_doc(
            "Automatically centre the class averages (refine2d's auto-centre).", label="Autocenter"
        ),
    )
    low_res_limit: float = field(
        default=300.0,
        metadata=_doc("Low-resolution limit of every cycle, in Å.", label="Low res limit (Å)"),
    )
    angular_step: float = field(
        default=15.0,
        metadata=_doc(
            "In-plane angular search step in degrees for refinement cycles (0 = automatic).",
            label="Angular step (°)",
        ),
    )
    search_range: float = field(
        default=49.5,
        metadata=_doc(
            "Maximum translation searched, in Å (0 = half the box).", label="Search range (Å)"
        ),
    )
    smoothing: float = field(
        default=1.0,
        metadata=_doc(
            "Likelihood smoothing factor (refine2d's tuning parameter; < 1 blurs).",
            label="Smoothing",
        ),
    )
    stream_after_abinit: bool = field(
        default=True,
        metadata=_doc(
            "After a successful ab initio job the classification type becomes streaming (each "
            "update folds the new particles into the classes); false: seeded, as in the "
            "original Live2D.",
            label="Stream after ab initio",
        ),
    )
    stream_batch: int = field(
        default=1000,
        metadata=_doc(
            "Streaming: new particles that start an update; each update's new particles form "
            "one block (several when more than twice this many have arrived).",
            label="Streaming batch",
        ),
    )
    stream_revisit: int = field(
        default=1,
        metadata=_doc(
            "Streaming: earlier blocks each update classifies again against the latest classes "
            "(least recently visited first), so early assignments do not stay for good.",
            label="Blocks revisited",
        ),
    )
    stream_dump_gb: float = field(
        default=20.0,
        metadata=_doc(
            "Streaming: disk space (GB) the blocks' kept partial sums may take; beyond it the "
            "two smallest neighbouring blocks are fused into one.",
            label="Stream dumps (GB)",
        ),
    )
    stream_star_minutes: float = field(
        default=5.0,
        metadata=_doc(
            "Streaming: the full cycle star (every particle) is written at most this often; the "
            "class averages are published at every update.",
            label="Full star every (min)",
        ),
    )
    stream_keep_cycles: int = field(
        default=20,
        metadata=_doc(
            "Streaming: updates the history keeps (with the cycles that have a full star).",
            label="Streaming cycles kept",
        ),
    )

    def validate(self) -> None:
        """Raise :class:`ConfigError` listing every invalid value."""
        problems: list[str] = []
        if not self.mask_radius > 0:
            problems.append(f"mask_radius must be > 0 Å (got {self.mask_radius})")
        if not self.high_res_initial > 0 or not self.high_res_final > 0:
            problems.append("high_res_initial and high_res_final must be > 0 Å")
        if self.high_res_final > self.high_res_initial:
            problems.append(
                f"high_res_final ({self.high_res_final} Å) must not be coarser than "
                f"high_res_initial ({self.high_res_initial} Å)"
            )
        if self.low_res_limit <= self.high_res_initial:
            problems.append(
                f"low_res_limit ({self.low_res_limit} Å) must be coarser than high_res_initial"
            )
        if self.run_count_startup < 1:
            problems.append(f"run_count_startup must be ≥ 1 (got {self.run_count_startup})")
        if self.run_count_refine < 0:
            problems.append(f"run_count_refine must be ≥ 0 (got {self.run_count_refine})")
        if self.classification_type is ClassificationType.REFINE and self.run_count_refine < 1:
            problems.append("a refine job needs run_count_refine ≥ 1")
        if self.particle_count_initial < 1 or self.particle_count_update < 1:
            problems.append("particle_count_initial and particle_count_update must be ≥ 1")
        if not 1 <= self.class_number <= 1000:
            problems.append(f"class_number must be 1–1000 (got {self.class_number})")
        if self.particles_per_class < 1:
            problems.append(f"particles_per_class must be ≥ 1 (got {self.particles_per_class})")
        if self.angular_step < 0 or self.angular_step > 180:
            problems.append(f"angular_step must be 0–180° (got {self.angular_step})")
        if self.search_range < 0:
            problems.append(f"search_range must be ≥ 0 Å (got {self.search_range})")
        if self.smoothing < 0.01:
            problems.append(f"smoothing must be ≥ 0.01 (got {self.smoothing})")
        if self.stream_batch < 1:
            problems.append(f"stream_batch must be ≥ 1 (got {self.stream_batch})")
        if self.stream_revisit < 0:
            problems.append(f"stream_revisit must be ≥ 0 (got {self.stream_revisit})")
        if not self.stream_dump_gb > 0:
            problems.append(f"stream_dump_gb must be > 0 (got {self.stream_dump_gb})")
        if self.stream_star_minutes < 0:
            problems.append(f"stream_star_minutes must be ≥ 0 (got {self.stream_star_minutes})")
        if self.stream_keep_cycles < 1:
            problems.append(f"stream_keep_cycles must be ≥ 1 (got {self.stream_keep_cycles})")
        if problems:
            raise ConfigError("; ".join(problems))

    def ignored_fields(self) -> frozenset[str]:
        """Fields this classification type does not use (the form greys them out)."""
        if self.classification_type is ClassificationType.SEEDED:
            return frozenset({"class_number", "particles_per_class"})
        if self.classification_type is ClassificationType.REFINE:
            return frozenset(
                {"class_number", "particles_per_class", "run_count_startup", "high_res_initial"}
            )
        if self.classification_type is ClassificationType.STREAMING:
            return frozenset(
                {
                    "class_number",
                    "particles_per_class",
                    "run_count_startup",
                    "run_count_refine",
                    "high_res_initial",
                    "particle_count_update",
                }
            )
        return frozenset()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-ready values, keyed by the canonical names."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, ignore_unknown: bool = False) -> Self:
        """Build validated settings from canonical names; values may be strings (old state)."""
        return _from_plain(cls, data, ignore_unknown=ignore_unknown)

    def with_changes(self, **changes: Any) -> Self:
        """A validated copy with some fields changed (values are coerced like overrides)."""
        return _from_plain(type(self), {**self.to_dict(), **changes}, ignore_unknown=False)


class EngineKind(StrEnum):
    """Which pair of refine2d/merge2d programs runs the classification."""

    AUTO = "auto"
    """cisTEM's programs when found (configured paths or ``PATH``), else the built-in engine."""
    BUILTIN = "builtin"
    """``live2d-refine2d`` / ``live2d-merge2d`` from this package."""
    CISTEM = "cistem"
    """cisTEM's ``refine2d`` / ``merge2d``."""


class ImageMode(StrEnum):
    """How class averages are drawn in the terminal."""

    AUTO = "auto"
    SIXEL = "sixel"
    TGP = "tgp"
    HALFCELL = "halfcell"
    UNICODE = "unicode"


class DesktopNotify(StrEnum):
    """Whether and how alerts become desktop notifications through the terminal."""

    OFF = "off"
    """No desktop notifications (alerts still show in the app and the session log)."""
    AUTO = "auto"
    """The terminal's own way, when it is known to have one (see the README)."""
    OSC9 = "osc9"
    """``ESC ] 9 ; text``: iTerm2, WezTerm, Ghostty."""
    OSC777 = "osc777"
    """``ESC ] 777 ; notify ; title ; body``: urxvt, foot, WezTerm, Ghostty, VTE with a patch."""
    OSC99 = "osc99"
    """kitty's own protocol (``ESC ] 99 ; … ; text``): title and body, in kitty and foot."""


class ExecutorKind(StrEnum):
    """Where a cycle's program runs execute."""

    LOCAL = "local"
    """A process pool on this machine (``pool_size`` at once)."""
    SLURM = "slurm"
    """One SLURM job per program run (``slurm_max_jobs`` in flight); see docs/slurm.md."""


SBATCH_OPTIONS_WE_SET: tuple[str, ...] = (
    "--job-name",
    "-J",
    "--comment",
    "--output",
    "-o",
    "--error",
    "-e",
    "--input",
    "-i",
    "--open-mode",
    "--parsable",
    "--wait",
    "-W",
    "--array",
    "-a",
    "--requeue",
    "--no-requeue",
    "--chdir",
    "-D",
    "--wrap",
)
"""sbatch options the SLURM executor sets itself (it finds its jobs, their logs and their end by
them), so ``slurm_extra_args`` may not contain them."""


def _sbatch_option_we_set(arg: str) -> str | None:
    """The option of :data:`SBATCH_OPTIONS_WE_SET` that ``arg`` gives, if any."""
    for option in SBATCH_OPTIONS_WE_SET:
        if option.startswith("--"):
            if arg == option or arg.startswith(f"{option}="):
                return option
        elif arg.startswith(option):  # -J, -Jname
            return option
    return None


class ParticleSource(StrEnum):
    """Which of Warp's particle tables feeds the combined stack."""

    GOOD = "goodparticles"
    """``goodparticles_<Model>.star``: micrographs that pass Warp's filters and selection."""
    ALL = "allparticles"
    """``allparticles_<Model>.star``: every picked particle, rejected micrographs included."""


def available_cpus() -> int:
    """CPUs this process may use (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Settings of the workstation: where sessions live, how program runs are executed, how things
    look."""

    microscope_name: str = field(
        default="", metadata=_doc("Shown in the title: 'Live 2D Classification on <name>'.")
    )
    warp_prefix: str = field(
        default="",
        metadata=_doc(
            "Folder holding Warp session folders; a session name resolves to "
            "<warp_prefix>/<session>[/<warp_suffix>]. Empty: give absolute paths."
        ),
    )
    warp_suffix: str = field(default="", metadata=_doc("Sub-folder of a session that Warp uses."))
    live2d_prefix: str = field(
        default="",
        metadata=_doc(
            "Where output folders go: <live2d_prefix>/<session>[/<live2d_suffix>]. Empty: "
            "<warp folder>/classification."
        ),
    )
    live2d_suffix: str = field(default="", metadata=_doc("Sub-folder of an output folder."))
    pool_size: int = field(
        default=0,
        metadata=_doc(
            "Processes that run at once (one thread each). 0 = the CPUs this process may use."
        ),
    )
    jobs_per_cycle: int = field(
        default=0,
        metadata=_doc(
            "refine2d program runs a cycle is split into. 0 = the pool size (slurm: "
            "slurm_max_jobs)."
        ),
    )
    engine: EngineKind = field(
        default=EngineKind.AUTO,
        metadata=_doc("auto, builtin or cistem (see refine2d / merge2d to name the programs)."),
    )
    refine2d: str = field(
        default="",
        metadata=_doc("Path of the refine2d program (a pair with merge2d). Empty: from PATH."),
    )
    merge2d: str = field(
        default="",
        metadata=_doc("Path of the merge2d program matching refine2d. Empty: from PATH."),
    )
    executor: ExecutorKind = field(
        default=ExecutorKind.LOCAL,
        metadata=_doc(
            "Where program runs execute: local (a process pool on this machine) or slurm (one "
            "SLURM job per program run; the output folder must be on a filesystem the nodes "
            "mount at the same path; see the slurm_* settings)."
        ),
    )
    slurm_partition: str = field(
        default="",
        metadata=_doc("SLURM: the partition (sbatch --partition). Empty: the cluster's default."),
    )
    slurm_account: str = field(
        default="", metadata=_doc("SLURM: the account charged (sbatch --account). Empty: none.")
    )
    slurm_qos: str = field(
        default="", metadata=_doc("SLURM: the quality of service (sbatch --qos). Empty: none.")
    )
    slurm_time_limit_minutes: int = field(
        default=60,
        metadata=_doc(
            "SLURM: time limit of each program run's job in whole minutes (sbatch --time). A job "
            "that reaches it is ended by SLURM and retried once. 0: the partition's default."
        ),
    )
    slurm_memory_mb: int = field(
        default=0,
        metadata=_doc(
            "SLURM: memory per job in MB (sbatch --mem). 0: the cluster's default. refine2d holds "
            "its class sums and one batch of particles; merge2d the sums of every class."
        ),
    )
    slurm_cpus_per_task: int = field(
        default=1,
        metadata=_doc(
            "SLURM: CPUs per job (sbatch --cpus-per-task); also refine2d's threads answer and "
            "OMP_NUM_THREADS (the built-in engine always computes on one thread)."
        ),
    )
    slurm_max_jobs: int = field(
        default=16,
        metadata=_doc(
            "SLURM: jobs of this session in SLURM's queue at once (pending or running); more "
            "program runs wait here. pool_size still counts the CPUs of this machine."
        ),
    )
    slurm_merge2d: bool = field(
        default=False,
        metadata=_doc(
            "SLURM: run merge2d as a SLURM job too. false: merge2d runs on this machine (one "
            "process, no queue wait; it then needs merge2d installed here)."
        ),
    )
    slurm_extra_args: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            'SLURM: more sbatch arguments, one per array item, e.g. ["--constraint=avx2", '
            '"--gres=gpu:0"]; they come after the ones above. Options the executor sets itself '
            "(job name, comment, output, error, requeue, chdir...) are refused."
        ),
    )
    slurm_prologue: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            'SLURM: shell lines each job runs before its program, e.g. ["module load cistem"]. '
            "Their output goes to the program run's log."
        ),
    )
    slurm_poll_seconds: float = field(
        default=5.0,
        metadata=_doc(
            "SLURM: seconds between squeue calls (one call for all jobs of the session; faster "
            "while a job is ending or being cancelled)."
        ),
    )
    slurm_file_wait_seconds: float = field(
        default=120.0,
        metadata=_doc(
            "SLURM: how long to wait, after a job ended, for its outputs to appear here at the "
            "size the node wrote (network filesystems show a node's files late)."
        ),
    )
    interval: float = field(
        default=5.0,
        metadata=_doc("Seconds between looks at the Warp folder and checks for new particles."),
    )
    niceness: int = field(
        default=10, metadata=_doc("nice level of classification processes (0–19).")
    )
    particle_source: ParticleSource = field(
        default=ParticleSource.GOOD,
        metadata=_doc("goodparticles (Warp's curated micrographs) or allparticles."),
    )
    images: ImageMode = field(
        default=ImageMode.AUTO,
        metadata=_doc("How to draw class averages: auto, sixel, tgp, halfcell or unicode."),
    )
    watchdog_minutes: float = field(
        default=10.0,
        metadata=_doc("A program run whose CPU time stops growing this long is treated as hung."),
    )
    resume_automatic: bool = field(
        default=True,
        metadata=_doc("After a crash, continue an interrupted automatic job on restart."),
    )
    min_free_gb: float = field(
        default=2.0,
        metadata=_doc("Stop ingesting when the output folder's disk has less free space (GB)."),
    )
    retry_seconds: float = field(
        default=30.0,
        metadata=_doc(
            "First wait before an automatic job that failed is retried, in seconds; it doubles "
            "for the next try. After 3 failures in a row automatic jobs stop (status failed)."
        ),
    )
    stall_minutes: float = field(
        default=15.0,
        metadata=_doc(
            "While automatic jobs are on: alert when Warp has written no new movie for this "
            "many minutes, or when every new movie for this long was rejected by Warp's "
            "filters (decimals allowed); and again when it resumes."
        ),
    )
    disk_alert_gb: float = field(
        default=20.0,
        metadata=_doc(
            "Alert when the disk holding the output folder has less free space than this (GB), "
            "with the time left at the current rate. 0 = never."
        ),
    )
    alert_hook: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            'A command run for every alert, e.g. ["/usr/local/bin/notify-chat", "--room", '
            '"em"]: an argument list (no shell runs it), given the alert as one JSON object '
            "on its standard input. Empty = none."
        ),
    )
    alert_hook_timeout: float = field(
        default=30.0,
        metadata=_doc("Seconds after which a hook that has not finished is ended."),
    )
    desktop_notifications: DesktopNotify = field(
        default=DesktopNotify.OFF,
        metadata=_doc(
            "Desktop notifications through the terminal: off, auto (the terminal's own way), "
            "osc9, osc777 or osc99. Inside tmux they need 'set -g allow-passthrough on'."
        ),
    )

    def validate(self) -> None:
        """Raise :class:`ConfigError` listing every invalid value."""
        problems: list[str] = []
        if self.pool_size < 0:
            problems.append(f"pool_size must be ≥ 0 (got {self.pool_size})")
        if self.jobs_per_cycle < 0:
            problems.append(f"jobs_per_cycle must be ≥ 0 (got {self.jobs_per_cycle})")
        if bool(self.refine2d) != bool(self.merge2d):
            problems.append(
                "refine2d and merge2d are a pair: set both programs or neither "
                f"(refine2d={self.refine2d!r}, merge2d={self.merge2d!r})"
            )
        problems += self._slurm_problems()
        if not self.interval > 0:
            problems.append(f"interval must be > 0 s (got {self.interval})")
        if not 0 <= self.niceness <= 19:
            problems.append(f"niceness must be 0–19 (got {self.niceness})")
        if not self.watchdog_minutes > 0:
            problems.append(f"watchdog_minutes must be > 0 (got {self.watchdog_minutes})")
        if self.min_free_gb < 0:
            problems.append(f"min_free_gb must be ≥ 0 (got {self.min_free_gb})")
        if self.retry_seconds < 0:
            problems.append(f"retry_seconds must be ≥ 0 (got {self.retry_seconds})")
        if not self.stall_minutes > 0:
            problems.append(f"stall_minutes must be > 0 (got {self.stall_minutes})")
        if self.disk_alert_gb < 0:
            problems.append(f"disk_alert_gb must be ≥ 0 (got {self.disk_alert_gb})")
        if not self.alert_hook_timeout > 0:
            problems.append(f"alert_hook_timeout must be > 0 s (got {self.alert_hook_timeout})")
        if any(not part for part in self.alert_hook):
            problems.append("alert_hook must be a list of non-empty strings (the program first)")
        if problems:
            raise ConfigError("; ".join(problems))

    def _slurm_problems(self) -> list[str]:
        problems: list[str] = []
        for name in ("slurm_partition", "slurm_account", "slurm_qos"):
            value = getattr(self, name)
            if value != value.strip() or any(c.isspace() for c in value):
                problems.append(f"{name} must not contain spaces (got {value!r})")
        if self.slurm_time_limit_minutes < 0:
            problems.append(
                f"slurm_time_limit_minutes must be ≥ 0 (got {self.slurm_time_limit_minutes})"
            )
        if self.slurm_memory_mb < 0:
            problems.append(f"slurm_memory_mb must be ≥ 0 (got {self.slurm_memory_mb})")
        if self.slurm_cpus_per_task < 1:
            problems.append(f"slurm_cpus_per_task must be ≥ 1 (got {self.slurm_cpus_per_task})")
        if self.slurm_max_jobs < 1:
            problems.append(f"slurm_max_jobs must be ≥ 1 (got {self.slurm_max_jobs})")
        if not self.slurm_poll_seconds >= 0.2:
            problems.append(f"slurm_poll_seconds must be ≥ 0.2 (got {self.slurm_poll_seconds})")
        if self.slurm_file_wait_seconds < 0:
            problems.append(
                f"slurm_file_wait_seconds must be ≥ 0 (got {self.slurm_file_wait_seconds})"
            )
        for arg in self.slurm_extra_args:
            option = _sbatch_option_we_set(arg)
            if option is not None:
                problems.append(
                    f"slurm_extra_args: {arg!r} sets {option}, which the SLURM executor sets itself"
                )
            elif not arg.strip():
                problems.append("slurm_extra_args: empty argument")
        for line in self.slurm_prologue:
            if "\n" in line or "\r" in line:
                problems.append(f"slurm_prologue: one line per item (got {line!r})")
        return problems

    def effective_pool_size(self) -> int:
        """The pool size in use: the configured one, or the CPUs available."""
        return self.pool_size or available_cpus()

    def effective_jobs_per_cycle(self) -> int:
        """refine2d program runs per cycle: the configured number, else the pool size (local) or
        ``slurm_max_jobs`` (slurm)."""
        if self.jobs_per_cycle:
            return self.jobs_per_cycle
        if self.executor == ExecutorKind.SLURM:
            return self.slurm_max_jobs
        return self.effective_pool_size()

    def to_dict(self) -> dict[str, Any]:
        """Plain values keyed by field name."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, ignore_unknown: bool = False) -> Self:
        """Build a validated server config from plain values."""
        return _from_plain(cls, data, ignore_unknown=ignore_unknown)

    def with_changes(self, **changes: Any) -> Self:
        """A validated copy with some fields changed."""
        return _from_plain(type(self), {**self.to_dict(), **changes}, ignore_unknown=False)


@dataclass(frozen=True)
class Config:
    """The whole configuration file: ``[server]`` and ``[job]`` (the defaults for new sessions)."""

    server: ServerConfig = field(default_factory=ServerConfig)
    job: JobSettings = field(default_factory=JobSettings)


# --------------------------------------------------------------------------- coercion


def _to_plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, tuple):
            value = list(value)
        out[f.name] = value.value if isinstance(value, StrEnum) else value
    return out


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def coerce_value(cls: type[Any], name: str, value: Any) -> Any:
    """Convert ``value`` (possibly a string from the command line or old state) to the type of
    field ``name`` of dataclass ``cls``; raise :class:`ConfigError` naming the field and the
    type it takes, e.g. ``class_number must be a whole number (got 'abc')``."""
    hints = get_type_hints(cls)
    if name not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ConfigError(f"unknown setting {name!r}; known settings: {known}")
    kind = hints[name]
    shown = repr(value) if isinstance(value, str) else str(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false (got {shown})")
    if kind is int:
        number = _number(value)
        if number is None or not number.is_integer():
            raise ConfigError(f"{name} must be a whole number (got {shown})")
        return int(number)
    if kind is float:
        number = _number(value)
        if number is None:
            raise ConfigError(f"{name} must be a number (got {shown})")
        return number
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        try:
            return kind(str(value).strip().lower())
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise ConfigError(f"{name} must be one of {allowed} (got {shown})") from None
    if kind is str:
        return str(value)
    if kind == tuple[str, ...]:
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return tuple(value)
        raise ConfigError(f'{name} must be an array of strings, e.g. ["a", "b"] (got {shown})')
    raise ConfigError(f"{name}: unsupported setting type {kind!r}")  # pragma: no cover


def _number(value: Any) -> float | None:
    """``value`` as a finite float (numbers or their text), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def _from_plain[T](cls: type[T], data: dict[str, Any], *, ignore_unknown: bool) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            if ignore_unknown:
                continue
            coerce_value(cls, key, value)  # raises with the list of known names
        values[key] = coerce_value(cls, key, value)
    obj = cls(**values)
    obj.validate()  # type: ignore[attr-defined]
    return obj


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``KEY=VALUE`` (from ``--set``) into its parts."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


# --------------------------------------------------------------------------- files


def config_dir() -> Path:
    """``$LIVE2D_HOME`` or ``~/.live2d``: the configuration and last-session pointer live here."""
    env = os.environ.get("LIVE2D_HOME")
    return Path(env).expanduser() if env else Path.home() / ".live2d"


def config_path() -> Path:
    """The configuration file."""
    return config_dir() / "config.toml"


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(str(v)) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        value = value.value
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _wrap(text: str, width: int = 96) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def render_toml(config: Config) -> str:
    """The configuration as TOML with each field's documentation as a comment above it."""
    out = [
        "# live2d-tui configuration. Command-line options override these values.",
        "# Job settings use the original Live2D's names; `live2d run --set KEY=VALUE` overrides",
        "# any of them for one run.",
        "",
    ]
    for table, obj in (("server", config.server), ("job", config.job)):
        out.append(f"[{table}]")
        for f in dataclasses.fields(obj):
            for line in _wrap(str(f.metadata.get("help", ""))):
                out.append(f"# {line}")
            out.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
            out.append("")
    return "\n".join(out)


def write_default_config() -> bool:
    """Write the commented default configuration to :func:`config_path` if there is none yet;
    returns whether it was written."""
    path = config_path()
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render_toml(Config()))
    return True


def load_config(path: Path | None = None, *, create: bool = True) -> Config:
    """Read the configuration file; write a commented default first if it does not exist.

    Unknown keys and wrong values raise :class:`ConfigError` naming the file and the key.
    """
    path = path or config_path()
    if not path.exists():
        config = Config()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, render_toml(config))
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown_tables = set(data) - {"server", "job"}
    if unknown_tables:
        raise ConfigError(f"{path}: unknown table(s) {sorted(unknown_tables)}; use [server], [job]")
    try:
        server = ServerConfig.from_dict(dict(data.get("server", {})))
        job = JobSettings.from_dict(dict(data.get("job", {})))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return Config(server=server, job=job)
