"""Denoising score matching and the DRL/VDRL objectives; t-sampling schemes with one signature.

Every loss returns one value per sample; the training loop takes the mean.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from diffrep.sde import SDE, VESDE

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TSampler = Callable[[int, torch.Generator | None], torch.Tensor]


def uniform_t(eps: float) -> TSampler:
    """t ~ U[eps, 1] (DRL: lambda(t) = sigma^2(t) with uniform t)."""

    def sample(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return eps + (1.0 - eps) * torch.rand(n, generator=generator)

    return sample


def uniform_sigma(sde: VESDE) -> TSampler:
    """sigma(t) ~ U[sigma_min, sigma_max], the high-noise focus of DRL Fig. 3."""

    def sample(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        sigma = sde.sigma_min + (sde.sigma_max - sde.sigma_min) * torch.rand(n, generator=generator)
        return sde.t_of_sigma(sigma)

    return sample


def fixed_t(t: float) -> TSampler:
    """A single training time: lambda(t) supported on one t (DRL Fig. 11)."""

    def sample(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.full((n,), float(t))

    return sample


# Every scheme a run can name: (sde, eps, t) -> TSampler, t the run's single time for 'fixed'.
T_SCHEMES: dict[str, Callable[[SDE, float, float | None], TSampler]] = {
    "uniform_t": lambda sde, eps, t: uniform_t(eps),
    "uniform_sigma": lambda sde, eps, t: uniform_sigma(sde),
    "fixed": lambda sde, eps, t: fixed_t(max(float(t), eps)),
}


def t_sampler(scheme: str, sde: SDE, eps: float, t: float | None = None) -> TSampler:
    """The t-sampling scheme named in a run (one of T_SCHEMES)."""
    if scheme not in T_SCHEMES:
        raise ValueError(f"unknown t-sampling scheme {scheme!r}; known: {sorted(T_SCHEMES)}")
    return T_SCHEMES[scheme](sde, eps, t)


def adversarial_lambda_prime(t: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """DRL A.7: lambda'_alpha(t) = 2 alpha t + (1 - alpha), a density on [0, 1] for alpha in [-1, 1]."""
    return 2 * alpha * t + (1 - alpha)


def lambda_prime_t(alpha: float, eps: float) -> TSampler:
    """t ~ lambda'_alpha by the inverse of its CDF F(t) = alpha t^2 + (1 - alpha) t, kept in [eps, 1] (DRL A.7)."""

    def sample(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        if abs(alpha) < 1e-6:
            t = u
        else:  # the root of alpha t^2 + (1 - alpha) t - u in [0, 1], written to stay stable as alpha -> 0
            t = 2 * u / ((1 - alpha) + torch.sqrt((1 - alpha) ** 2 + 4 * alpha * u))
        return t.clamp(min=eps, max=1.0).float()

    return sample


def adversary_objective(per_t_loss: torch.Tensor, t: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The adversary's gain E_{t ~ U}[lambda'_alpha(t) * loss(t)] (DRL eq. 10 restricted to linear lambda'), to maximise."""
    return (adversarial_lambda_prime(t, alpha) * per_t_loss.detach()).mean()


def denoising_score_matching(score: torch.Tensor, noise: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """DRL eq. 4 with lambda(t) = sigma^2(t): 1/2 ||sigma s + eps||^2 per sample, summed over pixels."""
    sigma = std.reshape(-1, *([1] * (score.dim() - 1)))
    return 0.5 * (sigma * score + noise).flatten(1).pow(2).sum(1)


def perturbed_dsm(score_fn: ScoreFn, x0: torch.Tensor, t: torch.Tensor, sde: SDE, noise: torch.Tensor) -> torch.Tensor:
    """DRL eq. 4: x_t drawn from p_0t(x_t | x_0) with the given noise, then DSM of score_fn(x_t, t) per sample."""
    xt = sde.perturb(x0, t, noise)
    _, std = sde.marginal_prob(x0, t)
    return denoising_score_matching(score_fn(xt, t), noise, std)


def dsm_minimum_gaussian(d: int, data_var: float, sigma: float) -> float:
    """DRL Proposition 1 for x0 ~ N(mu, s^2 I): the DSM objective's minimum is d/2 * s^2 / (s^2 + sigma^2)."""
    return 0.5 * d * data_var / (data_var + sigma**2)


def l1_penalty(z: torch.Tensor) -> torch.Tensor:
    """||z||_1 per sample (DRL's L1 code penalty)."""
    return z.abs().flatten(1).sum(1)


def kl_penalty(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample (VDRL)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * e, e ~ N(0, I)."""
    e = torch.randn(mean.shape, generator=generator, device=mean.device)
    return mean + (0.5 * logvar).exp() * e


def code_penalty(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor | None, l1: float, kl: float) -> torch.Tensor:
    """L1 on a deterministic code, KL on a Gaussian one."""
    if logvar is None:
        return l1 * l1_penalty(z)
    return kl * kl_penalty(mean, logvar)


def drl_objective(score_fn: Callable, encode: Callable, x0: torch.Tensor, t: torch.Tensor, sde: SDE,
                  noise: torch.Tensor, generator: torch.Generator | None, l1: float = 0.0, kl: float = 0.0
                  ) -> torch.Tensor:
    """DRL eq. 7 (eq. 8 when `encode` uses t): DSM conditioned on the code E(x0) plus its penalty.

    `encode(x0, t)` returns (mean, logvar or None); `score_fn(x_t, t, z)` returns the conditional score.
    """
    mean, logvar = encode(x0, t)
    z = mean if logvar is None else reparameterize(mean, logvar, generator)
    dsm = perturbed_dsm(lambda xt, tt: score_fn(xt, tt, z), x0, t, sde, noise)
    return dsm + code_penalty(z, mean, logvar, l1, kl)


def reconstruction_objective(decode: Callable, encode: Callable, x0: torch.Tensor,
                             generator: torch.Generator | None, l1: float = 0.0, kl: float = 1.0) -> torch.Tensor:
    """AE/VAE baseline: 1/2 squared error summed over pixels plus the code penalty (L1 for AE, KL for VAE)."""
    mean, logvar = encode(x0, None)
    z = mean if logvar is None else reparameterize(mean, logvar, generator)
    rec = 0.5 * (decode(z) - x0).flatten(1).pow(2).sum(1)
    return rec + code_penalty(z, mean, logvar, l1, kl)


def bce_reconstruction_objective(decode: Callable, encode: Callable, x0: torch.Tensor,
                                 generator: torch.Generator | None, l1: float = 0.0) -> torch.Tensor:
    """Autoencoder pretraining of DRL Table 5, 6: binary cross-entropy of the decoder's logits, summed over pixels."""
    z, _ = encode(x0, None)
    logits = decode(z)
    rec = torch.nn.functional.binary_cross_entropy_with_logits(logits, x0, reduction="none").flatten(1).sum(1)
    return rec + l1 * l1_penalty(z)


def mixup(x: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2017): lambda x + (1 - lambda) x[perm], one lambda ~ Beta(1, 1) = U[0, 1] per batch."""
    lam = float(torch.rand((), generator=generator))
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], perm, lam
