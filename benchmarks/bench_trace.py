"""Trace of the W1 Hessian with a budget of 99 products: Hutchinson and Hutch++ against the
dense float64 trace, and the peers' estimators."""

from __future__ import annotations

from . import _peers
from . import _workloads as w

BUDGET = 99
# Stochastic estimates: a result more than 5% off the dense trace reports no time.
ACCURACY = 0.05
SOLVERS = (
    "hesskit.trace[hutchinson]",
    "hesskit.trace[hutch++]",
    "peer:curvlinops-hutchinson",
    "peer:curvlinops-hutchpp",
    "peer:curvlinops-xtrace",
    "peer:eigenthings-hutch++",
    "peer:pyhessian-hutchinson",
)


class TraceDigits(w.W1Solvers):
    """Trace of the W1 Hessian (float32) with 99 products."""

    params = (list(SOLVERS),)
    repeat = (3, 10, 10.0)

    def setup(self, cache, solver):
        self.setup_problem(cache, solver)
        trace = float(cache["spectrum"].sum())
        self.error = abs(self.solve() - trace) / abs(trace)

    def solve(self) -> float:
        t = w.torch()
        if self.solver.startswith("hesskit"):
            import hesskit

            method = self.solver.split("[")[1][:-1]
            op = hesskit.hessian(self.model, w.loss_fn(), (self.X, self.Y), method="auto")
            return float(hesskit.trace(op, BUDGET, method=method, generator=0).estimate)
        if self.solver.startswith("peer:curvlinops"):
            import curvlinops

            op = _peers.curvlinops_operator(self.model, self.X, self.Y)
            estimator = {
                "peer:curvlinops-hutchinson": curvlinops.hutchinson_trace,
                "peer:curvlinops-hutchpp": curvlinops.hutchpp_trace,
                "peer:curvlinops-xtrace": curvlinops.xtrace,
            }[self.solver]
            t.manual_seed(0)
            budget = BUDGET - BUDGET % 2 if self.solver.endswith("xtrace") else BUDGET  # even
            return float(estimator(op, budget))
        if self.solver == "peer:eigenthings-hutch++":
            import hessian_eigenthings as he

            op, _ = _peers.eigenthings_operator(self.model, self.X, self.Y)
            result = he.trace(op, num_matvecs=BUDGET, method="hutch++", seed=0)
            return float(result.estimate)
        import copy
        import sys

        import numpy as np
        import pyhessian  # noqa: F401

        t.manual_seed(0)
        module = sys.modules["pyhessian.hessian"]
        model = copy.deepcopy(self.model)
        h = module.hessian(model, w.loss_fn(), data=(self.X, self.Y), cuda=False)
        return float(np.mean(h.trace(maxIter=BUDGET, tol=0.0)))

    def time_trace(self, cache, solver):
        """Wall time, only when the estimate is within 5% of the dense trace."""
        if self.error > ACCURACY:
            w.skip_body(f"relative error {self.error:.1e} misses {ACCURACY}")
        self.solve()

    def track_relative_error(self, cache, solver):
        """|estimate - trace| / |trace| against the dense float64 trace."""
        return self.error

    track_relative_error.unit = "relative error"
