"""Fixtures shared by the claims: the profile (sizes and seeds) and the report folder.

The command-line options themselves live in the root ``conftest.py``.
"""

from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(scope="session")
def profile(request) -> str:
    """``"quick"`` (default; CPU, minutes) or ``"full"`` (paper-scale; meant for a GPU)."""
    return request.config.getoption("--claims-profile")


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
    """Every test under claims/ is a claim."""
    for item in items:
        item.add_marker(pytest.mark.claim)
