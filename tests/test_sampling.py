"""The samplers against closed forms: Gaussian data have exact scores, and the reverse processes map Gaussians
to Gaussians, so the moments of the samples are known exactly, prior mismatch included.

For data N(mu, s^2 I) under the VE SDE, p_t = N(mu, u(t) I) with u(t) = s^2 + sigma(t)^2 and du/dt = g^2.
Started from N(m0, v0 I) at t_init instead of p_t_init, the reverse SDE keeps (m - mu) / u and (v - u) / u^2
constant, and the probability-flow ODE keeps (x - mu) / sqrt(u) constant. Tolerances are 4 standard errors
of the sample moment plus ALLOWANCE for the time discretisation: iterating the exact mean/variance recursion of
each discretisation on this linear problem puts its bias at most 2.5e-3 at the step counts used (the largest is
Euler-Maruyama's first-order error on the mean after the prior mismatch at t_init = 0.5), so a failure means a
wrong sampler, not an unlucky seed.
"""
import math

import pytest
import torch
from gaussian import gaussian_score as exact_score
from gaussian import perturbed_moments

from diffrep.sampling import prior_sample, sample
from diffrep.sde import VESDE, VPSDE, GeometricVPSDE

torch.set_num_threads(1)

MU, S2, N = torch.tensor([1.0, -2.0]), 0.25, 20_000
SDE_ = VESDE(0.01, 20.0)
EPS = 1e-3
STEPS = {"pc": 500, "em": 1000, "ode": 0}
ALLOWANCE = 3e-3


def gaussian_score(x, t):
    """grad log N(x; MU, (S2 + sigma(t)^2) I), the exact score of the perturbed Gaussian data."""
    return -(x - MU) / (S2 + SDE_.sigma(t)[:, None] ** 2)


def u(t: float) -> float:
    """u(t) = s^2 + sigma(t)^2, the per-dimension variance of p_t."""
    return S2 + float(SDE_.sigma(torch.tensor(t, dtype=torch.float64))) ** 2


def reverse_moments(method: str, v0: float, t_init: float, snr: float = 0.16):
    """Exact mean and per-dimension variance at EPS of the reverse process started from N(0, v0 I) at t_init."""
    ratio = u(EPS) / u(t_init)
    if method == "ode":
        return MU * (1 - math.sqrt(ratio)), v0 * ratio
    if method == "em":
        return MU * (1 - ratio), u(EPS) + (v0 - u(t_init)) * ratio**2
    # The unadjusted Langevin corrector with step 2 snr^2 u^2 / v settles where v = u / (1 - snr^2 u / v),
    # i.e. v = u (1 + snr^2): its known bias, which dominates near EPS; the mean is driven to MU.
    return MU, u(EPS) * (1 + snr**2)


def assert_moments(x, mean, var):
    """Sample mean and covariance of x match N(mean, var I) within ALLOWANCE + 4 standard errors."""
    n = x.shape[0]
    assert torch.all((x.mean(0) - mean).abs() < 4 * math.sqrt(var / n) + ALLOWANCE), (x.mean(0), mean)
    cov = torch.cov(x.T.double())
    variances, off_diagonal = cov.diagonal(), cov[0, 1]
    assert torch.all((variances - var).abs() < 4 * var * math.sqrt(2 / (n - 1)) + ALLOWANCE), (variances, var)
    assert abs(off_diagonal) < 4 * var / math.sqrt(n) + ALLOWANCE, off_diagonal


@pytest.mark.parametrize("method", ["pc", "em", "ode"])
def test_gaussian_data_recovered(method):
    x, _ = sample(gaussian_score, SDE_, (N, 2), method, STEPS[method], eps=EPS,
                  generator=torch.Generator().manual_seed(0))
    mean, var = reverse_moments(method, SDE_.sigma_max**2, 1.0)
    assert_moments(x, mean, var)
    # the prior mismatch at T = 1 is small: every method lands near the data's own moments
    assert torch.allclose(x.mean(0), MU, atol=0.06) and torch.all((x.T.cov().diagonal() / S2 - 1).abs() < 0.05)


@pytest.mark.parametrize("method, snr, law", [("em", 0.16, "em"), ("pc", 0.0, "em"), ("ode", 0.16, "ode")])
def test_shortened_gaussian_prior(method, snr, law):
    """From t_init = 0.5 the prior N(0, sigma(0.5)^2 I) is not p_0.5 = N(MU, u(0.5) I); the output shows exactly how.

    With snr = 0 the corrector stands still, so pc is its reverse-diffusion predictor alone: a reverse-SDE solver.
    """
    t_init = 0.5
    x, _ = sample(gaussian_score, SDE_, (N, 2), method, 1000, snr=snr, t_init=t_init, eps=EPS,
                  generator=torch.Generator().manual_seed(1))
    assert_moments(x, *reverse_moments(law, float(SDE_.sigma(torch.tensor(t_init))) ** 2, t_init))


@pytest.mark.parametrize("sde", [SDE_, VPSDE(), GeometricVPSDE()], ids=["ve", "vp", "geometric_vp"])
def test_ode_sampler_returns_the_gaussian_for_every_sde(sde):
    """From the prior N(0, v0 I) at T the ODE keeps (x - m(t) MU) / sqrt(u(t)) constant (tests/gaussian.py), so at
    EPS the samples are N(m(EPS) MU - sqrt(u(EPS) / u(T)) m(T) MU, v0 u(EPS) / u(T) I): the data's own moments
    where the prior matches p_T, shifted by the prior mismatch where it does not (m(1) = 0.1 for the geometric VP)."""
    x, _ = sample(exact_score(sde, MU, S2), sde, (N, 2), "ode", 0, eps=EPS, generator=torch.Generator().manual_seed(8))
    (m_eps, m_T), (u_eps, u_T) = perturbed_moments(sde, MU, S2, torch.tensor([EPS, sde.T], dtype=torch.float64))
    v0 = math.exp(-2 * sde.prior_logp(torch.zeros(1, 1)).item()) / (2 * math.pi)
    ratio = float(u_eps / u_T)
    assert_moments(x, (m_eps - math.sqrt(ratio) * m_T).float(), v0 * ratio)


def box_score(x, t):
    """Exact score of U([0,1]^d) * N(0, sigma^2 I) per coordinate: (phi(a) - phi(b)) / (sigma (Phi(a) - Phi(-b))),
    with a = x / sigma, b = (1 - x) / sigma."""
    x, sigma = x.double(), SDE_.sigma(t.double())[:, None]
    near = torch.minimum(x, 1 - x)  # p is symmetric about 1/2, so work on the half where Phi(a) is not tiny
    a, b = near / sigma, (1 - near) / sigma
    log_ndtr = torch.special.log_ndtr
    mills = torch.exp(-0.5 * a**2 - 0.5 * math.log(2 * math.pi) - log_ndtr(a))
    score = mills * -torch.expm1((a**2 - b**2) / 2) / -torch.expm1(log_ndtr(-b) - log_ndtr(a)) / sigma
    return torch.where(x <= 0.5, score, -score).float()


def test_uniform_gaussian_prior_is_exact_for_uniform_data():
    """For U([0,1]^d) data the uniform+gaussian prior is p_t_init itself (DRL Table 3): sampling gives p_EPS."""
    x, _ = sample(box_score, SDE_, (N, 2), "ode", 0, t_init=0.5, prior="uniform+gaussian", eps=EPS,
                  generator=torch.Generator().manual_seed(2))
    sigma_eps = float(SDE_.sigma(torch.tensor(EPS)))
    assert_moments(x, torch.full((2,), 0.5), 1 / 12 + sigma_eps**2)
    # P(0 < U + sigma Z < 1/4) = 1/4 - sigma / sqrt(2 pi), up to terms in exp(-1 / (32 sigma^2))
    in_first_quarter = ((x > 0) & (x < 0.25)).double().mean()
    p = 0.25 - sigma_eps / math.sqrt(2 * math.pi)
    assert abs(in_first_quarter - p) < 4 * math.sqrt(p * (1 - p) / (2 * N)) + ALLOWANCE


def test_prior_moments():
    g = torch.Generator().manual_seed(3)
    sigma2 = float(SDE_.sigma(torch.tensor(0.5))) ** 2
    assert_moments(prior_sample(SDE_, (N, 2), 0.5, "gaussian", g), torch.zeros(2), sigma2)
    assert_moments(prior_sample(SDE_, (N, 2), 0.5, "uniform+gaussian", g), torch.full((2,), 0.5), 1 / 12 + sigma2)
    at_T = prior_sample(SDE_, (5, 2), 1.0, "gaussian", torch.Generator().manual_seed(4))
    assert torch.equal(at_T, SDE_.prior_sampling((5, 2), torch.Generator().manual_seed(4)))


def test_nfe_counts_score_evaluations():
    calls = []

    def score(x, t):
        calls.append(1)
        return gaussian_score(x, t)

    for method, steps, expected in [("pc", 7, 14), ("em", 7, 7), ("ode", 7, None)]:
        calls.clear()
        _, nfe = sample(score, SDE_, (16, 2), method, steps, generator=torch.Generator().manual_seed(5))
        assert type(nfe) is int and nfe == len(calls) > 0
        assert expected is None or nfe == expected


@pytest.mark.parametrize("method", ["pc", "em", "ode"])
def test_same_seed_same_samples(method):
    def draw(seed):
        return sample(gaussian_score, SDE_, (64, 2), method, 20, generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(draw(6), draw(6))
    assert not torch.equal(draw(6), draw(7))


def test_progress_bar_shown(capsys):
    sample(gaussian_score, SDE_, (8, 2), "em", 5, progress=True)
    assert "5/5" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, named", [
    ({"method": "heun"}, ["'heun'", "'em'", "'ode'", "'pc'"]),
    ({"prior": "laplace"}, ["'laplace'", "'gaussian'", "'uniform+gaussian'"]),
    ({"eps": 0.5, "t_init": 0.4}, ["eps=0.5", "t_init=0.4"]),
    ({"steps": 0}, ["steps >= 1"]),
])
def test_bad_arguments_raise(kwargs, named):
    args = {"method": "em", "steps": 3} | kwargs
    with pytest.raises(ValueError) as error:
        sample(gaussian_score, SDE_, (4, 2), args.pop("method"), args.pop("steps"), **args)
    assert all(name in str(error.value) for name in named)
