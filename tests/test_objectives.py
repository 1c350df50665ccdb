"""DSM and DRL objectives against closed forms for Gaussian data (DRL Proposition 1, eq. 7)."""
import math

import pytest
import torch

from diffrep.objectives import (
    adversarial_lambda_prime,
    adversary_objective,
    denoising_score_matching,
    drl_objective,
    dsm_minimum_gaussian,
    fixed_t,
    kl_penalty,
    l1_penalty,
    lambda_prime_t,
    t_sampler,
    uniform_sigma,
    uniform_t,
)
from diffrep.sde import VESDE, VPSDE

D, MU, S = 4, 0.7, 0.5  # data x0 ~ N(MU, S^2 I) in D dimensions


def gaussian_batch(n, g):
    return MU + S * torch.randn(n, D, generator=g)


def exact_score(sde):
    """The score of p_t = N(MU, (S^2 + sigma^2) I), the marginal of Gaussian data under the VE SDE."""
    return lambda xt, t: -(xt - MU) / (S**2 + sde.sigma(t)[:, None] ** 2)


def dsm_value(score_fn, sde, t_value, n=400_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0, noise = gaussian_batch(n, g), torch.randn(n, D, generator=g)
    t = torch.full((n,), t_value)
    xt = sde.perturb(x0, t, noise)
    _, std = sde.marginal_prob(x0, t)
    return denoising_score_matching(score_fn(xt, t), noise, std).mean().item()


def test_dsm_minimum_is_the_proposition_1_constant():
    sde = VESDE(0.01, 50.0)
    for t in (0.2, 0.5, 0.8):
        sigma = float(sde.sigma(torch.tensor(t)))
        expected = dsm_minimum_gaussian(D, S**2, sigma)
        got = dsm_value(exact_score(sde), sde, t)
        assert abs(got - expected) < 0.02 * expected + 1e-3, (t, got, expected)


def test_dsm_is_larger_for_any_other_score():
    sde = VESDE(0.01, 50.0)
    best = dsm_value(exact_score(sde), sde, 0.4)
    for scale in (0.8, 1.25):
        worse = dsm_value(lambda x, t, s=scale: s * exact_score(sde)(x, t), sde, 0.4)
        assert worse > best + 0.01


def test_drl_objective_vanishes_only_when_the_code_carries_x0():
    """With z = x0 the kernel score is reachable and eq. 7 is zero; a code without x0 keeps the constant."""
    sde, g = VESDE(0.01, 50.0), torch.Generator().manual_seed(3)
    x0 = gaussian_batch(100_000, g)
    t = torch.full((x0.shape[0],), 0.5)
    noise = torch.randn(x0.shape, generator=g)
    carry = lambda x, tt: (x, None)
    kernel = lambda xt, tt, z: sde.kernel_score(xt, z, tt)
    assert drl_objective(kernel, carry, x0, t, sde, noise, g).abs().max().item() < 1e-6
    blind = lambda x, tt: (torch.zeros(x.shape[0], 1), None)
    marginal = lambda xt, tt, z: exact_score(sde)(xt, tt)
    sigma = float(sde.sigma(torch.tensor(0.5)))
    value = drl_objective(marginal, blind, x0, t, sde, noise, g).mean().item()
    assert abs(value - dsm_minimum_gaussian(D, S**2, sigma)) < 0.03 * dsm_minimum_gaussian(D, S**2, sigma)


def test_penalties_closed_form():
    z = torch.tensor([[1.0, -2.0], [0.0, 0.5]])
    assert torch.allclose(l1_penalty(z), torch.tensor([3.0, 0.5]))
    mean, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    expected = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 4 - 1 - math.log(4.0))  # sum of 1/2 (mu^2 + s^2 - 1 - log s^2)
    assert torch.allclose(kl_penalty(mean, logvar), torch.tensor([expected]))
    assert kl_penalty(torch.zeros(3, 2), torch.zeros(3, 2)).abs().max() == 0


def test_t_sampling_schemes():
    sde, g = VESDE(0.01, 50.0), torch.Generator().manual_seed(0)
    t = uniform_t(1e-5)(100_000, g)
    assert t.min() >= 1e-5 and t.max() <= 1 and abs(t.mean().item() - 0.5) < 0.01
    sig = sde.sigma(uniform_sigma(sde)(100_000, g))
    assert abs(sig.mean().item() - (0.01 + 50) / 2) < 0.3  # sigma uniform on [sigma_min, sigma_max]
    assert torch.all(fixed_t(0.3)(5, g) == 0.3)
    assert torch.all(t_sampler("fixed", sde, 1e-5, 0.0)(3, g) == 1e-5)
    with pytest.raises(ValueError, match="known: .*uniform_sigma.*uniform_t"):
        t_sampler("importance", sde, 1e-5)
    with pytest.raises(ValueError, match="uniform_sigma scheme needs the VE SDE"):
        t_sampler("uniform_sigma", VPSDE(), 1e-3)


def test_lambda_prime_is_a_density_and_its_sampler_follows_it():
    t = torch.linspace(0, 1, 10001)
    for alpha in (-1.0, -0.4, 0.0, 0.3, 1.0):
        dens = adversarial_lambda_prime(t, torch.tensor(alpha))
        assert dens.min() >= -1e-6 and abs(torch.trapezoid(dens, t).item() - 1) < 1e-4
        draws = lambda_prime_t(alpha, 0.0)(200_000, torch.Generator().manual_seed(1)).double()
        # closed forms: E[t] = 1/2 + alpha/6, P(t <= 1/2) = alpha/4 + (1 - alpha)/2; 5 standard errors
        assert abs(draws.mean().item() - (0.5 + alpha / 6)) < 5 * 0.29 / 200_000**0.5
        p_half = alpha / 4 + (1 - alpha) / 2
        assert abs((draws <= 0.5).double().mean().item() - p_half) < 5 * (p_half * (1 - p_half) / 200_000) ** 0.5


def test_adversary_gains_by_tilting_towards_the_larger_loss():
    t = torch.rand(4096, generator=torch.Generator().manual_seed(0))
    alpha = torch.zeros((), requires_grad=True)
    adversary_objective(1.0 - t, t, alpha).backward()  # loss is larger at small t
    # d/d alpha E[lambda'_alpha(t) (1 - t)] = E[(2t - 1)(1 - t)] = -1/6 for t ~ U[0, 1]
    assert abs(alpha.grad.item() + 1 / 6) < 0.02
