"""Seeded problems of the Hessian-spectrum literature: Gaussian mixtures, teacher-student, digits.

- :func:`gaussian_mixture`: ``k`` Gaussian clusters with a separation knob and the
  softmax network of Sagun et al. (2017, arXiv:1706.04454, section 3.1), on which the
  number of Hessian outliers tracks ``k`` and the bulk grows with the width.
- :func:`teacher_student`: a random one-hidden-layer teacher labels Gaussian inputs and a
  student of any width regresses them (Sagun et al. 2014, arXiv:1412.6615, section 3).
- :func:`digits`: scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn, no
  download), or a subset of its classes: real data for the same experiments.

The data depend only on the problem's ``seed``; model initialisations take their own seed
in :meth:`Problem.make_model`. Everything is drawn from a local ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from hesskit import _checks
from hesskit.problems.base import ACTIVATIONS, Problem, mean_squared_error, mlp

_NUM_DIGITS = 10


def gaussian_mixture(
    num_clusters: int,
    *,
    input_dim: int = 100,
    samples_per_cluster: int = 100,
    separation: float = 5.0,
    hidden: Sequence[int] = (30, 30),
    activation: str = "tanh",
    standardize: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Problem:
    """``k`` isotropic Gaussian clusters labelled by cluster, with a softmax MLP factory.

    The cluster means are drawn uniformly on the sphere of radius ``separation`` in
    ``R^input_dim``; each sample is its mean plus standard normal noise, so in high
    dimension two means lie about ``sqrt(2) * separation`` noise standard deviations
    apart, and a smaller ``separation`` makes the data less separable. Samples are
    shuffled. The defaults give the 100-30-30-k network of Sagun et al. (2017, section
    3.1); the activation is tanh by default so that the loss is smooth everywhere.
    ``standardize=True`` then centres every input coordinate and divides it by its
    standard deviation over the samples, as the paper does ("standardised globally").

    Args:
        num_clusters: the number of clusters ``k`` (= classes), at least 2.
        input_dim: the input dimension.
        samples_per_cluster: the number of samples of each cluster.
        separation: the norm of each cluster mean (>= 0; 0 makes the classes identical).
        hidden: the hidden widths of the default model.
        activation: ``"tanh"`` or ``"relu"``.
        standardize: whether to standardize each input coordinate over the samples.
        seed: the seed of the data.
        dtype: the inputs' dtype.

    Returns:
        A :class:`Problem` with softmax cross-entropy and ``num_classes = k``.

    Raises:
        ValueError: if a size is out of range or ``separation`` is negative.
        TypeError: if a size is not an int or ``separation`` not a number.

    Example:
        >>> problem = gaussian_mixture(3, input_dim=5, samples_per_cluster=4)
        >>> problem.inputs.shape, problem.targets.bincount().tolist()
        (torch.Size([12, 5]), [4, 4, 4])
    """
    k = _checks.check_int_in_range("num_clusters", num_clusters, low=2)
    dim = _checks.check_int_in_range("input_dim", input_dim, low=1)
    per = _checks.check_int_in_range("samples_per_cluster", samples_per_cluster, low=1)
    radius = _checks.check_finite_float("separation", separation)
    if radius < 0:
        msg = f"separation must be >= 0 (the norm of the cluster means), got {separation!r}"
        raise ValueError(msg)
    _checks.check_choice("activation", activation, tuple(ACTIVATIONS))
    gen = _generator(seed)
    directions = torch.randn(k, dim, generator=gen, dtype=torch.float64)
    means = radius * directions / directions.norm(dim=1, keepdim=True)
    labels = torch.arange(k).repeat_interleave(per)
    labels = labels[torch.randperm(k * per, generator=gen)]
    inputs = means[labels] + torch.randn(k * per, dim, generator=gen, dtype=torch.float64)
    if standardize:
        inputs = (inputs - inputs.mean(dim=0)) / inputs.std(dim=0)
    return Problem(
        name=f"gaussian_mixture(k={k}, separation={radius:g}, seed={seed})",
        inputs=inputs.to(dtype),
        targets=labels,
        loss_fn=nn.functional.cross_entropy,
        num_classes=k,
        layer_sizes=_sizes(dim, hidden, k),
        activation=activation,
    )


def teacher_student(
    *,
    input_dim: int,
    teacher_width: int,
    num_samples: int,
    student_width: int | None = None,
    activation: str = "tanh",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Problem:
    """Standard normal inputs labelled by a random one-hidden-layer teacher network.

    The teacher ``input_dim -> teacher_width -> 1`` has weights drawn from
    ``N(0, 1/fan_in)`` and zero biases, so its pre-activations and output are of order
    one. The student factory builds ``input_dim -> width -> 1`` with the same activation
    (default width ``teacher_width``: the teacher is then realisable, and the minimum of
    the squared loss is zero). Sagun et al. (2014, arXiv:1412.6615, section 3) train such
    students and find the same narrow band of final losses as on the spin glass.

    Args:
        input_dim: the input dimension.
        teacher_width: the teacher's hidden width.
        num_samples: the number of samples.
        student_width: the default hidden width of the student; None = ``teacher_width``.
        activation: ``"tanh"`` or ``"relu"``, for teacher and student.
        seed: the seed of the teacher's weights and of the inputs.
        dtype: the inputs' and targets' dtype.

    Returns:
        A :class:`Problem` with the mean squared error, targets of shape ``(n, 1)`` and the
        teacher in ``problem.teacher``.

    Raises:
        ValueError: if a size is below 1 or ``activation`` is unknown.
        TypeError: if a size is not an int.

    Example:
        >>> problem = teacher_student(input_dim=3, teacher_width=4, num_samples=10)
        >>> torch.equal(problem.teacher(problem.inputs), problem.targets)
        True
    """
    dim = _checks.check_int_in_range("input_dim", input_dim, low=1)
    width = _checks.check_int_in_range("teacher_width", teacher_width, low=1)
    n = _checks.check_int_in_range("num_samples", num_samples, low=1)
    student = width if student_width is None else student_width
    student = _checks.check_int_in_range("student_width", student, low=1)
    gen = _generator(seed)
    teacher = mlp([dim, width, 1], activation=activation)
    with torch.no_grad():
        for layer in teacher:
            if not isinstance(layer, nn.Linear):  # the activation between the two layers
                continue
            weight = torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64)
            layer.weight.copy_(weight / layer.in_features**0.5)
            layer.bias.zero_()
    inputs = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    teacher = teacher.to(dtype).requires_grad_(False)
    inputs = inputs.to(dtype)
    with torch.no_grad():
        targets = teacher(inputs)
    return Problem(
        name=f"teacher_student(d={dim}, m={width}, n={n}, seed={seed})",
        inputs=inputs,
        targets=targets,
        loss_fn=mean_squared_error,
        num_classes=None,
        layer_sizes=(dim, student, 1),
        activation=activation,
        teacher=teacher,
    )


def digits(
    *,
    classes: Sequence[int] | None = None,
    standardize: bool = True,
    samples_per_class: int | None = None,
    hidden: Sequence[int] = (32,),
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Problem:
    """scikit-learn's 8x8 handwritten digits, or a subset of its classes, for softmax MLPs.

    ``classes=(3, 8)`` keeps the 3s and 8s and relabels them 0 and 1, in the order given.
    Standardization centres each of the 64 pixels and divides by its standard deviation
    over the kept samples (constant pixels stay 0). The default model is the 64-32-k tanh
    network of hesskit's benchmarks.

    Args:
        classes: the digits to keep (distinct, in 0..9, at least two); None keeps all ten.
        standardize: whether to standardize the pixels.
        samples_per_class: keep this many random samples of each class (drawn with
            ``seed``); None keeps them all (about 180 per class).
        hidden: the hidden widths of the default model.
        seed: the seed of the subsample; the full data set does not depend on it.
        dtype: the inputs' dtype.

    Returns:
        A :class:`Problem` with softmax cross-entropy and ``num_classes = len(classes)``.

    Raises:
        ImportError: if scikit-learn is not installed.
        ValueError: if ``classes`` is not a set of distinct digits, or a class has fewer
            than ``samples_per_class`` samples.

    Example:
        >>> problem = digits(classes=(3, 8))
        >>> problem.num_classes, problem.targets.unique().tolist()
        (2, [0, 1])
    """
    kept = _check_classes(classes)
    inputs, labels = _load_digits()
    mask = torch.isin(labels, torch.tensor(kept))
    inputs, labels = inputs[mask], labels[mask]
    if samples_per_class is not None:
        inputs, labels = _subsample(inputs, labels, kept, samples_per_class, _generator(seed))
    if standardize:
        std = inputs.std(dim=0)
        inputs = (inputs - inputs.mean(dim=0)) / torch.where(std > 0, std, 1.0)
    relabel = torch.full((_NUM_DIGITS,), -1, dtype=torch.int64)
    relabel[torch.tensor(kept)] = torch.arange(len(kept))
    return Problem(
        name=f"digits(classes={kept})",
        inputs=inputs.to(dtype),
        targets=relabel[labels],
        loss_fn=nn.functional.cross_entropy,
        num_classes=len(kept),
        layer_sizes=_sizes(inputs.shape[1], hidden, len(kept)),
    )


def _check_classes(classes: Sequence[int] | None) -> tuple[int, ...]:
    if classes is None:
        return tuple(range(_NUM_DIGITS))
    if not isinstance(classes, Sequence) or isinstance(classes, str):
        msg = f"classes must be a sequence of digits, got {type(classes).__name__}"
        raise TypeError(msg)
    kept = tuple(
        _checks.check_int_in_range(f"classes[{i}]", c, low=0, high=_NUM_DIGITS - 1)
        for i, c in enumerate(classes)
    )
    if len(kept) < 2 or len(set(kept)) != len(kept):
        msg = f"classes must hold at least two distinct digits, got {classes!r}"
        raise ValueError(msg)
    return kept


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        msg = "digits() needs scikit-learn: pip install scikit-learn (or hesskit[test])"
        raise ImportError(msg) from error
    bunch = load_digits()
    return torch.tensor(bunch.data, dtype=torch.float64), torch.tensor(bunch.target)


def _subsample(inputs, labels, kept, per_class, gen) -> tuple[torch.Tensor, torch.Tensor]:
    per = _checks.check_int_in_range("samples_per_class", per_class, low=1)
    chosen = []
    for digit in kept:
        where = (labels == digit).nonzero().squeeze(1)
        if where.numel() < per:
            msg = f"samples_per_class={per} but digit {digit} has only {where.numel()} samples"
            raise ValueError(msg)
        chosen.append(where[torch.randperm(where.numel(), generator=gen)[:per]])
    index = torch.cat(chosen).sort().values
    return inputs[index], labels[index]


def _sizes(input_dim: int, hidden: Sequence[int], outputs: int) -> tuple[int, ...]:
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        msg = f"hidden must be a sequence of widths, got {type(hidden).__name__}"
        raise TypeError(msg)
    widths = [_checks.check_int_in_range(f"hidden[{i}]", w, low=1) for i, w in enumerate(hidden)]
    return (input_dim, *widths, outputs)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(_checks.check_int_in_range("seed", seed, low=0))
