"""The claims' record schema, conclusion rules, seed offsets and the offset summary."""

import json

import pytest

from claims import summary
from claims.report import CheckResult, ClaimRecord, conclude, records_from
from claims.seeds import SEED_STRIDE, fresh
from claims.stats import Interval


def _check(name: str, passed: bool) -> CheckResult:
    return CheckResult(name, "a setting", 1.0, 0.5, 1.5, None, "fires if ...", "holds", passed)


def _record(decision="holds", fired=(True,), record_id="paper.claim", kind="evidence"):
    return ClaimRecord(
        id=record_id,
        claim="a claim",
        paper="someone (2020)",
        statistic="a slope",
        estimate=0.5,
        low=0.1,
        high=0.9,
        p_value=None,
        rule="holds if low > 0",
        decision=decision,
        controls=[_check(f"control {i}", f) for i, f in enumerate(fired)],
        data={"counts": {"2": [2, 2]}},
        kind=kind,
        false_targets=[_check("wrong level", True)],
    )


def test_record_rejects_an_unknown_decision():
    with pytest.raises(ValueError, match="decision must be one of"):
        _record(decision="maybe")


def test_conclude_passes_a_claim_that_holds_and_records_it():
    properties = []
    conclude(lambda name, value: properties.append((name, value)), _record())
    (record,) = records_from([type("Report", (), {"user_properties": properties})])
    assert record["id"] == "paper.claim" and record["controls"][0]["passed"] is True


@pytest.mark.parametrize(
    ("record", "expected", "outcome", "match"),
    [
        (_record(fired=(True, False)), "holds", pytest.fail.Exception, "did not fire: control 1"),
        (_record(fired=()), "holds", pytest.fail.Exception, "no opposite-setting control"),
        (_record(decision="fails"), "holds", pytest.fail.Exception, "expected holds"),
        (_record(decision="holds"), "fails", pytest.fail.Exception, "expected fails"),
        (_record(decision="fails"), "fails", pytest.xfail.Exception, "measured: 0.1"),
    ],
)
def test_conclude_fails_or_strictly_xfails(record, expected, outcome, match):
    with pytest.raises(outcome, match=match):
        conclude(lambda *_: None, record, expected=expected, why="measured: 0.1")


def test_a_silent_control_fails_even_an_expected_failure():
    with pytest.raises(pytest.fail.Exception, match="did not fire"):
        conclude(lambda *_: None, _record("fails", (False,)), expected="fails", why="x")


def test_fresh_seeds_never_overlap_between_offsets():
    seeds = tuple(range(10, 20))
    assert fresh(seeds, 0) == seeds
    assert not set(fresh(seeds, 1)) & set(seeds)
    assert fresh(seeds, 2)[0] == 10 + 2 * SEED_STRIDE
    with pytest.raises(ValueError, match="offset must be an int >= 0"):
        fresh(seeds, -1)


def _report(offset, decision):
    record = _jsonable(_record(decision))
    return {"seed_offset": offset, "wall_time_s": 10.0, "records": [record]}


@pytest.mark.parametrize(
    ("decisions", "combined"),
    [
        (("holds", "holds"), "holds"),
        (("fails", "fails"), "fails"),
        (("holds", "fails"), "undecided"),
    ],
)
def test_a_decision_that_flips_between_offsets_is_undecided(decisions, combined):
    reports = [_report(offset, d) for offset, d in enumerate(decisions)]
    (merged,) = summary.merge_offsets(reports)
    assert merged["decision"] == combined
    assert [entry["decision"] for entry in merged["by_offset"].values()] == list(decisions)
    table = summary.markdown_table(reports)
    assert len(table) == 3 and f"**{combined}**" in table[-1] and "rejected" in table[-1]


def test_a_claim_missing_at_one_offset_is_undecided():
    empty = {"seed_offset": 1, "wall_time_s": 1.0, "records": []}
    (merged,) = summary.merge_offsets([_report(0, "holds"), empty])
    assert merged["decision"] == "undecided"


def test_concatenate_joins_modules_of_one_offset_only():
    joined = summary.concatenate([_report(0, "holds"), _report(0, "fails")])
    assert len(joined["records"]) == 2 and joined["wall_time_s"] == 20.0
    with pytest.raises(ValueError, match="one seed offset"):
        summary.concatenate([_report(0, "holds"), _report(1, "holds")])


def test_summary_command_prints_the_table_and_merges(tmp_path, capsys):
    paths = []
    for offset in (0, 1):
        path = tmp_path / f"r{offset}.json"
        path.write_text(json.dumps(_report(offset, "holds")))
        paths.append(str(path))
    summary.main([*paths, "--merge", str(tmp_path / "merged.json")])
    assert "**holds**" in capsys.readouterr().out
    merged = json.loads((tmp_path / "merged.json").read_text())
    assert merged["seed_offsets"] == [0, 1] and merged["records"][0]["decision"] == "holds"


def test_readme_table_is_replaced_between_its_markers_only():
    text = f"intro\n{summary.BEGIN}\nold table\n{summary.END}\noutro\n"
    new = summary.replace_table(text, ["| a |"], "note")
    assert new == f"intro\n{summary.BEGIN}\nnote\n\n| a |\n{summary.END}\noutro\n"
    with pytest.raises(ValueError, match="exactly one"):
        summary.replace_table("no markers", ["| a |"], "note")


def test_interval_fields_spread_into_a_record():
    from claims.report import interval_fields

    fields = interval_fields(Interval(1.0, 0.5, 1.5, p_value=0.01))
    assert fields == {"estimate": 1.0, "low": 0.5, "high": 1.5, "p_value": 0.01}
    check = CheckResult(name="c", setting="s", **fields, rule="r", decision="holds", passed=True)
    assert check.low == 0.5


def test_a_record_table_and_results_page_keep_the_kinds_apart(tmp_path) -> None:
    identity = _record(record_id="paper.identity", kind="identity")
    reports = [
        {
            "seed_offset": offset,
            "wall_time_s": 1.0,
            "profile": "quick",
            "device": "cpu",
            "versions": {"torch": "2"},
            "records": [_jsonable(_record()), _jsonable(identity)],
        }
        for offset in (0, 1)
    ]
    tables = summary.markdown_tables(reports)
    evidence_at = tables.index(f"**{summary.KIND_TITLES['evidence']}**")
    identity_at = tables.index(f"**{summary.KIND_TITLES['identity']}**")
    assert any("`paper.claim`" in line for line in tables[evidence_at:identity_at])
    assert all("`paper.identity`" not in line for line in tables[evidence_at:identity_at])
    assert any("`paper.identity`" in line for line in tables[identity_at:])
    compact = summary.compact_table(reports)
    assert compact[2].startswith("| `paper.claim`") and "| identity |" in compact[3]
    page = summary.results_page(reports)
    assert "## `paper.identity` (identity)" in page and "false target wrong level" in page


def _jsonable(record: ClaimRecord) -> dict:
    return json.loads(json.dumps(record.__dict__, default=lambda c: c.__dict__))


def test_an_identity_needs_no_control_but_a_failed_sanity_check_fails_it() -> None:
    conclude(lambda *_: None, _record(fired=(), kind="identity"))
    failing = ClaimRecord(
        **{**_record(kind="identity").__dict__, "sanity_checks": [_check("s", False)]}
    )
    with pytest.raises(pytest.fail.Exception, match="sanity check"):
        conclude(lambda *_: None, failing)
