"""Merge claims reports of several seed offsets and print the README's claims table.

``python -m claims.summary report0/report.json report1/report.json`` prints a Markdown
table with one row per claim: its statistic, the estimate and interval at each offset,
each offset's decision and the combined decision -- the common one when every offset
agrees, ``undecided`` when they differ (a verdict that flips with the seeds decides
nothing) -- and its controls. ``--merge OUT.json`` also writes the merged report (the
records of the first file, each with ``by_offset`` and the combined ``decision``; a record
missing from the first file is not merged), ``--readme PATH`` writes the compact table (kind
and decisions) into a README between its markers, ``--results PATH`` the full results
page, and ``--concatenate OUT.json`` joins the per-module reports of
one offset, as ``claims/run_full.sh`` does.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from claims.report import format_interval


def load(path) -> dict[str, Any]:
    """One ``report.json``."""
    return json.loads(pathlib.Path(path).read_text())


def combined_decision(decisions: list[str]) -> str:
    """The common decision of every offset, or ``"undecided"`` when they differ."""
    return decisions[0] if len(set(decisions)) == 1 else "undecided"


def merge_offsets(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records matched by id across reports of different seed offsets.

    Each merged record is the first report's, plus ``by_offset`` (offset -> estimate,
    interval, decision, controls fired) and the ``decision`` combined over the offsets.
    A record missing from some report is ``undecided``.
    """
    by_id = [{r["id"]: r for r in report["records"]} for report in reports]
    merged = []
    for record_id, first in by_id[0].items():
        per_offset = {}
        for report, records in zip(reports, by_id, strict=True):
            record = records.get(record_id)
            if record is not None:
                per_offset[str(report["seed_offset"])] = _digest(record)
        decisions = [entry["decision"] for entry in per_offset.values()]
        complete = len(per_offset) == len(reports)
        decision = combined_decision(decisions) if complete else "undecided"
        merged.append({**first, "by_offset": per_offset, "decision": decision})
    return merged


def concatenate(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Reports of different modules at one offset as one report (wall times added)."""
    offsets = {report["seed_offset"] for report in reports}
    if len(offsets) != 1:
        msg = f"concatenate reports of one seed offset, got offsets {sorted(offsets)}"
        raise ValueError(msg)
    first = reports[0]
    return {
        **{key: value for key, value in first.items() if key != "records"},
        "wall_time_s": round(sum(report["wall_time_s"] for report in reports), 1),
        "records": [record for report in reports for record in report["records"]],
    }


KIND_TITLES = {
    "evidence": "Evidence: counted for or against the conjecture",
    "identity": "Identities: checks of the instrument, never counted",
}
"""The tables of :func:`markdown_tables`, one per record kind."""


def markdown_table(reports: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    """The claims table of reports at one or more seed offsets; ``kind`` keeps only the
    records of that kind (a record written before kinds counts as ``evidence``)."""
    offsets = [str(report["seed_offset"]) for report in reports]
    head = ["claim", "statistic"]
    head += [f"offset {o}: estimate [95% CI], decision" for o in offsets]
    head += ["decision", "opposite-setting controls (fired?)", "false targets (rejected?)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    records = sorted(merge_offsets(reports), key=lambda r: r["id"])
    for record in records:
        if kind is not None and record.get("kind", "evidence") != kind:
            continue
        cells = [f"`{record['id']}`: {record['claim']}", record["statistic"]]
        for offset in offsets:
            entry = record["by_offset"].get(offset)
            cells.append("missing" if entry is None else f"{entry['text']}, {entry['decision']}")
        cells.append(f"**{record['decision']}**")
        controls = [
            f"{c['name']}{'' if c['low'] is not None else ', ' + c.get('statistic', '')}: "
            f"{_text(c)} ({'fired' if c['passed'] else 'did not fire'})"
            for c in record["controls"]
        ]
        cells.append("; ".join(controls))
        targets = [
            f"{t['name']}: {t['decision']} ({'rejected' if t['passed'] else 'ACCEPTED'})"
            for t in record.get("false_targets", [])
        ]
        cells.append("; ".join(targets) or "none declared")
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def compact_table(reports: list[dict[str, Any]]) -> list[str]:
    """The README's table: per claim its kind, each offset's decision and the combined
    one, evidence first (the numbers are in :func:`results_page`)."""
    offsets = [str(report["seed_offset"]) for report in reports]
    head = ["claim", "kind", *(f"offset {o}" for o in offsets), "decision"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    order = {kind: i for i, kind in enumerate(KIND_TITLES)}
    merged = merge_offsets(reports)
    merged.sort(key=lambda r: (order[r.get("kind", "evidence")], r["id"]))
    for record in merged:
        decisions = [record["by_offset"].get(o, {}).get("decision", "missing") for o in offsets]
        kind = record.get("kind", "evidence")
        cells = [f"`{record['id']}`: {record['claim']}", kind, *decisions]
        cells.append(f"**{record['decision']}**" if kind == "evidence" else record["decision"])
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def markdown_tables(reports: list[dict[str, Any]]) -> list[str]:
    """One table per record kind (:data:`KIND_TITLES`), each under its title."""
    lines: list[str] = []
    for kind, title in KIND_TITLES.items():
        lines += [f"**{title}**", "", *markdown_table(reports, kind), ""]
    return lines[:-1]


def results_page(reports: list[dict[str, Any]]) -> str:
    """``claims/RESULTS.md``: the tables by kind, then every record in full (rule,
    controls, false targets, sanity checks, the decisions at half and twice the level),
    generated from the reports so that no measured number is typed by hand."""
    lines = ["# Claims: measured results", "", _provenance(reports), "", *markdown_tables(reports)]
    for record in sorted(merge_offsets(reports), key=lambda r: r["id"]):
        lines += ["", f"## `{record['id']}` ({record.get('kind', 'evidence')})", ""]
        lines += [f"{record['claim']}. {record['paper']}.", ""]
        if record.get("why"):
            lines += [f"Why: {record['why']}", ""]
        lines += [f"- statistic: {record['statistic']}", f"- rule: {record['rule']}"]
        for offset, entry in record["by_offset"].items():
            sensitivity = entry.get("sensitivity") or {}
            scaled = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sensitivity.items())
            lines.append(
                f"- offset {offset}: {entry['text']}, **{entry['decision']}**"
                + (f" ({scaled})" if scaled else "")
            )
        for title, key, good, bad in _CHECKS:
            for check in record.get(key, []):
                state = good if check["passed"] else bad
                lines.append(
                    f"- {title} {check['name']} ({check.get('setting', check.get('statistic'))})"
                    f": {_text(check)}, {state}; rule: {check['rule']}"
                )
    return "\n".join(lines) + "\n"


_CHECKS = (
    ("control", "controls", "fired", "did not fire"),
    ("false target", "false_targets", "rejected", "ACCEPTED"),
    ("sanity check", "sanity_checks", "passed", "FAILED"),
)
"""The checks a record carries: title, field, and the words for passed and not."""


BEGIN, END = "<!-- claims-table:begin -->", "<!-- claims-table:end -->"
"""The markers between which ``--readme`` writes the table."""


def replace_table(text: str, table: list[str], note: str) -> str:
    """``text`` with the block between :data:`BEGIN` and :data:`END` replaced by ``table``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        msg = f"the README must hold exactly one {BEGIN} ... {END} block"
        raise ValueError(msg)
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return head + "\n".join([BEGIN, note, "", *table, END]) + tail


def _digest(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "estimate": record["estimate"],
        "low": record["low"],
        "high": record["high"],
        "decision": record["decision"],
        "text": _text(record),
        "controls_fired": {c["name"]: c["passed"] for c in record["controls"]},
        "sensitivity": record.get("data", {}).get("sensitivity"),
    }


def _provenance(reports: list[dict[str, Any]]) -> str:
    """One line: profile, device, versions and wall time of each offset's run."""
    first = reports[0]
    times = ", ".join(f"offset {r['seed_offset']}: {r['wall_time_s']:.0f} s" for r in reports)
    return (
        f"Generated by `python -m claims.summary` from {first['profile']}-profile reports on "
        f"{first['device']} ({first.get('machine', '')}), torch {first['versions']['torch']}; "
        f"wall time {times}."
    )


def _text(entry: dict[str, Any]) -> str:
    return format_interval(entry, digits=3, p_value=False)


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m claims.summary REPORT [REPORT ...] [--merge OUT]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="report.json files, one per seed offset")
    parser.add_argument("--merge", metavar="OUT", help="also write the merged report here")
    parser.add_argument(
        "--readme", metavar="PATH", help="also write the table into PATH between its markers"
    )
    parser.add_argument(
        "--results", metavar="PATH", help="also write the full results page (claims/RESULTS.md)"
    )
    parser.add_argument(
        "--concatenate",
        metavar="OUT",
        help="write the reports (modules of one offset) as one report.json and stop",
    )
    args = parser.parse_args(argv)
    reports = [load(path) for path in args.reports]
    if args.concatenate:
        target = pathlib.Path(args.concatenate)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(concatenate(reports), indent=2))
        return
    table = markdown_tables(reports)
    print("\n".join(table))
    if args.readme:
        path = pathlib.Path(args.readme)
        compact = compact_table(reports)
        path.write_text(replace_table(path.read_text(), compact, _provenance(reports)))
    if args.results:
        pathlib.Path(args.results).write_text(results_page(reports))
    if args.merge:
        merged = {key: value for key, value in reports[0].items() if key != "records"}
        merged["seed_offsets"] = [report["seed_offset"] for report in reports]
        merged["records"] = merge_offsets(reports)
        pathlib.Path(args.merge).write_text(json.dumps(merged, indent=2))


if __name__ == "__main__":
    main()
