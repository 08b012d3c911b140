"""Adapters to the peers (PyHessian, hessian-eigenthings, curvlinops, BackPACK) and to plain
``torch.func``/``torch.autograd`` products driven by ``scipy.sparse.linalg.eigsh``.

- A product adapter ``(model, X, Y) -> apply`` returns ``apply(vector)``: the peer's
  Hessian-vector product of a flat float tensor, returned flat (``PRODUCTS``).
- A top-k adapter ``(model, X, Y, k, tol) -> (eigenvalues, products)`` runs the peer's own
  eigensolver, or scipy's ARPACK on the peer's product; the count comes from a counter
  around the peer's product (``TOP_K``).

A peer that is not installed raises ``NotImplementedError`` (asv shows n/a), so the suite
runs without them; ``benchmarks/install_peers.sh`` installs them. Nothing here is copied into
hesskit: the adapters only call the peers' public functions.
"""

from __future__ import annotations

import copy
import sys

import numpy as np

from . import _workloads as w


def _split(vector, params):
    """A flat vector as a list of tensors shaped like ``params``."""
    t = w.torch()
    sizes = [p.numel() for p in params]
    return [c.reshape(p.shape) for c, p in zip(t.split(vector, sizes), params, strict=True)]


def _flat(parts):
    """A peer's per-parameter result as one flat vector."""
    return w.torch().cat([part.reshape(-1) for part in parts])


def _trainable(model):
    return [p for p in model.parameters() if p.requires_grad]


# ----------------------------------------------------------------------------- products


def torch_func_hvp(model, X, Y):
    """``torch.func``: ``jvp`` of ``grad`` of the loss of a flat parameter vector."""
    from torch.func import functional_call, grad, jvp

    named = {k: v.detach() for k, v in model.named_parameters()}
    theta = _flat(named.values())

    def flat_loss(flat):
        params = dict(zip(named, _split(flat, list(named.values())), strict=True))
        return w.loss_fn()(functional_call(model, params, (X,)), Y)

    gradient = grad(flat_loss)
    return lambda vector: jvp(gradient, (theta,), (vector,))[1]


def double_backward_hvp(model, X, Y):
    """``torch.autograd``: the gradient's graph rebuilt, then differentiated, per product."""
    t = w.torch()
    model = copy.deepcopy(model)
    params = _trainable(model)
    loss = w.loss_fn()

    def apply(vector):
        grads = t.autograd.grad(loss(model(X), Y), params, create_graph=True)
        return _flat(t.autograd.grad(grads, params, _split(vector, params)))

    return apply


def cached_graph_hvp(model, X, Y):
    """The strongest hand-written baseline (``shared/performance.md``): the first
    backward's graph built once (``create_graph=True``, as PyHessian does for one batch),
    then one ``autograd.grad(..., retain_graph=True)`` per product."""
    t = w.torch()
    model = copy.deepcopy(model)
    params = _trainable(model)
    grads = t.autograd.grad(w.loss_fn()(model(X), Y), params, create_graph=True)
    return lambda vector: _flat(
        t.autograd.grad(grads, params, _split(vector, params), retain_graph=True)
    )


def pyhessian_hvp(model, X, Y):
    """PyHessian: the first backward's graph kept (``gradsH``), one second backward each."""
    w.require("peer:pyhessian")
    import pyhessian  # noqa: F401

    module = sys.modules["pyhessian.hessian"]
    h = module.hessian(copy.deepcopy(model), w.loss_fn(), data=(X, Y), cuda=X.is_cuda)
    return lambda vector: _flat(
        module.hessian_vector_product(h.gradsH, h.params, _split(vector, h.params))
    )


def eigenthings_hvp(model, X, Y):
    """hessian-eigenthings' ``HessianOperator.matvec``."""
    op, _ = eigenthings_operator(model, X, Y)
    return lambda vector: op.matvec(vector).reshape(-1)


def curvlinops_operator(model, X, Y):
    """curvlinops' ``HessianLinearOperator`` of the mean cross-entropy over one batch."""
    w.require("peer:curvlinops")
    from curvlinops import HessianLinearOperator

    loss = w.torch().nn.CrossEntropyLoss()
    return HessianLinearOperator(
        model, loss, _trainable(model), [(X, Y)], check_deterministic=False
    )


def curvlinops_hvp(model, X, Y):
    """curvlinops' ``HessianLinearOperator`` applied to one column."""
    op = curvlinops_operator(model, X, Y)
    return lambda vector: (op @ vector.unsqueeze(1)).reshape(-1)


def backpack_hvp(model, X, Y):
    """BackPACK's ``hessian_vector_product`` (graph rebuilt for every product)."""
    w.require("peer:backpack")
    from backpack.hessianfree.hvp import hessian_vector_product

    model = copy.deepcopy(model)
    params = _trainable(model)

    def apply(vector):
        loss = w.loss_fn()(model(X), Y)
        return _flat(hessian_vector_product(loss, params, _split(vector, params)))

    return apply


def eigenthings_operator(model, X, Y):
    """hessian-eigenthings' ``HessianOperator`` over the one full batch, with a counter."""
    w.require("peer:eigenthings")
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [(X, Y)], he.supervised_loss(w.loss_fn()))
    count = [0]
    matvec = op.matvec

    def counted(v):
        count[0] += 1
        return matvec(v)

    op.matvec = counted
    return op, count


BASELINE = "baseline:cached-graph+scipy"
"""The reference every hesskit time is a ratio to: cached-graph products + ARPACK."""

PRODUCTS = {
    "baseline:cached-graph": cached_graph_hvp,
    "peer:pyhessian": pyhessian_hvp,
    "peer:eigenthings": eigenthings_hvp,
    "peer:curvlinops": curvlinops_hvp,
    "peer:backpack": backpack_hvp,
}


# ------------------------------------------------------------------------ top-k solvers


def scipy_top(matvec, n, k, tol, dtype):
    """scipy ``eigsh`` (ARPACK, which='LA') on a counting ``LinearOperator``; seeded v0."""
    import scipy.sparse.linalg as sla

    count = [0]

    def counted(x):
        count[0] += 1
        return matvec(np.asarray(x).reshape(-1))

    op = sla.LinearOperator((n, n), matvec=counted, dtype=dtype)
    v0 = np.random.default_rng(0).standard_normal(n).astype(dtype)
    values = sla.eigsh(op, k=k, which="LA", tol=tol, v0=v0, return_eigenvectors=False)
    return np.sort(values)[::-1].copy(), count[0]


def scipy_lobpcg_top(matmat, n, k, tol):
    """SciPy's LOBPCG, block of ``k`` seeded Gaussian columns, absolute residual ``tol``;
    returns (top-k eigenvalues, operator columns used). ``matmat`` maps float64 tensors."""
    import warnings

    import scipy.sparse.linalg as sla

    t = w.torch()
    count = [0]

    def counted(x):
        block = t.as_tensor(np.asarray(x)).reshape(n, -1)
        count[0] += block.shape[1]
        return matmat(block).numpy().reshape(np.shape(x))

    op = sla.LinearOperator((n, n), matvec=counted, matmat=counted, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal((n, k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its "did not converge" shows as the error instead
        values = sla.lobpcg(op, start, tol=tol, largest=True, maxiter=2000)[0]
    return t.as_tensor(np.sort(values)[::-1].copy()), count[0]


def scipy_over(make_hvp):
    """scipy's ARPACK ``eigsh`` driving the product adapter ``make_hvp``."""

    def run(model, X, Y, k, tol):
        t = w.torch()
        apply = make_hvp(model, X, Y)
        first = next(model.parameters())
        n = sum(p.numel() for p in _trainable(model))

        def matvec(x):
            return apply(t.as_tensor(x, dtype=first.dtype, device=first.device)).cpu().numpy()

        return scipy_top(matvec, n, k, tol, np.dtype(str(first.dtype).removeprefix("torch.")))

    return run


def curvlinops_scipy(model, X, Y, k, tol):
    """curvlinops' own SciPy bridge (``HessianLinearOperator(...).to_scipy()``) + eigsh."""
    op = curvlinops_operator(model, X, Y).to_scipy()
    return scipy_top(lambda x: op @ x, op.shape[0], k, tol, op.dtype)


def eigenthings_lanczos(steps):
    """hessian-eigenthings' Lanczos with ``steps`` steps (None: its default, 2k)."""

    def run(model, X, Y, k, tol):
        import hessian_eigenthings as he

        op, count = eigenthings_operator(model, X, Y)
        result = he.lanczos(op, k=k, max_iter=steps, tol=tol, which="LA", seed=0)
        return result.eigenvalues.detach().cpu().numpy(), count[0]

    return run


def eigenthings_power(model, X, Y, k, tol):
    """hessian-eigenthings' deflated power iteration with its defaults."""
    import hessian_eigenthings as he

    op, count = eigenthings_operator(model, X, Y)
    result = he.deflated_power_iteration(op, k=k, seed=0)
    return result.eigenvalues.detach().cpu().numpy(), count[0]


def pyhessian_power(tol):
    """PyHessian's power iteration (``tol`` None: its defaults) on a copy of the model."""

    def run(model, X, Y, k, _tol):
        w.require("peer:pyhessian")
        t = w.torch()
        import pyhessian  # noqa: F401

        module = sys.modules["pyhessian.hessian"]
        hvp = module.hessian_vector_product
        count = [0]

        def counted(*args, **kwargs):
            count[0] += 1
            return hvp(*args, **kwargs)

        module.hessian_vector_product = counted
        try:
            t.manual_seed(0)
            h = module.hessian(copy.deepcopy(model), w.loss_fn(), data=(X, Y), cuda=X.is_cuda)
            kwargs = {} if tol is None else {"tol": tol, "maxIter": 1000}
            values, _ = h.eigenvalues(top_n=k, **kwargs)
        finally:
            module.hessian_vector_product = hvp
        return np.sort(np.asarray(values))[::-1].copy(), count[0]

    return run


TOP_K = {
    BASELINE: scipy_over(cached_graph_hvp),
    "peer:torch.func+scipy": scipy_over(torch_func_hvp),
    "peer:double-backward+scipy": scipy_over(double_backward_hvp),
    "peer:backpack+scipy": scipy_over(backpack_hvp),
    "peer:curvlinops+scipy": curvlinops_scipy,
    "peer:eigenthings-lanczos-m50": eigenthings_lanczos(50),
    "peer:eigenthings-lanczos-default": eigenthings_lanczos(None),
    "peer:eigenthings-power": eigenthings_power,
    "peer:pyhessian-power-default": pyhessian_power(None),
    "peer:pyhessian-power-tol1e-6": pyhessian_power(1e-6),
}
