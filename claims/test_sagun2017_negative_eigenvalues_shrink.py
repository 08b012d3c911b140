"""sagun2017: the negative eigenvalues of the Hessian shrink near the end of training.

Conjecture:
    Negative eigenvalues remain in the Hessian of a trained network but become orders of
    magnitude smaller than its top eigenvalue near the end of training:
    ``|lambda_min| / lambda_max`` falls by orders of magnitude between mid-training and
    the end, and is orders of magnitude below 1 at the end.

Paper:
    ``sagun2017``, section 3 (the spectrum at the end of training), following
    ``sagun2016`` (the negative eigenvalues shrink as training proceeds). The paper's own
    ratio (:data:`claims.reference.SAGUN2017_NEGATIVE_EIGENVALUE`, about ``-7e-5`` against
    outliers of about ``8e-2``) is a transcription that could not be checked against the
    paper's figure (see its provenance), so no level is taken from it: the level of claim
    2 comes from the conjecture's words, "orders of magnitude" (plural: at least two).

Setup (:data:`SETUPS`; the data, network and GD of :mod:`claims.spectra`, the paper's):
    ``k = 5`` Gaussian clusters (std 1, means at norm 10, standardised globally), the
    ReLU ``d-30-30-5`` softmax network, full-batch GD at step 0.05; data and
    initialisation seeded together. One GD run per seed stops at each loss level and
    continues from there (:func:`points_of_training`): *early* is loss ``0.3``,
    *mid-training* ``0.1``, *the end* ``1e-3`` (quick) or ``1e-4`` (full). ``lambda_min``
    and ``lambda_max`` are the extreme eigenvalues of the dense float64 Hessian (Lanczos
    leaves ``lambda_min`` unconverged once it sinks into the bulk, and an unconverged Ritz
    value biases towards the conjecture). Quick: input dimension 20, 40 samples per
    cluster (1,715 parameters). Full: 100 dimensions, 100 samples per cluster.
    Two further settings, reported with the rule's decision in ``data["settings"]`` and
    not counted: the squared loss on one-hot targets (GD at step 0.5; at interpolation
    the Hessian tends to the positive semi-definite Gauss-Newton matrix: a positive
    control, it points the same way as the claims), and a non-separable mixture
    (overlapping clusters, means at norm :attr:`Setup.overlap_separation`; cross-entropy
    then cannot reach zero without memorising), on the first
    :attr:`Setup.overlap_seeds` claim seeds.

Statistics and rules (95% intervals; ``q(L) = |lambda_min| / lambda_max`` at training
loss ``L``; over seeds the geometric mean with the t-interval of the mean log):
    1. ``sagun2017.negative.shrink_near_end``: ``q(end) / q(mid)``. Holds if the upper
       end is below ``SHRINK = 1/10`` (one order of magnitude); fails if the lower end is
       above it. Opposite control: the same ratio over half a decade of loss
       mid-training, ``q(0.1) / q(0.3)``, where the conjecture puts no such fall (fires if
       the lower end is above 1/10). False target: a fall by two orders (level 1e-2).
    2. ``sagun2017.negative.small_at_end``: ``q(end)``. Holds if the upper end is below
       ``SMALL = 1e-2``; fails if the lower end is above it. Opposite control: ``q(0.1)``,
       mid-training, where the conjecture puts no small ratio (fires if the lower end is
       above 1e-2). False target: three orders of magnitude (level 1e-3).

Seeds (:class:`claims.stats.SequentialDesign`): pilot seeds apart; for each claim the
pilot's sd of the log statistic (claim and opposite control) and its distance from the log
level give the seeds needed at power 0.9 (:func:`claims.stats.power_by_setting`); they
are drawn in order from :attr:`Setup.reserve`, at least ``minimum``, at most ``cap``
(beyond it the record is ``undecided``). Numbers in ``data["power"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from claims import protocols, stats
from claims import spectra as sp
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule
from claims.reference import SAGUN2017_NEGATIVE_EIGENVALUE
from claims.report import conclude
from claims.seeds import fresh
from hesskit.problems import Problem, mean_squared_error
from hesskit.train import gradient_descent

SHRINK = 0.1
"""A fall of ``|lambda_min| / lambda_max`` by at least this factor is "orders of magnitude"."""
SMALL = 1e-2
"""``|lambda_min| / lambda_max`` below this is "orders of magnitude smaller" (at least two)."""
POWER = 0.9

_NO_MINIMUM = (
    "with cross-entropy on separable data the loss has no minimum at finite weights: the "
    "residual term of the Hessian keeps its share as the loss falls, so lambda_min shrinks "
    "with lambda_max, not faster"
)
SHRINKS = Claim(
    id="sagun2017.negative.shrink_near_end",
    conjecture="|lambda_min| / lambda_max falls by orders of magnitude from mid-training to "
    "the end",
    paper="sagun2017",
    section="section 3; following sagun2016",
    kind="evidence",
    statistic="q(end) / q(mid), q = |lambda_min| / lambda_max (geometric mean over seeds)",
    rule=Rule("below", SHRINK, null=1.0),
    expected="fails",
    why=_NO_MINIMUM,
    controls=(
        Control(
            "mid-training",
            "q(0.1) / q(0.3), half a decade of loss mid-training, where the conjecture puts "
            "no fall by an order of magnitude",
            Rule("above", SHRINK, null=1.0),
        ),
    ),
    false_targets=(FalseTarget("two decades", "a fall by two orders of magnitude", level=1e-2),),
)
SMALL_AT_END = Claim(
    id="sagun2017.negative.small_at_end",
    conjecture="at the end of training |lambda_min| is orders of magnitude below lambda_max",
    paper="sagun2017",
    section="section 3 (the spectrum at the end of training)",
    kind="evidence",
    statistic="q(end) = |lambda_min| / lambda_max (geometric mean over seeds)",
    rule=Rule("below", SMALL),
    expected="fails",
    why=_NO_MINIMUM,
    controls=(
        Control(
            "mid-training",
            "q(0.1), cross-entropy mid-training, where the conjecture puts no small ratio",
            Rule("above", SMALL),
        ),
    ),
    false_targets=(
        FalseTarget("three decades", "q below 1e-3, three orders of magnitude", level=1e-3),
    ),
)
CLAIMS = (SHRINKS, SMALL_AT_END)


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, loss levels and seeds."""

    input_dim: int
    samples_per_cluster: int
    early_loss: float
    mid_loss: float
    end_loss: float
    squared_lr: float
    design: stats.SequentialDesign
    reserve: tuple[int, ...]
    """The claim seeds, drawn in order by ``design``."""
    pilot_seeds: tuple[int, ...]
    overlap_separation: float = 1.0
    """The norm of the cluster means of the non-separable mixture (the claims' is 10)."""
    overlap_seeds: int = 3
    """How many of the claim seeds also run the non-separable mixture (slow to converge)."""
    num_clusters: int = 5
    width: int = 30

    def run(self, seed: int, device: str, separation: float = 10.0) -> sp.Run:
        """The cross-entropy network of ``seed`` (data, size and GD of :mod:`claims.spectra`)."""
        return sp.Run(
            num_clusters=self.num_clusters,
            width=self.width,
            seed=seed,
            input_dim=self.input_dim,
            samples_per_cluster=self.samples_per_cluster,
            separation=separation,
            target_loss=self.end_loss,
            max_steps=200_000,
            device=device,
        )


SETUPS = {
    "quick": Setup(
        input_dim=20,
        samples_per_cluster=40,
        early_loss=0.3,
        mid_loss=0.1,
        end_loss=1e-3,
        squared_lr=0.5,
        design=stats.SequentialDesign(minimum=8, cap=14),
        reserve=tuple(range(50, 64)),
        pilot_seeds=(6, 7, 8),
    ),
    "full": Setup(
        input_dim=100,
        samples_per_cluster=100,
        early_loss=0.3,
        mid_loss=0.1,
        end_loss=1e-4,
        squared_lr=0.5,
        design=stats.SequentialDesign(minimum=8, cap=14),
        reserve=tuple(range(50, 64)),
        pilot_seeds=(6, 7, 8),
    ),
}


@dataclass(frozen=True)
class Extremes:
    """The extreme Hessian eigenvalues at one point of training."""

    loss: float
    steps: int
    lambda_max: float
    lambda_min: float

    @property
    def q(self) -> float:
        """``|lambda_min| / lambda_max``."""
        return abs(self.lambda_min) / self.lambda_max

    def summary(self) -> dict[str, float]:
        return dataclasses.asdict(self) | {"q": self.q}


def points_of_training(
    problem: Problem,
    model: torch.nn.Module,
    *,
    lr: float,
    levels: tuple[float, ...],
    max_steps: int,
) -> list[Extremes]:
    """Full-batch GD through the decreasing loss ``levels``, the dense spectrum at each.

    GD is deterministic and keeps no state, so continuing from the checkpoint at one level
    gives the same iterates as a run from the start to the next one.
    """
    points, steps = [], 0
    for level in levels:
        result = gradient_descent(
            model, problem.loss_fn, problem.data, lr=lr, max_steps=max_steps, target_loss=level
        )
        assert result.reached_target, f"GD missed the training loss {level} ({problem.name})"
        model, steps = result.model, steps + result.num_steps
        values = protocols.hessian_spectrum(problem, model)
        points.append(Extremes(result.final_loss, steps, float(values[-1]), float(values[0])))
    return points


def _squared_loss(num_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """:func:`hesskit.problems.mean_squared_error` (mean over every entry) against the
    one-hot targets of integer labels."""

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return mean_squared_error(
            outputs, functional.one_hot(targets, num_classes).to(outputs.dtype)
        )

    return loss_fn


@dataclass(frozen=True)
class SeedPoints:
    """One seed's points of training: cross-entropy early, mid and end; squared mid and end."""

    early: Extremes
    mid: Extremes
    end: Extremes
    squared_mid: Extremes
    squared_end: Extremes

    def log_ratios(self) -> dict[str, float]:
        """The per-seed log ratios of the fall: the claim, the squared loss, early to mid."""
        return {
            "claim": math.log(self.end.q / self.mid.q),
            "squared_loss": math.log(self.squared_end.q / self.squared_mid.q),
            "early_to_mid": math.log(self.mid.q / self.early.q),
        }

    def log_q(self) -> dict[str, float]:
        """The per-seed ``log q`` of the second claim and its controls."""
        return {
            "claim": math.log(self.end.q),
            "mid": math.log(self.mid.q),
            "squared_loss": math.log(self.squared_end.q),
        }

    def summary(self) -> dict[str, dict[str, float]]:
        return {name: getattr(self, name).summary() for name in self.__dataclass_fields__}


@functools.cache
def seed_points(setup: Setup, seed: int, device: str) -> SeedPoints:
    """Every point of training that the claims and their controls compare, for one seed:
    one cross-entropy run through the early, mid and end losses and one squared-loss run
    (the same data, network and initialisation; GD at ``setup.squared_lr``) through the
    mid and end losses."""
    run = setup.run(seed, device)
    problem, _ = sp.problem_of(run)
    model = problem.make_model(seed=run.seed)
    levels = (setup.early_loss, setup.mid_loss, setup.end_loss)
    early, mid, end = points_of_training(
        problem, model, lr=run.lr, levels=levels, max_steps=run.max_steps
    )
    squared = dataclasses.replace(problem, loss_fn=_squared_loss(run.num_classes))
    squared_mid, squared_end = points_of_training(
        squared,
        model,
        lr=setup.squared_lr,
        levels=(setup.mid_loss, setup.end_loss),
        max_steps=run.max_steps,
    )
    return SeedPoints(early, mid, end, squared_mid, squared_end)


@functools.cache
def overlap_points(setup: Setup, seed: int, device: str) -> tuple[Extremes, Extremes]:
    """The mid-training and end points of cross-entropy on the non-separable mixture."""
    run = setup.run(seed, device, separation=setup.overlap_separation)
    problem, _ = sp.problem_of(run)
    mid, end = points_of_training(
        problem,
        problem.make_model(seed=run.seed),
        lr=run.lr,
        levels=(setup.mid_loss, setup.end_loss),
        max_steps=run.max_steps,
    )
    return mid, end


def _draw_seeds(
    setup: Setup,
    seed_offset: int,
    device: str,
    values: Callable[[SeedPoints], dict[str, float]],
    names: tuple[str, ...],
    level: float,
) -> tuple[dict[str, object], stats.SeedDraw]:
    """The power analysis of a claim and its opposite control (``names``) on the pilot
    seeds (log values against ``log level``), and the claim seeds it draws."""
    pilot = [values(seed_points(setup, s, device)) for s in fresh(setup.pilot_seeds, seed_offset)]
    power = stats.power_by_setting(
        {name: [p[name] for p in pilot] for name in names},
        dict.fromkeys(names, math.log(level)),
        setup.design.minimum,
        power=POWER,
    )
    return power, setup.design.draw(fresh(setup.reserve, seed_offset), power["seeds_needed"])


def _geometric(logs: list[dict[str, float]], name: str) -> stats.Interval:
    """The geometric mean over seeds of ``exp(logs[name])`` with its interval."""
    return stats.geometric_mean_interval(np.exp([r[name] for r in logs]))


def _settings(claim: Claim, squared: stats.Interval, overlap: list[float]) -> dict[str, object]:
    """The claim's rule on the settings that are reported but not counted."""
    found = {
        "squared loss (a positive control)": squared,
        "non-separable mixture": stats.geometric_mean_interval(overlap),
    }
    return {
        name: {**dataclasses.asdict(value), "decision": claim.rule.decide(value)}
        for name, value in found.items()
    }


def _overlap(setup: Setup, seeds: tuple[int, ...], device: str) -> list[tuple[Extremes, Extremes]]:
    """The non-separable mixture's points on the first :attr:`Setup.overlap_seeds` seeds."""
    return [overlap_points(setup, s, device) for s in seeds[: setup.overlap_seeds]]


def _common_data(points: list[SeedPoints], overlap, draw: stats.SeedDraw) -> dict[str, object]:
    """The raw numbers both records carry."""
    return {
        "seeds": list(draw.seeds),
        "points": [p.summary() for p in points],
        "non_separable_points": [[e.summary() for e in pair] for pair in overlap],
        "paper": SAGUN2017_NEGATIVE_EIGENVALUE._asdict(),
    }


def test_negative_eigenvalues_shrink_near_the_end(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable[..., None],
    report_dir: pathlib.Path | None,
) -> None:
    power, draw = _draw_seeds(
        setup, seed_offset, device, SeedPoints.log_ratios, ("claim", "early_to_mid"), SHRINK
    )
    points = [seed_points(setup, s, device) for s in draw.seeds]
    logs = [p.log_ratios() for p in points]
    overlap = _overlap(setup, draw.seeds, device)
    record = SHRINKS.record(
        _geometric(logs, "claim"),
        controls={"mid-training": _geometric(logs, "early_to_mid")},
        false_targets={"two decades": None},
        data={
            "power": power,
            "log_ratios": logs,
            "settings": _settings(
                SHRINKS, _geometric(logs, "squared_loss"), [end.q / mid.q for mid, end in overlap]
            ),
            **_common_data(points, overlap, draw),
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw(points, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_negative_eigenvalues_small_at_the_end(
    setup: Setup, seed_offset: int, device: str, record_property: Callable[..., None]
) -> None:
    power, draw = _draw_seeds(setup, seed_offset, device, SeedPoints.log_q, ("claim", "mid"), SMALL)
    points = [seed_points(setup, s, device) for s in draw.seeds]
    logs = [p.log_q() for p in points]
    overlap = _overlap(setup, draw.seeds, device)
    record = SMALL_AT_END.record(
        _geometric(logs, "claim"),
        controls={"mid-training": _geometric(logs, "mid")},
        false_targets={"three decades": None},
        data={
            "power": power,
            "log_q": logs,
            "settings": _settings(
                SMALL_AT_END, _geometric(logs, "squared_loss"), [end.q for _, end in overlap]
            ),
            **_common_data(points, overlap, draw),
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


def _draw(points: list[SeedPoints], report_dir: pathlib.Path) -> None:
    """``q`` against the training loss per seed, cross-entropy and squared loss."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.6))
    for index, p in enumerate(points):
        first = index == 0
        ce = (p.early, p.mid, p.end)
        ax.plot(
            [e.loss for e in ce],
            [e.q for e in ce],
            "o-",
            color="C0",
            alpha=0.6,
            label="cross-entropy (the claim)" if first else None,
        )
        sq = (p.squared_mid, p.squared_end)
        ax.plot(
            [e.loss for e in sq],
            [e.q for e in sq],
            "s--",
            color="C3",
            alpha=0.6,
            label="squared loss (positive control)" if first else None,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("training loss (training proceeds to the right)")
    ax.set_ylabel("|lambda_min| / lambda_max")
    ax.legend(fontsize=7)
    ax.set_title(
        f"sagun2017: negative eigenvalues relative to the top ({len(points)} seeds, dense float64)",
        fontsize=8,
    )
    save_figure(figure, report_dir, "sagun2017_negative_eigenvalues")
