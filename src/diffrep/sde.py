"""Forward SDEs behind one base class (score-SDE, Song et al. 2021).

Later issues add the VP and geometric VP SDEs as further subclasses with the same methods.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


def _batch(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Broadcast a per-sample vector `v` over the trailing dimensions of `x`."""
    return v.reshape(-1, *([1] * (x.dim() - 1)))


class SDE(ABC):
    """dx = f(x, t) dt + g(t) dw on t in [0, T]."""

    T: float = 1.0

    @abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drift f(x, t) and diffusion g(t)."""

    @abstractmethod
    def marginal_prob(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the perturbation kernel p_0t(x_t | x_0)."""

    @abstractmethod
    def prior_sampling(self, shape, generator: torch.Generator | None = None) -> torch.Tensor:
        """A sample of p_T."""

    @abstractmethod
    def prior_logp(self, z: torch.Tensor) -> torch.Tensor:
        """log p_T(z) per sample."""

    def perturb(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = mean + std * noise, a draw of p_0t(x_t | x_0)."""
        mean, std = self.marginal_prob(x0, t)
        return mean + _batch(std, x0) * noise

    def kernel_score(self, xt: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """grad_xt log p_0t(x_t | x_0) for a Gaussian kernel (DRL eq. 4 target)."""
        mean, std = self.marginal_prob(x0, t)
        return -(xt - mean) / _batch(std, x0) ** 2

    def discretize(self, x: torch.Tensor, t: torch.Tensor, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Euler-Maruyama increments f*dt and g*sqrt(dt) (score-SDE's generic discretisation)."""
        drift, diffusion = self.sde(x, t)
        return drift * dt, diffusion * math.sqrt(abs(dt))

    def reverse(self, score_fn, probability_flow: bool = False) -> ReverseSDE:
        """The reverse-time SDE (Anderson 1982) or the probability-flow ODE."""
        return ReverseSDE(self, score_fn, probability_flow)


class ReverseSDE:
    """dx = [f - g^2 * score * (1/2 if ODE)] dt + g dw-bar (0 diffusion for the ODE)."""

    def __init__(self, forward: SDE, score_fn, probability_flow: bool):
        self.forward, self.score_fn, self.probability_flow = forward, score_fn, probability_flow

    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        drift, diffusion = self.forward.sde(x, t)
        g2 = _batch(diffusion, x) ** 2
        scale = 0.5 if self.probability_flow else 1.0
        drift = drift - g2 * self.score_fn(x, t) * scale
        return drift, torch.zeros_like(diffusion) if self.probability_flow else diffusion


class VESDE(SDE):
    """Variance exploding SDE: sigma(t) = sigma_min (sigma_max/sigma_min)^t, f = 0, g = sigma(t) sqrt(2 log(sigma_max/sigma_min))."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"VESDE needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.log_ratio = math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """sigma(t) (DRL sec. 4)."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def t_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """The inverse of sigma(t)."""
        return torch.log(sigma / self.sigma_min) / self.log_ratio

    def sde(self, x, t):
        diffusion = self.sigma(t) * math.sqrt(2 * self.log_ratio)
        return torch.zeros_like(x), diffusion

    def marginal_prob(self, x0, t):
        """N(x0, sigma(t)^2 I); score-SDE's VE kernel (the sigma_min^2 offset is ignored, as there)."""
        return x0, self.sigma(t)

    def prior_sampling(self, shape, generator=None):
        return torch.randn(*shape, generator=generator) * self.sigma_max

    def prior_logp(self, z):
        d = z[0].numel()
        sq = z.flatten(1).pow(2).sum(1)
        return -0.5 * d * math.log(2 * math.pi * self.sigma_max**2) - sq / (2 * self.sigma_max**2)


def build_sde(kind: str, sigma_min: float, sigma_max: float) -> SDE:
    """The SDE named in the parameters."""
    if kind == "ve":
        return VESDE(sigma_min, sigma_max)
    raise ValueError(f"unknown SDE kind {kind!r}; known: 've'")
