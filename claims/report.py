"""What each claim records, and the end-of-run table and JSON report built from it.

A claim test calls :func:`record_claim` once with a :class:`ClaimRecord`; the record
travels as a pytest ``user_property`` (so it survives pytest-xdist workers), and the root
``conftest.py`` prints the table at the end of the run and writes ``report.json`` when
``--claims-report DIR`` is given.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

PROPERTY = "hesskit_claim"


@dataclass(frozen=True)
class ClaimRecord:
    """One claim's pre-registered decision and the numbers behind it.

    Attributes:
        claim: short name, citation key first (``"sagun2017 outliers track clusters"``).
        statistic: what was measured, in words.
        estimate: the effect size.
        interval: a confidence interval ``(low, high)`` for it, or None with a p-value.
        p_value: the p-value of the named test, or None with an interval.
        rule: the decision rule, written before the run.
        decision: ``"holds"`` or ``"fails"``.
        control: the negative control's statistic and whether it detected the difference.
        details: further numbers (per-setting values, seeds, sizes) for report.json.
    """

    claim: str
    statistic: str
    estimate: float
    interval: tuple[float, float] | None
    p_value: float | None
    rule: str
    decision: str
    control: str
    details: dict[str, Any] = field(default_factory=dict)


def record_claim(record_property, record: ClaimRecord) -> None:
    """Attach ``record`` to the running test (pass pytest's ``record_property`` fixture)."""
    record_property(PROPERTY, json.dumps(asdict(record), default=float))


def records_from(reports) -> list[dict[str, Any]]:
    """The claim records attached to pytest test reports, in order."""
    found = []
    for report in reports:
        for name, value in getattr(report, "user_properties", ()):
            if name == PROPERTY:
                found.append(json.loads(value))
    return found


def format_table(records: list[dict[str, Any]]) -> list[str]:
    """One line per claim: claim, statistic, estimate with interval or p-value, decision."""
    lines = []
    for r in records:
        if r["interval"] is not None:
            low, high = r["interval"]
            spread = f"{r['estimate']:.4g} [{low:.4g}, {high:.4g}]"
        else:
            spread = f"{r['estimate']:.4g} (p = {r['p_value']:.2g})"
        lines.append(f"{r['claim']} | {r['statistic']} | {spread} | {r['decision']}")
        lines.append(f"    control: {r['control']}")
    return lines


def write_json(records: list[dict[str, Any]], directory: str) -> pathlib.Path:
    """Write ``report.json`` into ``directory`` (created if needed)."""
    path = pathlib.Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    target = path / "report.json"
    target.write_text(json.dumps(records, indent=2, default=float))
    return target
