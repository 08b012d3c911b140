"""Trained Hessian spectra of the paper's Gaussian-mixture setup, shared by the sagun2017 claims.

Sagun, Evci, Güney, Dauphin, Bottou (2017, arXiv:1706.04454, section 3.1): ``k`` Gaussian
clusters in 100 dimensions (cluster standard deviation 1, means drawn at norm
``separation``, inputs standardised globally), a ``100-w-w-k`` ReLU network with softmax
cross-entropy, full-batch gradient descent to a matched training loss. Nothing runs at
import; each function trains one seeded network once per process (``functools.cache``),
so the width and sample sweeps of the bulk-scaling claim share their common runs, and a
model asked for twice in one test is trained once.

Two views of a trained network's Hessian:

- :func:`top_spectrum`: the top eigenpairs by Lanczos (:func:`hesskit.eigsh`, float64,
  exact to round-off against dense ``eigh`` on these sizes) with the class-mean and
  cluster-mean gradients, and the outlier count of every rule of
  :mod:`hesskit.spectrum` (:func:`outlier_counts`; the pre-registered rule of each claim
  decides; every rule is recorded).
- :func:`dense_spectrum`: every eigenvalue of the dense float64 Hessian, for statistics
  that compare eigenvalues against zero.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch

import hesskit
from claims import protocols
from hesskit import spectrum
from hesskit.problems import Problem, gaussian_mixture
from hesskit.train import TrainResult, gradient_descent, sgd

RANDOM_LABEL_STRIDE = 7919
"""Random labels of seed ``s`` are permuted by a generator seeded ``s + RANDOM_LABEL_STRIDE``."""
SUBSPACE_FRACTION = 0.9
"""The class-mean subspace rule's captured fraction (``hesskit.spectrum.class_mean_subspace``)."""


@dataclass(frozen=True)
class Run:
    """One trained network on a Gaussian mixture: the cache key of every function here.

    The data and the initialisation share ``seed``, so two seeds are independent replicates
    of data and training. ``label_mod`` labels cluster ``c`` as class ``c mod label_mod``
    (classes made of several clusters); ``random_labels`` permutes the labels;
    ``batch_size`` trains by minibatch SGD (order seeded by ``seed``) instead of GD.
    """

    num_clusters: int
    width: int
    seed: int
    input_dim: int = 100
    samples_per_cluster: int = 100
    separation: float = 10.0
    lr: float = 0.05
    target_loss: float = 0.01
    max_steps: int = 50_000
    label_mod: int | None = None
    random_labels: bool = False
    batch_size: int | None = None
    device: str = "cpu"

    @property
    def num_classes(self) -> int:
        """The number of classes the network is trained on."""
        return self.label_mod or self.num_clusters


@dataclass(frozen=True, eq=False)
class TopSpectrum:
    """The top of one trained network's Hessian spectrum and its outlier counts.

    Attributes:
        run: the run.
        eigenvalues: the top eigenvalues, float64, descending.
        counts: the count of every rule, by rule name (:func:`outlier_counts`).
        num_params: the number of parameters.
        final_loss: the training loss where the spectrum was taken.
        reached_target: whether training reached the target loss.
        num_steps: the gradient-descent steps taken.
    """

    run: Run
    eigenvalues: np.ndarray
    counts: dict[str, spectrum.OutlierCount]
    num_params: int
    final_loss: float
    reached_target: bool
    num_steps: int

    def count(self, rule: str) -> int:
        """The outlier count of ``rule``."""
        return self.counts[rule].count

    def top_mean(self, how_many: int) -> float:
        """The mean of the ``how_many`` largest eigenvalues."""
        return float(np.mean(self.eigenvalues[:how_many]))

    def summary(self) -> dict:
        """Per-run numbers for a report's ``data``."""
        return {
            "seed": self.run.seed,
            "counts": {rule: c.count for rule, c in self.counts.items()},
            "scores": {rule: round(c.score, 4) for rule, c in self.counts.items()},
            "capped": [rule for rule, c in self.counts.items() if c.capped],
            "top_eigenvalues": [float(x) for x in self.eigenvalues[: 2 * self.run.num_classes]],
            "num_params": self.num_params,
            "final_loss": self.final_loss,
            "steps": self.num_steps,
        }


def problem_of(run: Run) -> tuple[Problem, torch.Tensor]:
    """The standardised mixture of ``run`` with its labels, and the cluster of each sample."""
    problem = gaussian_mixture(
        run.num_clusters,
        input_dim=run.input_dim,
        samples_per_cluster=run.samples_per_cluster,
        separation=run.separation,
        hidden=(run.width, run.width),
        activation="relu",
        standardize=True,
        seed=run.seed,
    )
    clusters = problem.targets
    targets = clusters if run.label_mod is None else clusters % run.label_mod
    if run.random_labels:
        gen = torch.Generator().manual_seed(run.seed + RANDOM_LABEL_STRIDE)
        targets = targets[torch.randperm(targets.numel(), generator=gen)]
    sizes = (*problem.layer_sizes[:-1], run.num_classes)
    problem = dataclasses.replace(
        problem,
        targets=targets,
        num_classes=run.num_classes,
        layer_sizes=sizes,
        name=f"{problem.name}, labels {_labelling(run)}",
    )
    return problem.to(device=run.device), clusters.to(run.device)


SGD_EVAL_EVERY = 10
"""SGD runs test the full training loss against the target every this many steps."""


@functools.cache
def trained(run: Run) -> tuple[Problem, TrainResult, torch.Tensor]:
    """Train ``run`` to its target loss by full-batch GD or SGD (once per process)."""
    problem, clusters = problem_of(run)
    model = problem.make_model(seed=run.seed)
    protocol = {"lr": run.lr, "max_steps": run.max_steps, "target_loss": run.target_loss}
    if run.batch_size is None:
        result = gradient_descent(model, problem.loss_fn, problem.data, **protocol)
    else:
        result = sgd(
            model,
            problem.loss_fn,
            problem.data,
            batch_size=run.batch_size,
            eval_every=SGD_EVAL_EVERY,
            seed=run.seed,
            **protocol,
        )
    return problem, result, clusters


@functools.cache
def top_spectrum(run: Run, num_eigenpairs: int, *, gauss_newton: bool = False) -> TopSpectrum:
    """The top ``num_eigenpairs`` Hessian eigenpairs of ``run`` and every rule's count
    (with ``gauss_newton``, :func:`outlier_counts` checks the count on ``G`` too)."""
    problem, result, clusters = trained(run)
    eigenvalues, counts, num_params = outlier_counts(
        result.model,
        problem,
        num_eigenpairs,
        seed=run.seed,
        clusters=clusters,
        gauss_newton=gauss_newton,
    )
    return TopSpectrum(
        run=run,
        eigenvalues=eigenvalues,
        counts=counts,
        num_params=num_params,
        final_loss=result.final_loss,
        reached_target=result.reached_target,
        num_steps=result.num_steps,
    )


def outlier_counts(
    model: torch.nn.Module,
    problem: Problem,
    num_eigenpairs: int,
    *,
    seed: int,
    clusters: torch.Tensor | None = None,
    gauss_newton: bool = False,
) -> tuple[np.ndarray, dict[str, spectrum.OutlierCount], int]:
    """The top Hessian eigenvalues of a trained ``model``, the count of every rule, and
    the number of parameters.

    The counts: :func:`hesskit.spectrum.count_outliers` with the class-mean gradients,
    ``"edge_gap"`` and ``"agreed_count"`` (:func:`hesskit.spectrum.agreed_count`, with the
    Gauss-Newton matrix's top eigenvalues when ``gauss_newton``), and, given
    ``clusters``, ``"cluster_mean_subspace"`` (the subspace rule with the gradients grouped
    by cluster instead of class).
    """
    operator = hesskit.hessian(model, problem.loss_fn, problem.data, method="cached_graph")
    top = _top_eigenpairs(operator, num_eigenpairs, seed, problem.name)
    by_class = spectrum.class_mean_gradients(model, problem.loss_fn, problem.data)
    counts = spectrum.count_outliers(
        top.eigenvalues,
        eigenvectors=top.eigenvectors,
        class_means=by_class.loss_means,
        fraction=SUBSPACE_FRACTION,
    )
    counts["edge_gap"] = spectrum.edge_gap(top.eigenvalues)
    gn = None
    if gauss_newton:
        ggn = hesskit.ggn(model, problem.loss_fn, problem.data)
        gn = _top_eigenpairs(ggn, num_eigenpairs, seed, problem.name).eigenvalues
        counts["edge_gap_gauss_newton"] = spectrum.edge_gap(gn)
    counts["agreed_count"] = spectrum.agreed_count(
        top.eigenvalues,
        eigenvectors=top.eigenvectors,
        class_means=by_class.loss_means,
        gauss_newton=gn,
    )
    if clusters is not None:
        by_cluster = spectrum.class_mean_gradients(
            model, problem.loss_fn, problem.data, groups=clusters
        )
        counts["cluster_mean_subspace"] = spectrum.class_mean_subspace(
            top.eigenvectors, by_cluster.loss_means, fraction=SUBSPACE_FRACTION
        )
    return top.eigenvalues.double().cpu().numpy(), counts, operator.shape[0]


def _top_eigenpairs(operator, num_eigenpairs: int, seed: int, name: str) -> hesskit.EigenResult:
    top = hesskit.eigsh(operator, num_eigenpairs, generator=seed)
    if not top.converged:
        msg = f"Lanczos did not converge on {name} ({top.num_matvecs} products)"
        raise RuntimeError(msg)
    return top


def top_sweep(
    runs: dict[int, list[Run]], num_eigenpairs: int | None = None, *, gauss_newton: bool = False
) -> dict[int, list[TopSpectrum]]:
    """``{setting: [TopSpectrum per seed]}`` of a sweep; every run must reach its target loss.

    ``num_eigenpairs`` None computes ``3 * num_classes + 10`` per run: room for three
    times the expected count. ``gauss_newton``: as in :func:`top_spectrum`.
    """
    spectra = {
        setting: [
            top_spectrum(run, num_eigenpairs or 3 * run.num_classes + 10, gauss_newton=gauss_newton)
            for run in row
        ]
        for setting, row in runs.items()
    }
    missed = [s.run for row in spectra.values() for s in row if not s.reached_target]
    assert not missed, f"runs missed the matched training loss: {missed}"
    return spectra


def sweep_counts(sweep: dict[int, list[TopSpectrum]], rule: str) -> dict[int, list[int]]:
    """``{setting: [count of ``rule`` per seed]}``."""
    return {setting: [s.count(rule) for s in row] for setting, row in sweep.items()}


@functools.cache
def dense_spectrum(run: Run) -> np.ndarray:
    """Every eigenvalue of ``run``'s dense float64 Hessian, descending."""
    problem, result, _ = trained(run)
    return protocols.hessian_spectrum(problem, result.model).flip(0).double().cpu().numpy()


def _labelling(run: Run) -> str:
    if run.random_labels:
        return "random"
    return "cluster" if run.label_mod is None else f"cluster mod {run.label_mod}"
