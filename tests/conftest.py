"""Shared test configuration.

- Slow tests (``@pytest.mark.slow``) run only with ``--run-slow`` (CI passes it).
- Every test gets its own ``LIVE2D_HOME``, so nothing touches the real ``~/.live2d``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="run slow tests too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("live2d_home")
    monkeypatch.setenv("LIVE2D_HOME", str(home))
    return home
