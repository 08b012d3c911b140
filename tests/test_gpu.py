"""CUDA variants: every layer runs on the GPU and agrees with the CPU (marked ``gpu``)."""

import pytest
import torch

import hesskit
from hesskit.operators.hessian import METHODS
from tests.cases import CASES

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["mlp-tanh", "cnn", "mlp-batchnorm"])
def test_hessian_on_cuda_equals_cpu(case, method):
    loss = CASES[case].loss_fn
    cpu = hesskit.dense(hesskit.hessian(*_model_and_data(case, "cpu", loss), method=method))
    gpu = hesskit.dense(hesskit.hessian(*_model_and_data(case, "cuda", loss), method=method))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-10, rtol=0)


@pytest.mark.parametrize("build", [hesskit.ggn, hesskit.gradient_covariance])
def test_other_operators_on_cuda_equal_cpu(build):
    loss = CASES["mlp-tanh"].loss_fn
    cpu = hesskit.dense(build(*_model_and_data("mlp-tanh", "cpu", loss)))
    gpu = hesskit.dense(build(*_model_and_data("mlp-tanh", "cuda", loss)))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-10, rtol=0)


def test_algorithms_stay_on_cuda_and_match_dense():
    gen = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(300, 300, generator=gen, dtype=torch.float64))
    spectrum = torch.cat([torch.linspace(0, 1, 295, dtype=torch.float64), torch.arange(5.0) + 10])
    A = ((Q * spectrum) @ Q.T).to(CUDA)
    top = hesskit.eigsh(A, 5, generator=0)
    assert top.eigenvectors.device.type == "cuda"
    torch.testing.assert_close(top.eigenvalues.cpu(), spectrum.flip(0)[:5], atol=1e-8, rtol=0)
    density = hesskit.spectral_density(A, num_probes=4, num_steps=40, generator=0)
    assert density.nodes.device.type == "cuda"
    estimate = hesskit.trace(A, 60, method="hutch++", generator=0)
    assert abs(float(estimate.estimate) - float(spectrum.sum())) < 5 * float(estimate.stderr) + 1e-6
    assert hesskit.spectrum.split(top.eigenvalues).outliers.device.type == "cuda"


def test_same_seed_same_numbers_on_cuda():
    A = torch.diag(torch.linspace(0, 1, 200, dtype=torch.float64, device=CUDA))
    first = hesskit.eigsh(A, 4, generator=3)
    second = hesskit.eigsh(A, 4, generator=3)
    assert torch.equal(first.eigenvalues, second.eigenvalues)


def _model_and_data(case, device, loss):
    model, X, Y = CASES[case].build(device=device)
    return model, loss, (X, Y)
