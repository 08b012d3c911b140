"""gurari2018: the gradient lives in the top Hessian subspace, which barely moves.

Conjecture:
    After a short first phase of training, the full-batch gradient lies almost entirely in
    the span of the top ``C`` eigenvectors of the Hessian (``C`` = the number of classes),
    and that subspace barely moves for the rest of training. Its premise: the Hessian has
    ``C`` separated outliers, whose eigenspace is the top subspace.

Paper:
    ``gurari2018`` (the fraction of the gradient in the top subspace, the overlap of the
    top subspaces at two times, and a solvable model of classification; their section
    numbers were not checked offline). The papers give these numbers as curves only; the
    levels below (0.8, 0.7) are the project's pre-registered ones (issue 15). Whether that
    subspace does the learning (Song, Ahn, Yun 2025) is recorded in
    ``claims/test_song2025_projected_sgd.py``.

Setup (:data:`SETUPS`):
    The suite's Gaussian mixture (:func:`claims.spectra.problem_of`; a few well-separated
    classes, as in Gur-Ari et al.'s toy setting): ``C = 5`` clusters of 100 samples in 100
    dimensions (separation 10, standardised), a ``100-30-30-5`` ReLU softmax network
    (float64, cross-entropy), SGD with step 0.1 and batches of 50 (:func:`hesskit.train.sgd`,
    run in segments between checkpoints) for 2,000 steps. At checkpoints ``t in {0, 2, 5,
    10, 20, 50, 100, 200, 500, 1000, 2000}``: the top ``C + 1`` Hessian eigenpairs
    (:func:`claims.subspaces.hessian_top`, float64, raising unless converged), ``V_t`` the
    top ``C`` eigenvectors, and the full-batch gradient ``g_t``. Every random stream of a
    run -- initialisation, minibatch order (per segment), Lanczos start, random subspaces
    -- is its own :func:`claims.seeds.stream` role of the seed; the data are drawn from the
    seed itself.

Claims, statistics and rules (:data:`CLAIMS`; 95% t-intervals of the mean over seeds):
    1. ``gurari2018.subspace.gradient_in_top``: per seed, the smallest fraction ``f_top =
       ||V_t^T g_t||^2 / ||g_t||^2`` over the late checkpoints ``t >= 100``; holds above
       0.8.
    2. ``gurari2018.subspace.top_frozen``: per seed, the smallest overlap ``||V_t^T
       V_10t||_F^2 / C`` over ``t in {100, 200}``; holds above 0.7.

Opposite controls (each can fail): early training (``t`` up to 20 for 1, the pairs
``(t, 10 t)`` with ``t in {2, 5}`` for 2: the gradient has not yet entered the top
subspace, which still turns), and scikit-learn's digits (100 samples of each of the 10
classes, standardised, a ``64-32-32-10`` tanh network, the same SGD and checkpoints,
``C = 10``), whose Hessian has no ``C`` separated outliers (``lambda_C / lambda_C+1``
near 1): the conjecture's premise is absent there, so the top-``C`` subspace is the edge
of the bulk, and the statistic must not read alignment (a digits verdict would not be a
failure of the conjecture, so digits is a control, not a claim). Its premise numbers --
the gap and the gradient's share in the Gauss-Newton top-``C`` eigenspace at the late
checkpoints -- are in ``data["digits_premise"]``. False targets: the same rule at a level
only exact alignment (a frozen subspace) would pass, 0.999. Sanity checks (cannot fail):
a random ``C``-dimensional subspace in place of the top one (about ``C / n`` of anything).

Power design: the pilot seeds' per-seed statistics give the seeds needed for power 0.9
(:func:`claims.stats.power_by_setting`; a pilot without spread sized with the round-off
:data:`RESOLUTION`); a :class:`claims.stats.SequentialDesign` draws that many claim seeds
in order from a reserve, up to its cap, beyond which the claim is undecided
(``data["power"]``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import hesskit
from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh, stream
from claims.subspaces import captured, hessian_top, overlap, random_subspace, top_eigenpairs
from hesskit.problems import Problem, digits
from hesskit.train import sgd

TOP_LEVEL = 0.8
"""The fraction of the gradient in the top subspace that counts as living there."""
FROZEN_LEVEL = 0.7
"""The overlap of the top subspaces at t and 10 t that counts as nearly frozen."""
POWER = 0.9
RESOLUTION = 1e-6
"""The round-off of a fraction or an overlap (Lanczos to its default tolerance): the
spread a pilot without any is sized with (:func:`claims.stats.seeds_for_mean_interval`)."""
INIT, ORDER, LANCZOS, CHECKPOINT_SUBSPACE, FROZEN_SUBSPACE = 1, 2, 3, 4, 5
"""The :func:`claims.seeds.stream` roles of a run's seed: the initialisation, the minibatch
order of the trajectory (per segment, nested), the Lanczos start, the random subspace at a
checkpoint (nested by step) and against ``V_10t``. The data are drawn from the seed itself."""

_DIGITS = (
    "digits with a 64-32-32-10 tanh MLP: no C separated outliers (lambda_C / lambda_C+1 "
    "near 1), the premise of a top-C subspace absent"
)
_RANDOM = "a random C-dim subspace holds about C / n (largest over seeds)"

CLAIMS = (
    Claim(
        id="gurari2018.subspace.gradient_in_top",
        conjecture="after the first phase the gradient lies in the top-C Hessian eigenspace "
        "(Gaussian mixture, C separated outliers)",
        paper="gurari2018",
        section="the gradient's fraction in the top subspace",
        kind="evidence",
        statistic="smallest ||P_top g||^2 / ||g||^2 over the late checkpoints (seed mean)",
        rule=Rule("above", TOP_LEVEL),
        expected="holds",
        controls=(
            Control(
                "early training",
                "t <= 20, before the first phase ends: the largest f_top",
                Rule("below", TOP_LEVEL),
            ),
            Control("digits, no outlier gap", _DIGITS, Rule("below", TOP_LEVEL)),
        ),
        false_targets=(
            FalseTarget("exact", "all of the gradient to within 1e-3 (level 0.999)", 0.999),
        ),
        sanity_checks=(Sanity("random subspace", _RANDOM, Rule("below", 0.1)),),
    ),
    Claim(
        id="gurari2018.subspace.top_frozen",
        conjecture="the top-C Hessian eigenspace barely moves after the first phase "
        "(Gaussian mixture, C separated outliers)",
        paper="gurari2018",
        section="the overlap of the top subspaces at two times",
        kind="evidence",
        statistic="smallest ||V_t^T V_10t||_F^2 / C over the late pairs (seed mean)",
        rule=Rule("above", FROZEN_LEVEL),
        expected="holds",
        controls=(
            Control(
                "early pairs",
                "pairs (t, 10 t) with t in {2, 5}, while the subspace forms: the largest overlap",
                Rule("below", FROZEN_LEVEL),
            ),
            Control("digits, no outlier gap", _DIGITS, Rule("below", FROZEN_LEVEL)),
        ),
        false_targets=(
            FalseTarget("exact", "the subspace unchanged to within 1e-3 (level 0.999)", 0.999),
        ),
        sanity_checks=(Sanity("random subspace", _RANDOM, Rule("below", 0.1)),),
    ),
)
GRADIENT_IN_TOP, TOP_FROZEN = CLAIMS


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, schedule, seeds and sequential design."""

    num_classes: int
    samples_per_cluster: int
    width: int
    lr: float
    batch_size: int
    checkpoints: tuple[int, ...]
    late: tuple[int, ...]
    early: tuple[int, ...]
    frozen_pairs: tuple[int, ...]
    early_pairs: tuple[int, ...]
    digits_per_class: int | None
    pilot_seeds: tuple[int, ...]
    reserve: tuple[int, ...]
    """The claim seeds, drawn in order by :attr:`design`."""
    design: stats.SequentialDesign
    digits_seeds: tuple[int, ...]
    """The digits control's seeds."""

    def problem(self, dataset: str, seed: int, device: str) -> Problem:
        """The seeded ``"mixture"`` or ``"digits"`` (the ``64-32-32-10`` tanh network)."""
        if dataset == "digits":
            problem = digits(samples_per_class=self.digits_per_class, hidden=(32, 32), seed=seed)
            return problem.to(device=device)
        run = sp.Run(
            num_clusters=self.num_classes,
            width=self.width,
            seed=seed,
            samples_per_cluster=self.samples_per_cluster,
            device=device,
        )
        return sp.problem_of(run)[0]


SETUPS = {
    "quick": Setup(
        num_classes=5,
        samples_per_cluster=100,
        width=30,
        lr=0.1,
        batch_size=50,
        checkpoints=(0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
        late=(100, 200, 500, 1000, 2000),
        early=(2, 5, 10, 20),
        frozen_pairs=(100, 200),
        early_pairs=(2, 5),
        digits_per_class=100,
        pilot_seeds=(6, 7, 8),
        reserve=tuple(range(30, 40)),
        design=stats.SequentialDesign(minimum=5, cap=10),
        digits_seeds=(40, 41, 42),
    ),
    "full": Setup(
        num_classes=10,
        samples_per_cluster=200,
        width=100,
        lr=0.1,
        batch_size=50,
        checkpoints=(0, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000),
        late=(100, 200, 500, 1000, 2000, 5000, 10000, 20000),
        early=(2, 5, 10, 20),
        frozen_pairs=(100, 200, 500, 1000, 2000),
        early_pairs=(2, 5),
        digits_per_class=None,
        pilot_seeds=(6, 7, 8),
        reserve=tuple(range(30, 50)),
        design=stats.SequentialDesign(minimum=10, cap=20),
        digits_seeds=(40, 41, 42, 43, 44),
    ),
}


# ---------------------------------------------------------------------------------------
# the top subspace along an SGD trajectory


def top_subspace(
    problem: Problem,
    model: torch.nn.Module,
    *,
    seed: int,
    k: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` (default ``C``) Hessian eigenvalues and orthonormal eigenvectors
    ``(n, k)`` at ``model`` (:func:`claims.subspaces.hessian_top`, Lanczos seeded by
    the ``LANCZOS`` stream of ``seed``)."""
    k = problem.num_classes if k is None else k
    top = hessian_top(problem, model, k, seed=stream(seed, LANCZOS))
    return top.eigenvalues, top.eigenvectors


def ggn_share(problem: Problem, model: torch.nn.Module, gradient: torch.Tensor, seed: int) -> float:
    """The share of ``gradient`` in the top-``C`` eigenspace of the Gauss-Newton matrix."""
    operator = hesskit.ggn(model, problem.loss_fn, problem.data)
    top = top_eigenpairs(operator, problem.num_classes, seed=stream(seed, LANCZOS))
    return captured(top.eigenvectors, gradient)


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One seeded SGD run with the top subspace at every checkpoint.

    Attributes:
        seed: the run's seed.
        steps: the checkpoints.
        losses: the full training loss at each.
        top: ``f_top`` of the full-batch gradient at each.
        random: the same share in a random ``C``-dimensional subspace at each.
        ggn_top: the same share in the Gauss-Newton matrix's top-``C`` eigenspace at the
            late checkpoints where measured (``None`` elsewhere).
        eigenvalues: the top ``C + 1`` eigenvalues at each.
        bases: the top-``C`` eigenvectors at each (not reported).
        models: the network at each checkpoint (not reported).
    """

    seed: int
    steps: tuple[int, ...]
    losses: list[float]
    top: list[float]
    random: list[float]
    ggn_top: list[float | None]
    eigenvalues: list[list[float]]
    bases: dict[int, torch.Tensor]
    models: dict[int, torch.nn.Module]

    def at(self, values: Sequence[float | None], steps: Sequence[int]) -> list[float]:
        """``values`` (one per checkpoint) at the checkpoints ``steps``."""
        return [values[self.steps.index(t)] for t in steps]

    def overlap(self, t: int) -> float:
        """The overlap of the top subspaces at ``t`` and ``10 t``."""
        return overlap(self.bases[t], self.bases[10 * t])

    def gap(self, t: int) -> float:
        """``lambda_C / lambda_{C+1}`` at checkpoint ``t``: about 1 without C outliers."""
        values = self.eigenvalues[self.steps.index(t)]
        return values[-2] / values[-1]

    def summary(self) -> dict[str, object]:
        return {
            "steps": list(self.steps),
            "losses": self.losses,
            "f_top": self.top,
            "f_random": self.random,
            "f_top_ggn": self.ggn_top,
            "top_C_plus_1_eigenvalues": self.eigenvalues,
            "gap_C_over_C_plus_1": [self.gap(t) for t in self.steps],
        }


def trajectory_of(
    setup: Setup,
    problem: Problem,
    seed: int,
    steps: tuple[int, ...],
    *,
    gauss_newton: bool = False,
) -> Trajectory:
    """SGD on ``problem`` from the seeded initialisation, measured at ``steps``.

    :func:`hesskit.train.sgd` runs each segment between checkpoints, its minibatch order
    seeded by the segment's index in the ``ORDER`` stream of ``seed``. With
    ``gauss_newton`` the gradient's share in the Gauss-Newton top-``C`` eigenspace is
    measured at the late checkpoints too (digits' premise; a Lanczos solve each).
    """
    model = problem.make_model(seed=stream(seed, INIT))
    losses, top, rand, gn, values, bases, models = [], [], [], [], [], {}, {}
    done = 0
    for index, step in enumerate(steps):
        if step > done:
            model = sgd(
                model,
                problem.loss_fn,
                problem.data,
                lr=setup.lr,
                batch_size=setup.batch_size,
                max_steps=step - done,
                eval_every=step - done,
                seed=stream(stream(seed, ORDER), index),
            ).model
            done = step
        full = hesskit.Objective(model, problem.loss_fn, problem.data)
        gradient = full.gradient()
        eigenvalues, vectors = top_subspace(problem, model, seed=seed, k=problem.num_classes + 1)
        basis = vectors[:, : problem.num_classes]
        other = random_subspace(
            *basis.shape, seed=stream(stream(seed, CHECKPOINT_SUBSPACE), step), like=basis
        )
        losses.append(float(full.loss()))
        top.append(captured(basis, gradient))
        rand.append(captured(other, gradient))
        late = gauss_newton and step in setup.late
        gn.append(ggn_share(problem, model, gradient, seed) if late else None)
        values.append([float(x) for x in eigenvalues])
        bases[step], models[step] = basis, model
    return Trajectory(seed, tuple(steps), losses, top, rand, gn, values, bases, models)


@functools.cache
def trajectory(setup: Setup, dataset: str, seed: int, device: str) -> Trajectory:
    """The trajectory of ``dataset``'s seeded run, once per process."""
    problem = setup.problem(dataset, seed, device)
    return trajectory_of(setup, problem, seed, setup.checkpoints, gauss_newton=dataset == "digits")


# ---------------------------------------------------------------------------------------
# the tests


def _late_top(setup: Setup, run: Trajectory) -> float:
    """The smallest ``f_top`` over the late checkpoints."""
    return min(run.at(run.top, setup.late))


def _frozen(setup: Setup, run: Trajectory) -> float:
    """The smallest overlap of ``V_t`` and ``V_10t`` over the late pairs."""
    return min(run.overlap(t) for t in setup.frozen_pairs)


def _premise(setup: Setup, runs: list[Trajectory]) -> dict[str, object]:
    """The outlier gap and the Gauss-Newton share at the late checkpoints (not decided)."""
    return {
        "late_checkpoints": list(setup.late),
        "gap_C_over_C_plus_1": [[r.gap(t) for t in setup.late] for r in runs],
        "f_top_hessian": [r.at(r.top, setup.late) for r in runs],
        "f_top_gauss_newton": [r.at(r.ggn_top, setup.late) for r in runs],
    }


def _claim_runs(
    setup: Setup,
    seed_offset: int,
    device: str,
    statistic: Callable[[Setup, Trajectory], float],
    level: float,
) -> tuple[list[Trajectory], stats.SeedDraw, dict]:
    """The mixture trajectories of the claim seeds the sequential design draws: the pilot
    seeds' ``statistic`` against ``level`` gives the seeds needed for power :data:`POWER`,
    drawn in order from the reserve up to the design's cap."""
    pilot_seeds = fresh(setup.pilot_seeds, seed_offset)
    pilot = [statistic(setup, trajectory(setup, "mixture", s, device)) for s in pilot_seeds]
    power = stats.power_by_setting(
        {"mixture": pilot}, {"mixture": level}, setup.design.cap, power=POWER, resolution=RESOLUTION
    )
    draw = setup.design.draw(fresh(setup.reserve, seed_offset), power["seeds_needed"])
    power = {**power, "seeds_drawn": len(draw.seeds)}
    return [trajectory(setup, "mixture", s, device) for s in draw.seeds], draw, power


def _digits(setup: Setup, seed_offset: int, device: str) -> list[Trajectory]:
    """The digits control's trajectories."""
    return [trajectory(setup, "digits", s, device) for s in fresh(setup.digits_seeds, seed_offset)]


def _largest_random(runs: list[Trajectory], share: Callable[[Trajectory], float]) -> float:
    """The sanity check: the largest share of a random subspace over runs."""
    return max(share(r) for r in runs)


def test_gradient_lives_in_the_top_subspace(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    runs, draw, power = _claim_runs(setup, seed_offset, device, _late_top, TOP_LEVEL)
    digits_runs = _digits(setup, seed_offset, device)
    values = [_late_top(setup, r) for r in runs]
    early = [max(r.at(r.top, setup.early)) for r in runs]
    record = GRADIENT_IN_TOP.record(
        stats.t_interval(values),
        controls={
            "early training": stats.t_interval(early),
            "digits, no outlier gap": stats.t_interval([_late_top(setup, r) for r in digits_runs]),
        },
        false_targets={"exact": None},
        sanity_checks={
            "random subspace": _largest_random(
                runs + digits_runs, lambda r: max(r.at(r.random, setup.late))
            )
        },
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "per_seed": values,
            "early_per_seed": early,
            "C_over_n": setup.num_classes / runs[0].bases[setup.late[0]].shape[0],
            "digits_premise": _premise(setup, digits_runs),
            "runs": [r.summary() for r in runs],
            "digits_runs": [r.summary() for r in digits_runs],
        },
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        seeds = {"mixture": draw.seeds, "digits": fresh(setup.digits_seeds, seed_offset)}
        _draw_trajectories(setup, seeds, device, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _random_frozen(run: Trajectory, setup: Setup) -> float:
    """The largest overlap of a random ``C``-dim subspace with ``V_10t`` (a sanity check)."""
    return max(
        overlap(
            random_subspace(
                *run.bases[t].shape, seed=stream(run.seed, FROZEN_SUBSPACE), like=run.bases[t]
            ),
            run.bases[10 * t],
        )
        for t in setup.frozen_pairs
    )


def test_top_subspace_is_nearly_frozen(
    setup: Setup, seed_offset: int, device: str, record_property: Callable
) -> None:
    runs, draw, power = _claim_runs(setup, seed_offset, device, _frozen, FROZEN_LEVEL)
    digits_runs = _digits(setup, seed_offset, device)
    values = [_frozen(setup, r) for r in runs]
    early = [max(r.overlap(t) for t in setup.early_pairs) for r in runs]
    pairs = (*setup.early_pairs, *setup.frozen_pairs)
    record = TOP_FROZEN.record(
        stats.t_interval(values),
        controls={
            "early pairs": stats.t_interval(early),
            "digits, no outlier gap": stats.t_interval([_frozen(setup, r) for r in digits_runs]),
        },
        false_targets={"exact": None},
        sanity_checks={
            "random subspace": _largest_random(
                runs + digits_runs, lambda r: _random_frozen(r, setup)
            )
        },
        data={
            "power": power,
            "seeds": list(draw.seeds),
            "per_seed": values,
            "early_per_seed": early,
            "overlaps": [{f"{t}": r.overlap(t) for t in pairs} for r in runs],
            "digits_overlaps": [{f"{t}": r.overlap(t) for t in pairs} for r in digits_runs],
            "digits_premise": _premise(setup, digits_runs),
        },
        unpowered=draw.unpowered,
    )
    conclude(record_property, record, seed_offset=seed_offset)


# ---------------------------------------------------------------------------------------
# figures


def _draw_trajectories(
    setup: Setup, seeds: dict[str, Sequence[int]], device: str, report_dir: Path
) -> None:
    """f_top (and a random subspace's share) and the overlap (t, 10 t), per seed and data
    (``seeds`` by dataset)."""
    plt = pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = np.array(setup.checkpoints[1:])
    for (dataset, dataset_seeds), color in zip(seeds.items(), ("C0", "C2"), strict=True):
        for index, seed in enumerate(dataset_seeds):
            run = trajectory(setup, dataset, seed, device)
            first = index == 0
            left.plot(
                steps,
                run.at(run.top, steps),
                "o-",
                color=color,
                ms=3,
                label=f"{dataset}: top-C subspace" if first else None,
            )
            left.plot(
                steps,
                run.at(run.random, steps),
                "s:",
                color="C1" if dataset == "mixture" else "C7",
                ms=2,
                label=f"{dataset}: random C-dim subspace" if first else None,
            )
            pairs = [t for t in steps if 10 * t in run.bases]
            right.plot(
                pairs,
                [run.overlap(t) for t in pairs],
                "o-",
                color=color,
                ms=3,
                label=dataset if first else None,
            )
    left.axhline(TOP_LEVEL, color="k", ls="--", lw=1)
    right.axhline(FROZEN_LEVEL, color="k", ls="--", lw=1)
    left.set(xscale="log", yscale="log", xlabel="SGD step t", ylabel="||P g||^2 / ||g||^2")
    right.set(xscale="log", xlabel="t", ylabel="overlap of V_t and V_10t", ylim=(0, 1.02))
    left.set_ylim(1e-6, 2)
    left.legend(fontsize=6, loc="lower left", ncol=2)
    right.legend(fontsize=7)
    figure.suptitle(
        "gurari2018: the gradient in the top-C Hessian subspace along SGD "
        f"(mixture C = {setup.num_classes}, digits C = 10; one line per seed)",
        fontsize=9,
    )
    save_figure(figure, report_dir, "gurari2018_gradient_in_top_subspace")
