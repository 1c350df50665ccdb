"""DRL and VDRL (Mittal et al. 2023): an encoder E(x0) or E(x0, t) whose code conditions the score network.

Runs in the representation experiments (latent, sweep, fewshot, codedim); with `--init` and `--freeze-encoder`
a second phase keeps a phase-1 model's encoder (DRL Fig. 3/7).
"""
from __future__ import annotations

import torch
from torch import nn

from diffrep.config import Config
from diffrep.methods.base import DataShape, Method, RunSpec, code_dim, register
from diffrep.methods.score import score_unet
from diffrep.nets.encoder import Encoder
from diffrep.nets.unet import ScoreUNet
from diffrep.objectives import drl_objective, t_sampler
from diffrep.sde import SDE, build_sde

REPRESENTATION = ("latent", "sweep", "fewshot", "codedim")


class DRLModel(nn.Module):
    """Encoder E(x0) or E(x0, t) and the code-conditioned score network s(x_t, t, z)."""

    def __init__(self, encoder: nn.Module, score: ScoreUNet, sde: SDE):
        super().__init__()
        self.encoder, self.score, self.sde = encoder, score, sde

    def encode(self, x0: torch.Tensor, t: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        level = self.sde.noise_level(t) if self.encoder.time_conditioned else None
        return self.encoder(x0, level)

    def score_fn(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.score(xt, self.sde.noise_level(t), z)


def drl_loss(cfg: Config, spec: RunSpec, sde: SDE):
    """DRL eq. 7 (eq. 8 with a time-conditioned encoder), t drawn by the run's scheme, then the noise."""
    sample_t = t_sampler(spec.scheme, sde, cfg.sde.eps, spec.t)
    pen = cfg.penalties

    def loss(m: DRLModel, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        t = sample_t(x0.shape[0], g).to(x0.device)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        return drl_objective(m.score_fn, m.encode, x0, t, m.sde, noise, g, l1=pen.l1, kl=pen.kl)

    return loss


class DRL(Method):
    """DRL: deterministic code with an L1 penalty; VDRL (`probabilistic`): Gaussian code with a KL penalty."""

    experiments = REPRESENTATION
    options = frozenset({"scheme", "t", "init", "freeze_encoder", "code_dim"})

    def __init__(self, name: str, probabilistic: bool):
        self.name, self.probabilistic = name, probabilistic

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> DRLModel:
        net, (c, h, _) = cfg.datasets[spec.dataset].net, data.image_shape
        encoder = Encoder(c, h, net.channels, net.num_res_blocks, net.emb_dim, code_dim(cfg, spec), net.code_hidden,
                          time_conditioned=spec.experiment == "fewshot", probabilistic=self.probabilistic)
        score = score_unet(cfg, spec.dataset, data, code_dim(cfg, spec))
        return DRLModel(encoder, score, build_sde(cfg.sde))

    def loss(self, cfg: Config, spec: RunSpec, model: DRLModel):
        return drl_loss(cfg, spec, model.sde)


register(DRL("drl", probabilistic=False))
register(DRL("vdrl", probabilistic=True))
