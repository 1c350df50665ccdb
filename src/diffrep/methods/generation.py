"""Samples of the unconditional score model (DRL sec. 4.2, 4.3, Table 2, 3) and its loss per t (Fig. 13)."""
from __future__ import annotations

import sys

import torch
from tqdm import tqdm

from diffrep.config import SamplingConfig
from diffrep.methods.base import device_of
from diffrep.methods.score import ScoreModel, dsm_loss
from diffrep.sampling import sample


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
    device = device_of(model)
    steps = sampling_steps(cfg.steps, t_init)
    out, nfe = [], 0
    for start in tqdm(range(0, n, cfg.batch_size), desc=f"sampling t_init={t_init} {prior}", file=sys.stderr):
        shape = (min(cfg.batch_size, n - start), *image_shape)
        x, nfe = sample(model.score_fn, model.sde, shape, cfg.method, steps, snr=cfg.snr, t_init=t_init,
                        prior=prior, generator=g, device=device)
        out.append(x.clamp(0, 1).cpu())
    return torch.cat(out), nfe
