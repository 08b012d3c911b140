"""papyan2019: the Hessian's outliers live in the span of the class-mean gradients.

Conjecture:
    Near the end of training of a C-class softmax classifier, the eigenspace of the C
    largest eigenvalues of the Hessian (and of its Gauss-Newton part G) is the span of the C
    class means of the per-sample loss gradients, and the C x C Gram matrix of Papyan's
    class means, scaled as his decomposition of G prescribes, has about the same C
    eigenvalues.

Paper:
    Papyan (2019), *Measurements of Three-Level Hierarchical Structure in the Outliers in
    the Spectrum of Deepnet Hessians*, ICML 2019, arXiv:1901.08244 (G as a second moment of
    gradients whose class means carry the outliers; the principal subspace approximated by
    averaging); Papyan (2020), *Traces of Class/Cross-Class Structure Pervade Deep Learning
    Spectra*, JMLR 21, arXiv:2008.11865 (the class/cross-class decomposition). The issue's
    pilot (issue 15, item 2): overlap 0.96-0.999 against 2e-4 to 3e-3 for a random
    C-dimensional subspace. The papers' text was not available offline, so no section is
    cited: the decomposition below is derived from the definitions the abstracts state (G
    a second moment of gradients, influenced by their class means), and its balanced-class
    ``G_1 = (C-1)/C sum_c d_c d_c^T`` agrees with a public reference implementation of the
    decomposition.

Setup (:data:`SETUPS`):
    *mixture*: the Gaussian mixtures of :mod:`claims.spectra` (Sagun et al. 2017's setup):
    ``C = 5`` clusters of 100 samples in 100 dimensions, the ``100-30-30-5`` ReLU network
    (4,115 parameters), full-batch GD (step 0.05) to the training loss 0.01. *digits*: all
    1,797 standardised scikit-learn digits (``C = 10``, :func:`hesskit.problems.digits`),
    the library's ``W2`` network (``64-128-128-10`` ReLU, 26,122 parameters,
    :func:`hesskit.problems.digits_architecture`), float64, full-batch GD (step 0.2) to
    the same training loss 0.01; the data are fixed, the seed draws the initialisation.
    Top eigenpairs of the Hessian and of G by Lanczos (:func:`hesskit.eigsh`, float64).
    Papyan's networks were deep convolutional nets (VGG, ResNet) trained with SGD to zero
    training error on MNIST- and CIFAR-like data (as recalled, not re-read here); the quick
    profile keeps ReLU networks and full-batch GD on data a CPU affords. The full
    profile (not yet run: no GPU lent) takes ``C = 10`` clusters and the ``W3`` CNN on
    digits (GD step 0.05: loss 0.049 after 300 steps on a CPU check, still falling), with
    more seeds.

Definitions:
    *Overlap.* ``V``: the top-``C`` eigenvectors (orthonormal, ``n x C``); ``Q``: an
    orthonormal basis of the span of the C class-mean per-sample loss gradients
    ``g_c = mean_{i in c} grad l_i`` (:func:`hesskit.spectrum.class_mean_gradients`,
    ``loss_means``, in the Hessian's flat layout). The overlap is the mean squared cosine
    of the C principal angles, ``||V^T Q||_F^2 / C``: 1 when the subspaces coincide, ``C/n``
    on average for a random subspace, and unweighted, so a class mean of small norm counts
    as much as a large one (the energy-weighted share ``||V^T M||^2 / ||M||^2`` of the
    counting rule :func:`hesskit.spectrum.class_mean_subspace` is recorded too).

    *Gram eigenvalues (derived from Papyan's definitions).* With ``p_i`` the softmax of
    sample ``i``, ``J_i`` its logit Jacobian and ``diag(p) - p p^T = sum_c' p_c' (e_c' -
    p)(e_c' - p)^T``, ``G = (1/N) sum_i sum_c' d_ic' d_ic'^T`` with ``d_ic' = sqrt(p_ic')
    J_i^T (e_c' - p_i)``: G is a second moment, not a covariance. Group the samples by
    class (``N_c``, ``pi_c = N_c / N``) and let ``d_cc' = mean_{i in c} d_ic'``; then ``G =
    sum_c pi_c sum_c' d_cc' d_cc'^T + W`` (``W``: the within-class second moment, PSD).
    Papyan's class means are ``d_c = (1/(C-1)) sum_{c' != c} d_cc'``; with ``u_cc' =
    d_cc' - d_c`` (which sum to 0 over ``c' != c``), ``sum_{c' != c} d_cc' d_cc'^T = (C-1)
    d_c d_c^T + sum_{c' != c} u_cc' u_cc'^T``, so ``G = G_1 + G_0 + G_2 + W`` with ``G_1 =
    (C-1) sum_c pi_c d_c d_c^T`` (``(C-1)/C sum_c d_c d_c^T`` for balanced classes),
    ``G_0 = sum_c pi_c d_cc d_cc^T`` and ``G_2 = sum_c pi_c sum_{c' != c} u_cc' u_cc'^T``,
    all PSD. The nonzero eigenvalues of ``G_1`` are those of the C x C Gram matrix ``(C-1)
    Pi^(1/2) D^T D Pi^(1/2)`` (``D = [d_1 .. d_C]``); since ``G_1 <= G``, ``lambda_j(G_1)
    <= lambda_j(G)`` for every j (Weyl), and the conjecture is that ``G_1`` carries the
    top-C eigenvalues: ``lambda_j(G_1) ~ lambda_j(G) ~ lambda_j(H)``. The identity is
    checked in the test where it is exact (:func:`_check_decomposition`): one sample of
    each class ``c`` repeated ``c + 1`` times, so that ``W = 0`` and the shares ``pi_c``
    differ: ``G = G_1 + G_0 + G_2`` against :func:`hesskit.ggn` on random vectors (the
    ``(C-1)`` factor, the ``pi`` weights, the layout), and the top-C eigenvalues of the
    n x n ``G_1`` (Lanczos) against the C x C Gram's. The library's
    ``loss_means`` are not these ``d_c``: near a fit ``g_c ~ -mean_i sum_c' p_ic' J_i^T
    (e_c' - e_c)`` weighs by ``p`` where ``d_c`` weighs by ``sqrt(p)``, and the Gram ``Pi^(1/2)
    M^T M Pi^(1/2)`` of the ``g_c`` is the between-class part of the gradient second
    moment ``(1/N) sum_i g_i g_i^T``, which is smaller than G by a factor of the order of
    the loss; its ratio to the Hessian's top-C is recorded (``data``), not decided on.

Statistics and decision rules (fixed after the pilot seeds, before the claim seeds ran;
95% intervals; one claim per setting and statistic):
    1. The outliers live in the class-mean span (``papyan2019.class_means.subspace.<setting>``).
       Per run, the smaller of the Hessian's and G's overlap; mean over seeds with its
       t-interval (:func:`claims.stats.t_interval`). **Holds** if the lower end is above
       :data:`OVERLAP_LEVEL` = 0.9 (the subspaces nearly coincide: a mean principal angle
       below about 18 degrees); **fails** if the upper end is below 0.9; else undecided.
    2. The Gram eigenvalues are the outliers (``papyan2019.class_means.gram.<setting>``).
       Per run and operator (H, G), the geometric mean over ``j = 1..C`` of ``lambda_j(G_1)
       / lambda_j(operator)``; geometric mean over seeds with the t-interval of the mean log
       (:func:`claims.stats.geometric_mean_interval`). **Holds** if both intervals lie
       inside :data:`GRAM_BAND` = [1/2, 2] (within a factor of 2); **fails** if one lies
       entirely outside; else undecided. The record's estimate is the Hessian's.

    Described, not decided (``data["premise"]``, both claims): the Hessian's outlier gap
    ``lambda_C / lambda_{C+1}`` per run, and a statistic that does not depend on a cut
    at C, the share of the class-mean span in the top-2C eigenspace, ``||V_2C^T Q||_F^2
    / C`` (t-interval). The decided statistics presuppose C separated outliers; where the
    gap is about 1 (digits) the top-C subspace is ill-defined and a verdict on it is a
    verdict on this setting (GD-trained MLPs), which the digits records' claim text says.

Opposite-setting controls (each must fire):
    - Random labels (mixture): networks trained to the same loss on permuted labels, their
      own (random) classes. No class structure: overlap upper end below 0.9 for both
      operators (1); Gram ratio upper ends below 1/2 (2).
    - Random equal-size groups (both settings): the same trained networks, the class means
      of random groups of the data (the labels permuted: the class sizes kept). Same rules.
      Not forced: random groups of a few hundred samples keep a share of the mean
      gradient's direction (0.3-0.5 measured), so the control could come near the level.

Sanity checks (cannot fail, ``data["sanity_checks"]``, not controls): the overlap of the
top-C eigenspace with a random C-dimensional subspace (about ``C/n`` ~ 1e-3, against a
level of 0.9); the decomposition's exactness above (relative errors).

Power analysis (run first in each test on pilot seeds, shifted like every seed list;
``data["power"]``): the pilot's per-seed statistics (overlaps for 1, log ratios per
operator for 2) give ``sd`` and the distance of their mean from the threshold (0.9; the
nearest edge of ``log [1/2, 2]``); the seeds needed for power 0.9
(:func:`claims.stats.power_by_setting`, a pilot without spread sized with the round-off
:data:`RESOLUTION` = 1e-6) must not exceed the claim seeds, else the test fails
(:func:`claims.stats.require_power`). Three pilot seeds per setting.

Design history (said here, not hidden): pilots on seeds 0-2 (never the claim seeds) before
the rules were written. Mixture: overlap 0.975-0.99, random groups 0.46, random labels
0.06-0.11, random subspace 1e-3; Gram ratio 0.67-0.75 (G), 0.70-0.85 (H). Digits W2:
overlap 0.757-0.762 with GD at steps 0.1, 0.2 and 0.4 alike, but 0.864-0.867 with
full-batch Adam (step 1e-3) to the same loss, and 0.70-0.77 for a 64-32-32-10 ReLU MLP;
Gram ratio 0.005-0.09 (geometric means) for every optimiser, loss (1e-2 to 1e-4) and
network tried. The level 0.9 was chosen over 0.8 because the issue's conjecture is
near-coincidence (0.96-0.999) and because at 0.8 the digits verdict would be the
optimiser's (Adam above, GD below); GD was kept for digits because it is the mixtures'
protocol. A 25k-parameter CNN (``W3``) took 50 s per Lanczos run on the CPU and moved to
the full profile. So the level 0.9 was chosen with pilot knowledge of digits, and the
digits verdict is for full-batch GD-trained MLPs only (in the records' claim text).

Review fixes (2026-12-01, after the results below had been measured once; the rules, the
level and the claim seeds are unchanged): the random subspace moved from the controls to
the sanity checks (it cannot fail); the random groups and the random subspace are now
drawn from independent :func:`claims.seeds.stream` roles of the seed (they were ``seed +
104_729`` and ``seed + 130_363``), so the group control's draws are new on the same
networks; the digits pilot has three seeds (0-2; it had two); the decomposition check
now covers the ``(C-1)`` factor and unequal ``pi`` (it checked only ``d_cc'`` and the
layout); the outlier gap and the cut-free top-2C share are recorded; :data:`EXPECTED` is
keyed by profile and the full profile marked unmeasured. Both offsets were re-run.

Result (quick profile, offsets 0 / 1, re-run after the review fixes; 57 / 64 s of CPU,
user + sys, on one thread):
    1. Mixture -- **holds at both**: overlap 0.982 [0.973, 0.991] / 0.981 [0.974, 0.987]
       (per eigenvector ``||Q^T v_j||^2`` 0.945-0.997; outlier gap lambda_5 / lambda_6
       1.58-2.28 / 1.68-2.48); the energy share is 0.974-0.987, Papyan's ``d_c`` span
       gives 0.96-0.99 with G, and the cut-free share of the class-mean span in the top
       10 is 0.998 [0.997, 0.998] / 0.997 [0.996, 0.998]. Controls fired at both: random
       labels 0.095 [0.072, 0.118] / 0.127 [0.082, 0.172], random groups 0.50 [0.46,
       0.54] / 0.53 [0.47, 0.59]. Sanity: a random subspace 1.0e-3 / 1.1e-3 (``C/n`` =
       1.2e-3). Pilot: sd 0.007, 2 seeds needed, 5 run; minimal detectable distance from
       0.9 at 5 seeds 0.013 / 0.014.
    1. Digits -- **fails at both** (GD-trained W2 MLP, no outlier gap): overlap 0.776
       [0.715, 0.836] / 0.779 [0.732, 0.827]. The first 8 Hessian eigenvectors lie in the
       class-mean span (``||Q^T v_j||^2`` 0.81-0.99 but one 0.25), the 9th and 10th
       mostly outside; the energy share is 0.95-0.96; and the spectrum has no gap at rank
       10 (lambda_10 / lambda_11 1.06-1.10 / 1.03-1.16, figure ``papyan2019_gram_digits``):
       there are no 10 separated outliers here. Cut-free: the top 20 hold 0.854 [0.851,
       0.858] / 0.856 [0.854, 0.857] of the class-mean span (below the mixture's 0.997
       even with twice the eigenvectors). Control fired: random groups 0.32 [0.19, 0.45] /
       0.31 [0.30, 0.32]. Sanity: a random subspace 3.6e-4 / 3.5e-4. Pilot (3 seeds): sd
       0.003 / 0.016, 2 / 3 seeds needed, 3 run (minimal detectable distance 0.011 /
       0.057).
    2. Mixture -- **holds at both**: ``lambda_j(G_1) / lambda_j(H)`` 0.868 [0.802, 0.940] /
       0.834 [0.790, 0.881]; with G 0.787 [0.731, 0.846] / 0.759 [0.722, 0.797] (at most 1,
       as the decomposition requires; the rest is ``G_0 + G_2 + W``). Controls fired at
       both: random labels 0.098 [0.080, 0.120] / 0.105 [0.094, 0.116], random groups
       0.037 / 0.038. The Gram of the library's loss means is 0.0102-0.0107 of the
       Hessian's top-C: the training loss (0.01), as derived above. Pilot: sd of the log
       ratio 0.05-0.07, 3 seeds needed, 5 run (minimal detectable log distance 0.09-0.14).
       Sanity: the decomposition's relative error 4e-15 / 1e-14, the Gram against the
       n x n ``G_1`` 5e-16 / 8e-16.
    2. Digits -- **fails at both**: 0.053 [0.052, 0.054] / 0.052 [0.050, 0.054] (H and G
       alike): ``G_1`` holds about 5% of each top eigenvalue; the rest of G, ``G_0 +
       G_2 + W`` (not separated here), dominates on this data and network (pilots: 0.5-9% for
       every optimiser, loss and MLP tried). Control fired: random groups 0.0023 / 0.0022.
       The Gram of the loss means is 0.004 of the Hessian's top-C. Pilot (3 seeds): 2
       seeds needed, 3 run. Sanity: decomposition errors 1e-15.
    Taken together: where the data are clustered (the mixtures) Papyan's picture holds
    quantitatively; on digits with GD-trained MLPs the top eigenvectors still lean on the
    class means (8 of 10 in the span, 95% of the class means' energy in the top 10, 85%
    of the span in the top 20) but there are no C separated outliers, and neither the
    whole top-C subspace nor the eigenvalues are the class means'. Papyan's nets were
    deep CNNs trained far longer; the full profile's CNN is the next test of that. Its
    decisions are not measured: :data:`EXPECTED` marks the full profile unmeasured (one
    full mixture pilot run at C = 10, seed 0, on the CPU: overlap 0.93, Gram ratio 0.52 /
    0.49 for H / G, near the band's edge).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import hesskit
from claims import spectra as sp
from claims import stats
from claims.figures import pyplot, save_figure
from claims.report import ClaimRecord, Control, conclude, decide, interval_fields, one_sided_rule
from claims.seeds import fresh, stream
from claims.subspaces import captured, orthonormal_basis, overlap, random_subspace, top_eigenpairs
from hesskit import spectrum
from hesskit.problems import Problem, digits, digits_architecture
from hesskit.train import gradient_descent

PAPER = (
    "Papyan (2019), arXiv:1901.08244 (ICML 2019); Papyan (2020), arXiv:2008.11865 "
    "(JMLR 21), the class/cross-class decomposition of the Gauss-Newton matrix"
)
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
SETTINGS = ("mixture", "digits")


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
    """One profile's pre-registered networks and seeds."""

    num_clusters: int
    width: int
    mixture_seeds: tuple[int, ...]
    mixture_pilot_seeds: tuple[int, ...]
    architecture: str
    digits_lr: float
    digits_seeds: tuple[int, ...]
    digits_pilot_seeds: tuple[int, ...]

    def seeds(self, setting: str, offset: int, *, pilot: bool = False) -> tuple[int, ...]:
        """The claim (or pilot) seeds of ``setting`` at seed offset ``offset``."""
        if setting == "mixture":
            seeds = self.mixture_pilot_seeds if pilot else self.mixture_seeds
        else:
            seeds = self.digits_pilot_seeds if pilot else self.digits_seeds
        return fresh(seeds, offset)

    def case(self, setting: str, seed: int, device: str, *, random_labels: bool = False) -> Case:
        """The cache key of one trained network of ``setting``."""
        if setting == "mixture":
            return sp.Run(
                num_clusters=self.num_clusters,
                width=self.width,
                seed=seed,
                random_labels=random_labels,
                device=device,
            )
        return DigitsRun(self.architecture, seed, self.digits_lr, device=device)


SETUPS = {
    "quick": Setup(
        num_clusters=5,
        width=30,
        mixture_seeds=(10, 11, 12, 13, 14),
        mixture_pilot_seeds=(0, 1, 2),
        architecture="W2",
        digits_lr=0.2,
        digits_seeds=(10, 11, 12),
        digits_pilot_seeds=(0, 1, 2),
    ),
    "full": Setup(
        num_clusters=10,
        width=30,
        mixture_seeds=tuple(range(10, 17)),
        mixture_pilot_seeds=(0, 1, 2),
        architecture="W3",
        digits_lr=0.05,
        digits_seeds=tuple(range(10, 15)),
        digits_pilot_seeds=(0, 1, 2),
    ),
}

EXPECTED: dict[str, dict[str, dict[str, str]] | None] = {
    "quick": {
        "subspace": {"mixture": "holds", "digits": "fails"},
        "gram": {"mixture": "holds", "digits": "fails"},
    },
    "full": None,
}
"""The decisions measured at offsets 0 and 1 per profile (the Result above); a change fails
the test. The full profile is unmeasured (``None``): its run records the decision it
measures (a strict xfail unless it holds) until that is written here."""


def _expected(profile: str, claim: str, setting: str, decision: str) -> str:
    """The measured decision of ``claim`` on ``setting``; ``decision`` where unmeasured."""
    measured = EXPECTED[profile]
    return decision if measured is None else measured[claim][setting]


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
            "loss_mean_gram_ratio_hessian": float(
                np.exp(np.mean(np.log(self.loss_mean_gram[:c] / self.hessian_top[:c])))
            ),
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


CLAIM = {
    "subspace": "the top-C Hessian (and G) eigenspace is the span of the C class-mean gradients",
    "gram": "the Gram eigenvalues of Papyan's class means, (C-1) Pi^(1/2) D^T D Pi^(1/2), "
    "are the top-C eigenvalues",
}


def _claim_text(claim: str, setting: str, runs: list[Measurement]) -> str:
    """The claim, with the premise of the digits verdict: GD-trained MLPs, and the gap."""
    if setting == "mixture":
        return CLAIM[claim]
    gaps = [m.gap for m in runs]
    return (
        f"{CLAIM[claim]} -- digits: full-batch GD-trained ReLU MLPs, whose Hessian has no "
        f"outlier gap at rank C (lambda_C / lambda_C+1 {min(gaps):.2f}-{max(gaps):.2f}), so "
        "the top-C subspace is ill-defined and the verdict is for this setting only"
    )


def _subspace_control(name: str, values: list[float]) -> Control:
    interval = stats.t_interval(values)
    return Control(
        name=name,
        statistic="overlap ||V^T Q||^2 / C, the larger of H's and G's (mean over seeds)",
        **interval_fields(interval),
        rule=f"fires if the upper end is below {OVERLAP_LEVEL}",
        fired=interval.high < OVERLAP_LEVEL,
    )


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


@pytest.mark.parametrize("setting", SETTINGS)
def test_outliers_live_in_the_class_mean_span(
    setting: str,
    setup: Setup,
    profile: str,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    pilot = [
        measure(setup.case(setting, s, device)).subspace()
        for s in setup.seeds(setting, seed_offset, pilot=True)
    ]
    seeds = setup.seeds(setting, seed_offset)
    power = stats.power_by_setting(
        {setting: pilot}, {setting: OVERLAP_LEVEL}, len(seeds), power=POWER, resolution=RESOLUTION
    )
    stats.require_power(power, len(seeds))
    runs = [measure(setup.case(setting, s, device)) for s in seeds]
    values = [m.subspace() for m in runs]
    overlap_interval = stats.t_interval(values)
    controls = [
        _subspace_control(
            "random equal-size groups (labels permuted)",
            [m.subspace("group_overlap", max) for m in runs],
        ),
    ]
    c = runs[0].num_classes
    random = [m.subspace("random_overlap", max) for m in runs]
    data = {
        "power": power,
        "seeds": list(seeds),
        "premise": _premise(runs),
        "sanity_checks": {
            "a random C-dimensional subspace (overlap about C/n: cannot reach the level)": {
                **interval_fields(stats.t_interval(random)),
                "C_over_n": c / runs[0].num_params,
                "per_seed": random,
            },
        },
        "runs": [m.summary() for m in runs],
    }
    if setting == "mixture":
        shuffled = [measure(setup.case(setting, s, device, random_labels=True)) for s in seeds]
        controls.insert(
            0,
            _subspace_control(
                "random labels (trained on permuted labels)",
                [m.subspace(side=max) for m in shuffled],
            ),
        )
        data["random_label_runs"] = [m.summary() for m in shuffled]
    record = ClaimRecord(
        id=f"papyan2019.class_means.subspace.{setting}",
        claim=_claim_text("subspace", setting, runs),
        paper=PAPER,
        statistic="overlap ||V^T Q||^2 / C of the top-C eigenspace with the class-mean span, "
        "the smaller of H's and G's (mean over seeds)",
        **interval_fields(overlap_interval),
        **one_sided_rule(overlap_interval, OVERLAP_LEVEL, above=True),
        controls=controls,
        data=data,
    )
    if report_dir is not None:
        _draw_overlaps(setting, record, report_dir)
    conclude(
        record_property,
        record,
        expected=_expected(profile, "subspace", setting, record.decision),
        why=f"overlaps {np.round(values, 3).tolist()} (see the module docstring)",
    )


def _ratio_interval(
    runs: list[Measurement], operator: str, *, groups: bool = False
) -> stats.Interval:
    return stats.geometric_mean_interval([m.gram_ratio(operator, groups=groups) for m in runs])


def _gram_control(name: str, runs: list[Measurement], *, groups: bool) -> Control:
    intervals = {op: _ratio_interval(runs, op, groups=groups) for op in ("hessian", "ggn")}
    operator = max(intervals, key=lambda op: intervals[op].high)
    worst = intervals[operator]
    return Control(
        name=name,
        statistic=f"lambda_j(G_1) / lambda_j({'H' if operator == 'hessian' else 'G'}), "
        "geometric mean over j <= C and seeds (of H and G, the larger upper end)",
        **interval_fields(worst),
        rule=f"fires if both upper ends are below {GRAM_BAND[0]}",
        fired=worst.high < GRAM_BAND[0],
    )


@pytest.mark.parametrize("setting", SETTINGS)
def test_class_mean_gram_gives_the_outliers(
    setting: str,
    setup: Setup,
    profile: str,
    seed_offset: int,
    device: str,
    record_property: Callable,
    report_dir: Path | None,
) -> None:
    pilot_seeds = setup.seeds(setting, seed_offset, pilot=True)
    errors = _check_decomposition(setup.case(setting, pilot_seeds[0], device))
    assert errors["ggn_identity"] < 1e-8, f"Papyan's decomposition is not exact: {errors}"
    assert errors["gram_vs_n_by_n_G1"] < 1e-6, f"the Gram misses G_1's eigenvalues: {errors}"
    pilot = [measure(setup.case(setting, s, device)) for s in pilot_seeds]
    seeds = setup.seeds(setting, seed_offset)
    band = np.log(GRAM_BAND)
    logs = {op: np.log([m.gram_ratio(op) for m in pilot]) for op in ("hessian", "ggn")}
    nearest = {
        op: float(min(band, key=lambda edge: abs(edge - values.mean())))
        for op, values in logs.items()
    }
    power = stats.power_by_setting(
        {op: values.tolist() for op, values in logs.items()},
        nearest,
        len(seeds),
        power=POWER,
        resolution=RESOLUTION,
    )
    stats.require_power(power, len(seeds))
    runs = [measure(setup.case(setting, s, device)) for s in seeds]
    intervals = {op: _ratio_interval(runs, op) for op in ("hessian", "ggn")}
    inside = all(GRAM_BAND[0] <= i.low and i.high <= GRAM_BAND[1] for i in intervals.values())
    outside = any(i.high < GRAM_BAND[0] or i.low > GRAM_BAND[1] for i in intervals.values())
    decision = decide(holds=inside, fails=outside)
    controls = [_gram_control("random equal-size groups (labels permuted)", runs, groups=True)]
    data = {
        "power": power,
        "seeds": list(seeds),
        "premise": _premise(runs),
        "sanity_checks": {"decomposition_relative_errors": errors},
        "ggn_interval": interval_fields(intervals["ggn"]),
        "runs": [m.summary() for m in runs],
    }
    if setting == "mixture":
        shuffled = [measure(setup.case(setting, s, device, random_labels=True)) for s in seeds]
        controls.insert(
            0, _gram_control("random labels (trained on permuted labels)", shuffled, groups=False)
        )
        data["random_label_runs"] = [m.summary() for m in shuffled]
    record = ClaimRecord(
        id=f"papyan2019.class_means.gram.{setting}",
        claim=_claim_text("gram", setting, runs),
        paper=PAPER,
        statistic="lambda_j(G_1) / lambda_j(H), geometric mean over j <= C and seeds (G's "
        "ratio in data)",
        **interval_fields(intervals["hessian"]),
        rule=f"holds: H's and G's intervals inside {list(GRAM_BAND)}; fails: one entirely "
        "outside; else undecided",
        decision=decision,
        controls=controls,
        data=data,
    )
    if report_dir is not None:
        _draw_gram(setting, runs[0], report_dir)
    ratios = {op: round(i.estimate, 3) for op, i in intervals.items()}
    conclude(
        record_property,
        record,
        expected=_expected(profile, "gram", setting, decision),
        why=f"ratios {ratios} (see the module docstring)",
    )


# ---------------------------------------------------------------------------------------
# figures


def _draw_overlaps(setting: str, record: ClaimRecord, report_dir: Path) -> None:
    """Per seed: the class-mean overlap and the controls' (log scale), the level dotted."""
    plt = pyplot()
    figure, ax = plt.subplots(figsize=(5.5, 3.4))
    rows = [("class means", [r["overlap"] for r in record.data["runs"]])]
    rows.append(("random groups", [r["group_overlap"] for r in record.data["runs"]]))
    rows.append(("random subspace", [r["random_overlap"] for r in record.data["runs"]]))
    if "random_label_runs" in record.data:
        rows.append(("random labels", [r["overlap"] for r in record.data["random_label_runs"]]))
    for x, (name, values) in enumerate(rows):
        for offset, op in ((-0.1, "hessian"), (0.1, "ggn")):
            ax.scatter(
                [x + offset] * len(values),
                [v[op] for v in values],
                marker="o" if op == "hessian" else "x",
                color=f"C{x}",
                label=f"{name} ({'H' if op == 'hessian' else 'G'})",
            )
    ax.axhline(OVERLAP_LEVEL, color="k", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    ax.set_ylabel("||V_top^T Q||^2 / C")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(f"papyan2019: top-C eigenspace vs class-mean span ({setting})", fontsize=8)
    save_figure(figure, report_dir, f"papyan2019_subspace_{setting}")


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
