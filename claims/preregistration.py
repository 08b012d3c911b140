"""The pre-registration as data: papers, rules and claim declarations, fixed before a run.

Each claim module opens with its :class:`Claim` declarations (a module-level tuple
``CLAIMS``); its experiments stay plain functions that measure, and
:meth:`Claim.record` turns the measurement into a :class:`claims.report.ClaimRecord`:
the decision comes from the declared :class:`Rule`, never from a separate expression that
could drift from the rule's text, and the record carries the declared controls, false
targets and sanity checks by name, so a missing or renamed one is an error.

Kinds (``../shared/claims.md``, "What the second suite taught"):

- ``evidence``: the statistic could have come out the other way on a network where the
  conjecture is false. Counted for or against the conjecture. It must declare at least one
  opposite-setting control that can fail and at least one false target that its rule
  rejects (``tests/test_claims_preregistration.py`` enforces both).
- ``identity``: the statistic follows from a theorem, an identity or how the setup was
  built (``why`` says which). Kept as a check of the instrument, reported apart and never
  counted.

A control that cannot fail is not a control: it is a sanity check (:class:`Sanity`),
reported, required to pass, never counted as evidence that the statistic discriminates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from claims.report import CheckResult, ClaimRecord, interval_fields

KINDS = ("evidence", "identity")
"""What a record's ``holds`` can say: see the module docstring."""


@dataclass(frozen=True)
class Paper:
    """A paper the claims test, cited once here and by its key everywhere else."""

    authors: str
    year: int
    title: str
    where: str
    """The arXiv id or venue."""

    def cite(self, section: str = "") -> str:
        """``Authors (year), Title, where[, section]``."""
        text = f"{self.authors} ({self.year}), {self.title}, {self.where}"
        return f"{text}, {section}" if section else text


PAPERS: Mapping[str, Paper] = {
    "sagun2014": Paper(
        "Sagun, Güney, Ben Arous, LeCun",
        2014,
        "Explorations on high dimensional landscapes",
        "arXiv:1412.6615",
    ),
    "sagun2016": Paper(
        "Sagun, Bottou, LeCun",
        2016,
        "Eigenvalues of the Hessian in deep learning: singularity and beyond",
        "arXiv:1611.07476",
    ),
    "sagun2017": Paper(
        "Sagun, Evci, Güney, Dauphin, Bottou",
        2017,
        "Empirical analysis of the Hessian of over-parametrized neural networks",
        "arXiv:1706.04454",
    ),
    "papyan2019": Paper(
        "Papyan",
        2019,
        "Measurements of three-level hierarchical structure in the outliers in the spectrum "
        "of deepnet Hessians",
        "arXiv:1901.08244",
    ),
    "gurari2018": Paper(
        "Gur-Ari, Roberts, Dyer",
        2018,
        "Gradient descent happens in a tiny subspace",
        "arXiv:1812.04754",
    ),
    "song2025": Paper(
        "Song, Ahn, Yun",
        2025,
        "Does SGD really happen in tiny subspaces?",
        "arXiv:2405.16002 (ICLR 2025)",
    ),
    "dinh2017": Paper(
        "Dinh, Pascanu, Bengio, Bengio",
        2017,
        "Sharp minima can generalize for deep nets",
        "arXiv:1703.04933",
    ),
    "li2018": Paper(
        "Li, Xu, Taylor, Studer, Goldstein",
        2018,
        "Visualizing the loss landscape of neural nets",
        "arXiv:1712.09913",
    ),
    "cohen2021": Paper(
        "Cohen, Kaur, Li, Kolter, Talwalkar",
        2021,
        "Gradient descent on neural networks typically occurs at the edge of stability",
        "arXiv:2103.00065",
    ),
    "dauphin2014": Paper(
        "Dauphin, Pascanu, Gulcehre, Cho, Ganguli, Bengio",
        2014,
        "Identifying and attacking the saddle point problem in high-dimensional non-convex "
        "optimization",
        "arXiv:1406.2572",
    ),
    "pennington2017": Paper(
        "Pennington, Bahri",
        2017,
        "Geometry of neural network loss surfaces via random matrix theory",
        "ICML 2017",
    ),
    "auffinger2013": Paper(
        "Auffinger, Ben Arous, Černý",
        2013,
        "Random matrices and complexity of spin glasses",
        "arXiv:1003.1129",
    ),
}
"""Every paper the claims cite, keyed by citation key."""


# ---------------------------------------------------------------------------------------
# rules

_ELSE = "else undecided"


@dataclass(frozen=True)
class Rule:
    """A three-way interval rule that yields both its text and its decision.

    ``side="above"``: holds when the whole interval lies above ``level``, fails when it
    lies whole below, else undecided. ``"below"``: the mirror image. ``"inside"``:
    ``level`` is a band ``(low, high)``; holds when the interval lies inside it, fails
    when it lies whole outside it (entirely below its low end or above its high end).

    Example:
        >>> from claims.stats import Interval
        >>> rule = Rule("above", 0.5)
        >>> rule.text()
        'holds: lower end > 0.5; fails: upper end < 0.5; else undecided'
        >>> rule.decide(Interval(0.9, 0.7, 1.1)), rule.decide(Interval(0.5, 0.4, 0.6))
        ('holds', 'undecided')
        >>> Rule("inside", (-1.0, 1.0)).decide(Interval(2.0, 1.5, 2.5))
        'fails'
    """

    side: str
    level: float | tuple[float, float]
    null: float = 0.0
    """The value of no effect (0 for a slope or a difference, 1 for a ratio): half and
    twice the level (:meth:`scaled`) halve and double its distance from it."""

    def __post_init__(self) -> None:
        if self.side not in ("above", "below", "inside"):
            msg = f"side must be 'above', 'below' or 'inside', got {self.side!r}"
            raise ValueError(msg)
        band = isinstance(self.level, tuple)
        if band != (self.side == "inside"):
            msg = f"side {self.side!r} needs a {'band' if not band else 'level'}: {self.level}"
            raise ValueError(msg)
        if band and not self.level[0] < self.level[1]:  # type: ignore[index]
            msg = f"a band must have low < high, got {self.level}"
            raise ValueError(msg)

    def text(self) -> str:
        """The rule in words, as the report prints it."""
        if self.side == "above":
            return f"holds: lower end > {self.level:g}; fails: upper end < {self.level:g}; {_ELSE}"
        if self.side == "below":
            return f"holds: upper end < {self.level:g}; fails: lower end > {self.level:g}; {_ELSE}"
        low, high = self.level  # type: ignore[misc]
        return (
            f"holds: interval inside [{low:g}, {high:g}]; fails: interval entirely below "
            f"{low:g} or above {high:g}; else undecided"
        )

    def decide(self, interval: Any) -> str:
        """``"holds"``, ``"fails"`` or ``"undecided"`` for an interval (``low``, ``high``;
        an exact value has ``low == high``)."""
        low, high = _ends(interval)
        if self.side == "above":
            return _decide(holds=low > self.level, fails=high < self.level)  # type: ignore[operator]
        if self.side == "below":
            return _decide(holds=high < self.level, fails=low > self.level)  # type: ignore[operator]
        band_low, band_high = self.level  # type: ignore[misc]
        inside = band_low <= low and high <= band_high
        return _decide(holds=inside, fails=high < band_low or low > band_high)

    def retargeted(self, level: float | tuple[float, float]) -> Rule:
        """The same rule at another level (a false target, or half or twice the level)."""
        return Rule(self.side, level, self.null)

    def scaled(self, factor: float) -> Rule:
        """The rule at ``factor`` times its level's distance from :attr:`null`; a band at
        ``factor`` times its half-width about its centre. The decisions at half and twice
        the level show how much a verdict rests on where the level was put."""
        if isinstance(self.level, tuple):
            low, high = self.level
            centre, half = (low + high) / 2, (high - low) / 2
            return self.retargeted((centre - factor * half, centre + factor * half))
        return self.retargeted(self.null + factor * (self.level - self.null))


def _ends(interval: Any) -> tuple[float, float]:
    low = getattr(interval, "low", None)
    high = getattr(interval, "high", None)
    if low is None or high is None:
        value = float(getattr(interval, "estimate", interval))
        return value, value
    return float(low), float(high)


def _decide(*, holds: bool, fails: bool) -> str:
    if holds and not fails:
        return "holds"
    if fails and not holds:
        return "fails"
    return "undecided"


# ---------------------------------------------------------------------------------------
# declarations


@dataclass(frozen=True)
class Control:
    """An opposite setting, declared before the run: where the conjecture's mechanism is
    absent, the statistic must report the opposite (``fires`` decides, on the control's
    own interval, whether it did). It can fail: that is what makes it a control."""

    name: str
    setting: str
    """What is different there, and why the conjecture predicts the opposite."""
    fires: Rule
    """Fired when this rule decides ``holds`` on the control's interval."""


@dataclass(frozen=True)
class FalseTarget:
    """A wrong target the claim's rule must not accept: the same rule at another level
    (``level``), or the same statistic measured against a wrong target (``level`` None:
    the experiment computes it, e.g. the count against ``k + 2``)."""

    name: str
    target: str
    """The wrong target in words (``"the ground state E_0 = -1.657"``)."""
    level: float | tuple[float, float] | None = None


@dataclass(frozen=True)
class Sanity:
    """A check whose outcome follows from the setup (it cannot fail when the instrument
    works): reported and required, never counted as evidence."""

    name: str
    expectation: str
    passes: Rule


@dataclass(frozen=True)
class Claim:
    """One pre-registered claim: what is tested, how it is decided, and what could have
    contradicted it."""

    id: str
    """Stable identifier, citation key first (``"sagun2014.spin_glass.p3.location"``)."""
    conjecture: str
    paper: str
    """Citation key into :data:`PAPERS`."""
    section: str
    """Where in the paper (section, figure, table)."""
    kind: str
    """``"evidence"`` or ``"identity"`` (module docstring)."""
    statistic: str
    rule: Rule
    expected: str
    """The decision measured at :data:`claims.seeds.PREREGISTERED_OFFSETS` (``holds``, ``fails``,
    ``undecided``); the test fails there if it changes."""
    why: str = ""
    """For an identity: the theorem or construction it follows from. For an expected
    ``fails`` or ``undecided``: the reason, in words (numbers live in the report)."""
    controls: tuple[Control, ...] = ()
    false_targets: tuple[FalseTarget, ...] = ()
    sanity_checks: tuple[Sanity, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            msg = f"{self.id}: kind must be one of {KINDS}, got {self.kind!r}"
            raise ValueError(msg)
        if self.paper not in PAPERS:
            msg = f"{self.id}: paper must be a key of PAPERS, got {self.paper!r}"
            raise ValueError(msg)
        if self.expected not in ("holds", "fails", "undecided"):
            msg = f"{self.id}: expected must be holds, fails or undecided: {self.expected!r}"
            raise ValueError(msg)
        if self.kind == "identity" and not self.why:
            msg = f"{self.id}: an identity must say in `why` what it follows from"
            raise ValueError(msg)
        names = [c.name for c in self.controls] + [t.name for t in self.false_targets]
        names += [s.name for s in self.sanity_checks]
        if len(names) != len(set(names)):
            msg = f"{self.id}: control, false-target and sanity names must be distinct"
            raise ValueError(msg)

    def citation(self) -> str:
        """The paper's full citation with this claim's section."""
        return PAPERS[self.paper].cite(self.section)

    def record(
        self,
        interval: Any,
        *,
        controls: Mapping[str, Any] | None = None,
        false_targets: Mapping[str, Any] | None = None,
        sanity_checks: Mapping[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        unpowered: str = "",
    ) -> ClaimRecord:
        """The :class:`claims.report.ClaimRecord` of this claim for a measured interval.

        Args:
            interval: the statistic's :class:`claims.stats.Interval` (or anything with
                ``estimate``, ``low``, ``high``, optionally ``p_value``).
            controls: the interval of each declared control, by name (all of them).
            false_targets: per declared false target, by name: its interval, for a target
                measured by the experiment (``level`` None); nothing (None) for a target
                that is the rule at another ``level``, decided on ``interval`` itself.
            sanity_checks: the interval of each declared sanity check, by name.
            data: the raw numbers (per setting, per seed); the decisions at half and twice
                the rule's level are added under ``"sensitivity"``.
            unpowered: the reason when the sequential design hit its cap before the power
                target: the decision is then ``undecided`` (the rule's own verdict stays
                in ``data["decision_if_powered"]``).

        Raises:
            ValueError: a declared control, false target or sanity check is missing, or
                one that was not declared is given.
        """
        controls, false_targets = controls or {}, false_targets or {}
        sanity_checks = sanity_checks or {}
        _same_names(self.id, "controls", self.controls, controls)
        _same_names(self.id, "false_targets", self.false_targets, false_targets)
        _same_names(self.id, "sanity_checks", self.sanity_checks, sanity_checks)
        data = dict(data or {})
        decision = self.rule.decide(interval)
        data["sensitivity"] = {
            "half_level": self.rule.scaled(0.5).decide(interval),
            "twice_level": self.rule.scaled(2.0).decide(interval),
        }
        if unpowered:
            data["decision_if_powered"] = decision
            data["unpowered"] = unpowered
            decision = "undecided"
        checks = {
            "controls": [
                CheckResult.of(c.name, c.setting, c.fires, controls[c.name], passed_on="holds")
                for c in self.controls
            ],
            "false_targets": [
                self._false_target(target, interval, false_targets[target.name])
                for target in self.false_targets
            ],
            "sanity_checks": [
                CheckResult.of(s.name, s.expectation, s.passes, sanity_checks[s.name])
                for s in self.sanity_checks
            ],
        }
        return ClaimRecord(
            id=self.id,
            claim=self.conjecture,
            paper=self.citation(),
            kind=self.kind,
            statistic=self.statistic,
            **interval_fields(interval),
            rule=self.rule.text(),
            decision=decision,
            expected=self.expected,
            why=self.why,
            data=data,
            **checks,
        )

    def _false_target(self, target: FalseTarget, interval: Any, measured: Any) -> CheckResult:
        if target.level is not None:
            if measured is not None:
                msg = f"{self.id}: false target {target.name!r} is a level: pass None for it"
                raise ValueError(msg)
            rule = self.rule.retargeted(target.level)
            return CheckResult.of(target.name, target.target, rule, interval, passed_on="not holds")
        if measured is None:
            msg = f"{self.id}: false target {target.name!r} needs its measured interval"
            raise ValueError(msg)
        return CheckResult.of(
            target.name, target.target, self.rule, measured, passed_on="not holds"
        )


def _same_names(claim: str, what: str, declared: Sequence[Any], given: Mapping[str, Any]) -> None:
    want = {item.name for item in declared}
    if set(given) != want:
        msg = (
            f"{claim}: {what} must be exactly the declared ones {sorted(want)}, got {sorted(given)}"
        )
        raise ValueError(msg)
