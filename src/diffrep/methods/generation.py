"""The unconditional score model of DRL sec. 4.2, 4.3 and its adversarial-lambda training (sec. 3.1, A.7).

The adversary is one scalar, alpha = tanh(a) in [-1, 1], the slope parameter of lambda'_alpha(t). Model and
adversary take turns, one training step each: on the model's turn t is drawn from lambda'_alpha (or uniformly,
the plain KL objective, with probability p_KL); on the adversary's turn it ascends
E_{t ~ U}[lambda'_alpha(t) loss(t)] with the model held fixed (its step logs the plain loss at those t). The turn counter is a buffer, so a resumed run
takes the same turns as an uninterrupted one.
"""
from __future__ import annotations

import sys

import torch
from torch import nn
from tqdm import tqdm

from diffrep.config import SamplingConfig
from diffrep.nets.unet import ScoreUNet
from diffrep.objectives import (
    adversary_objective,
    denoising_score_matching,
    lambda_prime_t,
    uniform_t,
)
from diffrep.sampling import sample
from diffrep.sde import SDE


class ScoreModel(nn.Module):
    """Unconditional s_theta(x_t, t); with an adversary, also the alpha of lambda'_alpha (DRL A.7)."""

    def __init__(self, score: ScoreUNet, sde: SDE, adversarial: bool = False):
        super().__init__()
        self.score, self.sde = score, sde
        self.adversary = nn.Parameter(torch.zeros(())) if adversarial else None
        self.register_buffer("turn", torch.zeros((), dtype=torch.long))

    def score_fn(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.score(xt, self.sde.sigma(t))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.tanh(self.adversary)

    def log_values(self) -> dict[str, float]:
        """What the metrics log records beside the loss: alpha over training (DRL Fig. 14)."""
        return {"alpha": float(self.alpha.detach())} if self.adversary is not None else {}


def dsm_loss(model: ScoreModel, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample DSM with lambda(t) = sigma^2(t) at the given times (the KL objective of DRL sec. 3.1)."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    xt = model.sde.perturb(x0, t, noise)
    _, std = model.sde.marginal_prob(x0, t)
    return denoising_score_matching(model.score_fn(xt, t), noise, std)


def score_loss(eps: float):
    """Plain training: t ~ U[eps, 1]."""
    sample_t = uniform_t(eps)
    return lambda m, x0, g: dsm_loss(m, x0, sample_t(x0.shape[0], g).to(x0.device), g)


def adversarial_loss(eps: float, p_kl: float):
    """DRL A.7: alternate model turns (t ~ lambda'_alpha, or uniform with probability p_KL) and adversary turns."""
    plain = uniform_t(eps)

    def loss(m: ScoreModel, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m.turn += 1
        n = x0.shape[0]
        if int(m.turn) % 2 == 0:
            t = plain(n, g).to(x0.device)
            with torch.no_grad():
                per_t = dsm_loss(m, x0, t, g)
            gain = adversary_objective(per_t, t, m.alpha)
            return per_t - (gain - gain.detach())  # logs the plain loss; the gradient ascends the gain
        on_plain = torch.rand((), generator=g).item() < p_kl
        sample_t = plain if on_plain else lambda_prime_t(float(m.alpha.detach()), eps)
        return dsm_loss(m, x0, sample_t(n, g).to(x0.device), g)

    return loss


def param_groups(model: ScoreModel, lr_scale: float) -> list[dict]:
    """The score network at the base rate; the adversary at `lr_scale` times it."""
    groups = [{"params": list(model.score.parameters())}]
    if model.adversary is not None:
        groups.append({"params": [model.adversary], "lr_scale": lr_scale})
    return groups


@torch.no_grad()
def loss_per_t(model: ScoreModel, x0: torch.Tensor, ts: list[float], seed: int = 0, batch: int = 500) -> list[float]:
    """Mean DSM loss of the test images at each t (DRL Fig. 13)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in ts:
        losses = [dsm_loss(model, xb, torch.full((xb.shape[0],), t, device=xb.device), g) for xb in x0.split(batch)]
        out.append(torch.cat(losses).mean().item())
    return out


def sampling_steps(steps: int, t_init: float) -> int:
    """DRL sec. 4.3: starting at t_init takes steps * t_init of the full run's steps."""
    return max(1, round(steps * t_init))


@torch.no_grad()
def generate(model: ScoreModel, n: int, image_shape: tuple[int, ...], cfg: SamplingConfig, t_init: float = 1.0,
             prior: str = "gaussian", seed: int = 0) -> tuple[torch.Tensor, int]:
    """n samples in batches of cfg.batch_size, clipped to the data range [0, 1]; returns them and the NFE of one batch."""
    g = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    steps = sampling_steps(cfg.steps, t_init)
    out, nfe = [], 0
    for start in tqdm(range(0, n, cfg.batch_size), desc=f"sampling t_init={t_init} {prior}", file=sys.stderr):
        shape = (min(cfg.batch_size, n - start), *image_shape)
        x, nfe = sample(model.score_fn, model.sde, shape, cfg.method, steps, snr=cfg.snr, t_init=t_init,
                        prior=prior, generator=g, device=device)
        out.append(x.clamp(0, 1).cpu())
    return torch.cat(out), nfe
