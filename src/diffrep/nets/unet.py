"""Score U-Net with a per-channel conditional bias in every residual block (DRL A.4, DDPM++ style).

The condition is the time embedding (Gaussian Fourier projection of log sigma(t)), concatenated with the
embedding of the code when the model is conditional; each residual block adds a dense projection of it
as a per-channel bias.
"""
from __future__ import annotations

import math
from itertools import pairwise

import torch
from torch import nn


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class GaussianFourierProjection(nn.Module):
    """Fixed random Fourier features of a scalar (score-SDE's embedding of log sigma)."""

    def __init__(self, dim: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        proj = s[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=1)


def time_embedding(dim: int) -> nn.Module:
    """Fourier features of log sigma, then two dense layers."""
    return nn.Sequential(GaussianFourierProjection(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))


def mlp(sizes: list[int]) -> nn.Sequential:
    """Dense layers with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Residual block whose first activation gets a per-channel bias from the condition."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.cond = nn.Linear(cond_dim, c_out) if cond_dim else None
        self.norm2, self.conv2 = nn.GroupNorm(_groups(c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        if self.cond is not None:
            h = h + self.cond(nn.functional.silu(cond))[:, :, None, None]
        h = self.conv2(self.drop(nn.functional.silu(self.norm2(h))))
        return (self.skip(x) + h) / math.sqrt(2.0)


class DownPath(nn.Module):
    """The downsampling half: residual blocks per resolution, strided convolutions between resolutions."""

    def __init__(self, in_ch: int, channels: list[int], num_res_blocks: int, cond_dim: int, dropout: float):
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, channels[0], 3, padding=1)
        self.levels, self.downs = nn.ModuleList(), nn.ModuleList()
        prev = channels[0]
        for i, ch in enumerate(channels):
            blocks = [ResBlock(prev if j == 0 else ch, ch, cond_dim, dropout) for j in range(num_res_blocks)]
            self.levels.append(nn.ModuleList(blocks))
            prev = ch
            if i < len(channels) - 1:
                self.downs.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, skips = self.conv_in(x), []
        for i, blocks in enumerate(self.levels):
            for block in blocks:
                h = block(h, cond)
            skips.append(h)
            if i < len(self.downs):
                h = self.downs[i](h)
        return h, skips


class UpPath(nn.Module):
    """The upsampling half; with `skip=True` each resolution concatenates the down path's features."""

    def __init__(self, out_ch: int, channels: list[int], num_res_blocks: int, cond_dim: int, dropout: float, skip: bool):
        super().__init__()
        self.skip = skip
        self.levels, self.ups = nn.ModuleList(), nn.ModuleList()
        prev = channels[-1]
        for i in reversed(range(len(channels))):
            ch = channels[i]
            first_in = prev + (ch if skip else 0)
            blocks = [ResBlock(first_in if j == 0 else ch, ch, cond_dim, dropout) for j in range(num_res_blocks)]
            self.levels.append(nn.ModuleList(blocks))
            if i > 0:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)))
            prev = ch
        self.out = nn.Sequential(nn.GroupNorm(_groups(prev), prev), nn.SiLU(), nn.Conv2d(prev, out_ch, 3, padding=1))

    def forward(self, h: torch.Tensor, skips: list[torch.Tensor] | None, cond: torch.Tensor | None) -> torch.Tensor:
        for k, blocks in enumerate(self.levels):
            if self.skip:
                skip = skips[-1 - k]
                h = torch.cat([_fit(h, skip), skip], dim=1)
            for block in blocks:
                h = block(h, cond)
            if k < len(self.ups):
                h = self.ups[k](h)
        return self.out(h)


def _fit(h: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop an upsampled map to the skip's size (odd resolutions such as 7x7 upsample to 8x8)."""
    return h[..., : like.shape[-2], : like.shape[-1]]


class ScoreUNet(nn.Module):
    """s_theta(x_t, t, z): the network predicts -sigma * score, so the score is its output over sigma."""

    def __init__(self, in_ch: int, channels: list[int], num_res_blocks: int, emb_dim: int,
                 code_dim: int = 0, code_hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        self.code_dim = code_dim
        self.temb = time_embedding(emb_dim)
        self.code_up = mlp([code_dim, code_hidden, code_hidden, code_hidden, emb_dim]) if code_dim else None
        cond_dim = emb_dim * (2 if code_dim else 1)
        self.down = DownPath(in_ch, channels, num_res_blocks, cond_dim, dropout)
        self.mid = ResBlock(channels[-1], channels[-1], cond_dim, dropout)
        self.up = UpPath(in_ch, channels, num_res_blocks, cond_dim, dropout, skip=True)

    def condition(self, sigma: torch.Tensor, code: torch.Tensor | None) -> torch.Tensor:
        """Time embedding of log sigma, concatenated with the code's embedding (four dense layers up)."""
        cond = self.temb(torch.log(sigma))
        if self.code_up is not None:
            if code is None:
                raise ValueError("this score model is conditional: pass the code")
            cond = torch.cat([cond, self.code_up(code)], dim=1)
        return cond

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, code: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.condition(sigma, code)
        h, skips = self.down(x, cond)
        h = self.mid(h, cond)
        out = self.up(h, skips, cond)
        return out / sigma.reshape(-1, 1, 1, 1)
