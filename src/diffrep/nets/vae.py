"""The VAE backbone of LSGM (sec. 3, App. G), small and single-group: a Gaussian encoder q(z_0 | x) to a spatial latent
(channels x H / 2^k x W / 2^k, k the number of downsamplings) and a decoder p(x | z_0) over the data's L levels.

The paper's backbone is NVAE (hierarchical, many groups); this one has one latent group, the residual blocks of the
score U-Net, and a categorical decoder per pixel over L levels (L = 2: Bernoulli, for binarized data), which makes
its NELBO a bound on a discrete likelihood.
"""
from __future__ import annotations

import torch
from torch import nn

from diffrep.nets.unet import DownPath, UpPath


class Encoder(nn.Module):
    """x -> (mean, logvar) of q(z_0 | x), each (N, latent_channels, h, w)."""

    def __init__(self, in_ch: int, channels: list[int], num_res_blocks: int, latent_channels: int):
        super().__init__()
        self.down = DownPath(in_ch, channels, num_res_blocks, 0, 0.0)
        self.head = nn.Conv2d(channels[-1], 2 * latent_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.down(x, None)
        mean, logvar = self.head(nn.functional.silu(h)).chunk(2, dim=1)
        return mean, logvar


class Decoder(nn.Module):
    """z_0 -> logits (N, L, C, H, W) of a categorical over L levels per pixel."""

    def __init__(self, out_ch: int, channels: list[int], num_res_blocks: int, latent_channels: int, levels: int):
        super().__init__()
        self.out_ch, self.levels = out_ch, levels
        self.stem = nn.Conv2d(latent_channels, channels[-1], 3, padding=1)
        self.up = UpPath(out_ch * levels, channels, num_res_blocks, 0, 0.0, skip=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.up(self.stem(z), None, None)
        return out.reshape(out.shape[0], self.levels, self.out_ch, *out.shape[2:])


def decoder_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x | z_0] in [0, 1]: the image a sample is shown as (LSGM Fig. 5 shows the decoder mean)."""
    levels = logits.shape[1]
    values = torch.linspace(0, 1, levels, device=logits.device).reshape(1, levels, 1, 1, 1)
    return (logits.softmax(dim=1) * values).sum(1)


class VAE(nn.Module):
    """Encoder and decoder of one latent group."""

    def __init__(self, image_ch: int, channels: list[int], num_res_blocks: int, latent_channels: int, levels: int):
        super().__init__()
        self.encoder = Encoder(image_ch, channels, num_res_blocks, latent_channels)
        self.decoder = Decoder(image_ch, channels, num_res_blocks, latent_channels, levels)

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The latent's (channels, h, w) for images of `image_shape`."""
        with torch.no_grad():
            mean, _ = self.encoder(torch.zeros(1, *image_shape))
        return tuple(mean.shape[1:])
