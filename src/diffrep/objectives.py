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
    """sigma(t) ~ U[sigma_min, sigma_max], the high-noise focus of DRL Fig. 3 (a VE SDE's sigma)."""
    if not isinstance(sde, VESDE):
        raise ValueError(f"the uniform_sigma scheme needs the VE SDE (sde.kind: ve), not {type(sde).__name__}")

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


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) of every variable."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_penalty(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per sample (VDRL)."""
    return gaussian_kl(mean, logvar).flatten(1).sum(1)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """z = mean + exp(logvar / 2) * e, e ~ N(0, I)."""
    e = torch.randn(mean.shape, generator=generator).to(mean.device)  # drawn on the CPU: one seed, one draw, any device
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


# LSGM ---------------------------------------------------------------------------------------------------------------
# Vahdat, Kreis, Kautz: a VAE whose prior is a score model on the latent. The cross entropy of Theorem 1 / eq. 7 with
# the mixed score (sec. 3.2), and the t-sampling schemes of sec. 3.4 / App. B with one signature,
# scheme(sde, eps, n, generator) -> LSGMDraw. Every scheme estimates int_eps^1 (w(t) / 2) E||eps - eps_hat||^2 dt, so
# its weights are w(t) / (2 r(t)), r the density t is drawn from on [eps, 1]. The uniform schemes therefore carry the
# factor 1 - eps that the authors' code leaves out (a 1 % bias at eps = 1e-2): all schemes estimate the same integral.
import math  # this paper's section keeps its imports with it
from typing import NamedTuple

from diffrep.sde import VPSDE, VPFamilySDE


class LSGMDraw(NamedTuple):
    """Times t, the prior's weight w_p(t) / (2 r(t)) (eq. 9) and the likelihood weight w_ll(t) / (2 r(t)) (eq. 8)."""

    t: torch.Tensor
    prior_weight: torch.Tensor
    likelihood_weight: torch.Tensor


def w_ll(sde: VPFamilySDE, t: torch.Tensor) -> torch.Tensor:
    """LSGM Table 1: w_ll(t) = g(t)^2 / sigma_t^2 (maximum likelihood); w_un = 1 and w_re = g(t)^2."""
    return sde.beta(t) / sde.var(t)


def _rho(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """rho ~ U(0, 1) in float64: the inverse CDFs lose digits near t = eps in float32."""
    return torch.rand(n, generator=generator, dtype=torch.float64)


def _draw(sde: VPFamilySDE, t: torch.Tensor, prior_w: torch.Tensor, inv_r: torch.Tensor) -> LSGMDraw:
    """The draw in float32, with the likelihood weight w_ll / (2 r) at the same t ("rew." in Table 6)."""
    return LSGMDraw(t.float(), (0.5 * prior_w * inv_r).float(), (0.5 * w_ll(sde, t) * inv_r).float())


def _uniform(eps: float, n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """t ~ U[eps, 1] and 1 / r(t) = 1 - eps."""
    t = eps + (1 - eps) * _rho(n, generator)
    return t, torch.full_like(t, 1 - eps)


def _var_at(sde: VPFamilySDE, t: float) -> torch.Tensor:
    return sde.var(torch.tensor(t, dtype=torch.float64))


def _by_variance(sde: VPFamilySDE, var: torch.Tensor, var_density: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """t = var^-1(sigma_t^2) for sigma_t^2 drawn with density `var_density`; 1 / r(t) by d sigma_t^2 / dt = beta (1 - sigma_t^2)."""
    t = sde.inv_var(var)
    return t, 1 / (var_density * sde.beta(t) * (1 - var))


def ll_uniform(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_ll with t ~ U[eps, 1] (Table 6, column 1)."""
    t, inv_r = _uniform(eps, n, generator)
    return _draw(sde, t, w_ll(sde, t), inv_r)


def ll_iw(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_ll with r_ll(t) ∝ d log sigma_t^2 / dt: sigma_t^2 = sigma^2(1)^rho sigma^2(eps)^(1 - rho) (LSGM sec. 3.4)."""
    lo, hi = torch.log(_var_at(sde, eps)), torch.log(_var_at(sde, 1.0))
    var = torch.exp(lo + _rho(n, generator) * (hi - lo))
    t, inv_r = _by_variance(sde, var, 1 / (var * (hi - lo)))
    return _draw(sde, t, w_ll(sde, t), inv_r)


def drop_all_uniform(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_un = 1 with t ~ U[eps, 1] (Table 6)."""
    t, inv_r = _uniform(eps, n, generator)
    return _draw(sde, t, torch.ones_like(t), inv_r)


def drop_all_iw(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_un with r_un(t) ∝ 1 - sigma_t^2 ∝ exp(-beta_0 t - Delta t^2), sampled through erf (LSGM App. B; linear VPSDE)."""
    if not isinstance(sde, VPSDE):
        raise TypeError("r_un is derived for the linear VPSDE only (LSGM App. B; n/a in Table 6)")
    delta = 0.5 * (sde.beta_max - sde.beta_min)
    frac = sde.beta_min / (sde.beta_max - sde.beta_min)  # beta_0 t + Delta t^2 = Delta (t + frac)^2 - Delta frac^2
    lo, hi = (math.erf(math.sqrt(delta) * (s + frac)) for s in (eps, 1.0))
    t = torch.erfinv(lo + _rho(n, generator) * (hi - lo)) / math.sqrt(delta) - frac
    mass = math.exp(delta * frac**2) * math.sqrt(math.pi / (4 * delta)) * (hi - lo)  # int_eps^1 exp(-beta_0 t - Delta t^2)
    return _draw(sde, t, torch.ones_like(t), mass / sde.mean_coeff(t) ** 2)


def drop_sigma2t_uniform(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_re = g(t)^2 with t ~ U[eps, 1] (Table 6)."""
    t, inv_r = _uniform(eps, n, generator)
    return _draw(sde, t, sde.beta(t), inv_r)


def drop_sigma2t_iw(sde: VPFamilySDE, eps: float, n: int, generator=None) -> LSGMDraw:
    """w_re with r_re(t) ∝ d sigma_t^2 / dt: sigma_t^2 uniform in [sigma^2(eps), sigma^2(1)] (LSGM sec. 3.4)."""
    lo, hi = _var_at(sde, eps), _var_at(sde, 1.0)
    var = lo + _rho(n, generator) * (hi - lo)
    t, inv_r = _by_variance(sde, var, torch.full_like(var, 1 / float(hi - lo)))
    return _draw(sde, t, sde.beta(t), inv_r)


# The authors' names of the schemes; Table 6 writes them as (weighting, t-sampling): (w_ll, U) ll_uniform,
# (w_ll, r_ll) ll_iw, (w_un, U) drop_all_uniform, (w_un, r_un) drop_all_iw, (w_re, U) drop_sigma2t_uniform,
# (w_re, r_re) drop_sigma2t_iw.
LSGM_SCHEMES = {f.__name__: f for f in (ll_uniform, ll_iw, drop_all_uniform, drop_all_iw, drop_sigma2t_uniform,
                                        drop_sigma2t_iw)}


def kl_per_channel(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The mean KL per latent variable of each channel over a batch, (N, C, h, w) -> (C,): how much of the data a
    channel carries (LSGM App. G switches off the channels whose KL is at most 0.1)."""
    return gaussian_kl(mean, logvar).transpose(0, 1).flatten(1).mean(1)


def mixed_eps(zt: torch.Tensor, std: torch.Tensor, eps_prime: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
    """LSGM sec. 3.2: eps_hat = (1 - alpha) sigma_t z_t + alpha eps'(z_t, t), alpha = sigmoid(logit) per channel."""
    alpha = torch.sigmoid(logit).reshape(1, -1, *([1] * (zt.dim() - 2)))
    return (1 - alpha) * std.reshape(-1, *([1] * (zt.dim() - 1))) * zt + alpha * eps_prime


def weighted_eps_matching(eps_hat_fn: Callable, z0: torch.Tensor, sde: SDE, draw_t: torch.Tensor,
                          weight: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """LSGM eq. 7 (without its constant): weight * ||eps - eps_hat(z_t, t)||^2 per sample, z_t ~ q(z_t | z_0)."""
    zt = sde.perturb(z0, draw_t, noise)
    return weight * (noise - eps_hat_fn(zt, draw_t)).flatten(1).pow(2).sum(1)


def cross_entropy_constant(sde: VPFamilySDE, eps: float, dims: int) -> float:
    """LSGM Thm. 1: D/2 log(2 pi e sigma^2(eps)), the kernel's entropy where the integral starts."""
    return 0.5 * dims * (1 + math.log(2 * math.pi * float(_var_at(sde, eps))))


def gaussian_neg_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """LSGM eq. 6: E_q[log q(z_0 | x)] = -1/2 sum (1 + log 2 pi + logvar) per sample, exact for a Gaussian encoder."""
    return -0.5 * (1 + math.log(2 * math.pi) + logvar).flatten(1).sum(1)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, exp(logvar)) per sample: log q(z_0 | x) at a sample (the NELBO of LSGM eq. 6)."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean).pow(2) / logvar.exp()).flatten(1).sum(1)


def discrete_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | z_0) per sample for x in [0, 1] on L levels, logits (N, L, C, H, W): Bernoulli when L = 2."""
    levels = logits.shape[1]
    index = (x * (levels - 1)).round().long()
    return torch.nn.functional.cross_entropy(logits, index, reduction="none").flatten(1).sum(1)


def kl_coefficient(step: int, steps: int, start: float, end: float) -> float:
    """The KL coefficient rising linearly from `start` to `end` over `steps` steps, then held (LSGM App. G)."""
    return end if steps <= 0 else start + (end - start) * min(1.0, step / steps)


def binarize(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Dynamic binarization: a fresh Bernoulli(x) draw of every pixel (LSGM sec. 5.1), drawn on the CPU."""
    return torch.bernoulli(x.cpu(), generator=generator).to(x.device)


# ScoreVAE ------------------------------------------------------------------------------------------------------------
# Batzolis, Stanczuk, Schoenlieb: an encoder q(z | x_t, t) against a frozen prior score; the decoder score by Bayes'
# rule for scores. Every diffusion model of the paper (ScoreVAE, ScoreVAE+, DiffDecoder) trains on `scorevae_objective`.

LOG_2PI = torch.log(torch.tensor(2 * torch.pi)).item()


def encoder_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, full: bool = True) -> torch.Tensor:
    """log q(z | x_t, t) per sample, a diagonal Gaussian (ScoreVAE eq. 12); `full=False`: the authors' code, which
    keeps only -1/2 sum (z - mean)^2 / exp(logvar) although logvar depends on x_t."""
    quad = ((z - mean).pow(2) * torch.exp(-logvar)).flatten(1).sum(1)
    if not full:
        return -0.5 * quad
    return -0.5 * (quad + logvar.flatten(1).sum(1) + z[0].numel() * LOG_2PI)


def latent_posterior_score(log_q: Callable[[torch.Tensor], torch.Tensor], xt: torch.Tensor,
                           create_graph: bool) -> torch.Tensor:
    """grad_{x_t} log q(z | x_t, t) by autograd (ScoreVAE sec. 3.4); `create_graph` keeps it differentiable for training."""
    with torch.enable_grad():
        x = xt if xt.requires_grad else xt.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(log_q(x).sum(), x, create_graph=create_graph)
    return grad


def bayes_decoder_score(prior_score: ScoreFn, log_q: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                        xt: torch.Tensor, t: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """s(x_t, z, t) = s_prior(x_t, t) + grad_{x_t} log q(z | x_t, t), Bayes' rule for scores (ScoreVAE sec. 3.3);
    `log_q(x, t)` is the log-density of the fixed code z. The prior is frozen: no graph through it."""
    with torch.no_grad():
        prior = prior_score(xt.detach(), t)
    return prior + latent_posterior_score(lambda x: log_q(x, t), xt, create_graph)


def sigma2_weight(sde: SDE, t: torch.Tensor) -> torch.Tensor:
    """lambda(t) = sigma_t^2 (the authors' weighting), relative to the 1/2 ||sigma s + eps||^2 form: 1."""
    return torch.ones_like(t)


def likelihood_weight(sde: SDE, t: torch.Tensor) -> torch.Tensor:
    """lambda(t) = g(t)^2 (ScoreVAE App. A.1, Song et al. 2021 Thm. 1), relative to sigma_t^2: g^2 / sigma_t^2."""
    _, g = sde.sde(torch.zeros(1, dtype=t.dtype, device=t.device), t)  # on t's device: a CPU x fails on a GPU
    return g**2 / sde.noise_level(t) ** 2


# The loss weightings lambda(t) a ScoreVAE run can name, as multipliers of 1/2 ||sigma_t s + eps||^2.
LOSS_WEIGHTINGS: dict[str, Callable[[SDE, torch.Tensor], torch.Tensor]] = {
    "sigma2": sigma2_weight, "likelihood": likelihood_weight}


def scorevae_objective(decoder_score: Callable, encode: Callable, x0: torch.Tensor, t: torch.Tensor, sde: SDE,
                       noise: torch.Tensor, generator: torch.Generator | None, beta: float,
                       weight: torch.Tensor) -> torch.Tensor:
    """ScoreVAE L_beta (sec. 3.5): 1/2 lambda(t) ||grad log p(x_t | x_0) - s(x_t, z, t)||^2 with z ~ q(z | x_0, 0),
    plus beta KL(q(z | x_0, 0) || N(0, I)); `weight` is lambda(t) / sigma_t^2 per sample. `encode(x0)` returns
    (mean, logvar or None: a deterministic code, no penalty); with weight 1 this is `drl_objective` with kl = beta."""
    mean, logvar = encode(x0)
    z = mean if logvar is None else reparameterize(mean, logvar, generator)
    dsm = perturbed_dsm(lambda xt, tt: decoder_score(xt, tt, z), x0, t, sde, noise)
    return weight * dsm + code_penalty(z, mean, logvar, 0.0, beta)


def beta_vae_objective(decode: Callable, encode: Callable, x0: torch.Tensor, generator: torch.Generator | None,
                       beta: float) -> torch.Tensor:
    """The authors' beta-VAE: the unsquared ||x0 - decode(z)||_2 per image plus beta KL (ScoreVAE sec. 4, App. B.2)."""
    mean, logvar = encode(x0)
    z = reparameterize(mean, logvar, generator)
    return (decode(z) - x0).flatten(1).norm(dim=1) + beta * kl_penalty(mean, logvar)
