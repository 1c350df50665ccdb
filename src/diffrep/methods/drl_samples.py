"""Samples of code-conditioned DRL models: over a grid of 2-d codes (DRL Fig. 2a, 3a, 5a, 7a), for one code as the
code's dimension grows (Fig. 10), and denoising a perturbed image with the code of another image (Fig. 9)."""
from __future__ import annotations

import torch

from diffrep.config import SamplingConfig
from diffrep.methods.base import device_of
from diffrep.methods.drl import DRLModel
from diffrep.methods.generation import sampling_steps
from diffrep.sampling import sample


def conditional_score(model: DRLModel, z: torch.Tensor):
    """s(x_t, t, z) for one code per sample, as the sampler's score_fn(x, t); x lives on the model's device."""
    z = z.to(device_of(model))
    return lambda x, t: model.score_fn(x, t, z)


def code_grid(codes: torch.Tensor, side: int) -> torch.Tensor:
    """side x side codes spanning the 5-95 % range of 2-d test codes, first dimension along rows."""
    lo, hi = torch.quantile(codes, 0.05, dim=0), torch.quantile(codes, 0.95, dim=0)
    a, b = torch.linspace(lo[0], hi[0], side), torch.linspace(lo[1], hi[1], side)
    return torch.cartesian_prod(a, b)


@torch.no_grad()
def code_grid_samples(model: DRLModel, codes: torch.Tensor, side: int, cfg: SamplingConfig, image_shape,
                      seed: int = 0) -> torch.Tensor:
    """One sample per code of the grid, all from the same prior draw so that only the code varies."""
    g = torch.Generator().manual_seed(seed)
    z = code_grid(codes, side)
    x_init = model.sde.prior_sampling((1, *image_shape), g).expand(len(z), *image_shape)
    x, _ = sample(conditional_score(model, z), model.sde, x_init.shape, cfg.method, cfg.steps, snr=cfg.snr,
                  generator=g, x_init=x_init, device=device_of(model))
    return x.clamp(0, 1).cpu()


@torch.no_grad()
def denoise_with_codes(model: DRLModel, x0: torch.Tensor, other: torch.Tensor, t: float, cfg: SamplingConfig,
                       seed: int = 0) -> dict[str, torch.Tensor]:
    """DRL Fig. 9: x_t of x0 denoised from t with x0's own code and with the code of another image."""
    g = torch.Generator().manual_seed(seed)
    xt = model.sde.perturb(x0, torch.full((len(x0),), t), torch.randn(x0.shape, generator=g))
    steps = sampling_steps(cfg.steps, t)
    out = {"x0": x0, "xt": xt.clamp(0, 1), "other": other}
    for name, source in (("own code", x0), ("other code", other)):
        z, _ = model.encode(source.to(device_of(model)), None)
        x, _ = sample(conditional_score(model, z), model.sde, xt.shape, cfg.method, steps, snr=cfg.snr, t_init=t,
                      generator=g, x_init=xt, device=device_of(model))
        out[name] = x.clamp(0, 1).cpu()
    return out


@torch.no_grad()
def samples_per_code(model: DRLModel, x0: torch.Tensor, n: int, cfg: SamplingConfig, seed: int = 0) -> torch.Tensor:
    """DRL Fig. 10: n samples for the code of each image in x0, shape (images, n, C, H, W)."""
    g = torch.Generator().manual_seed(seed)
    z, _ = model.encode(x0.to(device_of(model)), None)
    z = z.repeat_interleave(n, dim=0)
    shape = (len(z), *x0.shape[1:])
    x, _ = sample(conditional_score(model, z), model.sde, shape, cfg.method, cfg.steps, snr=cfg.snr, generator=g,
                  device=device_of(model))
    return x.clamp(0, 1).cpu().reshape(len(x0), n, *x0.shape[1:])


def code_spreads(samples: torch.Tensor) -> torch.Tensor:
    """Diversity of the samples of each code (codes, samples, ...): the per-pixel standard deviation over them,
    averaged over pixels."""
    return samples.flatten(2).std(dim=1).mean(dim=1)


def sample_spread(samples: torch.Tensor) -> float:
    """The spread of the samples of one code (`code_spreads`), averaged over codes."""
    return code_spreads(samples).mean().item()
