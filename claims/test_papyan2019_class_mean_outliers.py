"""papyan2019: the Hessian's outliers live in the span of the class-mean gradients.

Conjecture:
    Near the end of training of a C-class softmax classifier, the eigenspace of the C
    largest eigenvalues of the Hessian (and of its Gauss-Newton part G) is the span of the C
    class means of the per-sample loss gradients, and the C x C Gram matrix of Papyan's
    class means, scaled as his decomposition of G prescribes, has about the same C
    eigenvalues.

Paper:
    ``papyan2019`` (G as a second moment of gradients whose class means carry the
    outliers) and its sequel, Papyan (2020), arXiv:2008.11865 (the class/cross-class
    decomposition). The papers' text was not available offline, so no section is cited:
    the decomposition below is derived from the definitions the abstracts state, and its
    balanced-class ``G_1 = (C-1)/C sum_c d_c d_c^T`` agrees with a public reference
    implementation of the decomposition.

Setup (:data:`SETUPS`):
    *Mixture* (the claims): the Gaussian mixtures of :mod:`claims.spectra` (Sagun et al.
    2017's setup), ``C = 5`` clusters of 100 samples in 100 dimensions, the ``100-30-30-5``
    ReLU network, full-batch GD (step 0.05) to the training loss 0.01. *Digits* (an
    opposite control): all 1,797 standardised scikit-learn digits (``C = 10``), the
    library's ``W2`` network (``64-128-128-10`` ReLU), float64, full-batch GD (step 0.2)
    to the same loss; the seed draws the initialisation. Top eigenpairs of the Hessian and
    of G by Lanczos (float64). Papyan's networks were deep CNNs trained with SGD; the
    quick profile keeps ReLU networks and full-batch GD on data a CPU affords. The full
    profile (not yet run) takes ``C = 10`` clusters and the ``W3`` CNN on digits.

Definitions:
    *Overlap.* ``V``: the top-``C`` eigenvectors (orthonormal); ``Q``: an orthonormal
    basis of the span of the C class-mean per-sample loss gradients
    (:func:`hesskit.spectrum.class_mean_gradients`). The overlap ``||V^T Q||_F^2 / C`` is
    the mean squared cosine of the C principal angles: 1 when the subspaces coincide,
    ``C/n`` for a random subspace, unweighted (a class mean of small norm counts as much
    as a large one).

    *Gram eigenvalues (derived from Papyan's definitions).* With ``p_i`` the softmax of
    sample ``i`` and ``J_i`` its logit Jacobian, ``G = (1/N) sum_i sum_c' d_ic' d_ic'^T``
    with ``d_ic' = sqrt(p_ic') J_i^T (e_c' - p_i)``. Group the samples by class (shares
    ``pi_c``), let ``d_cc' = mean_{i in c} d_ic'`` and Papyan's class means ``d_c =
    (1/(C-1)) sum_{c' != c} d_cc'``; then ``G = G_1 + G_0 + G_2 + W``, all PSD, with ``G_1
    = (C-1) sum_c pi_c d_c d_c^T``, ``G_0 = sum_c pi_c d_cc d_cc^T``, ``G_2`` the spread
    of the ``d_cc'`` about ``d_c`` and ``W`` the within-class second moment. The nonzero
    eigenvalues of ``G_1`` are those of the C x C Gram ``(C-1) Pi^(1/2) D^T D Pi^(1/2)``;
    since ``G_1 <= G``, ``lambda_j(G_1) <= lambda_j(G)`` (Weyl). The decomposition is
    checked where it is exact (:func:`_check_decomposition`: one sample of each class
    ``c`` repeated ``c + 1`` times, so ``W = 0`` and the shares differ).

Claims, statistics and rules (:data:`CLAIMS`; 95% intervals):
    1. ``papyan2019.class_means.subspace``: per run the smaller of H's and G's overlap;
       t-interval of the mean over seeds. Holds above :data:`OVERLAP_LEVEL` = 0.9 (a mean
       principal angle below about 18 degrees).
    2. ``papyan2019.class_means.gram``: per run the geometric mean over ``j <= C`` of
       ``lambda_j(G_1) / lambda_j(H)``; geometric mean over seeds with the t-interval of
       the mean log. Holds inside :data:`GRAM_BAND` = [1/2, 2]. G's ratio is recorded.

Opposite controls (each can fail): random labels (networks trained on permuted labels:
no class structure), random equal-size groups of the same networks (the labels
permuted; not forced: random groups of a few hundred samples keep a share of the mean
gradient's direction), and digits with the W2 MLP, whose Hessian has no outlier gap at
rank C (``lambda_C / lambda_C+1`` near 1): the conjecture's premise, C separated
outliers, is absent there, so its top-C subspace is the edge of the bulk and need not be
the class means' (a verdict on digits would be a verdict on an ill-defined subspace, so
digits is a control, not a claim). False targets: for 1, coincidence to round-off (level
0.999) and the next C eigenvectors (ranks C+1..2C) as the outlier subspace; for 2, G_1
as the whole outlier (band [0.95, 1.05]) and the Gram of the library's loss-gradient class
means (the between-class part of the gradient's second moment, smaller than G by about
the loss). Sanity checks (cannot fail): a random C-dimensional subspace (overlap about
``C/n``); the decomposition's exactness; ``lambda_j(G_1) <= lambda_j(G)``.

Power design: the pilot seeds' per-seed statistics (overlaps; log ratios against the
nearest band edge) give the seeds needed for power 0.9
(:func:`claims.stats.power_by_setting`, a pilot without spread sized with the round-off
:data:`RESOLUTION`); a :class:`claims.stats.SequentialDesign` draws that many claim seeds
in order from a reserve, up to its cap, beyond which the claim is undecided
(``data["power"]``). The level 0.9 was set with pilot knowledge of digits (see
``claims/HISTORY.md``): the decisions at half and twice the level are in
``data["sensitivity"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import hesskit
from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.preregistration import Claim, Control, FalseTarget, Rule, Sanity
from claims.report import ClaimRecord, conclude, interval_fields
from claims.seeds import fresh, stream
from claims.subspaces import captured, orthonormal_basis, overlap, random_subspace, top_eigenpairs
from hesskit import spectrum
from hesskit.problems import Problem, digits, digits_architecture
from hesskit.train import gradient_descent

OVERLAP_LEVEL = 0.9
"""The mean squared cosine of the principal angles above which the subspaces coincide."""
GRAM_BAND = (0.5, 2.0)
"""The Gram eigenvalues approximate the top-C when the ratio's interval lies inside this."""
POWER = 0.9
RESOLUTION = 1e-6
"""The round-off of an overlap or a log ratio (Lanczos to its default tolerance): the
spread a pilot without any is sized with (:func:`claims.stats.seeds_for_mean_interval`)."""
GROUPS_ROLE, SUBSPACE_ROLE = 1, 2
"""The :func:`claims.seeds.stream` roles of a run's random groups and random subspace."""

_NO_GAP = (
    "digits with the W2 MLP trained by full-batch GD: no outlier gap at rank C "
    "(lambda_C / lambda_C+1 near 1), the premise of C separated outliers absent"
)
_RANDOM_LABELS = "random labels: networks trained on permuted labels (no class structure)"
_RANDOM_GROUPS = "random equal-size groups of the same networks' data (labels permuted)"

CLAIMS = (
    Claim(
        id="papyan2019.class_means.subspace",
        conjecture="the top-C Hessian (and G) eigenspace is the span of the C class-mean "
        "gradients (Gaussian mixtures, C separated outliers)",
        paper="papyan2019",
        section="the outliers and the class means; Papyan (2020), arXiv:2008.11865",
        kind="evidence",
        statistic="overlap ||V^T Q||^2 / C of the top-C eigenspace with the class-mean span, "
        "the smaller of H's and G's (mean over seeds)",
        rule=Rule("above", OVERLAP_LEVEL),
        expected="holds",
        controls=(
            Control("random labels", _RANDOM_LABELS, Rule("below", OVERLAP_LEVEL)),
            Control("random groups", _RANDOM_GROUPS, Rule("below", OVERLAP_LEVEL)),
            Control("digits, no outlier gap", _NO_GAP, Rule("below", OVERLAP_LEVEL)),
        ),
        false_targets=(
            FalseTarget("round-off", "coincidence to round-off (level 0.999)", level=0.999),
            FalseTarget(
                "next C eigenvectors",
                "the eigenvectors of ranks C+1..2C as the outlier subspace",
            ),
        ),
        sanity_checks=(
            Sanity(
                "random subspace",
                "a random C-dim subspace overlaps about C/n (largest over runs)",
                Rule("below", 0.1),
            ),
        ),
    ),
    Claim(
        id="papyan2019.class_means.gram",
        conjecture="the Gram eigenvalues of Papyan's class means, (C-1) Pi^(1/2) D^T D "
        "Pi^(1/2), are the top-C Hessian eigenvalues within a factor of 2 (Gaussian mixtures)",
        paper="papyan2019",
        section="the class/cross-class decomposition; Papyan (2020), arXiv:2008.11865",
        kind="evidence",
        statistic="lambda_j(G_1) / lambda_j(H), geometric mean over j <= C and seeds",
        rule=Rule("inside", GRAM_BAND),
        expected="holds",
        controls=(
            Control("random labels", _RANDOM_LABELS, Rule("below", GRAM_BAND[0])),
            Control("random groups", _RANDOM_GROUPS, Rule("below", GRAM_BAND[0])),
            Control("digits, no outlier gap", _NO_GAP, Rule("below", GRAM_BAND[0])),
        ),
        false_targets=(
            FalseTarget(
                "G_1 is all", "G_1 alone as the outliers (band [0.95, 1.05])", (0.95, 1.05)
            ),
            FalseTarget(
                "loss-gradient means",
                "the Gram of the class means of the per-sample loss gradients",
            ),
        ),
        sanity_checks=(
            Sanity(
                "decomposition",
                "G = G_1 + G_0 + G_2 where W = 0 (relative error)",
                Rule("below", 1e-8),
            ),
            Sanity(
                "Gram vs n x n G_1",
                "the C x C Gram's eigenvalues are the n x n G_1's (relative error)",
                Rule("below", 1e-6),
            ),
            Sanity(
                "G_1 <= G",
                "lambda_j(G_1) <= lambda_j(G) (Weyl): the largest per-run G ratio",
                Rule("below", 1.0 + 1e-6),
            ),
        ),
    ),
)
SUBSPACE, GRAM = CLAIMS


@dataclass(frozen=True)
class DigitsRun:
    """One network trained on all of scikit-learn's digits: the cache key of its training."""

    architecture: str
    seed: int
    lr: float
    target_loss: float = 0.01
    max_steps: int = 50_000
    device: str = "cpu"


Case = sp.Run | DigitsRun
"""The cache key of one trained network: a mixture run or a digits run."""


@dataclass(frozen=True)
class Setup:
    """One profile's pre-registered networks, seeds and sequential design."""

    num_clusters: int
    width: int
    pilot_seeds: tuple[int, ...]
    reserve: tuple[int, ...]
    """The claim seeds, drawn in order by :attr:`design`."""
    design: stats.SequentialDesign
    architecture: str
    digits_lr: float
    digits_seeds: tuple[int, ...]
    """The digits control's seeds."""

    def mixture(self, seed: int, device: str, *, random_labels: bool = False) -> sp.Run:
        """The cache key of one network trained on the seeded mixture."""
        return sp.Run(
            num_clusters=self.num_clusters,
            width=self.width,
            seed=seed,
            random_labels=random_labels,
            device=device,
        )

    def digits(self, seed: int, device: str) -> DigitsRun:
        """The cache key of one network trained on digits."""
        return DigitsRun(self.architecture, seed, self.digits_lr, device=device)


SETUPS = {
    "quick": Setup(
        num_clusters=5,
        width=30,
        pilot_seeds=(20, 21, 22),
        reserve=tuple(range(30, 40)),
        design=stats.SequentialDesign(minimum=5, cap=10),
        architecture="W2",
        digits_lr=0.2,
        digits_seeds=(40, 41, 42),
    ),
    "full": Setup(
        num_clusters=10,
        width=30,
        pilot_seeds=(20, 21, 22),
        reserve=tuple(range(30, 45)),
        design=stats.SequentialDesign(minimum=7, cap=15),
        architecture="W3",
        digits_lr=0.05,
        digits_seeds=(40, 41, 42, 43, 44),
    ),
}


# ---------------------------------------------------------------------------------------
# training and the measurements of one network


@functools.cache
def _digits_trained(run: DigitsRun) -> tuple[torch.nn.Module, Problem, float]:
    """``run``'s network trained by full-batch GD to its target loss, and its problem."""
    problem = digits().to(device=run.device)
    model = digits_architecture(run.architecture, seed=run.seed).to(torch.float64)
    model = model.to(run.device)
    result = gradient_descent(
        model,
        problem.loss_fn,
        problem.data,
        lr=run.lr,
        max_steps=run.max_steps,
        target_loss=run.target_loss,
    )
    assert result.reached_target, f"{run} missed the training loss ({result.final_loss:.3g})"
    return result.model.eval(), problem, result.final_loss


def _trained(
    case: Case,
) -> tuple[torch.nn.Module, Callable, torch.Tensor, torch.Tensor, float]:
    """``(model, loss_fn, inputs, labels, final_loss)`` of a mixture or digits case."""
    if isinstance(case, sp.Run):
        problem, result, _ = sp.trained(case)
        assert result.reached_target, f"{case} missed the training loss"
        return result.model, problem.loss_fn, *problem.data, result.final_loss
    model, problem, final_loss = _digits_trained(case)
    return model, problem.loss_fn, *problem.data, final_loss


def cross_class_means(
    model: torch.nn.Module, inputs: torch.Tensor, groups: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Papyan's ``d_gc' = mean_{i in g} sqrt(p_ic') J_i^T (e_c' - p_i)``, ``(n, g, c')``.

    ``groups`` holds each sample's group in ``0..num_classes-1`` (the labels, or random
    groups); the columns follow the flat layout of :func:`hesskit.hessian` (the trainable
    parameters in ``model.parameters()`` order). One forward pass per group and one
    vector-Jacobian product per ``(group, c')``. Also returns the group sizes.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    size = sum(p.numel() for p in params)
    means = inputs.new_zeros((size, num_classes, num_classes))
    counts = torch.bincount(groups, minlength=num_classes).to(inputs.dtype)
    eye = torch.eye(num_classes, dtype=inputs.dtype, device=inputs.device)
    for group in range(num_classes):
        logits = model(inputs[groups == group])
        probs = torch.softmax(logits, dim=1).detach()
        for other in range(num_classes):
            weights = probs[:, other : other + 1].sqrt() * (eye[other] - probs)
            grads = torch.autograd.grad(logits, params, weights, retain_graph=True)
            means[:, group, other] = torch.cat([g.reshape(-1) for g in grads]) / counts[group]
    return means, counts


def papyan_class_means(means: torch.Tensor) -> torch.Tensor:
    """Papyan's class means ``d_c``, the mean of ``d_cc'`` over ``c' != c``: ``(n, C)``."""
    num = means.shape[1]
    off = ~torch.eye(num, dtype=torch.bool, device=means.device)
    return torch.stack([means[:, c, off[c]].mean(dim=1) for c in range(num)], dim=1)


def papyan_gram_eigenvalues(means: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """The eigenvalues of ``G_1 = (C-1) sum_c pi_c d_c d_c^T``, descending (module docstring).

    They are those of the C x C matrix ``(C-1) Pi^(1/2) D^T D Pi^(1/2)``, ``D`` the
    :func:`papyan_class_means` of ``means`` and ``Pi`` the class shares ``counts / N``.
    """
    num = means.shape[1]
    class_means = papyan_class_means(means)
    root = (counts / counts.sum()).sqrt()
    gram = (num - 1) * root[:, None] * (class_means.T @ class_means) * root[None, :]
    return torch.linalg.eigvalsh(gram).flip(0)


@dataclass(frozen=True, eq=False)
class Measurement:
    """Everything both claims read off one trained network (float64, on the CPU)."""

    num_classes: int
    num_params: int
    final_loss: float
    hessian_top: np.ndarray
    ggn_top: np.ndarray
    overlap: dict[str, float]
    group_overlap: dict[str, float]
    random_overlap: dict[str, float]
    cosines: list[float]
    energy: float
    span_in_top_2c: float
    papyan_overlap: float
    gram: np.ndarray
    group_gram: np.ndarray
    loss_mean_gram: np.ndarray

    @property
    def gap(self) -> float:
        """``lambda_C / lambda_{C+1}`` of the Hessian: above 1 by a margin where the top C
        are separated outliers, about 1 where the top-C subspace is ill-defined."""
        c = self.num_classes
        return float(self.hessian_top[c - 1] / self.hessian_top[c])

    @property
    def next_c_overlap(self) -> float:
        """The overlap of the eigenvectors of ranks ``C+1..2C`` with the class-mean span (a
        false target: the wrong C eigenvectors)."""
        return self.span_in_top_2c - self.overlap["hessian"]

    def subspace(
        self, which: str = "overlap", side: Callable[[Iterable[float]], float] = min
    ) -> float:
        """``side`` (min or max) over H and G of the overlap named ``which``."""
        return side(getattr(self, which).values())

    def gram_ratio(self, operator: str, *, groups: bool = False) -> float:
        """Geometric mean over the top C of ``lambda_j(G_1) / lambda_j(operator)``."""
        gram = self.group_gram if groups else self.gram
        top = self.hessian_top if operator == "hessian" else self.ggn_top
        c = self.num_classes
        return float(np.exp(np.mean(np.log(gram[:c] / top[:c]))))

    @property
    def loss_mean_ratio(self) -> float:
        """Geometric mean over the top C of the loss-gradient means' Gram eigenvalues over
        the Hessian's (a false target of the Gram claim)."""
        c = self.num_classes
        return float(np.exp(np.mean(np.log(self.loss_mean_gram[:c] / self.hessian_top[:c]))))

    def summary(self) -> dict[str, object]:
        """Per-run numbers for a report's ``data``."""
        c = self.num_classes
        return {
            "num_params": self.num_params,
            "final_loss": self.final_loss,
            "hessian_top": self.hessian_top.tolist(),
            "hessian_gap_C_over_C_plus_1": self.gap,
            "ggn_top": self.ggn_top[:c].tolist(),
            "overlap": self.overlap,
            "group_overlap": self.group_overlap,
            "random_overlap": self.random_overlap,
            "cosines_per_eigenvector": self.cosines,
            "energy_share": self.energy,
            "class_mean_span_in_hessian_top_2C": self.span_in_top_2c,
            "papyan_class_mean_overlap_ggn": self.papyan_overlap,
            "gram_G1": self.gram.tolist(),
            "group_gram_G1": self.group_gram.tolist(),
            "gram_ratio": {op: self.gram_ratio(op) for op in ("hessian", "ggn")},
            "loss_mean_gram": self.loss_mean_gram.tolist(),
            "loss_mean_gram_ratio_hessian": self.loss_mean_ratio,
        }


@functools.cache
def measure(case: Case) -> Measurement:
    """Top eigenpairs of H and G, the overlaps and the Gram eigenvalues of one network."""
    model, loss_fn, inputs, labels, final_loss = _trained(case)
    data = (inputs, labels)
    c = int(labels.max()) + 1
    hessian_operator = hesskit.hessian(model, loss_fn, data, method="cached_graph")
    hessian = top_eigenpairs(hessian_operator, 2 * c, seed=case.seed)
    ggn = top_eigenpairs(hesskit.ggn(model, loss_fn, data), c, seed=case.seed)
    vectors = {"hessian": hessian.eigenvectors[:, :c], "ggn": ggn.eigenvectors}
    gen = torch.Generator().manual_seed(stream(case.seed, GROUPS_ROLE))
    groups = labels[torch.randperm(labels.numel(), generator=gen).to(labels.device)]
    loss_means = spectrum.class_mean_gradients(model, loss_fn, data).loss_means
    group_means = spectrum.class_mean_gradients(model, loss_fn, data, groups=groups).loss_means
    spans = {
        "class means": orthonormal_basis(loss_means),
        "groups": orthonormal_basis(group_means),
        "random": random_subspace(
            *loss_means.shape, seed=stream(case.seed, SUBSPACE_ROLE), like=loss_means
        ),
    }
    means, counts = cross_class_means(model, inputs, labels, c)
    group_cross, group_counts = cross_class_means(model, inputs, groups, c)
    root = (counts / counts.sum()).sqrt()
    loss_gram = root[:, None] * (loss_means.T @ loss_means) * root[None, :]
    basis = spans["class means"]
    return Measurement(
        num_classes=c,
        num_params=hessian.eigenvectors.shape[0],
        final_loss=float(final_loss),
        hessian_top=hessian.eigenvalues.double().cpu().numpy(),
        ggn_top=ggn.eigenvalues.double().cpu().numpy(),
        overlap={k: overlap(v, basis) for k, v in vectors.items()},
        group_overlap={k: overlap(v, spans["groups"]) for k, v in vectors.items()},
        random_overlap={k: overlap(v, spans["random"]) for k, v in vectors.items()},
        cosines=(vectors["hessian"].T @ basis).pow(2).sum(dim=1).cpu().tolist(),
        energy=captured(vectors["hessian"], loss_means),
        span_in_top_2c=overlap(basis, hessian.eigenvectors),
        papyan_overlap=overlap(vectors["ggn"], orthonormal_basis(papyan_class_means(means))),
        gram=papyan_gram_eigenvalues(means, counts).cpu().numpy(),
        group_gram=papyan_gram_eigenvalues(group_cross, group_counts).cpu().numpy(),
        loss_mean_gram=torch.linalg.eigvalsh(loss_gram).flip(0).cpu().numpy(),
    )


class _LowRank(hesskit.LinearOperator):
    """``F F^T`` for a factor ``F`` ``(n, k)``: an explicit n x n operator of ``G_1``."""

    def __init__(self, factor: torch.Tensor) -> None:
        n = factor.shape[0]
        super().__init__((n, n), dtype=factor.dtype, device=factor.device)
        self.factor = factor

    def _matmat(self, block: torch.Tensor) -> torch.Tensor:
        return self.factor @ (self.factor.T @ block)


def _check_decomposition(case: Case) -> dict[str, float]:
    """Papyan's decomposition against :func:`hesskit.ggn` where it is exact, and the Gram
    eigenvalues against the n x n ``G_1``.

    The subset holds one sample of each class ``c``, repeated ``c + 1`` times: the
    within-class term ``W`` vanishes (the samples of a class are equal) and the class
    shares ``pi_c`` differ, so ``G = G_1 + G_0 + G_2`` exactly, with ``G_1 = (C-1) sum_c
    pi_c d_c d_c^T``; this checks the ``(C-1)`` factor, the ``pi`` weights and the flat
    layout of :func:`cross_class_means` on random vectors. The top-C eigenvalues of that
    n x n ``G_1`` (Lanczos) must equal :func:`papyan_gram_eigenvalues`. Returns both
    relative errors.
    """
    model, loss_fn, inputs, labels, _ = _trained(case)
    c = int(labels.max()) + 1
    first = [int(torch.nonzero(labels == j)[0, 0]) for j in range(c)]
    index = torch.tensor([i for j, i in enumerate(first) for _ in range(j + 1)])
    index = index.to(labels.device)
    subset = (inputs[index], labels[index])
    means, counts = cross_class_means(model, subset[0], subset[1], c)
    shares = counts / counts.sum()
    class_means = papyan_class_means(means)
    g1 = _LowRank(class_means * ((c - 1) * shares).sqrt()[None, :])
    diagonal = torch.stack([means[:, j, j] for j in range(c)], dim=1)
    spread = means - class_means[:, :, None]
    off = ~torch.eye(c, dtype=torch.bool, device=means.device)
    rest = torch.cat(
        [diagonal * shares.sqrt()[None, :]]
        + [spread[:, j, off[j]] * shares[j].sqrt() for j in range(c)],
        dim=1,
    )
    gen = torch.Generator().manual_seed(stream(case.seed, SUBSPACE_ROLE))
    block = torch.randn(means.shape[0], 3, generator=gen, dtype=means.dtype).to(means.device)
    exact = hesskit.ggn(model, loss_fn, subset).matmat(block)
    decomposed = g1.matmat(block) + rest @ (rest.T @ block)
    top = top_eigenpairs(g1, c, seed=case.seed).eigenvalues.double().cpu()
    gram = papyan_gram_eigenvalues(means, counts).double().cpu()
    return {
        "ggn_identity": float((exact - decomposed).norm() / exact.norm()),
        "gram_vs_n_by_n_G1": float((top - gram).abs().max() / gram.abs().max()),
    }


# ---------------------------------------------------------------------------------------
# the claims


def _claim_runs(
    setup: Setup,
    seed_offset: int,
    device: str,
    statistic: Callable[[Measurement], float],
    level: Callable[[float], float],
) -> tuple[list[Measurement], stats.SeedDraw, dict]:
    """The mixture runs of the claim seeds the sequential design draws.

    The pilot seeds' ``statistic`` against ``level(pilot mean)`` (the rule's level, or the
    nearest band edge) gives the seeds needed for power :data:`POWER`; the design draws
    them in order from the reserve, up to its cap.
    """
    pilot = [
        statistic(measure(setup.mixture(s, device))) for s in fresh(setup.pilot_seeds, seed_offset)
    ]
    threshold = level(float(np.mean(pilot)))
    power = stats.power_by_setting(
        {"mixture": pilot},
        {"mixture": threshold},
        setup.design.cap,
        power=POWER,
        resolution=RESOLUTION,
    )
    draw = setup.design.draw(fresh(setup.reserve, seed_offset), power["seeds_needed"])
    return [measure(setup.mixture(s, device)) for s in draw.seeds], draw, power


def _control_runs(
    setup: Setup, draw: stats.SeedDraw, seed_offset: int, device: str
) -> dict[str, list[Measurement]]:
    """The networks of the random-label and the digits controls."""
    digits_seeds = fresh(setup.digits_seeds, seed_offset)
    return {
        "random labels": [
            measure(setup.mixture(s, device, random_labels=True)) for s in draw.seeds
        ],
        "digits": [measure(setup.digits(s, device)) for s in digits_seeds],
    }


def _controls(
    runs: list[Measurement],
    control_runs: dict[str, list[Measurement]],
    summarise: Callable[[list[float]], stats.Interval],
    statistic: Callable[[Measurement], float],
    groups: Callable[[Measurement], float],
) -> dict[str, stats.Interval]:
    """The three opposite controls' intervals: ``statistic`` on the random-label and the
    digits networks, ``groups`` (the random groups' version) on the claim's networks."""
    return {
        "random labels": summarise([statistic(m) for m in control_runs["random labels"]]),
        "random groups": summarise([groups(m) for m in runs]),
        "digits, no outlier gap": summarise([statistic(m) for m in control_runs["digits"]]),
    }


def _premise(runs: list[Measurement]) -> dict[str, object]:
    """The outlier gap and the cut-free share of the class-mean span (not decided on)."""
    return {
        "hessian_gap_C_over_C_plus_1": [m.gap for m in runs],
        "class_mean_span_in_hessian_top_2C": {
            "statistic": "||V_2C^T Q||_F^2 / C: the share of the class-mean span in the "
            "top-2C Hessian eigenspace (does not depend on a cut at C; mean over seeds)",
            **interval_fields(stats.t_interval([m.span_in_top_2c for m in runs])),
            "per_seed": [m.span_in_top_2c for m in runs],
        },
    }


def _data(
    draw: stats.SeedDraw, power: dict, runs: list[Measurement], controls: dict
) -> dict[str, object]:
    """The numbers behind a record: the design, the runs and the controls' runs."""
    return {
        "power": {**power, "seeds_drawn": len(draw.seeds)},
        "seeds": list(draw.seeds),
        "premise": {"mixture": _premise(runs), "digits": _premise(controls["digits"])},
        "runs": [m.summary() for m in runs],
        **{
            f"{name.replace(' ', '_')}_runs": [m.summary() for m in rows]
            for name, rows in controls.items()
        },
    }


def _largest_overlap(m: Measurement) -> float:
    return m.subspace(side=max)


def _largest_group_overlap(m: Measurement) -> float:
    return m.subspace("group_overlap", max)


def test_outliers_live_in_the_class_mean_span(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    runs, draw, power = _claim_runs(
        setup, seed_offset, device, Measurement.subspace, lambda _: OVERLAP_LEVEL
    )
    control_runs = _control_runs(setup, draw, seed_offset, device)
    controls = _controls(
        runs, control_runs, stats.t_interval, _largest_overlap, _largest_group_overlap
    )
    every = runs + control_runs["digits"]
    record = SUBSPACE.record(
        stats.t_interval([m.subspace() for m in runs]),
        controls=controls,
        false_targets={
            "round-off": None,
            "next C eigenvectors": stats.t_interval([m.next_c_overlap for m in runs]),
        },
        sanity_checks={"random subspace": max(m.subspace("random_overlap", max) for m in every)},
        data=_data(draw, power, runs, control_runs),
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw_overlaps(record, report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


def _log_ratio(m: Measurement) -> float:
    return float(np.log(m.gram_ratio("hessian")))


def _nearest_edge(mean_log: float) -> float:
    """The edge of ``log GRAM_BAND`` nearest a pilot's mean log ratio."""
    return float(min(np.log(GRAM_BAND), key=lambda edge: abs(edge - mean_log)))


def _gram_interval(
    runs: Sequence[Measurement], ratio: Callable[[Measurement], float]
) -> stats.Interval:
    return stats.geometric_mean_interval([ratio(m) for m in runs])


def _hessian_ratio(m: Measurement) -> float:
    return m.gram_ratio("hessian")


def test_class_mean_gram_gives_the_outliers(
    setup: Setup,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    errors = _check_decomposition(setup.mixture(fresh(setup.pilot_seeds, seed_offset)[0], device))
    runs, draw, power = _claim_runs(setup, seed_offset, device, _log_ratio, _nearest_edge)
    control_runs = _control_runs(setup, draw, seed_offset, device)
    controls = _controls(
        runs,
        control_runs,
        stats.geometric_mean_interval,
        _hessian_ratio,
        lambda m: m.gram_ratio("hessian", groups=True),
    )
    data = _data(draw, power, runs, control_runs)
    data["ggn_interval"] = interval_fields(_gram_interval(runs, lambda m: m.gram_ratio("ggn")))
    record = GRAM.record(
        _gram_interval(runs, _hessian_ratio),
        controls=controls,
        false_targets={
            "G_1 is all": None,
            "loss-gradient means": _gram_interval(runs, lambda m: m.loss_mean_ratio),
        },
        sanity_checks={
            "decomposition": errors["ggn_identity"],
            "Gram vs n x n G_1": errors["gram_vs_n_by_n_G1"],
            "G_1 <= G": max(m.gram_ratio("ggn") for m in runs),
        },
        data=data,
        unpowered=draw.unpowered,
    )
    if report_dir is not None:
        _draw_gram("mixture", runs[0], report_dir)
        _draw_gram("digits", control_runs["digits"][0], report_dir)
    conclude(record_property, record, seed_offset=seed_offset)


# ---------------------------------------------------------------------------------------
# figures


def _draw_overlaps(record: ClaimRecord, report_dir: Path) -> None:
    """Per seed: the class-mean overlap and the controls' (log scale), the level dotted."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.4))
    runs = record.data["runs"]
    rows = [
        ("class means", [r["overlap"] for r in runs]),
        ("random groups", [r["group_overlap"] for r in runs]),
        ("random subspace", [r["random_overlap"] for r in runs]),
        ("random labels", [r["overlap"] for r in record.data["random_labels_runs"]]),
        ("digits (no gap)", [r["overlap"] for r in record.data["digits_runs"]]),
    ]
    for x, (name, values) in enumerate(rows):
        for shift, op in ((-0.1, "hessian"), (0.1, "ggn")):
            ax.scatter(
                [x + shift] * len(values),
                [v[op] for v in values],
                marker="o" if op == "hessian" else "x",
                color=f"C{x}",
                label=f"{name} ({'H' if op == 'hessian' else 'G'})",
            )
    ax.axhline(OVERLAP_LEVEL, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [name for name, _ in rows], fontsize=7)
    ax.set_ylabel("||V_top^T Q||^2 / C")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("papyan2019: top-C eigenspace vs class-mean span", fontsize=8)
    save_figure(figure, report_dir, "papyan2019_subspace")


def _draw_gram(setting: str, run: Measurement, report_dir: Path) -> None:
    """The top-2C Hessian eigenvalues, G's top C and the Gram eigenvalues (first seed)."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.4))
    rank = np.arange(1, run.hessian_top.size + 1)
    c = run.num_classes
    ax.plot(rank, run.hessian_top, "o", label="Hessian")
    ax.plot(rank[:c], run.ggn_top[:c], "x", label="Gauss-Newton G")
    ax.plot(rank[:c], run.gram[:c], "s", mfc="none", label="G_1: Gram of Papyan's class means")
    ax.plot(rank[:c], run.group_gram[:c], "^", mfc="none", label="G_1 of random groups")
    ax.plot(rank[:c], run.loss_mean_gram[:c], "v", mfc="none", label="Gram of the loss means")
    ax.axvline(c + 0.5, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("rank j")
    ax.set_ylabel("eigenvalue")
    ax.legend(fontsize=6)
    ax.set_title(f"papyan2019: outliers and class-mean Gram eigenvalues ({setting})", fontsize=8)
    save_figure(figure, report_dir, f"papyan2019_gram_{setting}")
