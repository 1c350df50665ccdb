"""The VE, VP and geometric VP SDEs against their closed forms and against each other's identities."""
import math
from itertools import pairwise
from types import SimpleNamespace

import pytest
import torch

from diffrep.sde import SDES, VESDE, VPSDE, GeometricVPSDE, build_sde

torch.set_num_threads(1)


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


def test_ve_noise_level_is_sigma_exactly():
    """The networks of DRL are conditioned on sigma(t): noise_level must be the very same numbers."""
    sde, t = VESDE(0.01, 50.0), torch.rand(100)
    assert torch.equal(sde.noise_level(t), sde.sigma(t)) and torch.equal(sde.marginal_prob(t[:, None], t)[1], sde.sigma(t))


VP_FAMILY = {
    "vp": VPSDE(),
    "vp-sigma2_0": VPSDE(0.1, 20.0, sigma2_0=0.01),
    "geometric_vp": GeometricVPSDE(),
    "geometric_vp-sigma2_0": GeometricVPSDE(1e-4, 0.99, sigma2_0=0.005),
}


def literal_lsgm(sde, t):
    """var(t), mean_coeff(t), beta(t) written exactly as the LSGM facts state them (../shared/papers/README.md)."""
    if isinstance(sde, VPSDE):
        b0, b1 = sde.beta_min, sde.beta_max
        var = 1 - (1 - sde.sigma2_0) * torch.exp(-b0 * t - 0.5 * (b1 - b0) * t**2)
        return var, torch.exp(-0.5 * b0 * t - 0.25 * (b1 - b0) * t**2), b0 + (b1 - b0) * t
    lo, hi, s0 = sde.sigma2_min, sde.sigma2_max, sde.sigma2_0
    geometric = lo * (hi / lo) ** t
    beta = geometric * math.log(hi / lo) / (1 - s0 + lo - geometric)
    return geometric - lo + s0, torch.sqrt(1 + lo * (1 - (hi / lo) ** t) / (1 - s0)), beta


@pytest.mark.parametrize("name", VP_FAMILY)
def test_vp_family_matches_lsgm_formulas(name):
    sde, t = VP_FAMILY[name], torch.linspace(0, 1, 101, dtype=torch.float64)
    var, mean_coeff, beta = literal_lsgm(sde, t)
    assert torch.allclose(sde.var(t), var, rtol=1e-12, atol=1e-15)
    assert torch.allclose(sde.mean_coeff(t), mean_coeff, rtol=1e-12)
    assert torch.allclose(sde.beta(t), beta, rtol=1e-10)


@pytest.mark.parametrize("name", VP_FAMILY)
def test_vp_family_identities(name):
    """var(0) = sigma2_0, m(0) = 1, var = 1 - (1 - sigma2_0) m^2, inv_var(var(t)) = t, noise level sqrt(var)."""
    sde, t = VP_FAMILY[name], torch.linspace(0, 1, 101, dtype=torch.float64)
    assert torch.allclose(sde.var(t[:1]), torch.tensor([sde.sigma2_0], dtype=torch.float64), atol=1e-15)
    assert sde.mean_coeff(t[:1]).item() == 1.0
    assert torch.allclose(sde.var(t), 1 - (1 - sde.sigma2_0) * sde.mean_coeff(t) ** 2, rtol=1e-12, atol=1e-15)
    assert torch.allclose(sde.inv_var(sde.var(t)), t, atol=1e-9)
    assert torch.equal(sde.noise_level(t), torch.sqrt(sde.var(t)))
    x0 = torch.randn(101, 3, dtype=torch.float64)
    mean, std = sde.marginal_prob(x0, t)
    assert torch.equal(std, sde.noise_level(t)) and torch.allclose(mean, sde.mean_coeff(t)[:, None] * x0)


@pytest.mark.parametrize("name", VP_FAMILY)
def test_vp_family_moment_equations(name):
    """d ln m / dt = -beta / 2 and d var / dt = beta (1 - var): beta, m and var agree with the SDE they came from."""
    sde, h = VP_FAMILY[name], 1e-6
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    dlog_m = (torch.log(sde.mean_coeff(t + h)) - torch.log(sde.mean_coeff(t - h))) / (2 * h)
    dvar = (sde.var(t + h) - sde.var(t - h)) / (2 * h)
    assert torch.allclose(dlog_m, -0.5 * sde.beta(t), rtol=1e-6)
    assert torch.allclose(dvar, sde.beta(t) * (1 - sde.var(t)), rtol=1e-6)
    drift, diffusion = sde.sde(torch.ones(50, 2, dtype=torch.float64), t)
    assert torch.allclose(drift, -0.5 * sde.beta(t)[:, None].expand(50, 2)) and torch.allclose(diffusion**2, sde.beta(t))


@pytest.mark.parametrize("name", VP_FAMILY)
@pytest.mark.parametrize("t_end", [0.5, 0.9])
def test_vp_family_marginals_by_monte_carlo(name, t_end):
    """Euler-Maruyama paths of the forward SDE from N(x0, sigma2_0) reach N(m x0, var) at t_end.

    Tolerance: 4 standard errors plus 2e-3 for the Euler bias, which is at most (dt / 8) int beta^2 ~ 1e-3 relative
    to m at these t (beta(0.9) ~ 18 for VP, ~ 6 for geometric VP) and of the same order for var.
    """
    sde, n, steps, x0 = VP_FAMILY[name], 20_000, 900, 1.5
    g = torch.Generator().manual_seed(0)
    x = x0 + math.sqrt(sde.sigma2_0) * torch.randn(n, 1, generator=g, dtype=torch.float64)
    times = torch.linspace(0, t_end, steps + 1, dtype=torch.float64)
    for t, t_next in pairwise(times):
        f, g_dw = sde.discretize(x, t.expand(n), float(t_next - t))
        x = x + f + g_dw[:, None] * torch.randn(n, 1, generator=g, dtype=torch.float64)
    mean, std = sde.marginal_prob(torch.full((1, 1), x0, dtype=torch.float64), torch.tensor([t_end], dtype=torch.float64))
    assert abs(x.mean().item() - mean.item()) < 4 * std.item() / math.sqrt(n) + 2e-3
    assert abs(x.std().item() / std.item() - 1) < 4 / math.sqrt(2 * n) + 2e-3


@pytest.mark.parametrize("sde", [VPSDE(), GeometricVPSDE()], ids=["vp", "geometric_vp"])
def test_vp_family_prior(sde):
    z = sde.prior_sampling((50_000, 2), generator=torch.Generator().manual_seed(1))
    assert abs(z.mean().item()) < 4 / math.sqrt(100_000) and abs(z.std().item() - 1) < 4 / math.sqrt(200_000)
    points = torch.randn(5, 3, 2)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(points).sum((1, 2))
    assert torch.allclose(sde.prior_logp(points), expected, atol=1e-5)
    assert sde.T == 1.0


BLOCK = {"sigma_min": 0.02, "sigma_max": 40.0, "beta_min": 0.2, "beta_max": 10.0,
         "sigma2_min": 1e-3, "sigma2_max": 0.9, "sigma2_0": 0.01}


@pytest.mark.parametrize("kind, cls, fields", [
    ("ve", VESDE, {"sigma_min": 0.02, "sigma_max": 40.0}),
    ("vp", VPSDE, {"beta_min": 0.2, "beta_max": 10.0, "sigma2_0": 0.01}),
    ("geometric_vp", GeometricVPSDE, {"sigma2_min": 1e-3, "sigma2_max": 0.9, "sigma2_0": 0.01}),
])
def test_build_sde_reads_its_kind_fields(kind, cls, fields):
    sde = build_sde(SimpleNamespace(kind=kind, **BLOCK))
    assert type(sde) is cls and all(getattr(sde, name) == value for name, value in fields.items())


def test_every_registered_kind_builds():
    assert sorted(SDES) == ["geometric_vp", "ve", "vp"]
    for kind in SDES:
        assert isinstance(build_sde(SimpleNamespace(kind=kind, **BLOCK)), SDES[kind])


@pytest.mark.parametrize("make, match", [
    (lambda: VESDE(1.0, 0.5), "sigma_min < sigma_max"),
    (lambda: VPSDE(20.0, 0.1), "beta_min < beta_max"),
    (lambda: VPSDE(sigma2_0=1.0), "sigma2_0 < 1"),
    (lambda: GeometricVPSDE(0.5, 0.1), "sigma2_min < sigma2_max"),
    (lambda: GeometricVPSDE(1e-4, 0.99, 0.02), "var\\(1\\) < 1"),
    (lambda: build_sde(SimpleNamespace(kind="subvp", **BLOCK)), "unknown SDE kind 'subvp'; known: \\['geometric_vp', 've', 'vp'\\]"),
])
def test_bad_parameters_and_kinds_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
