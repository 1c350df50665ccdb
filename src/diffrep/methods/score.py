"""The unconditional score model of DRL sec. 4.2, 4.3 and its adversarial-lambda training (sec. 3.1, A.7).

The adversary is one scalar, alpha = tanh(a) in [-1, 1], the slope parameter of lambda'_alpha(t). Model and
adversary take turns, one training step each: on the model's turn t is drawn from lambda'_alpha (or uniformly,
the plain KL objective, with probability p_KL); on the adversary's turn it ascends
E_{t ~ U}[lambda'_alpha(t) loss(t)] with the model held fixed (its step logs the plain loss at those t). The turn
counter is a buffer, so a resumed run takes the same turns as an uninterrupted one.
"""
from __future__ import annotations

import torch
from torch import nn

from diffrep.config import Config
from diffrep.methods.base import DataShape, Method, RunSpec, register
from diffrep.nets.unet import ScoreUNet
from diffrep.objectives import (
    adversary_objective,
    lambda_prime_t,
    perturbed_dsm,
    uniform_t,
)
from diffrep.sde import SDE, build_sde


class ScoreModel(nn.Module):
    """Unconditional s_theta(x_t, t); with an adversary, also the alpha of lambda'_alpha (DRL A.7)."""

    def __init__(self, score: ScoreUNet, sde: SDE, adversarial: bool = False):
        super().__init__()
        self.score, self.sde = score, sde
        self.adversary = nn.Parameter(torch.zeros(())) if adversarial else None
        self.register_buffer("turn", torch.zeros((), dtype=torch.long))

    def score_fn(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.score(xt, self.sde.noise_level(t))

    @property
    def alpha(self) -> torch.Tensor:
        return torch.tanh(self.adversary)

    def log_values(self) -> dict[str, float]:
        """What the metrics log records beside the loss: alpha over training (DRL Fig. 14)."""
        return {"alpha": float(self.alpha.detach())} if self.adversary is not None else {}


def score_unet(cfg: Config, dataset: str, data: DataShape, code_dim: int = 0) -> ScoreUNet:
    """The dataset's score U-Net (DRL A.4), conditioned on a code of dimension `code_dim` when it is not 0."""
    net = cfg.datasets[dataset].net
    return ScoreUNet(data.image_shape[0], net.channels, net.num_res_blocks, net.emb_dim, code_dim, net.code_hidden,
                     net.dropout)


def dsm_loss(model: ScoreModel, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-sample DSM with lambda(t) = sigma^2(t) at the given times (the KL objective of DRL sec. 3.1)."""
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    return perturbed_dsm(model.score_fn, x0, t, model.sde, noise)


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


class Score(Method):
    """The unconditional score model (DRL sec. 4.2, 4.3); with `--p-kl` and `--init`, adversarial lambda (A.7)."""

    name = "score"
    experiments = ("generation", "adversarial")
    options = frozenset({"init", "p_kl"})
    fresh = frozenset({"adversary"})  # adversarial lambda starts from the plain score model (DRL A.7)

    def check(self, spec: RunSpec) -> None:
        super().check(spec)
        if spec.p_kl is not None and not spec.init:
            raise ValueError("--p-kl (adversarial lambda) needs --init, the pretrained score model")

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> ScoreModel:
        return ScoreModel(score_unet(cfg, spec.dataset, data), build_sde(cfg.sde), adversarial=spec.p_kl is not None)

    def loss(self, cfg: Config, spec: RunSpec, model: ScoreModel):
        return score_loss(cfg.sde.eps) if spec.p_kl is None else adversarial_loss(cfg.sde.eps, spec.p_kl)

    def parameters(self, model: ScoreModel, cfg: Config, spec: RunSpec) -> list:
        return param_groups(model, cfg.experiments.adversarial.adversary_lr_scale)


register(Score())
