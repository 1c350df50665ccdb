"""Encoders E(x0) and E(x0, t), deterministic or Gaussian, and the mirrored decoder of the AE/VAE baselines.

The encoder is the score network's downsampling half plus three dense layers to the code (DRL A.4); the
time-conditioned encoder (DRL eq. 8) feeds the time embedding to its residual blocks as a per-channel bias.
"""
from __future__ import annotations

import torch
from torch import nn

from diffrep.nets.unet import DownPath, UpPath, mlp, time_embedding


def _lowest_resolution(image_size: int, levels: int) -> int:
    size = image_size
    for _ in range(levels - 1):
        size = (size + 1) // 2
    return size


class Encoder(nn.Module):
    """x0 (and optionally sigma(t)) -> code; `probabilistic` returns the mean and log-variance of q(z|x0)."""

    def __init__(self, in_ch: int, image_size: int, channels: list[int], num_res_blocks: int, emb_dim: int,
                 code_dim: int, code_hidden: int, time_conditioned: bool = False, probabilistic: bool = False):
        super().__init__()
        self.time_conditioned, self.probabilistic, self.code_dim = time_conditioned, probabilistic, code_dim
        self.temb = time_embedding(emb_dim) if time_conditioned else None
        self.down = DownPath(in_ch, channels, num_res_blocks, emb_dim if time_conditioned else 0, 0.0)
        flat = channels[-1] * _lowest_resolution(image_size, len(channels)) ** 2
        out = code_dim * (2 if probabilistic else 1)
        self.head = nn.Sequential(nn.Flatten(), nn.SiLU(), mlp([flat, code_hidden, code_hidden, out]))

    def forward(self, x0: torch.Tensor, sigma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean, log-variance or None)."""
        if self.time_conditioned and sigma is None:
            raise ValueError("a time-conditioned encoder E(x0, t) needs sigma(t)")
        cond = self.temb(torch.log(sigma)) if self.time_conditioned else None
        h, _ = self.down(x0, cond)
        out = self.head(h)
        if self.probabilistic:
            mean, logvar = out.chunk(2, dim=1)
            return mean, logvar.clamp(-30.0, 20.0)
        return out, None


class Decoder(nn.Module):
    """Code -> image: dense layers up to the lowest resolution, then the upsampling half (no skips)."""

    def __init__(self, out_ch: int, image_size: int, channels: list[int], num_res_blocks: int,
                 code_dim: int, code_hidden: int):
        super().__init__()
        self.shape = (channels[-1], _lowest_resolution(image_size, len(channels)))
        flat = self.shape[0] * self.shape[1] ** 2
        self.image_size = image_size
        self.dense = mlp([code_dim, code_hidden, code_hidden, flat])
        self.up = UpPath(out_ch, channels, num_res_blocks, 0, 0.0, skip=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c, s = self.shape
        h = self.dense(z).reshape(-1, c, s, s)
        out = self.up(h, None, None)
        return out[..., : self.image_size, : self.image_size]
