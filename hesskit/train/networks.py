"""Small, seeded trainers for networks that stop at a target training loss.

Hessian spectra shrink as the loss falls, so spectra of different models are compared at
a matched training loss rather than a matched number of steps (Sagun et al. 2017,
arXiv:1706.04454, section 3). Every trainer therefore evaluates the loss on the *whole*
training set every ``eval_every`` steps and stops as soon as it is at most
``target_loss``. The user's model is never touched: a deep copy is trained and returned.
Minibatches are drawn from a local ``torch.Generator`` (a fresh permutation per epoch,
the incomplete last batch dropped so that every step sees ``batch_size`` samples), so a
seed gives bit-identical results on a given machine.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hesskit import _checks
from hesskit.objective import Objective

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of a training run.

    Attributes:
        model: the trained copy of the model.
        losses: the full training loss at each evaluation, the initial one first.
        steps: the number of updates done before each entry of ``losses``.
        num_steps: the number of updates done in all.
        reached_target: whether the last evaluated loss is <= ``target_loss``.
    """

    model: nn.Module
    losses: list[float]
    steps: list[int]
    num_steps: int
    reached_target: bool

    @property
    def final_loss(self) -> float:
        """The full training loss of the returned model."""
        return self.losses[-1]


def gradient_descent(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    lr: float,
    max_steps: int,
    target_loss: float | None = None,
    eval_every: int = 1,
) -> TrainResult:
    """Full-batch gradient descent ``theta <- theta - lr * grad L(theta)`` on a copy of ``model``.

    Args:
        model: the network; not modified.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: the ``(inputs, targets)`` training set.
        lr: the step size.
        max_steps: the most updates to do (0 only evaluates).
        target_loss: stop as soon as the full loss is <= this; None runs ``max_steps``.
        eval_every: evaluate (and test the stop rule) every this many steps.

    Returns:
        A :class:`TrainResult`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a number is out of range, or the loss stops being finite (the
            step size is too large).

    Example:
        >>> from hesskit.problems import gaussian_mixture
        >>> problem = gaussian_mixture(2, input_dim=10, samples_per_cluster=10)
        >>> run = gradient_descent(problem.make_model(4), problem.loss_fn, problem.data,
        ...                        lr=0.5, max_steps=500, target_loss=0.05)
        >>> run.reached_target, run.final_loss <= 0.05
        (True, True)
    """
    options = _options(lr=lr, max_steps=max_steps, target_loss=target_loss, eval_every=eval_every)
    optimizer = functools.partial(torch.optim.SGD, lr=lr)
    return _train(model, loss_fn, data, optimizer, sampling=None, options=options)


def sgd(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    lr: float,
    batch_size: int,
    max_steps: int,
    target_loss: float | None = None,
    eval_every: int = 1,
    seed: int = 0,
    momentum: float = 0.0,
) -> TrainResult:
    """Minibatch stochastic gradient descent (optionally with heavy-ball momentum).

    ``eval_every`` defaults to 1 so that the run stops at the first step whose full loss
    reaches ``target_loss``; raise it when a full-data pass costs much more than a step.

    Args:
        model: the network; not modified.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: the ``(inputs, targets)`` training set.
        lr: the step size.
        batch_size: samples per step, at most the number of samples.
        max_steps: the most updates to do.
        target_loss: stop as soon as the full loss is <= this; None runs ``max_steps``.
        eval_every: evaluate the full loss every this many steps.
        seed: the seed of the minibatch order.
        momentum: ``torch.optim.SGD``'s momentum, in [0, 1).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a number is out of range or the loss stops being finite.

    Example:
        >>> from hesskit.problems import gaussian_mixture
        >>> problem = gaussian_mixture(2, input_dim=10, samples_per_cluster=10)
        >>> run = sgd(problem.make_model(4), problem.loss_fn, problem.data, lr=0.1,
        ...           batch_size=5, max_steps=40, eval_every=10)
        >>> run.steps, run.losses[-1] < run.losses[0]
        ([0, 10, 20, 30, 40], True)
    """
    momentum = _checks.check_finite_float("momentum", momentum)
    if not 0 <= momentum < 1:
        msg = f"momentum must be in [0, 1), got {momentum!r}"
        raise ValueError(msg)
    options = _options(lr=lr, max_steps=max_steps, target_loss=target_loss, eval_every=eval_every)
    optimizer = functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)
    return _train(model, loss_fn, data, optimizer, sampling=(batch_size, seed), options=options)


def adam(
    model: nn.Module,
    loss_fn: LossFn,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    lr: float,
    max_steps: int,
    batch_size: int | None = None,
    target_loss: float | None = None,
    eval_every: int = 1,
    seed: int = 0,
    betas: tuple[float, float] = (0.9, 0.999),
) -> TrainResult:
    """Adam (Kingma and Ba 2015, arXiv:1412.6980), full-batch or on minibatches.

    Args:
        model: the network; not modified.
        loss_fn: ``loss_fn(outputs, targets)``, the batch mean.
        data: the ``(inputs, targets)`` training set.
        lr: the step size.
        max_steps: the most updates to do.
        batch_size: samples per step; None uses the whole training set every step.
        target_loss: stop as soon as the full loss is <= this; None runs ``max_steps``.
        eval_every: evaluate the full loss every this many steps.
        seed: the seed of the minibatch order (unused when full-batch).
        betas: Adam's decay rates of the first and second moments (the paper's defaults).

    Returns:
        A :class:`TrainResult`.

    Raises:
        TypeError: if an argument has the wrong type.
        ValueError: if a number is out of range or the loss stops being finite.

    Example:
        >>> from hesskit.problems import gaussian_mixture
        >>> problem = gaussian_mixture(2, input_dim=10, samples_per_cluster=10)
        >>> run = adam(problem.make_model(4), problem.loss_fn, problem.data, lr=0.01,
        ...            max_steps=300, target_loss=0.05)
        >>> run.reached_target
        True
    """
    options = _options(lr=lr, max_steps=max_steps, target_loss=target_loss, eval_every=eval_every)
    sampling = None if batch_size is None else (batch_size, seed)
    optimizer = functools.partial(torch.optim.Adam, lr=lr, betas=betas)
    return _train(model, loss_fn, data, optimizer, sampling=sampling, options=options)


def _options(**options: Any) -> dict[str, Any]:
    """The validated options every trainer shares.

    Returns:
        ``lr``, ``max_steps``, ``target_loss`` and ``eval_every``, checked: ``lr`` finite and
        > 0, ``max_steps`` >= 0, ``target_loss`` finite or None, ``eval_every`` >= 1.

    Raises:
        TypeError: if an option is not a number (an int for the counts).
        ValueError: if an option is out of its range.
    """
    return {
        "lr": _checks.check_positive_float("lr", options["lr"]),
        "max_steps": _checks.check_int_in_range("max_steps", options["max_steps"], low=0),
        "target_loss": _checks.check_finite_float(
            "target_loss", options["target_loss"], allow_none=True
        ),
        "eval_every": _checks.check_int_in_range("eval_every", options["eval_every"], low=1),
    }


def _train(model, loss_fn, data, make_optimizer, *, sampling, options) -> TrainResult:
    """Train a copy of ``model``; ``sampling`` is None (full batch) or (batch_size, seed).

    Returns:
        The :class:`TrainResult`: the trained copy, the evaluated losses and the updates
        before each, the number of updates, and whether ``target_loss`` was reached.
    """
    _checks.check_module("model", model)
    inputs, targets = _checks.check_tensor_pair("data", data)
    trained = copy.deepcopy(model)
    # the full loss, and the checks of loss and data, as the operators see them (a model
    # may train in train mode); its parameters are views of the trained copy's
    objective = Objective(trained, loss_fn, (inputs, targets), allow_train_mode=True)
    optimizer = make_optimizer([p for p in trained.parameters() if p.requires_grad])
    batches = _batches(inputs.shape[0], sampling, inputs.device)
    target, every, max_steps = options["target_loss"], options["eval_every"], options["max_steps"]
    losses, steps = [], []
    for step in range(max_steps + 1):
        index = next(batches)
        evaluate = step % every == 0 or step == max_steps
        loss = loss_fn(trained(inputs[index]), targets[index]) if step < max_steps else None
        if evaluate:
            full = _full_loss(objective, loss if index is ... else None, step)
            _check_finite_loss(full, step)
            losses.append(full)
            steps.append(step)
            if (target is not None and full <= target) or step == max_steps:
                break
        assert loss is not None  # step < max_steps: the last step broke out above
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reached = target is not None and losses[-1] <= target
    return TrainResult(trained, losses, steps, steps[-1], reached)


def _batches(num_samples: int, sampling, device) -> Iterator[Any]:
    """Yield index tensors of minibatches forever, or ``...`` (everything) when full-batch."""
    if sampling is None:
        while True:
            yield ...
    batch_size = _checks.check_int_in_range("batch_size", sampling[0], low=1, high=num_samples)
    gen = torch.Generator().manual_seed(_checks.check_int_in_range("seed", sampling[1], low=0))
    while True:
        order = torch.randperm(num_samples, generator=gen).to(device)
        for start in range(0, num_samples - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def _full_loss(objective: Objective, step_loss: torch.Tensor | None, step: int) -> float:
    """The loss on the whole training set (the step's own loss when it is full-batch).

    Returns:
        The full training loss, a float.

    Raises:
        ValueError: if a batch's loss is not finite (training diverged).
    """
    if step_loss is not None:
        return float(step_loss.detach())
    try:
        return float(objective.loss())
    except ValueError as error:  # the objective found a non-finite batch loss
        raise ValueError(_diverged(math.nan, step)) from error


def _check_finite_loss(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise ValueError(_diverged(loss, step))


def _diverged(loss: float, step: int) -> str:
    return (
        f"the training loss is {loss} after {step} steps: training diverged; "
        "lower lr, or check data and loss_fn"
    )
