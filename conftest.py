"""Root pytest configuration: thread pinning, hypothesis profiles, GPU skipping.

Options live here, not in ``claims/conftest.py``, because pytest only honours
``pytest_addoption`` in a root conftest for every way the suite can be invoked.
"""

from __future__ import annotations

import os
import time

import pytest
import torch
from hypothesis import HealthCheck, settings

# Two pytest-xdist workers each spinning two OpenMP threads on two cores run 20-60x
# slower (shared/performance.md): every test process uses one torch thread.
torch.set_num_threads(int(os.environ.get("HESSKIT_TEST_THREADS", "1")))

_START = pytest.StashKey[float]()

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the claims suite (here, not in claims/conftest.py; see the docstring)."""
    group = parser.getgroup("claims")
    group.addoption(
        "--claims-profile",
        choices=("quick", "full"),
        default="quick",
        help="quick: CPU sizes, minutes (default, CI); full: paper-scale sizes for a GPU",
    )
    group.addoption(
        "--claims-report",
        metavar="DIR",
        default=None,
        help="write report.json and the claims' PNG figures into DIR",
    )
    group.addoption(
        "--claims-seed-offset",
        type=int,
        metavar="N",
        default=0,
        help="run every claim (pilot seeds included) on the fresh seed set N (default 0)",
    )


def pytest_sessionstart(session) -> None:
    """Start the clock of the claims report's ``wall_time_s``."""
    session.config.stash[_START] = time.perf_counter()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """End the run with the table of claims: statistic, interval or p-value, decision."""
    from claims.report import format_table, records_from, run_metadata, write_report

    reports = [
        r for key in ("passed", "failed", "xfailed") for r in terminalreporter.stats.get(key, [])
    ]
    records = records_from(r for r in reports if getattr(r, "when", "call") == "call")
    records.sort(key=lambda record: record["id"])
    if not records:
        return
    terminalreporter.section("claims")
    for line in format_table(records):
        terminalreporter.write_line(line)
    folder = config.getoption("--claims-report")
    if folder is not None:
        metadata = run_metadata(
            profile=config.getoption("--claims-profile"),
            seed_offset=config.getoption("--claims-seed-offset"),
            wall_time_s=time.perf_counter() - config.stash[_START],
        )
        path = write_report(records, metadata, folder)
        terminalreporter.write_line(f"report written to {path}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` cleanly when no CUDA device is present."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
