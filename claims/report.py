"""What each claim records, how a test concludes from it, and the JSON report of a run.

A claim test builds one :class:`ClaimRecord` -- its statistic, interval, three-way
decision, its opposite-setting :class:`Control` s and the raw per-setting, per-seed
numbers -- and calls :func:`conclude`. The record travels as a pytest ``user_property``
(so it survives pytest-xdist workers); the root ``conftest.py`` prints the table at the
end of the run and, with ``--claims-report DIR``, writes ``DIR/report.json`` in the
schema documented in ``claims/README.md`` (:func:`write_report`).

Decisions are ``holds``, ``fails`` or ``undecided``: each claim states which interval
outcomes mean which before its run. :mod:`claims.summary` merges the reports of several
seed offsets; a claim whose decision differs between them becomes ``undecided`` there.
"""

from __future__ import annotations

import json
import pathlib
import platform
from dataclasses import asdict, dataclass, field
from typing import Any

import pytest

PROPERTY = "hesskit_claim"
DECISIONS = ("holds", "fails", "undecided")
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Control:
    """An opposite setting where the claim's statistic must report the opposite.

    Attributes:
        name: the setting, in a few words (``"random labels"``).
        statistic: what was measured there.
        estimate: its value.
        low: lower end of its interval (None with a p-value only).
        high: upper end of its interval.
        p_value: the p-value of the named test, where one was run.
        rule: when the control counts as fired, written before the run.
        fired: whether it fired, i.e. whether the statistic did see the opposite.
    """

    name: str
    statistic: str
    estimate: float
    low: float | None
    high: float | None
    p_value: float | None
    rule: str
    fired: bool


@dataclass(frozen=True)
class ClaimRecord:
    """One claim's pre-registered decision and the numbers behind it.

    Attributes:
        id: stable identifier, the citation key first (``"sagun2017.clusters.count"``).
        claim: the conjecture in a few words.
        paper: authors, year, arXiv id and section.
        statistic: what was measured, in words.
        estimate: the effect size.
        low: lower end of its confidence interval (None when only a p-value is given).
        high: upper end.
        p_value: the p-value of the named test, or None.
        rule: the decision rule, written before the run.
        decision: ``"holds"``, ``"fails"`` or ``"undecided"``.
        controls: the opposite-setting controls.
        data: raw per-setting, per-seed numbers (counts per k and seed, energies per N).
    """

    id: str
    claim: str
    paper: str
    statistic: str
    estimate: float
    low: float | None
    high: float | None
    p_value: float | None
    rule: str
    decision: str
    controls: list[Control] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            msg = f"decision must be one of {DECISIONS}, got {self.decision!r}"
            raise ValueError(msg)


def interval_fields(interval: Any) -> dict[str, float | None]:
    """``estimate``, ``low``, ``high`` and ``p_value`` of a :class:`claims.stats.Interval`
    (or anything with those attributes), to spread into a :class:`ClaimRecord` or
    :class:`Control`: ``Control(name=..., **interval_fields(ratio), rule=..., fired=...)``.
    """
    return {
        "estimate": interval.estimate,
        "low": interval.low,
        "high": interval.high,
        "p_value": getattr(interval, "p_value", None),
    }


def decide(holds: bool, fails: bool) -> str:
    """``"holds"`` or ``"fails"`` when exactly one is true, else ``"undecided"``."""
    if holds and not fails:
        return "holds"
    if fails and not holds:
        return "fails"
    return "undecided"


def one_sided_rule(interval: Any, level: float, *, above: bool) -> dict[str, str]:
    """``rule`` and ``decision`` of a claim that ``interval`` lies above (``above=True``)
    or below ``level``: holds when the whole interval is on that side, fails when it is
    whole on the other, else undecided. Spread into a :class:`ClaimRecord`:
    ``ClaimRecord(..., **one_sided_rule(slope, 0.5, above=True), ...)``.
    """
    if above:
        rule = f"holds: lower end > {level}; fails: upper end < {level}; else undecided"
        decision = decide(holds=interval.low > level, fails=interval.high < level)
    else:
        rule = f"holds: upper end < {level}; fails: lower end > {level}; else undecided"
        decision = decide(holds=interval.high < level, fails=interval.low > level)
    return {"rule": rule, "decision": decision}


def record_claim(record_property, record: ClaimRecord) -> None:
    """Attach ``record`` to the running test (pass pytest's ``record_property`` fixture)."""
    record_property(PROPERTY, json.dumps(asdict(record), default=_jsonable))


def conclude(record_property, record: ClaimRecord, *, expected: str = "holds", why: str = ""):
    """Record ``record``, then pass, fail or strictly xfail the running test.

    Every control must have fired (a statistic that cannot see the opposite is no test:
    that is a failure, never an xfail). Then the decision must equal ``expected``, the
    outcome measured and written down in the module: ``"holds"`` passes; ``"fails"`` or
    ``"undecided"`` is a strict expected failure whose reason ``why`` carries the
    numbers, so a changed outcome in either direction fails the test.
    """
    record_claim(record_property, record)
    silent = [control.name for control in record.controls if not control.fired]
    if not record.controls:
        pytest.fail(f"{record.id}: no opposite-setting control")
    if silent:
        pytest.fail(f"{record.id}: control(s) did not fire: {', '.join(silent)}")
    summary = f"{record.id}: {record.decision}, {record.statistic} = {format_interval(record)}"
    if record.decision != expected:
        pytest.fail(f"{summary}; expected {expected} ({why or 'see the module docstring'})")
    if expected != "holds":
        pytest.xfail(f"{summary}: {why}")


def records_from(reports) -> list[dict[str, Any]]:
    """The claim records attached to pytest test reports, in order."""
    found = []
    for report in reports:
        for name, value in getattr(report, "user_properties", ()):
            if name == PROPERTY:
                found.append(json.loads(value))
    return found


def format_table(records: list[dict[str, Any]]) -> list[str]:
    """One line per claim and one per control: statistic, estimate and interval, decision."""
    lines = []
    for r in records:
        lines.append(f"{r['id']} | {r['statistic']} | {format_interval(r)} | {r['decision']}")
        for c in r["controls"]:
            state = "fired" if c["fired"] else "DID NOT FIRE"
            lines.append(f"    control {c['name']}: {format_interval(c)} ({state})")
    return lines


def run_metadata(*, profile: str, seed_offset: int, wall_time_s: float) -> dict[str, Any]:
    """The run-level fields of ``report.json``: profile, seed offset, versions, device, time.

    ``device`` is the one the claims ran on: the GPU's name for the full profile where CUDA
    is present (the ``device`` fixture), else ``cpu``.
    """
    from importlib.metadata import version

    import numpy
    import scipy
    import torch

    on_gpu = profile == "full" and torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if on_gpu else "cpu"
    return {
        "schema_version": SCHEMA_VERSION,
        "profile": profile,
        "seed_offset": seed_offset,
        "versions": {
            "hesskit": version("hesskit"),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "device": device,
        "machine": f"{platform.processor() or platform.machine()}, {_cores()} cores",
        "wall_time_s": round(wall_time_s, 1),
    }


def write_report(
    records: list[dict[str, Any]], metadata: dict[str, Any], directory
) -> pathlib.Path:
    """Write ``report.json`` (``metadata`` fields, then ``records``) into ``directory``."""
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    target = path / "report.json"
    target.write_text(json.dumps({**metadata, "records": records}, indent=2, default=_jsonable))
    return target


def format_interval(r, *, digits: int = 4, p_value: bool = True) -> str:
    """``estimate [low, high] (p = ...)`` of a record, a control or their JSON dicts.

    ``p_value=False`` leaves the p-value out when there is an interval (the README's table).
    """
    get = r.get if isinstance(r, dict) else lambda name: getattr(r, name)
    text = f"{get('estimate'):.{digits}g}"
    if get("low") is not None:
        text += f" [{get('low'):.{digits}g}, {get('high'):.{digits}g}]"
    if get("p_value") is not None and (p_value or get("low") is None):
        text += f" (p = {get('p_value'):.2g})"
    return text


def _jsonable(value):
    """numpy scalars and arrays as plain JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return float(value)


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
