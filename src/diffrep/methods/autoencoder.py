"""The AE and VAE baselines of DRL Fig. 12 / A.5: the DRL encoder with a mirrored decoder, no diffusion."""
from __future__ import annotations

import torch
from torch import nn

from diffrep.config import Config
from diffrep.methods.base import DataShape, Method, RunSpec, code_dim, register
from diffrep.methods.drl import REPRESENTATION
from diffrep.nets.encoder import Decoder, Encoder
from diffrep.objectives import reconstruction_objective


class AutoEncoder(nn.Module):
    """AE (deterministic code, L1) or VAE (Gaussian code, KL) with the same encoder and a mirrored decoder."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x0: torch.Tensor, t: torch.Tensor | None = None):
        return self.encoder(x0, None)


class Reconstruction(Method):
    """AE: L1-penalised deterministic code; VAE (`probabilistic`): Gaussian code with a unit-weight KL."""

    experiments = REPRESENTATION
    options = frozenset({"init", "freeze_encoder", "code_dim"})

    def __init__(self, name: str, probabilistic: bool):
        self.name, self.probabilistic = name, probabilistic

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> AutoEncoder:
        net, (c, h, _), code = cfg.datasets[spec.dataset].net, data.image_shape, code_dim(cfg, spec)
        encoder = Encoder(c, h, net.channels, net.num_res_blocks, net.emb_dim, code, net.code_hidden,
                          probabilistic=self.probabilistic)
        return AutoEncoder(encoder, Decoder(c, h, net.channels, net.num_res_blocks, code, net.code_hidden))

    def loss(self, cfg: Config, spec: RunSpec, model: AutoEncoder):
        l1, kl = cfg.penalties.l1, 1.0 if self.probabilistic else 0.0
        return lambda m, x0, g: reconstruction_objective(m.decoder, m.encode, x0, g, l1=l1, kl=kl)


register(Reconstruction("ae", probabilistic=False))
register(Reconstruction("vae", probabilistic=True))
