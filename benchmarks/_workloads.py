"""Seeded models, data and references shared by the benchmarks (built in setup, never on import).

Workloads of ``shared/peers.md`` on scikit-learn's digits (1,797 samples, 64 standardized
features, 10 classes; ``load_digits`` ships with scikit-learn):

- ``W1``: MLP 64-32-10 tanh, 2,410 parameters;
- ``W2``: MLP 64-128-128-10 ReLU, 26,122 parameters;
- ``W3``: CNN conv(1-16, 3x3)-ReLU-conv(16-32, 3x3)-ReLU-linear(2048-10), 25,290 parameters;

each trained with 200 full-batch Adam steps (lr 1e-2, seed 0) in float32: the recipe and
the architectures are :func:`hesskit.train.trained_digits_network`'s. Scaling
workloads (``wide``) are one-hidden-layer tanh MLPs ``64-h-10`` with ``h`` chosen so that the
number of parameters is about ``n``, untrained, on seeded Gaussian inputs with random labels.
"""

from __future__ import annotations

import functools
import math
import time

from . import _packages

WORKLOADS = ("W1", "W2", "W3")
SIZES = ("1e3", "1e4", "1e5", "1e6", "1e7")
DEVICES = ("cpu", "cuda")
# One CPU thread: on a shared 2-core machine OpenMP spin-waiting makes torch 20-60x slower.
NUM_THREADS = 1
# Above this many parameters a CPU run is skipped (memory and minutes; a GPU runs them).
CPU_MAX_PARAMS = 1_000_000


def torch():
    """Import torch lazily (asv imports every benchmark module during discovery)."""
    import torch as _torch

    _torch.set_num_threads(NUM_THREADS)
    return _torch


def skip(reason: str):
    """Raise asv's 'not implemented' skip (shown as n/a) with a reason on stderr."""
    import sys

    print(f"skipped: {reason}", file=sys.stderr)
    raise NotImplementedError(reason)


def require(name: str) -> None:
    """Skip cleanly when the package that the benchmark ``name`` needs
    (:data:`benchmarks._packages.PACKAGES`) is not installed."""
    package = _packages.missing(name)
    if package is not None:
        skip(f"{name} needs {package!r}, which is not installed")


def skip_body(reason: str):
    """Inside a benchmark body: asv's SkipNotImplemented (the result is n/a, not a failure)."""
    from asv_runner.benchmarks.mark import SkipNotImplemented

    raise SkipNotImplemented(reason)


def device_or_skip(device: str):
    """The torch device, or a clean skip when it is absent (CUDA on a CPU machine)."""
    t = torch()
    if device == "cuda" and not t.cuda.is_available():
        skip("CUDA is not available on this machine")
    return t.device(device)


def synchronize(device) -> None:
    """Wait for queued GPU work so that the timed body measures it, not its launch."""
    if device.type == "cuda":
        torch().cuda.synchronize(device)


@functools.cache
def digits(dtype_name: str = "float32"):
    """(X, Y): all 1,797 digits, features standardized in float64, then cast
    (:func:`hesskit.problems.digits`)."""
    t = torch()
    from hesskit.problems import digits as load_digits

    problem = load_digits(dtype=getattr(t, dtype_name))
    return problem.inputs, problem.targets


def digits_architecture(name: str):
    """The untrained module of workload ``name`` (float32, seed 0)."""
    torch()
    from hesskit.problems import digits_architecture as architecture

    return architecture(name)


def train_digits(name: str, steps: int = 200) -> dict:
    """State dict (float32, CPU) of workload ``name`` after ``steps`` full-batch Adam steps
    (:func:`hesskit.train.trained_digits_network`: seed 0, lr 1e-2)."""
    t = torch()
    from hesskit.train import trained_digits_network

    model, _, _ = trained_digits_network(name, steps=steps, dtype=t.float32)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def digits_problem(name: str, state: dict, *, dtype: str = "float32", device: str = "cpu"):
    """(model, X, Y) of workload ``name`` with trained ``state``, in eval mode."""
    t = torch()
    model = digits_architecture(name)
    model.load_state_dict(state)
    model = model.to(dtype=getattr(t, dtype), device=device).eval()
    X, Y = digits(dtype)
    return model, X.to(device), Y.to(device)


def wide_problem(size: str, samples: int, *, device="cpu", dtype="float32", seed: int = 0):
    """(model, X, Y): a 64-h-10 tanh MLP with about ``float(size)`` parameters."""
    t = torch()
    n = float(size)
    hidden = max(1, round((n - 10) / 75))
    t.manual_seed(seed)
    nn = t.nn
    model = nn.Sequential(nn.Linear(64, hidden), nn.Tanh(), nn.Linear(hidden, 10))
    model = model.to(dtype=getattr(t, dtype), device=device).eval()
    gen = t.Generator().manual_seed(seed)
    X = t.randn(samples, 64, generator=gen).to(dtype=getattr(t, dtype), device=device)
    Y = t.randint(0, 10, (samples,), generator=gen).to(device)
    return model, X, Y


def check_cpu_size(size: str, device) -> None:
    """Skip sizes above ``CPU_MAX_PARAMS`` on the CPU (params stay the same everywhere)."""
    if device.type == "cpu" and float(size) > CPU_MAX_PARAMS:
        skip(f"n = {size} parameters is above the CPU limit of this suite ({CPU_MAX_PARAMS:.0e})")


_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>


def return_freed_memory() -> None:
    """Make glibc hand blocks of 64 KiB and more back to the system when they are freed, so
    that the process' peak resident memory follows the memory that is live. By default
    glibc keeps large freed blocks in its heap, and a product over 16 batches, with 16
    times the allocations of one, then peaks higher without holding more (measured: peak
    growth 130 / 161 / 193 MiB over 1 / 4 / 16 batches by default, 119 / 120 / 120 MiB
    with this). A no-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)


def peak_rss_bytes() -> int:
    """The process' peak resident memory so far (``ru_maxrss``; KiB on Linux)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def loss_fn():
    """Mean cross-entropy, the loss of every workload."""
    return torch().nn.functional.cross_entropy


def gradient_fn(model, X, Y):
    """A closure computing one gradient of the mean loss over (X, Y) (the unit of cost)."""
    t = torch()
    params = [p for p in model.parameters() if p.requires_grad]
    loss = loss_fn()

    def gradient():
        return t.autograd.grad(loss(model(X), Y), params)

    return gradient


def probe(n: int, k: int, *, dtype=None, device="cpu"):
    """The seeded ``(n, k)`` block every product benchmark applies (drawn in float64, so
    that the float32 and float64 probes are the same vectors)."""
    t = torch()
    gen = t.Generator().manual_seed(0)
    block = t.randn(n, k, generator=gen, dtype=t.float64)
    return block.to(dtype=dtype or t.float32, device=device)


def vector_error(value, reference) -> float:
    """``||value - reference|| / ||reference||`` in float64 on the host."""
    t = torch()
    value = t.as_tensor(value).detach().reshape(-1).to("cpu", t.float64)
    reference = t.as_tensor(reference).detach().reshape(-1).to("cpu", t.float64)
    if value.numel() != reference.numel():
        return math.inf
    return float(t.linalg.vector_norm(value - reference) / t.linalg.vector_norm(reference))


def interleaved_ratio(fn, reference, *, repeat: int = 11, device=None) -> float:
    """Median time of ``fn()`` / median time of ``reference()``, calls interleaved so that a
    change of machine load during the measurement biases neither side."""
    fn()
    reference()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for side, call in zip(times, (fn, reference), strict=True):
            start = time.perf_counter()
            call()
            if device is not None:
                synchronize(device)
            side.append(time.perf_counter() - start)
    for side in times:
        side.sort()
    return times[0][repeat // 2] / times[1][repeat // 2]


class W1Solvers:
    """Base of the benchmarks that compare solvers on the trained W1 against its dense
    float64 spectrum (built once per machine by ``setup_cache``)."""

    param_names = ("solver",)
    number = 1
    warmup_time = 0.0

    def setup_cache(self):
        """The trained W1 (state dict) and its dense float64 spectrum."""
        state = train_digits("W1")
        hessian = dense_hessian64(*digits_problem("W1", state))
        return {"state": state, "spectrum": torch().linalg.eigvalsh(hessian)}

    setup_cache.timeout = 600

    def setup_problem(self, cache, solver):
        """Skip a peer that is not installed; set the model, data and solver."""
        require(solver)
        self.model, self.X, self.Y = digits_problem("W1", cache["state"])
        self.solver = solver


def dense_hessian64(model, X, Y):
    """The dense float64 Hessian of the mean loss (small models only)."""
    import hesskit

    t = torch()
    model64 = _copy_to(model, t.float64)
    op = hesskit.hessian(model64, loss_fn(), (X.double(), Y), method="double_backward")
    return hesskit.dense(op, block_size=128)


def top_eigenvalues64(model, X, Y, k: int = 10):
    """Reference top-k eigenvalues in float64: dense eigvalsh when n <= 5000, else eigsh."""
    import hesskit

    t = torch()
    n = sum(p.numel() for p in model.parameters())
    if n <= 5000:
        return t.linalg.eigvalsh(dense_hessian64(model, X, Y)).flip(0)[:k]
    model64 = _copy_to(model, t.float64)
    op = hesskit.hessian(model64, loss_fn(), (X.double(), Y), method="cached_graph")
    result = hesskit.eigsh(op, k, tol=1e-10, ncv=40)
    if not result.converged:
        msg = "the float64 reference eigsh did not converge"
        raise RuntimeError(msg)
    return result.eigenvalues


def _copy_to(model, dtype):
    import copy

    return copy.deepcopy(model).to(dtype)


def scaled_error(values, reference) -> float:
    """Worst ``|lambda_i - lambda_i*| / |lambda_1*|``: what a relative residual bounds."""
    t = torch()
    values = t.as_tensor(values, dtype=t.float64).flatten().sort(descending=True).values
    reference = t.as_tensor(reference, dtype=t.float64).cpu()
    if values.numel() != reference.numel():
        return math.inf
    return float((values.cpu() - reference).abs().max() / reference.abs().max())
