"""The pre-registration as data (claims/preregistration.py): every declared claim can be
wrong, identities are never counted, rules give their text and decision from one object,
and a fresh seed set records a decision instead of failing."""

from __future__ import annotations

import importlib
import pathlib

import pytest

from claims.preregistration import PAPERS, Claim, Control, FalseTarget, Rule, Sanity
from claims.report import conclude
from claims.stats import Interval, SequentialDesign

CLAIM_MODULES = sorted(
    path.stem for path in (pathlib.Path(__file__).parents[1] / "claims").glob("test_*.py")
)


def _declared() -> list[tuple[str, Claim]]:
    found = []
    for name in CLAIM_MODULES:
        module = importlib.import_module(f"claims.{name}")
        found += [(name, claim) for claim in module.CLAIMS]
    return found


@pytest.mark.parametrize("module", CLAIM_MODULES)
def test_every_claim_module_opens_with_its_declarations(module: str) -> None:
    claims = importlib.import_module(f"claims.{module}").CLAIMS
    assert claims and all(isinstance(claim, Claim) for claim in claims)
    key = module.removeprefix("test_").split("_")[0]
    assert key in PAPERS, f"{module}: name it after a citation key of PAPERS"
    assert all(claim.id.startswith(claim.paper + ".") for claim in claims)


def test_every_counted_claim_can_be_wrong_and_every_identity_says_why() -> None:
    """Evidence: at least one opposite-setting control and one false target. An identity
    names the theorem or construction it follows from."""
    declared = _declared()
    ids = [claim.id for _, claim in declared]
    assert len(ids) == len(set(ids)), "claim ids must be unique across modules"
    for module, claim in declared:
        if claim.kind == "evidence":
            assert claim.controls, f"{module}: {claim.id} has no opposite-setting control"
            assert claim.false_targets, f"{module}: {claim.id} has no false target"
        else:
            assert claim.why, f"{module}: {claim.id} is an identity without a reason"


def test_rules_decide_what_their_text_says() -> None:
    above, below, band = Rule("above", 0.5), Rule("below", -0.2), Rule("inside", (1.0, 2.0))
    assert above.decide(Interval(1, 0.6, 1.2)) == "holds"
    assert above.decide(Interval(0, -1, 0.4)) == "fails"
    assert above.decide(Interval(0.5, 0.4, 0.6)) == "undecided"
    assert below.decide(Interval(-1, -1.5, -0.3)) == "holds"
    assert below.decide(Interval(0, -0.1, 0.1)) == "fails"
    assert band.decide(Interval(1.5, 1.1, 1.9)) == "holds"
    assert band.decide(Interval(3, 2.5, 3.5)) == "fails"
    assert band.decide(Interval(0, -1, 0.5)) == "fails"
    assert band.decide(Interval(2, 1.5, 2.5)) == "undecided"
    assert above.decide(3.0) == "holds"  # an exact value
    assert "lower end > 0.5" in above.text() and "[1, 2]" in band.text()
    assert above.scaled(0.5).level == 0.25 and Rule("above", 2.0, null=1.0).scaled(2).level == 3
    assert band.scaled(2.0).level == (0.5, 2.5)


@pytest.mark.parametrize(
    ("side", "level", "match"),
    [
        ("left", 1.0, "side must be"),
        ("inside", 1.0, "needs a band"),
        ("above", (0.0, 1.0), "needs a level"),
        ("inside", (1.0, 0.0), "low < high"),
    ],
)
def test_a_malformed_rule_is_refused(side, level, match) -> None:
    with pytest.raises(ValueError, match=match):
        Rule(side, level)


CLAIM = Claim(
    id="sagun2014.test.claim",
    conjecture="the statistic lies above 1",
    paper="sagun2014",
    section="section 2",
    kind="evidence",
    statistic="a ratio",
    rule=Rule("above", 1.0),
    expected="holds",
    controls=(Control("opposite", "the mechanism removed", Rule("below", 1.0)),),
    false_targets=(
        FalseTarget("too high", "a level of 5", level=5.0),
        FalseTarget("wrong target", "measured against k + 2"),
    ),
    sanity_checks=(Sanity("positive", "a ratio is positive", Rule("above", 0.0)),),
)


def _record(**overrides):
    given = {
        "controls": {"opposite": Interval(0.5, 0.4, 0.6)},
        "false_targets": {"too high": None, "wrong target": Interval(0.2, 0.1, 0.3)},
        "sanity_checks": {"positive": 2.0},
    }
    return CLAIM.record(Interval(2.0, 1.5, 2.5), **{**given, **overrides})


def test_a_record_carries_the_declared_checks_and_the_sensitivity() -> None:
    record = _record()
    assert record.decision == "holds" and record.kind == "evidence"
    assert [c.passed for c in record.controls] == [True]
    assert [t.passed for t in record.false_targets] == [True, True]
    assert record.false_targets[0].decision == "fails"  # [1.5, 2.5] lies below 5
    # half the level (0.5) holds, twice it (2.0) lies inside [1.5, 2.5]
    assert record.data["sensitivity"] == {"half_level": "holds", "twice_level": "undecided"}
    assert record.paper.startswith("Sagun, Güney, Ben Arous, LeCun (2014)")


def test_a_false_target_the_rule_accepts_is_reported() -> None:
    record = _record(false_targets={"too high": None, "wrong target": Interval(3, 2, 4)})
    assert [t.passed for t in record.false_targets] == [True, False]


def test_an_unpowered_design_is_undecided_with_its_reason() -> None:
    record = CLAIM.record(
        Interval(2.0, 1.5, 2.5),
        controls={"opposite": 0.5},
        false_targets={"too high": None, "wrong target": 0.2},
        sanity_checks={"positive": 2.0},
        unpowered="the pilot asks for 9 seeds; the pre-registered cap is 5",
    )
    assert record.decision == "undecided"
    assert record.data["decision_if_powered"] == "holds"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"controls": {}}, "controls must be exactly"),
        ({"false_targets": {"too high": None}}, "false_targets must be exactly"),
        ({"false_targets": {"too high": 1.0, "wrong target": 0.2}}, "is a level"),
        ({"false_targets": {"too high": None, "wrong target": None}}, "needs its measured"),
    ],
)
def test_a_record_must_give_exactly_the_declared_checks(overrides, match) -> None:
    with pytest.raises(ValueError, match=match):
        _record(**overrides)


def test_a_declaration_is_checked_when_written() -> None:
    base = {
        "id": "x.y",
        "conjecture": "c",
        "paper": "sagun2014",
        "section": "",
        "statistic": "s",
        "rule": Rule("above", 0.0),
        "expected": "holds",
    }
    with pytest.raises(ValueError, match="kind must be one of"):
        Claim(**base, kind="anecdote")
    with pytest.raises(ValueError, match="a key of PAPERS"):
        Claim(**{**base, "paper": "nobody2030"}, kind="evidence")
    with pytest.raises(ValueError, match="an identity must say"):
        Claim(**base, kind="identity")


def _outcome(record, seed_offset):
    properties: list = []
    try:
        conclude(lambda *item: properties.append(item), record, seed_offset=seed_offset)
    except pytest.fail.Exception as failure:
        return "failed", str(failure)
    except pytest.xfail.Exception:
        return "xfailed", ""
    return "passed", ""


def test_a_control_that_did_not_fire_fails_at_a_preregistered_offset_only() -> None:
    silent = _record(controls={"opposite": Interval(1.5, 1.2, 1.8)})
    outcome, message = _outcome(silent, 0)
    assert outcome == "failed" and "did not fire: opposite" in message
    assert _outcome(silent, 7)[0] == "passed"  # recorded as undecided, not an error


def test_a_changed_decision_fails_at_a_preregistered_offset_and_is_recorded_at_a_fresh_one():
    changed = CLAIM.record(
        Interval(1.0, 0.5, 1.5),
        controls={"opposite": 0.5},
        false_targets={"too high": None, "wrong target": 0.2},
        sanity_checks={"positive": 2.0},
    )
    assert changed.decision == "undecided"
    assert _outcome(changed, 2)[0] == "failed"
    assert _outcome(changed, 3)[0] == "passed"
    assert _outcome(_record(), 0)[0] == "passed"


def test_sequential_design_draws_in_order_up_to_its_cap() -> None:
    design = SequentialDesign(minimum=3, cap=6)
    assert design.draw(range(100, 110), needed=1).seeds == (100, 101, 102)
    assert design.draw(range(100, 110), needed=5).seeds == (100, 101, 102, 103, 104)
    capped = design.draw(range(100, 110), needed=8)
    assert capped.seeds == tuple(range(100, 106)) and "cap is 6" in capped.unpowered
    with pytest.raises(ValueError, match="fewer than the cap"):
        design.draw(range(3), needed=1)
    with pytest.raises(ValueError, match="minimum <= cap"):
        SequentialDesign(minimum=4, cap=2)
