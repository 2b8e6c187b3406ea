"""Shared test configuration.

- Slow tests (``@pytest.mark.slow``) run only with ``--run-slow`` (CI passes it).
- Every test gets its own ``LIVE2D_HOME``, so nothing touches the real ``~/.live2d``.
- Tests that need a real SLURM take the ``slurm`` fixture: they skip, saying why, when no SLURM
  controller answers — or fail, when ``LIVE2D_REQUIRE_SLURM=1`` (CI started one with
  ``.ci/slurm-up``).
"""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def _slurm_problem() -> str:
    from live2d_tui.classify.executors.slurm_cli import slurm_answers

    return slurm_answers()


@pytest.fixture
def slurm(_slurm_problem: str) -> None:
    """A SLURM controller answers (see the module docstring)."""
    if not _slurm_problem:
        return
    message = f"no SLURM answers ({_slurm_problem}); `.ci/slurm-up` starts a one-node cluster"
    if os.environ.get("LIVE2D_REQUIRE_SLURM") == "1":
        pytest.fail(f"{message} — LIVE2D_REQUIRE_SLURM=1 requires one")
    pytest.skip(message)


# --- simulated Warp sessions (owner: the simulator, live2d_tui.simulate) ---------------------


@pytest.fixture
def make_warp_session(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Factory: ``make_warp_session(**SimulationOptions fields) -> Path`` of a new session folder
    (Warp 1 layout unless ``warp2=True``; ground truth in ``<folder>/truth``)."""
    from live2d_tui.simulate import SimulationOptions, simulate_session

    def make(**options: object) -> Path:
        folder = tmp_path_factory.mktemp("warp_session")
        simulate_session(folder, SimulationOptions(**options))  # type: ignore[arg-type]
        return folder

    return make


@pytest.fixture
def small_warp_session(make_warp_session) -> Path:  # type: ignore[no-untyped-def]
    """A small finished Warp 1 session: 6 micrographs × ~50 particles (about 300), 64 px,
    3 Å/px, 150 Å diameter, 4 discrete views, SNR 0.1, seed 1."""
    return make_warp_session(  # type: ignore[no-any-return]
        micrographs=6,
        particles_per_micrograph=50,
        box=64,
        pixel_size=3.0,
        diameter=150.0,
        snr=0.1,
        views=4,
        seed=1,
    )
