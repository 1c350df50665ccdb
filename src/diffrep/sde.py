"""Forward SDEs behind one base class (score-SDE, Song et al. 2021): VE, VP and LSGM's geometric VP.

Callers never ask which SDE they hold: every network is conditioned on `noise_level(t)`, the std of the
perturbation kernel, and every sampler and likelihood is written against the `SDE` methods only.
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

    @classmethod
    @abstractmethod
    def from_config(cls, block) -> SDE:
        """The SDE from the parameters' SDE block (see `build_sde`)."""

    @abstractmethod
    def sde(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Drift f(x, t) and diffusion g(t)."""

    @abstractmethod
    def marginal_prob(self, x0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of the perturbation kernel p_0t(x_t | x_0)."""

    @abstractmethod
    def noise_level(self, t: torch.Tensor) -> torch.Tensor:
        """The std of p_0t(x_t | x_0): the noise scale every network is conditioned on."""

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

    @classmethod
    def from_config(cls, block) -> VESDE:
        return cls(block.sigma_min, block.sigma_max)

    def noise_level(self, t):
        """sigma(t) itself, so that VE networks see exactly the noise scale of DRL."""
        return self.sigma(t)

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


class VPFamilySDE(SDE):
    """dx = -1/2 beta(t) x dt + sqrt(beta(t)) dw, prior N(0, I); subclasses give beta, var, inv_var and mean_coeff.

    The family shares var(t) = 1 - (1 - sigma2_0) mean_coeff(t)^2, hence the VP moment equation
    var' = beta (1 - var) (LSGM sec. 3.4).
    """

    @abstractmethod
    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """beta(t) = g(t)^2."""

    @abstractmethod
    def var(self, t: torch.Tensor) -> torch.Tensor:
        """sigma_t^2, the variance of p_0t(x_t | x_0) (sigma2_0 at t = 0)."""

    @abstractmethod
    def inv_var(self, v: torch.Tensor) -> torch.Tensor:
        """The t with var(t) = v."""

    @abstractmethod
    def mean_coeff(self, t: torch.Tensor) -> torch.Tensor:
        """m(t) = exp(-1/2 int_0^t beta), the mean of p_0t(x_t | x_0) over x_0."""

    def sde(self, x, t):
        beta = self.beta(t)
        return -0.5 * _batch(beta, x) * x, torch.sqrt(beta)

    def marginal_prob(self, x0, t):
        """N(m(t) x0, var(t) I)."""
        return _batch(self.mean_coeff(t), x0) * x0, self.noise_level(t)

    def noise_level(self, t):
        return torch.sqrt(self.var(t))

    def prior_sampling(self, shape, generator=None):
        return torch.randn(*shape, generator=generator)

    def prior_logp(self, z):
        """log N(z; 0, I)."""
        return -0.5 * z[0].numel() * math.log(2 * math.pi) - 0.5 * z.flatten(1).pow(2).sum(1)


class VPSDE(VPFamilySDE):
    """Variance preserving SDE with linear beta(t) = beta_min + (beta_max - beta_min) t (score-SDE eq. 11, LSGM)."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, sigma2_0: float = 0.0):
        if not 0 < beta_min < beta_max:
            raise ValueError(f"VPSDE needs 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        if not 0 <= sigma2_0 < 1:
            raise ValueError(f"VPSDE needs 0 <= sigma2_0 < 1, got {sigma2_0}")
        self.beta_min, self.beta_max, self.sigma2_0 = float(beta_min), float(beta_max), float(sigma2_0)

    @classmethod
    def from_config(cls, block) -> VPSDE:
        return cls(block.beta_min, block.beta_max, block.sigma2_0)

    def beta(self, t):
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def log_mean_coeff(self, t: torch.Tensor) -> torch.Tensor:
        """ln m(t) = -1/2 beta_min t - 1/4 (beta_max - beta_min) t^2."""
        return -0.5 * self.beta_min * t - 0.25 * (self.beta_max - self.beta_min) * t**2

    def mean_coeff(self, t):
        return torch.exp(self.log_mean_coeff(t))

    def var(self, t):
        """1 - (1 - sigma2_0) m^2, written with expm1 so that var(eps) keeps its digits in float32."""
        m2 = 2 * self.log_mean_coeff(t)
        return -torch.expm1(m2) + self.sigma2_0 * torch.exp(m2)

    def inv_var(self, v):
        """(-beta_min + sqrt(beta_min^2 - 2 (beta_max - beta_min) ln((1 - v) / (1 - sigma2_0)))) / (beta_max - beta_min)."""
        delta = self.beta_max - self.beta_min
        log_ratio = torch.log1p(-v) - math.log1p(-self.sigma2_0)
        return (-self.beta_min + torch.sqrt(self.beta_min**2 - 2 * delta * log_ratio)) / delta


class GeometricVPSDE(VPFamilySDE):
    """LSGM's geometric VPSDE: var(t) = sigma2_min ((sigma2_max / sigma2_min)^t - 1) + sigma2_0 (LSGM sec. 3.4)."""

    def __init__(self, sigma2_min: float = 1e-4, sigma2_max: float = 0.99, sigma2_0: float = 0.0):
        if not 0 < sigma2_min < sigma2_max:
            raise ValueError(f"GeometricVPSDE needs 0 < sigma2_min < sigma2_max, got {sigma2_min}, {sigma2_max}")
        if not 0 <= sigma2_0 < 1 - sigma2_max + sigma2_min:
            raise ValueError(f"GeometricVPSDE needs 0 <= sigma2_0 < 1 - sigma2_max + sigma2_min (var(1) < 1), "
                             f"got {sigma2_0}")
        self.sigma2_min, self.sigma2_max, self.sigma2_0 = float(sigma2_min), float(sigma2_max), float(sigma2_0)
        self.log_ratio = math.log(self.sigma2_max / self.sigma2_min)

    @classmethod
    def from_config(cls, block) -> GeometricVPSDE:
        return cls(block.sigma2_min, block.sigma2_max, block.sigma2_0)

    def _geometric_excess(self, t: torch.Tensor) -> torch.Tensor:
        """sigma2_geom(t) - sigma2_min = sigma2_min ((sigma2_max / sigma2_min)^t - 1), by expm1 for small t."""
        return self.sigma2_min * torch.expm1(t * self.log_ratio)

    def var(self, t):
        return self._geometric_excess(t) + self.sigma2_0

    def beta(self, t):
        """sigma2_geom(t) ln(sigma2_max / sigma2_min) / (1 - var(t)), so that var' = beta (1 - var)."""
        geometric = self.sigma2_min + self._geometric_excess(t)
        return geometric * self.log_ratio / (1 - self.var(t))

    def mean_coeff(self, t):
        """sqrt(1 + sigma2_min (1 - (sigma2_max / sigma2_min)^t) / (1 - sigma2_0))."""
        return torch.sqrt(1 - self._geometric_excess(t) / (1 - self.sigma2_0))

    def inv_var(self, v):
        """ln((v + sigma2_min - sigma2_0) / sigma2_min) / ln(sigma2_max / sigma2_min)."""
        return torch.log1p((v - self.sigma2_0) / self.sigma2_min) / self.log_ratio


SDES: dict[str, type[SDE]] = {"ve": VESDE, "vp": VPSDE, "geometric_vp": GeometricVPSDE}


def build_sde(block) -> SDE:
    """The SDE named by the parameters' SDE block (its `kind` and that kind's own fields)."""
    if block.kind not in SDES:
        raise ValueError(f"unknown SDE kind {block.kind!r}; known: {sorted(SDES)}")
    return SDES[block.kind].from_config(block)
