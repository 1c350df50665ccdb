"""Wide ResNet (Zagoruyko & Komodakis) as LaplaceNet's classifier and the DRL encoder of the semi-supervised runs.

WRN-d-k has (d - 4) / 6 blocks in each of three groups of 16k, 32k and 64k channels; WRN-28-2 is the network of
LaplaceNet and DRL A.6. Its hidden layer (global average pooling after the last group) is both the classifier's
feature for pseudo-labelling and the code of the DRL encoder E(x0, t) (DRL A.6). In the authors' code every block
adds a dense projection of a time embedding, the Gaussian Fourier projection of log sigma(t), and t is one
learnable scalar t = sigmoid(param_t) initialised at 0.5 rather than the diffusion time of the score network.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from diffrep.nets.unet import time_embedding

SigmaFn = Callable[[torch.Tensor], torch.Tensor]


def wrn_blocks(depth: int) -> int:
    """Blocks per group of WRN-depth-k: depth = 6 n + 4."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    return (depth - 4) // 6


class WideBlock(nn.Module):
    """Pre-activation residual block (BN, leaky ReLU, 3x3 conv, twice); the condition adds a per-channel bias.

    The bias enters after the second BatchNorm: added before it, a bias shared by the batch (one t per encoder)
    would be removed by the normalisation and t would change nothing.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, cond_dim: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.cond = nn.Linear(cond_dim, c_out) if cond_dim else None
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        act = nn.functional.leaky_relu(self.bn1(x), 0.1)
        h = self.bn2(self.conv1(act))
        if self.cond is not None:
            h = h + self.cond(nn.functional.silu(cond))[:, :, None, None]
        h = self.conv2(nn.functional.leaky_relu(h, 0.1))
        return h + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    """WRN-depth-width: `features` is the hidden layer, `classify` the logits, `forward` the encoder's (mean, logvar).

    `sigma` maps t to the noise scale whose log the time embedding projects; without it the blocks are not
    time-conditioned. `time_conditioned` stays False for `DRLModel`, because this encoder's t is its own
    parameter, not the diffusion time the score network is evaluated at.
    """

    time_conditioned = False

    def __init__(self, in_ch: int, num_classes: int, depth: int = 28, width: int = 2, emb_dim: int = 64,
                 sigma: SigmaFn | None = None, probabilistic: bool = False):
        super().__init__()
        n, widths = wrn_blocks(depth), [16 * width, 32 * width, 64 * width]
        self.sigma, self.probabilistic, self.code_dim = sigma, probabilistic, widths[-1]
        cond_dim = emb_dim if sigma is not None else 0
        self.temb = time_embedding(emb_dim) if sigma is not None else None
        self.param_t = nn.Parameter(torch.zeros(())) if sigma is not None else None  # sigmoid(0) = 0.5
        self.conv_in = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        blocks, prev = [], 16
        for g, ch in enumerate(widths):
            for j in range(n):
                blocks.append(WideBlock(prev, ch, 2 if g > 0 and j == 0 else 1, cond_dim))
                prev = ch
        self.blocks = nn.ModuleList(blocks)
        self.bn_out = nn.BatchNorm2d(prev)
        self.logvar = nn.Linear(prev, prev) if probabilistic else None
        self.fc = nn.Linear(prev, num_classes)

    @property
    def t(self) -> torch.Tensor:
        """The encoder's own time t = sigmoid(param_t)."""
        if self.param_t is None:
            raise ValueError("this WRN is not time-conditioned")
        return torch.sigmoid(self.param_t)

    def set_t(self, t: float) -> None:
        """param_t = logit(t), for the t-search (DRL A.6)."""
        with torch.no_grad():
            self.param_t.fill_(float(torch.logit(torch.tensor(t, dtype=torch.float64))))

    def _condition(self, batch: int) -> torch.Tensor | None:
        if self.temb is None:
            return None
        sigma = self.sigma(self.t.reshape(1).expand(batch))
        return self.temb(torch.log(sigma))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden layer: globally pooled activations of the last group."""
        cond, h = self._condition(x.shape[0]), self.conv_in(x)
        for block in self.blocks:
            h = block(h, cond)
        return nn.functional.leaky_relu(self.bn_out(h), 0.1).mean(dim=(2, 3))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def forward(self, x0: torch.Tensor, sigma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The code (mean, log-variance or None) for DRLModel / AutoEncoder; `sigma` of the diffusion is unused."""
        h = self.features(x0)
        return h, (self.logvar(h).clamp(-30.0, 20.0) if self.probabilistic else None)
