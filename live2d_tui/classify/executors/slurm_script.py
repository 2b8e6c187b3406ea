"""The batch script of one SLURM job (one program run) and the end record it leaves.

The script is handed to ``sbatch`` on stdin (nothing to clean up) and runs under bash on a node:

1. prints ``[live2d] SLURM job <id> started on <node> at <time>`` — the first line of the run's
   log, which also tells the executor the job runs;
2. runs the prologue lines (``module load cistem``...), exports the thread settings, the output
   folder's marker and the ``LIVE2D_*`` variables of the supervisor (e.g. the engine's seed),
   so they reach the program whatever ``--export`` the cluster uses, and enters the working
   folder (stopping if it cannot: SLURM itself would silently fall back to ``/tmp``);
3. runs the program with its answers on stdin from a here-document, and a CPU-time watchdog
   beside it (the same rule as the local executor's: a program whose CPU time does not grow for
   ``watchdog`` seconds is ended as hung). It starts with the program, so time spent pending in
   the queue never counts;
4. writes the **end record** ``<log>.end`` atomically (temporary file + ``mv``): the program's
   exit status, whether the watchdog ended it, the node, and the size of each expected output
   and of the log as the node sees them — the executor waits until its own view of the files
   has those sizes before it reports the run (network filesystems show a node's writes late),
   then deletes it.

A job that SLURM ends (time limit, node failure, out of memory, scancel) leaves no end record:
its state and reason come from SLURM.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

END_SUFFIX = ".end"
"""The end record is the log's name plus this."""
HUNG_SUFFIX = ".hung"
"""Left by the watchdog beside the log while it ends a hung program (removed by the script)."""
STARTED_PREFIX = "[live2d] SLURM job "
"""The first line a running job writes to its log."""
ENDED_PREFIX = "[live2d] program ended"
"""The line the script writes to the log once the program has exited (the end record follows)."""
TERM_GRACE_SECONDS = 5
"""Seconds between the watchdog's SIGTERM and SIGKILL."""


def end_path(log_path: Path) -> Path:
    """The end record of the run logging to ``log_path``."""
    return log_path.with_name(log_path.name + END_SUFFIX)


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """What one job script runs."""

    argv: Sequence[str]
    answers: str
    """The program's stdin: one answer per line, each ending in a newline."""
    cwd: Path
    log_path: Path
    outputs: Sequence[Path] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Exported before the program starts (thread settings, marker, ``LIVE2D_*``...)."""
    prologue: Sequence[str] = ()
    watchdog_seconds: float = 600.0


def render(spec: ScriptSpec) -> str:
    """The bash script (see the module docstring)."""
    q = shlex.quote
    end = end_path(spec.log_path)
    delimiter = f"LIVE2D_ANSWERS_{secrets.token_hex(6)}"
    if any(line == delimiter for line in spec.answers.splitlines()):  # pragma: no cover
        raise ValueError("an answer equals the here-document's delimiter")
    watchdog = max(1, int(-(-spec.watchdog_seconds // 1)))
    tick = max(1, min(5, watchdog // 5))
    program = spec.argv[0]
    lines = [
        "#!/bin/bash",
        f"# live2d-tui program run: {' '.join(q(a) for a in spec.argv)}",
        f'echo "{STARTED_PREFIX}${{SLURM_JOB_ID:-?}} started on $(hostname) at '
        "$(date '+%Y-%m-%d %H:%M:%S')\"",
        *spec.prologue,
        *(f"export {name}={q(value)}" for name, value in sorted(spec.env.items())),
        f"live2d_end={q(str(end))}",
        f"live2d_hung={q(str(spec.log_path) + HUNG_SUFFIX)}",
        "live2d_finish() {  # exit status, hung (0/1), start error",
        "  {",
        '    printf \'exit=%s\\nhung=%s\\nnode=%s\\n\' "$1" "$2" "$(hostname)"',
        '    if [ -n "$3" ]; then printf \'start_error=%s\\n\' "$3"; fi',
        f"    if [ -f {q(str(spec.log_path))} ]; then",
        f"      printf 'log=%s\\n' \"$(( $(wc -c < {q(str(spec.log_path))}) ))\"",
        "    fi",
        f"    for f in {' '.join(q(str(p)) for p in spec.outputs)}; do",
        '      if [ -f "$f" ]; then',
        '        printf \'size=%s %s\\n\' "$(( $(wc -c < "$f") ))" "$f"',
        "      fi",
        "    done",
        "    true",
        '  } > "$live2d_end.tmp.$$" && mv -f -- "$live2d_end.tmp.$$" "$live2d_end"',
        "}",
        f"if ! cd -- {q(str(spec.cwd))}; then",
        f'  live2d_msg={q(f"cannot enter {spec.cwd}")}" on $(hostname)"',
        '  echo "[live2d] $live2d_msg"; live2d_finish 1 0 "$live2d_msg"; exit 1',
        "fi",
        f"if ! command -v -- {q(program)} >/dev/null 2>&1; then",
        f'  live2d_msg={q(f"cannot start {program}")}" on $(hostname): not an executable program"',
        '  echo "[live2d] $live2d_msg"; live2d_finish 127 0 "$live2d_msg"; exit 127',
        "fi",
        'rm -f -- "$live2d_hung"',
        f"{' '.join(q(a) for a in spec.argv)} <<'{delimiter}' &",
        spec.answers[:-1] if spec.answers.endswith("\n") else spec.answers,
        delimiter,
        "live2d_pid=$!",
        "live2d_cpu() {  # CPU ticks of a process (utime + stime + cutime + cstime)",
        '  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1',
        "  s=${s##*) }; set -- $s; echo $(( ${12} + ${13} + ${14} + ${15} ))",
        "}",
        "(",
        "  trap 'kill \"$live2d_sleep\" 2>/dev/null; exit 0' TERM",
        '  last=""; still=0',
        "  while :; do",
        f'    sleep {tick} & live2d_sleep=$!; wait "$live2d_sleep"',
        '    cpu=$(live2d_cpu "$live2d_pid") || exit 0',
        '    if [ "$cpu" != "$last" ]; then last=$cpu; still=0;',
        f"    else still=$((still + {tick})); fi",
        f'    if [ "$still" -ge {watchdog} ]; then',
        f'      echo "[live2d] no CPU time used for {watchdog} s: treating the program run as '
        'hung and ending it"',
        '      : > "$live2d_hung"',
        '      kill -TERM "$live2d_pid" 2>/dev/null; n=0',
        f'      while [ "$n" -lt {TERM_GRACE_SECONDS} ] && kill -0 "$live2d_pid" 2>/dev/null; do',
        "        sleep 1; n=$((n + 1))",
        "      done",
        '      kill -KILL "$live2d_pid" 2>/dev/null',
        "      exit 0",
        "    fi",
        "  done",
        ") &",
        "live2d_dog=$!",
        'wait "$live2d_pid"; live2d_rc=$?',
        'kill "$live2d_dog" 2>/dev/null; wait "$live2d_dog" 2>/dev/null',
        'live2d_hung_flag=0; [ -e "$live2d_hung" ] && live2d_hung_flag=1',
        'rm -f -- "$live2d_hung"',
        f'echo "{ENDED_PREFIX} with exit status $live2d_rc"',
        'live2d_finish "$live2d_rc" "$live2d_hung_flag" ""',
        'exit "$live2d_rc"',
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class EndRecord:
    """What the script wrote once the program had exited."""

    exit_status: int
    """As the shell saw it: 128 + N when signal N killed the program."""
    hung: bool = False
    node: str = ""
    start_error: str = ""
    sizes: dict[Path, int] = field(default_factory=dict)
    """Each expected output that existed, with its size on the node."""
    log_size: int = -1
    """The log's size on the node when the program had ended (-1: unknown)."""

    @property
    def returncode(self) -> int:
        """The exit status in the local executor's terms: ``-N`` when signal N (1–64) ended the
        program. (A program's own exit statuses above 128 look alike; cisTEM's are 0, 1, 255.)"""
        if 128 < self.exit_status <= 128 + 64:
            return -(self.exit_status - 128)
        return self.exit_status


_LINE = re.compile(r"^(exit|hung|node|start_error|size|log)=(.*)$")


def parse_end(text: str) -> EndRecord | None:
    """Parse an end record; ``None`` when it is incomplete or damaged."""
    values: dict[str, str] = {}
    sizes: dict[Path, int] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        key, value = match.groups()
        if key == "size":
            size, _, path = value.partition(" ")
            if size.isdigit() and path:
                sizes[Path(path)] = int(size)
        else:
            values[key] = value
    try:
        status = int(values["exit"])
    except (KeyError, ValueError):
        return None
    return EndRecord(
        exit_status=status,
        hung=values.get("hung") == "1",
        node=values.get("node", ""),
        start_error=values.get("start_error", ""),
        sizes=sizes,
        log_size=int(values["log"]) if values.get("log", "").isdigit() else -1,
    )
