"""Fixtures shared by the claims: the profile, the seed offset and the report folder.

The command-line options themselves live in the root ``conftest.py``.
"""

from __future__ import annotations

import pathlib

import pytest

_CLAIMS = pathlib.Path(__file__).parent


@pytest.fixture(scope="session")
def profile(request) -> str:
    """``"quick"`` (default; CPU, minutes) or ``"full"`` (paper-scale; meant for a GPU)."""
    return request.config.getoption("--claims-profile")


@pytest.fixture(scope="session")
def seed_offset(request) -> int:
    """``--claims-seed-offset``: which fresh seed set every seed list is shifted to."""
    offset = request.config.getoption("--claims-seed-offset")
    if offset < 0:
        msg = f"--claims-seed-offset must be >= 0, got {offset}"
        raise pytest.UsageError(msg)
    return offset


@pytest.fixture(scope="session")
def device(profile) -> str:
    """``"cuda"`` for the full profile where a GPU is present, else ``"cpu"``."""
    import torch

    return "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def setup(request, profile):
    """The module's pre-registered setup for the profile: ``SETUPS[profile]`` of the
    module (every claim module keeps its sizes, seeds and thresholds there)."""
    return request.module.SETUPS[profile]


@pytest.fixture(scope="session")
def report_dir(request) -> pathlib.Path | None:
    """The folder for figures, or None when ``--claims-report`` was not given."""
    folder = request.config.getoption("--claims-report")
    if folder is None:
        return None
    path = pathlib.Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pytest_collection_modifyitems(items):
    """Every test under claims/ (and only those) is a claim."""
    for item in items:
        if _CLAIMS in pathlib.Path(item.path).parents:
            item.add_marker(pytest.mark.claim)
