"""Wide ResNet (Zagoruyko & Komodakis) as LaplaceNet's classifier and the DRL encoder of the semi-supervised runs.

WRN-d-k has (d - 4) / 6 blocks in each of three groups of 16k, 32k and 64k channels; WRN-28-2 is the network of
LaplaceNet and DRL A.6. Its hidden layer (global average pooling after the last group) is both the classifier's
feature for pseudo-labelling and the code of the DRL encoder E(x0, t) (DRL A.6). As in the authors' code
(`korabs-x/representation_score_based`), every block adds a dense projection of a time embedding, the Gaussian
Fourier projection of log sigma(t), after its first convolution and before its second BatchNorm. In pretraining t is
each sample's own diffusion time; in LaplaceNet one learnable scalar t = sigmoid(param_t), reset to 0.5 (or the
t-search's value) when loading, replaces it, and since the whole batch shares it the BatchNorm removes it: in
fine-tuning t changes nothing and gets no gradient. VDRL's Gaussian code comes from a separate head on the hidden
layer (mean and log-variance), which LaplaceNet drops, so the classifier's feature is never noised.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from diffrep.nets.unet import time_embedding

SigmaFn = Callable[[torch.Tensor], torch.Tensor]
LAPLACENET_T = 0.5  # the encoder's own t when LaplaceNet loads a pretraining (the authors' logit(0.5))


def wrn_blocks(depth: int) -> int:
    """Blocks per group of WRN-depth-k: depth = 6 n + 4."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    return (depth - 4) // 6


class WideBlock(nn.Module):
    """Pre-activation residual block (BN, leaky ReLU, 3x3 conv, twice); the condition adds a per-channel bias
    after the first convolution, before the second BatchNorm (the authors' place: a bias the whole batch shares
    is removed)."""

    def __init__(self, c_in: int, c_out: int, stride: int, cond_dim: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.cond = nn.Linear(cond_dim, c_out) if cond_dim else None
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        act = nn.functional.leaky_relu(self.bn1(x), 0.1)
        h = self.conv1(act)
        if self.cond is not None:
            h = h + self.cond(nn.functional.silu(cond))[:, :, None, None]
        h = self.conv2(nn.functional.leaky_relu(self.bn2(h), 0.1))
        return h + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    """WRN-depth-width: `features` is the hidden layer, `classify` the logits, `forward` the encoder's (mean, logvar).

    `sigma` maps t to the noise scale whose log the time embedding projects; without it the blocks are not
    time-conditioned. `forward` takes each sample's noise scale (pretraining, E(x0, t)); `features` and `classify`
    without one use the encoder's own t = sigmoid(param_t) (LaplaceNet).
    """

    def __init__(self, in_ch: int, num_classes: int, depth: int = 28, width: int = 2, emb_dim: int = 64,
                 sigma: SigmaFn | None = None, probabilistic: bool = False):
        super().__init__()
        n, widths = wrn_blocks(depth), [16 * width, 32 * width, 64 * width]
        self.sigma, self.probabilistic, self.code_dim = sigma, probabilistic, widths[-1]
        self.time_conditioned = sigma is not None
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
        self.head = nn.Linear(prev, 2 * prev) if probabilistic else None  # VDRL: (mean, log-variance)
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

    def _condition(self, batch: int, sigma: torch.Tensor | None) -> torch.Tensor | None:
        """The time embedding of each sample's noise scale, or of the encoder's own t where none is given."""
        if self.temb is None:
            return None
        if sigma is None:
            sigma = self.sigma(self.t.reshape(1).expand(batch))
        return self.temb(torch.log(sigma))

    def features(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """The hidden layer: globally pooled activations of the last group."""
        cond, h = self._condition(x.shape[0], sigma), self.conv_in(x)
        for block in self.blocks:
            h = block(h, cond)
        return nn.functional.leaky_relu(self.bn_out(h), 0.1).mean(dim=(2, 3))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def forward(self, x0: torch.Tensor, sigma: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The code (mean, log-variance or None) for DRLModel / AutoEncoder at each sample's noise scale `sigma`."""
        h = self.features(x0, sigma)
        if self.head is None:
            return h, None
        mean, logvar = self.head(h).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)
