"""The probability-flow ODE likelihood against closed forms.

Gaussian data N(MU, S2 I) have p_t = N(m(t) MU, u(t) I) under every SDE here (see gaussian.py), and the probability-
flow ODE keeps (x - m(t) MU) / sqrt(u(t)) constant, so the ODE maps x at eps to
z_T = m(T) MU + sqrt(u(T) / u(eps)) (x - m(eps) MU) while int div = D/2 ln(u(T) / u(eps)): the solver's output is
known exactly, prior included. It differs from the analytic log p_eps(x) by log N(z_T; 0, prior) -
log N(z_T; p_T): the prior mismatch of the SDE, under 1 % of |log p| on average here but not at every point
(the geometric VP keeps m(1) = 0.1).
"""
import math

import pytest
import torch
from gaussian import gaussian_score, perturbed_moments

from diffrep.likelihood import bits_per_dim, log_likelihood
from diffrep.sde import VESDE, VPSDE, GeometricVPSDE

torch.set_num_threads(1)

D, S2, EPS = 16, 0.25, 1e-5
MU = 0.2 * torch.linspace(-1, 1, D)
SDES = {"ve": VESDE(0.01, 50.0), "vp": VPSDE(), "geometric_vp": GeometricVPSDE()}


def data(n: int, seed: int) -> torch.Tensor:
    return MU + math.sqrt(S2) * torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def gaussian_logp(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var I) per row, in float64."""
    x, mean, var = x.double(), mean.double(), var.double()
    return -0.5 * ((x - mean) ** 2).sum(1) / var.flatten() - 0.5 * x.shape[1] * torch.log(2 * math.pi * var.flatten())


def flow_logp(sde, x: torch.Tensor) -> torch.Tensor:
    """What the ODE must return for Gaussian data: prior_logp(z_T) + D/2 ln(u(T) / u(eps)), per row."""
    ends = torch.tensor([EPS, sde.T], dtype=torch.float64)
    (m_eps, m_T), (u_eps, u_T) = perturbed_moments(sde, MU, S2, ends)
    z_T = m_T + torch.sqrt(u_T / u_eps) * (x.double() - m_eps)
    return sde.prior_logp(z_T) + 0.5 * D * torch.log(u_T / u_eps)


@pytest.mark.parametrize("name", SDES)
def test_exact_trace_follows_the_flow(name):
    sde, x = SDES[name], data(32, 0)
    logp, nfe = log_likelihood(gaussian_score(sde, MU, S2), sde, x, eps=EPS, trace="exact")
    assert logp.dtype == torch.float64 and logp.shape == (32,) and nfe > 0
    assert torch.allclose(logp, flow_logp(sde, x), atol=2e-3)
    analytic = gaussian_logp(x, MU, torch.tensor(S2))
    assert abs(logp.mean() / analytic.mean() - 1) < 0.01
    assert torch.all((logp - analytic).abs() < 0.02 * analytic.abs())


# sigma_max = 3 for the VE SDE here: Hutchinson's variance grows with int div = D/2 ln(u(T) / u(eps)), 4.6 D at
# sigma_max = 50 against |log p| = 0.73 D, which would take some 20 000 points for a 1 % test; at 3 it is 1.8 D.
HUTCHINSON_SDES = SDES | {"ve": VESDE(0.01, 3.0)}


@pytest.mark.parametrize("name", HUTCHINSON_SDES)
def test_hutchinson_averages_to_the_log_density(name):
    """LSGM's estimator (a fresh Gaussian probe at every evaluation) over 8192 points: unbiased within 4 standard
    errors of the closed form, and the mean log-likelihood within 1 % of the analytic one (4 standard errors are
    at most 0.7 % of it here, the prior mismatch 0.13 %).

    Loose solver tolerances keep the noisy right-hand side from shrinking the steps to nothing.
    """
    sde, x = HUTCHINSON_SDES[name], data(8192, 1)
    logp, _ = log_likelihood(gaussian_score(sde, MU, S2), sde, x, eps=EPS, rtol=1e-3, atol=1e-3, noise="fresh",
                             probe="gaussian", generator=torch.Generator().manual_seed(2))
    difference = logp - flow_logp(sde, x)
    assert difference.std() > 0.01  # an estimate, not the exact trace
    assert abs(difference.mean()) < 4 * difference.std() / math.sqrt(len(x))
    analytic = gaussian_logp(x, MU, torch.tensor(S2)).mean()
    assert abs(logp.mean() / analytic - 1) < 0.01


@pytest.mark.parametrize("name", SDES)
def test_fixed_probes(name):
    """score-SDE's fixed Rademacher probe is exact for this diagonal Jacobian (v_i^2 = 1); a fixed Gaussian probe
    is not, but is unbiased over the points."""
    sde, x = SDES[name], data(512, 3)
    score = gaussian_score(sde, MU, S2)
    exact, nfe = log_likelihood(score, sde, x, eps=EPS, trace="exact")
    rademacher, nfe_r = log_likelihood(score, sde, x, eps=EPS, noise="fixed", probe="rademacher",
                                       generator=torch.Generator().manual_seed(4))
    assert torch.allclose(rademacher, exact, atol=1e-3) and nfe_r == nfe
    gaussian, _ = log_likelihood(score, sde, x, eps=EPS, noise="fixed", probe="gaussian",
                                 generator=torch.Generator().manual_seed(5))
    difference = gaussian - exact
    assert difference.std() > 0.1 and abs(difference.mean()) < 4 * difference.std() / math.sqrt(len(x))


def test_nfe_counts_score_evaluations_and_seed_repeats():
    sde, calls = VPSDE(), []

    def score(x, t):
        calls.append(1)
        return gaussian_score(sde, MU, S2)(x, t)

    def run(seed):
        return log_likelihood(score, sde, data(8, 6), noise="fixed", generator=torch.Generator().manual_seed(seed))

    (first, nfe), (again, _), (other, _) = run(7), run(7), run(8)
    assert type(nfe) is int and 0 < nfe == len(calls) // 3
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_progress_bar_shown(capsys):
    log_likelihood(gaussian_score(VPSDE(), MU, S2), VPSDE(), data(2, 9), trace="exact", progress=True)
    assert "nfe" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, named", [
    ({"trace": "skilling"}, ["'skilling'", "'exact'", "'hutchinson'"]),
    ({"noise": "sometimes"}, ["'sometimes'", "'fixed'", "'fresh'"]),
    ({"probe": "uniform"}, ["'uniform'", "'gaussian'", "'rademacher'"]),
    ({"eps": 1.0}, ["eps=1.0", "T=1.0"]),
])
def test_bad_arguments_raise(kwargs, named):
    with pytest.raises(ValueError) as error:
        log_likelihood(gaussian_score(VPSDE(), MU, S2), VPSDE(), data(2, 10), **kwargs)
    assert all(name in str(error.value) for name in named)


def test_bits_per_dim_hand_cases():
    """U([0,1]^D), the dequantised form of uniform 8-bit data, has log p = 0: 8 bits per dimension exactly;
    binary data (levels = 2) with a uniform density: 1 bit; N(0, 1) at 0 without levels: ln(2 pi) / (2 ln 2)."""
    assert bits_per_dim(0.0, 3072, levels=256) == pytest.approx(8.0)
    assert bits_per_dim(torch.zeros(4), 784, levels=2) == pytest.approx(torch.ones(4))
    assert bits_per_dim(0.5 * math.log(2 * math.pi), 1) == pytest.approx(math.log2(2 * math.pi) / 2)
    # a density 2^D on [0, 1/2]^D: log p = D ln 2, one bit per dimension less than uniform
    assert bits_per_dim(-10 * math.log(2), 10, levels=256) == pytest.approx(7.0)


def test_image_shaped_data_give_the_likelihood_of_their_flattened_pixels():
    """Images (N, C, H, W) are integrated as their D pixels, with one divergence integral per image."""
    sde, x = SDES["vp"], data(8, 3)
    flat, _ = log_likelihood(gaussian_score(sde, MU, S2), sde, x, eps=EPS, trace="exact")

    def image_score(xt, t):
        return gaussian_score(sde, MU, S2)(xt.flatten(1), t).reshape(xt.shape)

    images, _ = log_likelihood(image_score, sde, x.reshape(8, 1, 4, 4), eps=EPS, trace="exact")
    assert images.shape == (8,) and torch.allclose(images, flat, atol=1e-6)
