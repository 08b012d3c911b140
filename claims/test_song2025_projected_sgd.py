"""song2025: SGD projected onto the top Hessian subspace, in the gradient-flow regime.

Conjecture (Song, Ahn, Yun):
    Although the gradient aligns with the top-``C`` Hessian eigenspace after a short first
    phase (gurari2018), that subspace does little of the learning: SGD projected onto it
    (Dom-SGD) stalls, while SGD with that component removed (Bulk-SGD) trains about as
    well as SGD. Their mechanism is the edge of stability (``eta lambda_max / 2`` near 1):
    SGD oscillates across the steep top directions, so the gradient points into them
    without leading anywhere.

Paper:
    ``song2025``, section 3 (Dom-SGD, Bulk-SGD, the switch from SGD once the alignment has
    settled); Lowell (2022), arXiv:2201.06964, on the same alignment.

What is recorded here, and why as identities:
    The suite's Gaussian mixture (:func:`claims.spectra.problem_of`): ``C = 5`` clusters
    of 100 samples in 100 dimensions, the ``100-30-30-5`` ReLU softmax network (float64,
    cross-entropy), SGD with step 0.1 and batches of 50 to the switch ``t0 = 100``, then
    300 further steps of SGD, Dom-SGD (``g <- V V^T g``) and Bulk-SGD (``g <- g - V V^T
    g``) on one shared minibatch order (:func:`projected_sgd`), ``V`` the top-``C``
    Hessian eigenvectors recomputed every 25 steps (Lanczos warm-started from the
    previous ones). Statistic: the share of SGD's log-loss decrease each achieves,
    ``log(L0 / L_mode) / log(L0 / L_sgd)``, t-interval of the mean over seeds.

    At this step ``eta lambda_max / 2`` is about 0.02 at the switch: gradient flow, not
    the paper's edge of stability. There, with nearly all of the gradient in the top
    subspace at the switch, Dom-SGD keeps nearly all of each step and Bulk-SGD nearly
    none, by arithmetic: a record of "Dom-SGD stalls" would be decided by the regime, not
    by the conjecture. Both records are therefore ``identity`` (checks of the instrument,
    never counted); their premises (the alignment and the regime) are sanity checks. The
    paper's regime (``eta lambda_max / 2`` within [0.9, 1.1] over the projected window,
    cross-entropy and squared loss) is not tested here: it needs the sharpness tracked
    over the window (``claims/HISTORY.md``).

Controls (can fail): the squared loss ``(1/2) ||f(x) - onehot(y)||^2`` (:func:`squared_loss`)
on the same mixture and network, where the gradient is only partly in the top subspace at
the switch: the identity's premise is absent there, so Dom-SGD need not keep SGD's pace
and Bulk-SGD need not stall. Sanity checks: a random ``C``-dimensional subspace in place
of the top one (it holds about ``C / n`` of each step: Dom-SGD on it stalls and Bulk-SGD
trains as SGD by construction), the alignment at the switch and the regime.

Seeds: a fixed list (:data:`SETUPS`), shifted by ``--claims-seed-offset``; an identity
needs no power design. Every random stream of a run is its own
:func:`claims.seeds.stream` role of the seed; the data are drawn from the seed itself.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import hesskit
from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, Rule, Sanity
from claims.report import conclude
from claims.seeds import fresh, stream
from claims.subspaces import captured, hessian_top, random_subspace
from hesskit.problems import Problem, mean_squared_error
from hesskit.train import sgd

INIT, ORDER, LANCZOS, PROJECTED_ORDER, PROJECTED_SUBSPACE = 1, 2, 3, 6, 7
"""The :func:`claims.seeds.stream` roles of a run's seed: the initialisation, the minibatch
order to the switch, the Lanczos start, and the projected runs' minibatch order and random
subspace."""
ALIGNED = 0.9
"""The identity's premise: at least this share of the gradient in the top subspace."""
GRADIENT_FLOW = 0.1
"""The identity's premise: ``eta lambda_max / 2`` at the switch below this."""

_SHARE = "log(L0/L_{mode}) / log(L0/L_sgd) over the projected steps from t0 (seed mean)"
_PREMISES = (
    Sanity(
        "aligned at the switch",
        f"the smallest f_top = ||V^T g||^2 / ||g||^2 at the switch is above {ALIGNED}",
        Rule("above", ALIGNED),
    ),
    Sanity(
        "gradient flow",
        f"the largest eta lambda_max / 2 at the switch is below {GRADIENT_FLOW}",
        Rule("below", GRADIENT_FLOW),
    ),
)
_SQUARED = (
    "the squared loss on the same mixture: the gradient only partly in the top subspace "
    "at the switch (the identity's premise absent)"
)
_WHY = (
    "arithmetic in the gradient-flow regime: with a share f of the gradient in the top "
    "subspace, Dom-SGD keeps about f of each step and Bulk-SGD about 1 - f, and at a step "
    "far below 2 / lambda_max the loss decrease is first order in the step; f is near 1 "
    "at the switch, so the outcome is set by the alignment and the regime, not by Song "
    "et al.'s edge-of-stability mechanism"
)

CLAIMS = (
    Claim(
        id="song2025.gradient_flow.dom_sgd_keeps_pace",
        conjecture="in the gradient-flow regime, with the gradient in the top-C subspace, "
        "SGD projected onto it (Dom-SGD) makes SGD's progress (the opposite of Song et "
        "al.'s stall at the edge of stability, which is not tested here)",
        paper="song2025",
        section="section 3",
        kind="identity",
        statistic=_SHARE.format(mode="dom"),
        rule=Rule("above", 0.9),
        expected="holds",
        why=_WHY,
        controls=(Control("squared loss", _SQUARED, Rule("below", 0.9)),),
        sanity_checks=(
            Sanity(
                "random subspace",
                "Dom-SGD on a random C-dim subspace stalls (it keeps about C / n of a step)",
                Rule("below", 0.1),
            ),
            *_PREMISES,
        ),
    ),
    Claim(
        id="song2025.gradient_flow.bulk_sgd_stalls",
        conjecture="in the gradient-flow regime, with the gradient in the top-C subspace, "
        "SGD with that component removed (Bulk-SGD) stalls (the opposite of Song et al.'s "
        "Bulk-SGD training as SGD at the edge of stability, which is not tested here)",
        paper="song2025",
        section="section 3",
        kind="identity",
        statistic=_SHARE.format(mode="bulk"),
        rule=Rule("below", 0.1),
        expected="holds",
        why=_WHY,
        controls=(Control("squared loss", _SQUARED, Rule("above", 0.1)),),
        sanity_checks=(
            Sanity(
                "random subspace",
                "Bulk-SGD off a random C-dim subspace trains as SGD (it keeps about all of a step)",
                Rule("above", 0.9),
            ),
            *_PREMISES,
        ),
    ),
)
DOM, BULK = CLAIMS


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered sizes, schedule and seeds."""

    num_classes: int
    samples_per_cluster: int
    width: int
    lr: float
    batch_size: int
    switch_step: int
    projected_steps: int
    refresh_every: int
    seeds: tuple[int, ...]

    def problem(self, loss: str, seed: int, device: str) -> Problem:
        """The seeded mixture with ``loss`` ``"cross_entropy"`` or ``"squared"``."""
        run = sp.Run(
            num_clusters=self.num_classes,
            width=self.width,
            seed=seed,
            samples_per_cluster=self.samples_per_cluster,
            device=device,
        )
        problem = sp.problem_of(run)[0]
        if loss == "squared":
            return dataclasses.replace(problem, loss_fn=squared_loss, name=f"{problem.name}, MSE")
        return problem


SETUPS = {
    "quick": Setup(
        num_classes=5,
        samples_per_cluster=100,
        width=30,
        lr=0.1,
        batch_size=50,
        switch_step=100,
        projected_steps=300,
        refresh_every=25,
        seeds=(30, 31, 32),
    ),
    "full": Setup(
        num_classes=10,
        samples_per_cluster=200,
        width=100,
        lr=0.1,
        batch_size=50,
        switch_step=100,
        projected_steps=2000,
        refresh_every=10,
        seeds=tuple(range(30, 35)),
    ),
}
LOSSES = ("cross_entropy", "squared")
MODES = ("sgd", "dom", "bulk")
"""SGD; each step projected onto the subspace (Dom-SGD); that component removed (Bulk-SGD)."""


def squared_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(1/2) ||f(x) - onehot(y)||^2``, the mean over samples: a loss whose valleys have a
    floor. Written as ``C / 2`` times :func:`hesskit.problems.mean_squared_error` (the mean
    over every entry); the normalisation sets the control's effective step."""
    onehot = torch.nn.functional.one_hot(targets, outputs.shape[1]).to(outputs.dtype)
    return outputs.shape[1] / 2 * mean_squared_error(outputs, onehot)


@dataclass(frozen=True, eq=False)
class Switch:
    """The switch point: the network after ``switch_step`` SGD steps, its top eigenvalue
    and the share of the full gradient in its top-``C`` eigenspace."""

    model: torch.nn.Module
    lambda_max: float
    f_top: float


@functools.cache
def switch_point(setup: Setup, loss: str, seed: int, device: str) -> Switch:
    """SGD from the seeded initialisation to ``setup.switch_step``, once per process."""
    problem = setup.problem(loss, seed, device)
    model = sgd(
        problem.make_model(seed=stream(seed, INIT)),
        problem.loss_fn,
        problem.data,
        lr=setup.lr,
        batch_size=setup.batch_size,
        max_steps=setup.switch_step,
        eval_every=setup.switch_step,
        seed=stream(seed, ORDER),
    ).model
    top = hessian_top(problem, model, problem.num_classes, seed=stream(seed, LANCZOS))
    gradient = hesskit.Objective(model, problem.loss_fn, problem.data).gradient()
    return Switch(model, float(top.eigenvalues[0]), captured(top.eigenvectors, gradient))


def projected_sgd(
    setup: Setup, problem: Problem, model: torch.nn.Module, *, mode: str, subspace: str, seed: int
) -> list[float]:
    """``setup.projected_steps`` steps of SGD from ``model``, projected as ``mode`` says.

    ``subspace`` is ``"top"`` (the top-``C`` Hessian eigenvectors at the current point,
    recomputed every ``setup.refresh_every`` steps, Lanczos warm-started from the previous
    ones) or ``"random"`` (one fixed random ``C``-dimensional subspace). The minibatch
    order depends on ``seed`` only, so the three modes see the same batches. Returns the
    full training loss at the start and after every tenth of the steps.
    """
    inputs, targets = problem.data
    full = hesskit.Objective(model, problem.loss_fn, problem.data)
    theta = full.parameters()
    gen = torch.Generator().manual_seed(stream(seed, PROJECTED_ORDER))
    point = copy.deepcopy(model)
    basis = random_subspace(
        theta.numel(), problem.num_classes, seed=stream(seed, PROJECTED_SUBSPACE), like=theta
    )
    order: list[torch.Tensor] = []
    losses = [float(full.loss(theta))]
    report_every = max(setup.projected_steps // 10, 1)
    for step in range(setup.projected_steps):
        if not order:
            perm = torch.randperm(inputs.shape[0], generator=gen).to(inputs.device)
            whole = inputs.shape[0] // setup.batch_size * setup.batch_size
            order = list(perm[:whole].split(setup.batch_size))
        index = order.pop()
        if mode != "sgd" and subspace == "top" and step % setup.refresh_every == 0:
            torch.nn.utils.vector_to_parameters(theta, point.parameters())
            start = None if step == 0 else basis.sum(dim=1)
            top = hessian_top(
                problem, point, problem.num_classes, seed=stream(seed, LANCZOS), v0=start
            )
            basis = top.eigenvectors
        batch = hesskit.Objective(model, problem.loss_fn, (inputs[index], targets[index]))
        gradient = batch.gradient(theta)
        inside = basis @ (basis.T @ gradient)
        update = {"sgd": gradient, "dom": inside, "bulk": gradient - inside}[mode]
        theta = theta - setup.lr * update
        if (step + 1) % report_every == 0:
            losses.append(float(full.loss(theta)))
    return losses


@functools.cache
def curve(setup: Setup, loss: str, seed: int, device: str, mode: str, subspace: str) -> list[float]:
    """One mode's loss curve from the switch point, once per process (SGD's does not depend
    on ``subspace``: pass ``"top"``)."""
    return projected_sgd(
        setup,
        setup.problem(loss, seed, device),
        switch_point(setup, loss, seed, device).model,
        mode=mode,
        subspace=subspace,
        seed=seed,
    )


def log_share(losses: list[float], reference: list[float]) -> float:
    """``log(L0 / L_end) / log(L0 / L_end_sgd)``: the share of SGD's log-loss decrease
    (NaN where SGD's loss did not fall)."""
    progress = math.log(reference[0] / reference[-1])
    return math.log(losses[0] / losses[-1]) / progress if progress > 0 else math.nan


@dataclass(frozen=True, eq=False)
class Comparison:
    """SGD, Dom-SGD and Bulk-SGD from one switch point: loss curves and shares."""

    curves: dict[str, list[float]]
    switch: Switch
    lr: float

    def share(self, mode: str) -> float:
        """``mode``'s share of SGD's log-loss decrease."""
        return log_share(self.curves[mode], self.curves["sgd"])

    @property
    def sharpness(self) -> float:
        """``eta lambda_max / 2`` at the switch (1: the edge of stability)."""
        return self.lr * self.switch.lambda_max / 2

    def summary(self) -> dict[str, object]:
        return {
            "dom": self.share("dom"),
            "bulk": self.share("bulk"),
            "f_top_at_switch": self.switch.f_top,
            "lr_lambda_max_over_2_at_switch": self.sharpness,
            "curves": self.curves,
        }


def comparison(setup: Setup, loss: str, seed: int, device: str, subspace: str) -> Comparison:
    """SGD, Dom-SGD and Bulk-SGD from the switch point of one seed (cached curves: the SGD
    reference is shared by the top and the random subspace)."""
    curves = {
        mode: curve(setup, loss, seed, device, mode, "top" if mode == "sgd" else subspace)
        for mode in MODES
    }
    return Comparison(curves, switch_point(setup, loss, seed, device), setup.lr)


def _interval(rows: Sequence[Comparison], mode: str) -> stats.Interval:
    return stats.t_interval([row.share(mode) for row in rows])


def _record(claim: Claim, mode: str, setup: Setup, seeds: Sequence[int], device: str):
    """The record of ``claim`` (``mode`` ``"dom"`` or ``"bulk"``) and its checks."""
    runs = {
        "cross_entropy": [comparison(setup, "cross_entropy", s, device, "top") for s in seeds],
        "random_subspace": [comparison(setup, "cross_entropy", s, device, "random") for s in seeds],
        "squared_loss": [comparison(setup, "squared", s, device, "top") for s in seeds],
    }
    main = runs["cross_entropy"]
    return claim.record(
        _interval(main, mode),
        controls={"squared loss": _interval(runs["squared_loss"], mode)},
        sanity_checks={
            "random subspace": _interval(runs["random_subspace"], mode),
            "aligned at the switch": min(c.switch.f_top for c in main),
            "gradient flow": max(c.sharpness for c in main),
        },
        data={
            "seeds": list(seeds),
            "refresh_every": setup.refresh_every,
            **{name: [c.summary() for c in rows] for name, rows in runs.items()},
        },
    )


def test_dom_sgd_keeps_pace_in_gradient_flow(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    seeds = fresh(setup.seeds, seed_offset)
    record = _record(DOM, "dom", setup, seeds, device)
    if report_dir is not None:
        _draw_projected(setup, seeds[0], device, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def test_bulk_sgd_stalls_in_gradient_flow(
    setup: Setup, seed_offset: int, device: str, record_property: Callable
) -> None:
    record = _record(BULK, "bulk", setup, fresh(setup.seeds, seed_offset), device)
    conclude(record_property, record, seed_offset=seed_offset)


def _draw_projected(setup: Setup, seed: int, device: str, report_dir: Path) -> None:
    """Training loss of SGD, Dom-SGD and Bulk-SGD from the switch, with cross-entropy and
    with the squared loss (one seed)."""
    plt = pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    style = {"sgd": ("SGD", "k--"), "dom": ("Dom-SGD", "o-"), "bulk": ("Bulk-SGD", "s-")}
    for ax, loss in zip(axes, LOSSES, strict=True):
        shown = comparison(setup, loss, seed, device, "top")
        for mode, losses in shown.curves.items():
            x = setup.switch_step + np.arange(len(losses)) * max(setup.projected_steps // 10, 1)
            label, marker = style[mode]
            ax.plot(x, losses, marker, ms=3, lw=1, label=label, zorder=3 if mode == "sgd" else 2)
        ax.set(yscale="log", xlabel="SGD step", ylabel="training loss")
        ax.set_title(f"{loss} (f_top at switch {shown.switch.f_top:.3f})", fontsize=8)
        ax.legend(fontsize=7)
    figure.suptitle(
        f"song2025: SGD projected onto / off the top-C Hessian subspace (seed {seed})",
        fontsize=9,
    )
    save_figure(figure, report_dir, "song2025_projected_sgd")
