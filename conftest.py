"""Root pytest configuration: thread pinning, hypothesis profiles, GPU skipping.

Options live here, not in ``claims/conftest.py``, because pytest only honours
``pytest_addoption`` in a root conftest for every way the suite can be invoked.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# Two pytest-xdist workers each spinning two OpenMP threads on two cores run 20-60x
# slower (shared/performance.md): every test process uses one torch thread.
torch.set_num_threads(int(os.environ.get("HESSKIT_TEST_THREADS", "1")))

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` cleanly when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
