"""Gaussian data N(mu, s2 I) under any SDE, the closed form the SDE, sampler and likelihood tests share.

Every SDE here has a linear Gaussian kernel, so p_t = N(m(t) mu, u(t) I) with u(t) = m(t)^2 s2 + std(t)^2, where
m(t) and std(t) come from `marginal_prob` alone: the helpers never ask which SDE they hold.
"""
import torch


def perturbed_moments(sde, mu: torch.Tensor, s2: float, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean m(t) mu (one row per t) and per-dimension variance u(t) (a column) of p_t."""
    m, std = sde.marginal_prob(torch.ones(t.shape[0], 1, dtype=t.dtype), t)
    return m * mu.to(t.dtype), m**2 * s2 + std[:, None] ** 2


def gaussian_score(sde, mu: torch.Tensor, s2: float):
    """The exact score of p_t, -(x - m(t) mu) / u(t)."""

    def score(x, t):
        mean, var = perturbed_moments(sde, mu, s2, t)
        return -(x - mean.to(x)) / var.to(x)

    return score
