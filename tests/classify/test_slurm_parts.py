"""The SLURM executor's parts that need no cluster: the job script (run by bash here), the
parsers of SLURM's output, the sbatch command, the registry, names and comments, the
configuration, and the queued/running counts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from live2d_tui.classify.executors import RunSpec, RunState
from live2d_tui.classify.executors.local import LocalExecutor
from live2d_tui.classify.executors.slurm import SlurmExecutor, wait_until_visible
from live2d_tui.classify.executors.slurm_cli import (
    JobStatus,
    ListedJob,
    SlurmError,
    SlurmSettings,
    never_starts,
    parse_sacct,
    parse_sbatch,
    parse_squeue_mine,
    parse_squeue_states,
    sbatch_argv,
)
from live2d_tui.classify.executors.slurm_jobs import (
    SlurmRegistry,
    belongs_to,
    job_comment,
    job_name,
)
from live2d_tui.classify.executors.slurm_script import (
    EndRecord,
    ScriptSpec,
    end_path,
    parse_end,
    render,
)
from live2d_tui.commands.run import format_event
from live2d_tui.config import (
    Config,
    ConfigError,
    ExecutorKind,
    ServerConfig,
    load_config,
    render_toml,
)
from live2d_tui.events import CycleProgress, CycleStage

# --------------------------------------------------------------------------- the job script


def run_script(spec: ScriptSpec, **env: str) -> tuple[int, str, EndRecord | None]:
    """Run a job script with bash as a node would, without SLURM: its output goes to the log."""
    with open(spec.log_path, "wb") as log:
        done = subprocess.run(
            ["bash"],
            input=render(spec).encode(),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "SLURM_JOB_ID": "77", **env},
            check=False,
        )
    end = end_path(spec.log_path)
    record = parse_end(end.read_text()) if end.exists() else None
    return done.returncode, spec.log_path.read_text(), record


def test_the_script_feeds_the_answers_and_records_exit_and_output_sizes(tmp_path: Path) -> None:
    folder = tmp_path / "out 'quoted' $dir"
    folder.mkdir()
    output = folder / "dump $x.dat"
    program = tmp_path / "program"
    # reads every answer line verbatim, writes them to its output, reports its environment
    program.write_text(
        "#!/bin/sh\n"
        'cat > "$1"\n'
        'echo "seed=$LIVE2D_ENGINE_SEED threads=$OMP_NUM_THREADS cwd=$(pwd) extra=$EXTRA"\n'
        "exit 0\n"
    )
    program.chmod(0o755)
    answers = "input $HOME.mrcs\n'quoted' \"answer\"\n\n`not run`\n"
    spec = ScriptSpec(
        argv=[str(program), str(output)],
        answers=answers,
        cwd=folder,
        log_path=folder / "run.log",
        outputs=[output, folder / "missing.star"],
        env={"LIVE2D_ENGINE_SEED": "5", "OMP_NUM_THREADS": "2"},
        prologue=["export EXTRA='from the prologue'"],
    )
    code, stdout, record = run_script(spec)
    assert code == 0, stdout
    assert output.read_text() == answers
    lines = stdout.splitlines()
    assert lines[0].startswith("[live2d] SLURM job 77 started on ")
    assert f"seed=5 threads=2 cwd={folder} extra=from the prologue" in lines
    assert lines[-1] == "[live2d] program ended with exit status 0"
    assert record is not None
    assert record == EndRecord(0, False, record.node, "", {output: len(answers)}, len(stdout))


def test_the_script_reports_a_program_that_cannot_start_or_fails(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    spec = ScriptSpec(argv=["no-such-program"], answers="x\n", cwd=tmp_path, log_path=log)
    code, stdout, record = run_script(spec)
    assert code == 127 and record is not None
    assert record.start_error.startswith("cannot start no-such-program on ")
    assert "not an executable program" in stdout

    spec = ScriptSpec(argv=["sh", "-c", "kill -9 $$"], answers="x\n", cwd=tmp_path, log_path=log)
    code, stdout, record = run_script(spec)
    assert code == 137 and record is not None
    assert record.exit_status == 137 and record.returncode == -9 and not record.hung

    missing = tmp_path / "gone"
    spec = ScriptSpec(argv=["true"], answers="x\n", cwd=missing, log_path=log)
    code, stdout, record = run_script(spec)
    assert code == 1 and record is not None and "cannot enter" in record.start_error


def test_the_scripts_watchdog_ends_a_program_whose_cpu_time_stops(tmp_path: Path) -> None:
    spec = ScriptSpec(
        argv=["sleep", "60"],
        answers="x\n",
        cwd=tmp_path,
        log_path=tmp_path / "run.log",
        watchdog_seconds=2,
    )
    _, stdout, record = run_script(spec)
    assert record is not None and record.hung and record.returncode == -15
    assert "no CPU time used for 2 s" in stdout


def test_end_records_that_are_incomplete_are_refused() -> None:
    assert parse_end("") is None
    assert parse_end("hung=0\nnode=x\n") is None
    record = parse_end("exit=0\nhung=1\nnode=n1\nsize=12 /a b/c\nsize=x /d\n")
    assert record == EndRecord(0, True, "n1", "", {Path("/a b/c"): 12})


# --------------------------------------------------------------------------- SLURM's output


def test_squeue_and_sacct_output_is_parsed() -> None:
    assert parse_squeue_states("12|RUNNING|None\n13|TIMEOUT|TimeLimit\njunk\n") == {
        12: JobStatus(12, "RUNNING", "None"),
        13: JobStatus(13, "TIMEOUT", "TimeLimit"),
    }
    sacct = "14|CANCELLED by 0|0:0\n14.batch|CANCELLED|0:15\n15|OUT_OF_MEMORY|0:125\n"
    assert parse_sacct(sacct) == {
        14: JobStatus(14, "CANCELLED", "", "0:0"),
        15: JobStatus(15, "OUT_OF_MEMORY", "", "0:125"),
    }
    mine = parse_squeue_mine("8|PENDING|live2d-x|live2d-tui run=a nonce=b folder=/p|q\n")
    assert mine == [ListedJob(8, "PENDING", "live2d-x", "live2d-tui run=a nonce=b folder=/p|q")]
    assert parse_sbatch("123\n") == 123 and parse_sbatch("124;cluster2\n") == 124
    with pytest.raises(SlurmError):
        parse_sbatch("sbatch: error: Batch job submission failed\n")


def test_states_and_reasons_read_as_users_expect() -> None:
    timeout = JobStatus(1, "TIMEOUT", "TimeLimit")
    assert timeout.ended and not timeout.running
    assert timeout.describe() == "TIMEOUT, reason TimeLimit"
    assert JobStatus(1, "CANCELLED", "None").describe() == "CANCELLED"
    assert JobStatus(1, "FAILED", "", "0:9").describe() == "FAILED, exit code 0:9"
    assert JobStatus(1, "COMPLETING", "None").running
    assert not JobStatus(1, "PENDING", "Resources").ended
    assert never_starts("PartitionConfig") and never_starts("QOSMaxCpuPerJobLimit")
    assert not never_starts("Resources") and not never_starts("Priority")


def test_the_sbatch_command_carries_every_setting_and_the_extra_args_last(tmp_path: Path) -> None:
    settings = SlurmSettings(
        partition="gpu,cpu",
        account="lab",
        qos="high",
        time_limit_minutes=90,
        memory_mb=4000,
        cpus_per_task=4,
        extra_args=("--constraint=avx2",),
    )
    log = tmp_path / "50%" / "r.log"
    argv = sbatch_argv(settings, name="live2d-x-r", comment="c d", log_path=log, cwd=tmp_path)
    assert argv[:2] == ["sbatch", "--parsable"]
    for expected in (
        "--job-name=live2d-x-r",
        "--comment=c d",
        f"--output={tmp_path}/50%%/r.log",  # sbatch reads %j, %x...: a literal % is doubled
        f"--chdir={tmp_path}",
        "--open-mode=append",
        "--no-requeue",
        "--cpus-per-task=4",
        "--partition=gpu,cpu",
        "--account=lab",
        "--qos=high",
        "--time=90",
        "--mem=4000M",
    ):
        assert expected in argv
    assert argv[-1] == "--constraint=avx2"
    unset = SlurmSettings(time_limit_minutes=0)
    bare = sbatch_argv(unset, name="n", comment="c", log_path=Path("/l"), cwd=Path("/"))
    optional = ("--partition", "--account", "--qos", "--time", "--mem")
    assert not any(a.startswith(optional) for a in bare)


def test_the_jobs_environment_carries_threads_seed_and_marker(tmp_path: Path) -> None:
    executor = SlurmExecutor(
        SlurmSettings(cpus_per_task=3),
        tmp_path,
        environ={"LIVE2D_ENGINE_SEED": "9", "HOME": "/root", "LIVE2D_BAD-NAME": "x"},
    )
    spec = RunSpec("r", ["p"], "", tmp_path / "l", tmp_path, env={"EXTRA": "1"})
    env = executor.job_environment(spec)
    assert env["LIVE2D_ENGINE_SEED"] == "9" and env["OMP_NUM_THREADS"] == "3"
    assert env["LIVE2D_OUTPUT_FOLDER"] == str(tmp_path.resolve()) and env["EXTRA"] == "1"
    assert "HOME" not in env and "LIVE2D_BAD-NAME" not in env
    assert executor.slots == 16 and executor.threads == 3


# --------------------------------------------------------------------------- finding jobs again


def test_job_names_and_comments_name_the_output_folder(tmp_path: Path) -> None:
    folder = tmp_path / "a folder"
    run = "cycle_2_merge2d_try1"
    name, comment = job_name(folder, run), job_comment(folder, run, "0123abcd")
    assert name.startswith("live2d-") and name.endswith(run)
    assert comment == f"live2d-tui run={run} nonce=0123abcd folder={folder.resolve()}"
    assert belongs_to(ListedJob(1, "PENDING", name, comment), folder)
    assert belongs_to(ListedJob(1, "PENDING", name, ""), folder)  # a site that drops comments
    assert not belongs_to(ListedJob(1, "PENDING", name, comment), tmp_path / "another")
    assert not belongs_to(ListedJob(1, "PENDING", "live2d-00000000-x", ""), folder)


def test_the_registry_records_the_intent_then_the_id_then_forgets(tmp_path: Path) -> None:
    registry = SlurmRegistry(tmp_path)
    registry.intend("n1", "cycle_1_refine2d_1_try1")
    on_disk = json.loads(registry.path.read_text())
    assert on_disk[0]["job_id"] is None and on_disk[0]["run"] == "cycle_1_refine2d_1_try1"
    registry.record("n1", 41)
    registry.intend("n2", "cycle_1_refine2d_2_try1")
    assert [e.job_id for e in SlurmRegistry(tmp_path).load()] == [41, None]
    registry.forget("n1")
    registry.forget("n2")
    assert not registry.path.exists()  # nothing to look for at the next start
    registry.path.parent.mkdir(exist_ok=True)
    registry.path.write_text("{damaged")
    assert registry.load() == []


# --------------------------------------------------------------------------- files seen late


def test_outputs_are_awaited_until_they_have_the_nodes_size(tmp_path: Path) -> None:
    dump = tmp_path / "dump_1.dat"

    def write_late() -> None:
        time.sleep(0.3)
        dump.write_bytes(b"x" * 10)
        time.sleep(0.3)
        with open(dump, "ab") as handle:
            handle.write(b"y" * 6)

    writer = threading.Thread(target=write_late)
    writer.start()
    try:
        assert wait_until_visible({dump: 16}, timeout=30) == {}
        assert dump.stat().st_size == 16
    finally:
        writer.join()
    assert wait_until_visible({tmp_path / "never": 5}, timeout=0.2) == {tmp_path / "never": -1}


# --------------------------------------------------------------------------- configuration


def test_slurm_settings_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[server]\n"
        'executor = "slurm"\n'
        'slurm_partition = "cryo"\n'
        "slurm_time_limit_minutes = 30\n"
        "slurm_max_jobs = 48\n"
        'slurm_extra_args = ["--constraint=avx2", "--nice=10"]\n'
        'slurm_prologue = ["module load cistem/2.0"]\n'
    )
    server = load_config(path).server
    assert server.executor is ExecutorKind.SLURM
    settings = SlurmSettings.from_server(server)
    assert settings.partition == "cryo" and settings.time_limit_minutes == 30
    assert settings.extra_args == ("--constraint=avx2", "--nice=10")
    assert settings.prologue == ("module load cistem/2.0",)
    assert server.effective_jobs_per_cycle() == 48  # jobs per cycle follow the slots in flight
    assert server.with_changes(jobs_per_cycle=5).effective_jobs_per_cycle() == 5
    # the written file documents and round-trips every setting, arrays included
    assert load_config(_written(tmp_path, server)).server == server


def _written(folder: Path, server: ServerConfig) -> Path:
    path = folder / "written.toml"
    text = render_toml(Config(server=server))
    assert "# SLURM: the partition" in text
    assert 'slurm_prologue = ["module load cistem/2.0"]' in text
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"executor": "pbs"}, "executor must be one of local, slurm"),
        ({"slurm_extra_args": ["--output=x"]}, "sets --output, which the SLURM executor"),
        ({"slurm_extra_args": ["-Jname"]}, "sets -J"),
        ({"slurm_extra_args": "--mem=1G"}, "must be an array of strings"),
        ({"slurm_prologue": ["a\nb"]}, "one line per item"),
        ({"slurm_partition": "a b"}, "must not contain spaces"),
        ({"slurm_cpus_per_task": 0}, "slurm_cpus_per_task must be ≥ 1"),
        ({"slurm_max_jobs": 0}, "slurm_max_jobs must be ≥ 1"),
        ({"slurm_poll_seconds": 0.01}, "slurm_poll_seconds must be ≥ 0.2"),
    ],
)
def test_bad_slurm_settings_are_refused_clearly(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServerConfig().with_changes(**changes)


# --------------------------------------------------------------------------- counts


def test_the_counts_text_shows_queued_and_running_runs() -> None:
    progress = CycleProgress(4, CycleStage.NOISE, 12.0, 1, 8, None, runs_queued=3, runs_running=4)
    assert progress.runs_text() == "runs 1/8 done, 4 running, 3 queued"
    assert format_event(progress) == "[cycle 4] noise 12% (runs 1/8 done, 4 running, 3 queued)"
    assert CycleProgress(4, CycleStage.MERGING, 90.0, 8, 8).runs_text() == "runs 8/8 done"


async def test_the_local_executor_reports_queued_then_running(tmp_path: Path) -> None:
    executor = LocalExecutor(1, niceness=0)
    seen: dict[str, list[RunState]] = {"a": [], "b": []}

    def spec(name: str) -> RunSpec:
        return RunSpec(name, ["sleep", "0.3"], "", tmp_path / f"{name}.log", tmp_path)

    async def one(name: str) -> None:
        await executor.run(spec(name), lambda _: None, seen[name].append)

    async with asyncio.TaskGroup() as group:
        group.create_task(one("a"))
        await asyncio.sleep(0.1)
        group.create_task(one("b"))
        await asyncio.sleep(0.1)
        # one slot: b waits for it, and says so
        assert seen == {"a": [RunState.QUEUED, RunState.RUNNING], "b": [RunState.QUEUED]}
    assert seen["b"] == [RunState.QUEUED, RunState.RUNNING]


def test_executor_slurm_on_the_command_line(tmp_path: Path) -> None:
    import argparse

    from live2d_tui.commands.common import add_config_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--config", str(tmp_path / "c.toml"), "--executor", "slurm"])
    assert config_from_args(args).server.executor is ExecutorKind.SLURM
    args = parser.parse_args(["--config", str(tmp_path / "c.toml"), "--executor", "lsf"])
    with pytest.raises(ConfigError, match="executor"):
        config_from_args(args)
