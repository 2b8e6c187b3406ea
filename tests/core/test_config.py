"""The configuration model: canonical names, validation, TOML round trip, overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from live2d_tui.config import (
    ClassificationType,
    Config,
    ConfigError,
    EngineKind,
    JobSettings,
    ServerConfig,
    load_config,
    parse_assignment,
    render_toml,
)

ORIGINAL_KEYS = {
    "mask_radius",
    "classification_type",
    "high_res_initial",
    "high_res_final",
    "run_count_startup",
    "run_count_refine",
    "particle_count_initial",
    "particle_count_update",
    "class_number",
    "particles_per_class",
    "automask",
    "autocenter",
}


def test_job_settings_use_the_original_keys_and_defaults() -> None:
    settings = JobSettings()
    data = settings.to_dict()
    assert set(data) >= ORIGINAL_KEYS
    assert data["classification_type"] == "abinit"
    assert (data["high_res_initial"], data["high_res_final"]) == (40.0, 8.0)
    assert (data["run_count_startup"], data["run_count_refine"]) == (15, 5)
    assert data["particle_count_initial"] == 50_000  # the documented default, not the code's 30 000
    assert (data["class_number"], data["particles_per_class"]) == (50, 300)
    assert data["automask"] is False and data["autocenter"] is True


def test_old_state_strings_are_coerced() -> None:
    """The original stored settings as strings; loading them gives typed values."""
    settings = JobSettings.from_dict(
        {
            "mask_radius": "100",
            "high_res_final": "7.5",
            "run_count_startup": "1",
            "automask": "false",
        }
    )
    assert settings.mask_radius == 100.0
    assert settings.high_res_final == 7.5  # the original crashed on int("7.5")
    assert settings.run_count_startup == 1
    assert settings.automask is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mask_radius": -1}, "mask_radius"),
        ({"high_res_final": 50}, "high_res_final"),
        ({"run_count_startup": 0}, "run_count_startup"),
        ({"class_number": 0}, "class_number"),
        ({"classification_type": "bogus"}, "classification_type"),
        ({"run_count_refine": 2.5}, "whole number"),
        ({"automask": "maybe"}, "true or false"),
        ({"no_such_key": 1}, "unknown setting"),
        ({"stream_batch": 0}, "stream_batch"),
        ({"stream_revisit": -1}, "stream_revisit"),
        ({"stream_dump_gb": 0}, "stream_dump_gb"),
        ({"stream_star_minutes": -1}, "stream_star_minutes"),
        ({"stream_keep_cycles": 0}, "stream_keep_cycles"),
    ],
)
def test_invalid_job_settings_are_refused_with_a_clear_message(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        JobSettings().with_changes(**changes)


@pytest.mark.parametrize(
    ("cls", "name", "value", "message"),
    [
        (JobSettings, "class_number", "abc", "class_number must be a whole number (got 'abc')"),
        (JobSettings, "mask_radius", "abc", "mask_radius must be a number (got 'abc')"),
        (JobSettings, "mask_radius", "nan", "mask_radius must be a number (got 'nan')"),
        (JobSettings, "automask", "maybe", "automask must be true or false (got 'maybe')"),
        (ServerConfig, "pool_size", "abc", "pool_size must be a whole number (got 'abc')"),
        (ServerConfig, "images", "png", "images must be one of auto, sixel"),
    ],
)
def test_a_wrong_type_names_the_setting_and_the_type_it_takes(
    cls: type[JobSettings] | type[ServerConfig], name: str, value: str, message: str
) -> None:
    # never Python's "could not convert string to float"
    with pytest.raises(ConfigError) as exc:
        cls().with_changes(**{name: value})
    assert str(exc.value).startswith(message), str(exc.value)


def test_ignored_fields_follow_the_classification_type() -> None:
    assert JobSettings().ignored_fields() == frozenset()
    seeded = JobSettings(classification_type=ClassificationType.SEEDED)
    assert "class_number" in seeded.ignored_fields()
    refine = JobSettings(classification_type=ClassificationType.REFINE)
    assert {"run_count_startup", "high_res_initial"} <= refine.ignored_fields()
    streaming = JobSettings().with_changes(classification_type="streaming")
    assert streaming.classification_type.label == "Streaming"
    assert {"class_number", "run_count_refine"} <= streaming.ignored_fields()
    assert "stream_batch" not in streaming.ignored_fields()


def test_server_config_refuses_half_an_engine_pair() -> None:
    with pytest.raises(ConfigError, match="pair"):
        ServerConfig().with_changes(refine2d="/opt/cistem/refine2d")
    ok = ServerConfig().with_changes(refine2d="/a/refine2d", merge2d="/a/merge2d", engine="cistem")
    assert ok.engine is EngineKind.CISTEM


def test_effective_pool_size_defaults_to_available_cpus() -> None:
    assert ServerConfig().effective_pool_size() >= 1
    assert ServerConfig(pool_size=3).effective_jobs_per_cycle() == 3
    assert ServerConfig(pool_size=3, jobs_per_cycle=8).effective_jobs_per_cycle() == 8


def test_first_use_writes_a_commented_file_that_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.toml"
    config = load_config(path)
    text = path.read_text(encoding="utf-8")
    assert "# Radius of the circular mask" in text
    assert "[server]" in text and "[job]" in text
    assert load_config(path) == config == Config()
    parsed = tomllib.loads(text)
    assert set(parsed["job"]) >= ORIGINAL_KEYS


def test_edited_file_is_read_and_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = render_toml(Config()).replace("class_number = 50", "class_number = 20")
    path.write_text(text, encoding="utf-8")
    assert load_config(path).job.class_number == 20
    path.write_text(text.replace("class_number = 20", "class_number = -3"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.toml.*class_number"):
        load_config(path)
    path.write_text("[job\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_parse_assignment() -> None:
    assert parse_assignment("class_number=20") == ("class_number", "20")
    with pytest.raises(ConfigError):
        parse_assignment("class_number")


def test_alert_settings_from_the_file_and_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = render_toml(Config())
    assert "alert_hook = []" in text and "stall_minutes = 15.0" in text
    hooked = text.replace(
        "alert_hook = []", 'alert_hook = ["/opt/pager", "--to", "em team"]'
    ).replace("stall_minutes = 15.0", "stall_minutes = 7.5")
    path.write_text(hooked, encoding="utf-8")
    server = load_config(path).server
    assert server.alert_hook == ("/opt/pager", "--to", "em team")
    assert server.stall_minutes == 7.5
    assert tomllib.loads(render_toml(Config(server=server)))["server"]["alert_hook"] == [
        "/opt/pager",
        "--to",
        "em team",
    ]
    from live2d_tui.cli import build_parser
    from live2d_tui.commands.common import config_from_args

    argv = ["run", "w", "--config", str(path), "--stall-minutes", "0.25"]
    args = build_parser(argv).parse_args(argv)
    assert config_from_args(args).server.stall_minutes == 0.25
    # an argument list only, like every list setting: one string would leave its splitting to guess
    for bad in ("alert_hook = [1, 2]", 'alert_hook = [""]', "alert_hook = 3", 'alert_hook = "a b"'):
        path.write_text(text.replace("alert_hook = []", bad), encoding="utf-8")
        with pytest.raises(ConfigError, match="alert_hook"):
            load_config(path)
    with pytest.raises(ConfigError, match="stall_minutes"):
        ServerConfig(stall_minutes=0).validate()
    with pytest.raises(ConfigError, match="desktop_notifications"):
        ServerConfig().with_changes(desktop_notifications="bell")
