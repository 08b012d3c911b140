"""The curvature of one model: the parts ``hesskit spectrum`` computes, as a JSON record.

Each part (top and bottom eigenvalues by :func:`hesskit.eigsh`, the trace by Hutch++, the
spectral density by stochastic Lanczos quadrature, the bulk/outlier split) records its
numbers, its products and its seconds, so that a record says what it cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch
from torch import nn

import hesskit
from hesskit.cli.inputs import UsageError
from hesskit.operators import ModelHessian
from hesskit.operators.base import LinearOperator
from hesskit.progress import ProgressBar


@dataclass(frozen=True)
class Settings:
    """The options that change the numbers; a sweep's records must all share them."""

    model: str
    data: str
    loss: str
    params: tuple[str, ...] | None
    batch_size: int | None
    dtype: str
    device: str
    seed: int
    top: int
    bottom: int
    trace: bool
    trace_matvecs: int
    density: bool
    probes: int
    steps: int

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON values (tuples as lists).

        Returns:
            A dict of the settings' fields, ``params`` as a list (or None), ready for
            ``json.dumps``.
        """
        values = asdict(self)
        values["params"] = None if self.params is None else list(self.params)
        return values


def hessian_of(model: nn.Module, loss_fn: Any, data: Any, params: Any) -> ModelHessian:
    """The Hessian operator; a mismatch of model, loss and data is a usage error.

    Building it runs the model and the loss on the first batch, so anything they raise
    (torch's RuntimeError for inputs of the wrong width, IndexError for a label out of
    range) is the user's input at fault, not a traceback to show.

    Returns:
        The :class:`~hesskit.operators.hessian.ModelHessian` of ``loss_fn`` over ``data``.

    Raises:
        UsageError: naming MODEL, --data and --loss if building the operator raises: hesskit's
            own checks (their message), or whatever the model or loss raise on the first
            batch.
    """
    try:
        return ModelHessian(model, loss_fn, data, params=params)
    except (TypeError, ValueError) as error:  # hesskit's own checks: their message says it
        raise UsageError("MODEL, --data and --loss", " ".join(str(error).split())) from error
    except Exception as error:
        msg = f"the model and loss on the first batch raised {type(error).__name__}: {error}"
        raise UsageError("MODEL, --data and --loss", " ".join(msg.split())) from error


T = TypeVar("T")


def _timed(desc: str, quiet: bool, solve: Callable[[ProgressBar], T]) -> tuple[T, float]:
    """``solve(bar)`` with a progress bar labelled ``desc``, and its seconds.

    Returns:
        ``(result, seconds)``: what ``solve`` returned and its wall-clock time in seconds.
    """
    bar = ProgressBar(desc, disable=True if quiet else None)
    start = time.perf_counter()
    try:
        result = solve(bar)
    finally:
        bar.close()
    return result, time.perf_counter() - start


def analyse(H: LinearOperator, settings: Settings, *, quiet: bool, label: str = "") -> dict:
    """Every part the settings ask for, each with its products and seconds.

    Returns:
        The record: ``top``, ``bottom``, ``trace``, ``density`` (each None unless asked for,
        else its values with ``num_matvecs`` and ``seconds``), ``outliers`` (see
        :func:`_outliers`), and the total ``num_matvecs`` and ``seconds``.

    Raises:
        UsageError: naming ``--top`` or ``--bottom`` if it is not below the dimension.
    """
    n, seed = H.shape[0], settings.seed
    eigenproblems = (("top", settings.top, "LA"), ("bottom", settings.bottom, "SA"))
    for part, k, _ in eigenproblems:  # before any product is spent
        if k >= n:
            raise UsageError(f"--{part}", f"must be below the number of parameters, {n}, got {k}")
    record: dict[str, Any] = {"top": None, "bottom": None, "trace": None, "density": None}
    for part, k, which in eigenproblems:
        if k:

            def solve(bar: ProgressBar, k: int = k, which: str = which) -> hesskit.EigenResult:
                return hesskit.eigsh(H, k, which=which, generator=seed, progress=bar)

            result, seconds = _timed(f"{label}{part}-{k} eigenvalues", quiet, solve)
            record[part] = _eigen_record(result, seconds)
    if settings.trace:
        estimate, seconds = _timed(
            f"{label}trace (Hutch++)",
            quiet,
            lambda bar: hesskit.trace(
                H, settings.trace_matvecs, method="hutch++", generator=seed, progress=bar
            ),
        )
        record["trace"] = {
            "estimate": float(estimate.estimate),
            "stderr": float(estimate.stderr),
            "method": estimate.method,
            "num_matvecs": estimate.num_matvecs,
            "seconds": seconds,
        }
    density = None
    if settings.density:
        density, seconds = _timed(
            f"{label}density (SLQ)",
            quiet,
            lambda bar: hesskit.spectral_density(
                H,
                num_probes=settings.probes,
                num_steps=settings.steps,
                generator=seed,
                progress=bar,
            ),
        )
        record["density"] = {
            "nodes": density.nodes.tolist(),
            "weights": density.weights.tolist(),
            "num_probes": settings.probes,
            "num_steps": int(density.nodes.shape[1]),
            "num_matvecs": density.num_matvecs,
            "seconds": seconds,
        }
    record["outliers"] = _outliers(density, record["top"])
    parts = [record[p] for p in ("top", "bottom", "trace", "density") if record[p] is not None]
    record["num_matvecs"] = sum(part["num_matvecs"] for part in parts)
    record["seconds"] = sum(part["seconds"] for part in parts)
    return record


def _eigen_record(result: hesskit.EigenResult, seconds: float) -> dict[str, Any]:
    return {
        "eigenvalues": result.eigenvalues.tolist(),
        "residuals": result.residuals.tolist(),
        "converged": result.converged,
        "tol": result.tol,
        "num_matvecs": result.num_matvecs,
        "seconds": seconds,
    }


def _outliers(density: hesskit.SpectralDensity | None, top: dict | None) -> dict | None:
    """The log-gap split (:func:`hesskit.spectrum.split`) of the density or top eigenvalues.

    The density is split where there is one, else the top eigenvalues (which see only the
    top of the spectrum: ``source`` says which).

    The rule looks at most at half the values per probe (``max_outliers``); a count at that
    cap (``at_cap``) means a gap at the last value examined, with the bulk's edge possibly
    further down: at least that many above it, not a count (nor "no gap": with ``--top 2``
    one clear outlier is at the cap of 1).

    Returns:
        A dict with the ``source``, the ``rule``, ``num_outliers``, the ``outliers``, the
        bulk's ``edge``, the cap ``max_outliers`` and ``at_cap``; None without a density and
        with fewer than two top eigenvalues.
    """
    if density is not None:
        cap = max(1, density.nodes.shape[1] // 2)
        parts = hesskit.spectrum.split(density, max_outliers=cap)
        source = "density"
    elif top is not None and len(top["eigenvalues"]) >= 2:
        values = torch.tensor(top["eigenvalues"], dtype=torch.float64)
        cap = len(values) // 2
        parts, source = hesskit.spectrum.split(values, max_outliers=cap), "top eigenvalues"
    else:
        return None
    return {
        "source": source,
        "rule": "lowest_log_gap",
        "num_outliers": parts.num_outliers,
        "outliers": parts.outliers.tolist(),
        "edge": parts.edge,
        "max_outliers": cap,
        "at_cap": parts.num_outliers == cap,
    }
