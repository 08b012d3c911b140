"""What each claim records, how a test concludes from it, and the JSON report of a run.

A claim test builds one :class:`ClaimRecord` -- its kind, statistic, interval, three-way
decision, its controls, false targets and sanity checks (:class:`CheckResult`) and the
raw per-setting, per-seed numbers -- through
:meth:`claims.preregistration.Claim.record`, and calls :func:`conclude`. The record
travels as a pytest ``user_property`` (so it survives pytest-xdist workers); the root
``conftest.py`` prints the table at the end of the run and, with ``--claims-report
DIR``, writes ``DIR/report.json`` in the schema documented in ``claims/README.md``
(:func:`write_report`).

Decisions are ``holds``, ``fails`` or ``undecided``, by the rule each claim declares
before its run. :mod:`claims.summary` merges the reports of several
seed offsets; a claim whose decision differs between them becomes ``undecided`` there.
"""

from __future__ import annotations

import json
import pathlib
import platform
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import pytest

from claims.seeds import PREREGISTERED_OFFSETS

PROPERTY = "hesskit_claim"
DECISIONS = ("holds", "fails", "undecided")
SCHEMA_VERSION = 3


@dataclass(frozen=True)
class CheckResult:
    """A declared control, false target or sanity check, as measured.

    Attributes:
        name: its declared name.
        setting: the setting or target, in words.
        estimate: the statistic there.
        low: lower end of its interval (None for an exact value).
        high: upper end.
        p_value: the p-value of a named test, where one was run.
        rule: the rule it was decided by, in words.
        decision: that rule's decision there.
        passed: a control fired (the rule holds there), a false target was rejected (the
            claim's rule does not hold there), a sanity check passed.
    """

    name: str
    setting: str
    estimate: float
    low: float | None
    high: float | None
    p_value: float | None
    rule: str
    decision: str
    passed: bool

    @classmethod
    def of(cls, name: str, setting: str, rule: Any, interval: Any, *, passed_on: str = "holds"):
        """Decide ``interval`` by ``rule`` (:class:`claims.preregistration.Rule`); passed
        when the decision ``"holds"`` (``passed_on="holds"``) or when it does not
        (``passed_on="not holds"``, a false target)."""
        if not hasattr(interval, "estimate"):
            interval = _Exact(float(interval))
        decision = rule.decide(interval)
        passed = decision == "holds" if passed_on == "holds" else decision != "holds"
        return cls(
            name,
            setting,
            **interval_fields(interval),
            rule=rule.text(),
            decision=decision,
            passed=passed,
        )


@dataclass(frozen=True)
class _Exact:
    """An exact value (a count, a maximum over seeds) in the shape of an interval."""

    estimate: float
    low: float | None = None
    high: float | None = None


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
        controls: the opposite-setting controls (:class:`CheckResult`).
        data: raw per-setting, per-seed numbers (counts per k and seed, energies per N).
        kind: ``"evidence"`` or ``"identity"`` (:mod:`claims.preregistration`).
        expected: the decision pre-registered at the pre-registered offsets, if declared.
        why: for an identity, what it follows from; for an expected fails, the reason.
        false_targets: wrong targets the rule must reject (:class:`CheckResult`).
        sanity_checks: checks that cannot fail when the instrument works.
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
    controls: list[CheckResult] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    kind: str = "evidence"
    expected: str | None = None
    why: str = ""
    false_targets: list[CheckResult] = field(default_factory=list)
    sanity_checks: list[CheckResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            msg = f"decision must be one of {DECISIONS}, got {self.decision!r}"
            raise ValueError(msg)
        if self.kind not in ("evidence", "identity"):
            msg = f"kind must be 'evidence' or 'identity', got {self.kind!r}"
            raise ValueError(msg)


def interval_fields(interval: Any) -> dict[str, float | None]:
    """``estimate``, ``low``, ``high`` and ``p_value`` of a :class:`claims.stats.Interval`
    (or anything with those attributes), to spread into a :class:`ClaimRecord` or
    :class:`CheckResult`.
    """
    return {
        "estimate": interval.estimate,
        "low": interval.low,
        "high": interval.high,
        "p_value": getattr(interval, "p_value", None),
    }


def record_claim(record_property, record: ClaimRecord) -> None:
    """Attach ``record`` to the running test (pass pytest's ``record_property`` fixture)."""
    record_property(PROPERTY, json.dumps(asdict(record), default=_jsonable))


def conclude(
    record_property,
    record: ClaimRecord,
    *,
    expected: str | None = None,
    why: str = "",
    seed_offset: int | None = None,
):
    """Record ``record``, then pass, fail or strictly xfail the running test.

    What must hold before a decision counts: an ``evidence`` record has at least one
    opposite-setting control, all fired, and (when declared, :mod:`claims.preregistration`)
    at least one false target, all rejected; every sanity check passed. A record that
    misses any of these is recorded as ``undecided`` with the reasons in
    ``data["not_decided"]``.

    At the pre-registered offsets (:data:`claims.seeds.PREREGISTERED_OFFSETS`;
    ``seed_offset`` None counts as one) such a miss fails the test, and so does a decision
    other than ``expected`` (the record's own, else the argument, else ``"holds"``);
    ``"fails"`` or ``"undecided"`` as expected is a strict expected failure whose reason
    ``why`` carries the numbers, so a changed outcome in either direction fails the test.
    At any other offset nothing fails: the record says what the fresh seeds gave, and the
    merged table (:mod:`claims.summary`) calls a decision that differs ``undecided``.
    """
    expected = record.expected or expected or "holds"
    why = record.why or why
    problems = _unmet(record)
    if problems:
        data = {**record.data, "not_decided": problems, "decision_before_checks": record.decision}
        record = replace(record, decision="undecided", data=data)
    record_claim(record_property, record)
    summary = f"{record.id}: {record.decision}, {record.statistic} = {format_interval(record)}"
    preregistered = seed_offset is None or seed_offset in PREREGISTERED_OFFSETS
    if preregistered and problems:
        pytest.fail(f"{record.id}: {'; '.join(problems)}")
    if record.decision != expected:
        if preregistered:
            pytest.fail(f"{summary}; expected {expected} ({why or 'see the module docstring'})")
        return
    if expected != "holds":
        pytest.xfail(f"{summary}: {why}")


def _unmet(record: ClaimRecord) -> list[str]:
    """Why ``record``'s decision cannot count, or nothing."""
    problems = []
    if record.kind == "evidence":
        if not record.controls:
            problems.append("no opposite-setting control")
        silent = [c.name for c in record.controls if not c.passed]
        if silent:
            problems.append(f"control(s) did not fire: {', '.join(silent)}")
        if record.expected is not None and not record.false_targets:
            problems.append("no false target")
        accepted = [t.name for t in record.false_targets if not t.passed]
        if accepted:
            problems.append(f"false target(s) not rejected: {', '.join(accepted)}")
    failed = [c.name for c in record.sanity_checks if not c.passed]
    if failed:
        problems.append(f"sanity check(s) failed: {', '.join(failed)}")
    return problems


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
        kind = r.get("kind", "evidence")
        lines[-1] += "" if kind == "evidence" else f" ({kind}: not counted)"
        for c in r["controls"]:
            state = "fired" if c["passed"] else "DID NOT FIRE"
            lines.append(f"    control {c['name']}: {format_interval(c)} ({state})")
        for t in r.get("false_targets", []):
            state = "rejected" if t["passed"] else "ACCEPTED"
            lines.append(f"    false target {t['name']}: {t['decision']} ({state})")
        for c in r.get("sanity_checks", []):
            state = "passed" if c["passed"] else "FAILED"
            lines.append(f"    sanity {c['name']}: {format_interval(c)} ({state})")
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
