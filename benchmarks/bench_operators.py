"""Hessian-vector products: one product over the data vs one gradient, a k-column block vs
k single products, the three product methods (and "auto"), the peers' products, the growth
of cost with parameters and samples, and memory against the number of batches."""

from __future__ import annotations

from . import _peers
from . import _workloads as w

METHODS = ("forward_over_reverse", "double_backward", "cached_graph", "auto")
# A float32 product more than this far (relative 2-norm) from the float64 product of the
# same vector is wrong (a summed loss, a misordered parameter), not rounded: no time.
PRODUCT_ACCURACY = 1e-3
SETUP_CACHE_TIMEOUT = 600


def hesskit_product(model, X, Y, method, k=1):
    """A closure applying hesskit's Hessian (one batch: all of X) to the seeded probe."""
    import hesskit

    op = hesskit.hessian(model, w.loss_fn(), (X, Y), method=method)
    block = w.probe(op.shape[0], k, dtype=op.dtype, device=op.device)
    return lambda: op.matmat(block)


def setup_trained():
    """Trained W1-W3 (state dicts) and the float64 product of each with the probe."""
    import hesskit

    cache = {}
    for name in w.WORKLOADS:
        state = w.train_digits(name)
        model, X, Y = w.digits_problem(name, state, dtype="float64")
        op = hesskit.hessian(model, w.loss_fn(), (X, Y), method="double_backward")
        reference = op.matmat(w.probe(op.shape[0], 1, dtype=op.dtype, device=op.device))
        cache[name] = {"state": state, "reference": reference[:, 0]}
    return cache


class DigitsProduct:
    """One Hessian-vector product over all 1,797 digits, and one gradient (the unit)."""

    params = (list(w.WORKLOADS), ["gradient", *METHODS, *_peers.PRODUCTS])
    param_names = ("workload", "method")
    repeat = (3, 10, 10.0)
    warmup_time = 0.2

    def setup_cache(self):
        """Built once per machine and environment, passed to every setup."""
        return setup_trained()

    setup_cache.timeout = SETUP_CACHE_TIMEOUT

    def setup(self, cache, workload, method):
        w.require(method)
        model, X, Y = w.digits_problem(workload, cache[workload]["state"])
        self.gradient = w.gradient_fn(model, X, Y)
        self.error = None
        if method == "gradient":
            self.product = self.gradient
            return
        if method in _peers.PRODUCTS:
            apply = _peers.PRODUCTS[method](model, X, Y)
            probe = w.probe(cache[workload]["reference"].numel(), 1)[:, 0]
            self.product = lambda: apply(probe)
        else:
            self.product = hesskit_product(model, X, Y, method)
        self.error = w.vector_error(self.product(), cache[workload]["reference"])

    def time_product(self, cache, workload, method):
        """One product (or one gradient), only when the product matches float64."""
        if self.error is not None and self.error > PRODUCT_ACCURACY:
            w.skip_body(f"relative error {self.error:.1e} misses {PRODUCT_ACCURACY}")
        self.product()

    def track_gradients_per_product(self, cache, workload, method):
        """Median product time / median gradient time, calls interleaved."""
        return w.interleaved_ratio(
            self.product, self.gradient, repeat=9 if workload == "W3" else 21
        )

    track_gradients_per_product.unit = "gradients"

    def track_relative_error(self, cache, workload, method):
        """||product - float64 product|| / ||float64 product|| for the seeded probe."""
        if self.error is None:
            w.skip_body("a gradient has no product error")
        return self.error

    track_relative_error.unit = "relative error"


class DigitsBlock:
    """A block of k columns in one matmat, against k single products (W1, W2)."""

    params = (["W1", "W2"], ["forward_over_reverse", "double_backward", "cached_graph"], [1, 8])
    param_names = ("workload", "method", "k")
    repeat = (3, 10, 10.0)
    warmup_time = 0.2

    def setup_cache(self):
        """Trained W1 and W2 (state dicts), built once per machine and environment."""
        return {name: w.train_digits(name) for name in ("W1", "W2")}

    setup_cache.timeout = SETUP_CACHE_TIMEOUT

    def setup(self, cache, workload, method, k):
        self.problem = w.digits_problem(workload, cache[workload])
        self.block = hesskit_product(*self.problem, method, k)
        self.block()

    def time_block(self, cache, workload, method, k):
        """One matmat with a block of k columns."""
        self.block()

    def track_block_over_singles(self, cache, workload, method, k):
        """Time of one k-column block / k times one single product (target < 1 on CPU)."""
        single = hesskit_product(*self.problem, method, 1)
        return w.interleaved_ratio(self.block, single, repeat=11) / k

    track_block_over_singles.unit = "ratio"


class ProductScaling:
    """One product and one gradient on wide MLPs: n from 1e3 to 1e7, 256 or 2048 samples."""

    params = (list(w.SIZES), [256, 2048], ["gradient", *METHODS], list(w.DEVICES))
    param_names = ("n", "samples", "method", "device")
    number = 1
    repeat = (2, 7, 10.0)
    warmup_time = 0.0

    def setup(self, n, samples, method, device):
        self.device = w.device_or_skip(device)
        w.check_cpu_size(n, self.device)
        model, X, Y = w.wide_problem(n, samples, device=self.device)
        self.gradient = w.gradient_fn(model, X, Y)
        if method == "gradient":
            self.product = self.gradient
        else:
            self.product = hesskit_product(model, X, Y, method)
        self.product()
        w.synchronize(self.device)

    def time_product(self, n, samples, method, device):
        """One product over the data (or one gradient), synchronised on a GPU."""
        self.product()
        w.synchronize(self.device)

    def track_gradients_per_product(self, n, samples, method, device):
        """Median product time / median gradient time, calls interleaved (target <= 2.5
        without caching, <= 1.0 with the cached graph, from n = 1e5)."""
        repeat = 5 if float(n) * samples > 1e8 else 11
        return w.interleaved_ratio(self.product, self.gradient, repeat=repeat, device=self.device)

    track_gradients_per_product.unit = "gradients"


class ProductMemory:
    """Memory of one product over 1, 4 or 16 batches of 2,048 samples (1e5 parameters),
    against one batch's gradient: the data set grows, a batch does not."""

    params = ([1, 4, 16], ["gradient", *METHODS], list(w.DEVICES))
    param_names = ("batches", "method", "device")
    number = 1
    repeat = (1, 3, 5.0)
    BATCH = 2048

    def setup(self, batches, method, device):
        self.device = w.device_or_skip(device)
        w.return_freed_memory()
        model, X, Y = w.wide_problem("1e5", self.BATCH * batches, device=self.device)
        if method == "gradient":
            self.product = w.gradient_fn(model, X[: self.BATCH], Y[: self.BATCH])
            return
        import hesskit

        data = list(zip(X.split(self.BATCH), Y.split(self.BATCH), strict=True))
        op = hesskit.hessian(model, w.loss_fn(), data, method=method)
        probe = w.probe(op.shape[0], 1, dtype=op.dtype, device=op.device)
        self.product = lambda: op.matmat(probe)

    def peakmem_product(self, batches, method, device):
        """Peak host memory of the process (its baseline, torch and the data, is shared by
        every row: compare rows, not absolute values)."""
        self.product()

    def track_rss_growth_bytes(self, batches, method, device):
        """How far the first two products raise the process' peak resident memory above
        what setup reached (host memory: on a GPU, read track_cuda_peak_bytes)."""
        before = w.peak_rss_bytes()
        self.product()
        self.product()
        return w.peak_rss_bytes() - before

    track_rss_growth_bytes.unit = "bytes"

    def track_cuda_peak_bytes(self, batches, method, device):
        """Peak GPU memory of the first two products beyond what setup holds (CUDA only;
        graphs that an operator keeps between products are counted)."""
        t = w.torch()
        if self.device.type != "cuda":
            w.skip_body("GPU memory is measured on CUDA only")
        t.cuda.synchronize(self.device)
        t.cuda.reset_peak_memory_stats(self.device)
        base = t.cuda.memory_allocated(self.device)
        self.product()
        self.product()
        t.cuda.synchronize(self.device)
        return t.cuda.max_memory_allocated(self.device) - base

    track_cuda_peak_bytes.unit = "bytes"
