"""The VE SDE against its closed forms."""
import math

import pytest
import torch

from diffrep.sde import VESDE, build_sde


def test_sigma_is_geometric():
    sde = VESDE(0.01, 50.0)
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(sde.sigma(t), torch.tensor([0.01, math.sqrt(0.01 * 50.0), 50.0]), rtol=1e-6)
    assert torch.allclose(sde.t_of_sigma(sde.sigma(t)), t, atol=1e-6)


def test_diffusion_matches_variance_growth():
    """g(t)^2 = d sigma^2(t) / dt for the VE SDE."""
    sde = VESDE(0.01, 50.0)
    t = torch.tensor([0.3], dtype=torch.float64)
    _, g = sde.sde(torch.zeros(1, 1), t)
    h = 1e-6
    dvar = (sde.sigma(t + h) ** 2 - sde.sigma(t - h) ** 2) / (2 * h)
    assert torch.allclose(g**2, dvar, rtol=1e-5)


def test_perturbation_kernel_moments():
    """x_t | x_0 ~ N(x_0, sigma(t)^2 I): empirical mean and std of many draws."""
    sde, g = VESDE(0.01, 50.0), torch.Generator().manual_seed(0)
    x0 = torch.full((200_000, 1), 3.0)
    t = torch.full((200_000,), 0.4)
    xt = sde.perturb(x0, t, torch.randn(x0.shape, generator=g))
    sigma = float(sde.sigma(torch.tensor(0.4)))
    assert abs(xt.mean().item() - 3.0) < 4 * sigma / math.sqrt(200_000)
    assert abs(xt.std().item() / sigma - 1) < 0.01
    mean, std = sde.marginal_prob(x0[:2], t[:2])
    assert torch.equal(mean, x0[:2]) and torch.allclose(std, torch.full((2,), sigma))


def test_kernel_score_is_gradient_of_log_density():
    sde = VESDE(0.01, 50.0)
    x0, t = torch.randn(4, 3), torch.rand(4)
    xt = (x0 + torch.randn(4, 3)).requires_grad_(True)
    _, std = sde.marginal_prob(x0, t)
    logp = (-0.5 * ((xt - x0) / std[:, None]) ** 2).sum()
    (grad,) = torch.autograd.grad(logp, xt)
    assert torch.allclose(sde.kernel_score(xt, x0, t), grad, atol=1e-5)


def test_prior_sampling_and_logp():
    sde = VESDE(0.01, 5.0)
    z = sde.prior_sampling((50_000, 2), generator=torch.Generator().manual_seed(1))
    assert abs(z.std().item() / 5.0 - 1) < 0.02
    point = torch.zeros(1, 2)
    assert torch.allclose(sde.prior_logp(point), torch.tensor([-math.log(2 * math.pi * 25.0)]), atol=1e-6)
    assert sde.T == 1.0


def test_reverse_ode_drift_is_half_the_sde_correction():
    sde = VESDE(0.01, 50.0)
    score = lambda x, t: -x
    x, t = torch.ones(2, 3), torch.full((2,), 0.5)
    drift_sde, g = sde.reverse(score).sde(x, t)
    drift_ode, g0 = sde.reverse(score, probability_flow=True).sde(x, t)
    assert torch.allclose(drift_ode * 2, drift_sde) and torch.all(g0 == 0) and torch.all(g > 0)


def test_bad_sigmas_and_kinds_are_refused():
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        VESDE(1.0, 0.5)
    with pytest.raises(ValueError, match="unknown SDE kind"):
        build_sde("vp", 0.1, 1.0)
