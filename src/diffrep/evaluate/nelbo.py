"""LSGM's evaluation: NELBO = reconstruction + E[log q(z_0 | x)] - log p(z_0) with log p(z_0) by the probability-flow ODE
on the latent (LSGM eq. 6, sec. 5), the VAE backbone's NELBO with its exact KL beside it, and samples by the ODE from
N(0, I) at a given tolerance, decoded with the decoder mean (sec. 5, Fig. 4, 5).

One latent sample per image, as the authors: the NELBO estimate is unbiased, the NLL only bounded by it.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from diffrep.likelihood import bits_per_dim, log_likelihood
from diffrep.objectives import (
    gaussian_log_density,
    kl_penalty,
    reparameterize,
)
from diffrep.sampling import DEFAULT_EPS, CountedScore, _times, sample, solve_ode
from diffrep.sde import SDE
from diffrep.train import DIVERGENCE


def encode_sample(model, x: torch.Tensor, generator: torch.Generator):
    """The observed x (binarized afresh where the run is), q's mean and log-variance, and one z_0 ~ q(z_0 | x)."""
    x = model.observe(x, generator)
    mean, logvar = model.vae.encoder(x)
    return x, mean, logvar, reparameterize(mean, logvar, generator)


def flat(score_fn, shape):
    """The latent score on flattened latents (N, D): `log_likelihood` integrates its divergence per row of a matrix."""
    return lambda z, t: score_fn(z.reshape(-1, *shape[1:]), t).flatten(1)


@torch.no_grad()
def lsgm_nelbo(model, x: torch.Tensor, generator: torch.Generator, *, eps: float, tolerance: float,
               noise: str = "fresh") -> tuple[torch.Tensor, int]:
    """NELBO per image in nats (LSGM eq. 6), log p(z_0) by the ODE (Hutchinson, Gaussian probes), and the NFE."""
    x, mean, logvar, z0 = encode_sample(model, x, generator)
    rec = model.reconstruction(z0, x)
    log_p, nfe = log_likelihood(flat(model.prior.score_fn, z0.shape), model.prior.sde, z0.flatten(1), eps=eps,
                                rtol=tolerance, atol=tolerance, noise=noise, generator=generator)
    return (rec + gaussian_log_density(z0, mean, logvar)).double() - log_p.cpu(), nfe


@torch.no_grad()
def backbone_nelbo(model, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The VAE backbone's NELBO per image in nats: reconstruction + KL(q(z_0 | x) || N(0, I)), the KL exact."""
    x, mean, logvar, z0 = encode_sample(model, x, generator)
    return (model.reconstruction(z0, x) + kl_penalty(mean, logvar)).double()


def in_units(nats: torch.Tensor, dims: int, binary: bool) -> tuple[list[float], str]:
    """Each image's NELBO as the papers report it: nats per image for binarized data, bits/dim otherwise (one latent
    sample and one Hutchinson probe each, so the report can tell a difference from the estimate's noise)."""
    return (nats.tolist(), "nats") if binary else (bits_per_dim(nats, dims).tolist(), "bits/dim")


def ode_samples(score_fn, sde: SDE, shape, *, eps: float, tolerance: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, int, float]:
    """The probability-flow ODE from N(0, I) at t = 1 to eps by RK45 at rtol = atol = tolerance: samples, NFE, seconds."""
    counted = CountedScore(score_fn)
    drift = sde.reverse(counted, probability_flow=True).sde
    start = time.perf_counter()
    x = solve_ode(lambda t, z: drift(z, _times(t, z))[0], sde.prior_sampling(shape, generator), sde.T, eps,
                  rtol=tolerance, atol=tolerance).float()
    return x, counted.calls, time.perf_counter() - start


@torch.no_grad()
def lsgm_samples(model, n: int, latent_shape, *, eps: float, tolerance: float,
                 generator: torch.Generator | None) -> tuple[torch.Tensor, int, float]:
    """LSGM samples: the latent ODE from N(0, I), decoded with the decoder mean (LSGM sec. 5); NFE and seconds."""
    z, nfe, seconds = ode_samples(model.prior.score_fn, model.prior.sde, (n, *latent_shape), eps=eps,
                                  tolerance=tolerance, generator=generator)
    start = time.perf_counter()
    x = model.decode(z)
    return x.clamp(0, 1), nfe, seconds + time.perf_counter() - start


@torch.no_grad()
def backbone_samples(model, n: int, latent_shape, generator: torch.Generator | None) -> tuple[torch.Tensor, int, float]:
    """The VAE backbone's samples: z_0 ~ N(0, I) decoded with the decoder mean (LSGM Table 2's 'VAE backbone')."""
    start = time.perf_counter()
    x = model.decode(torch.randn(n, *latent_shape, generator=generator))
    return x.clamp(0, 1), 0, time.perf_counter() - start


def nelbo_on_test_split(model, x_test: torch.Tensor, s, seed: int) -> dict:
    """Mean NELBO on the test images in the papers' units, the backbone's (exact KL) beside it, and the ODE's NFE."""
    g, binary, dims = torch.Generator().manual_seed(seed), model.binary, x_test[0].numel()
    ours, backbone, nfe = [], [], 0
    for x in x_test.split(s.eval_batch):
        backbone.append(backbone_nelbo(model, x, g))
        if model.prior is not None:
            nats, calls = lsgm_nelbo(model, x, g, eps=s.ode_eps, tolerance=s.ode_tolerance, noise=s.hutchinson)
            ours, nfe = ours + [nats], nfe + calls
    values, units = in_units(torch.cat(ours or backbone), dims, binary)
    base = in_units(torch.cat(backbone), dims, binary)[0]
    return {"nelbo": float(np.mean(values)), "backbone_nelbo": float(np.mean(base)), "units": units,
            "per_image": values, "backbone_per_image": base,
            "nfe": nfe, "images": len(x_test)}


def model_samples(model, n: int, latent_shape, s, tolerance: float, seed: int) -> tuple[torch.Tensor, dict]:
    """Samples of an LSGM (latent ODE at `tolerance`) or of its backbone (N(0, I)), with their NFE and seconds."""
    g = torch.Generator().manual_seed(seed)
    if model.prior is None:
        x, nfe, seconds = backbone_samples(model, n, latent_shape, g)
    else:
        x, nfe, seconds = lsgm_samples(model, n, latent_shape, eps=s.ode_eps, tolerance=tolerance, generator=g)
    return x, {"nfe": nfe, "seconds": seconds, "tolerance": tolerance}


@torch.no_grad()
def data_space_samples(score_model, n: int, image_shape, method: str, tolerance: float, steps: int, snr: float,
                       seed: int) -> tuple[torch.Tensor, dict]:
    """The data-space score model sampled by PC (`steps` steps) or by the ODE at `tolerance` (LSGM Fig. 4's SGM)."""
    g, shape = torch.Generator().manual_seed(seed), (n, *image_shape)
    start = time.perf_counter()
    if method == "ode":
        x, nfe, _ = ode_samples(score_model.score_fn, score_model.sde, shape, eps=DEFAULT_EPS, tolerance=tolerance,
                                generator=g)
    else:
        x, nfe = sample(score_model.score_fn, score_model.sde, shape, method, steps, snr=snr, generator=g)
    return x.clamp(0, 1), {"nfe": nfe, "seconds": time.perf_counter() - start, "tolerance": tolerance}


def run_record(model_path: str | Path, spec, variant) -> dict:
    """What identifies a run in the report: its variant, whether the VAE was frozen, and its divergence if any."""
    path = Path(model_path).with_name(DIVERGENCE)
    divergence = json.loads(path.read_text()) if path.is_file() else {"diverged": False, "step": None, "loss": None}
    cell = dict(zip(("sde", "prior_scheme", "encoder_t"), variant.cell.split("-"))) if variant.cell else {}
    table6 = bool(variant.cell) and variant.mixed and not variant.binary and not spec.freeze_encoder
    return {"run": Path(model_path).parent.name, "method": spec.method, "cell": variant.cell, **cell,
            "mixed": variant.mixed, "binary": variant.binary, "frozen": spec.freeze_encoder, "table6": table6,
            **divergence}


def active_channels(model) -> int | None:
    """How many latent channels the prior models (the rest were switched off at stage 2's start); None: no prior."""
    return None if model.prior is None else int(model.prior.active.sum())


def evaluate_run(model_path: str | Path, x_test: torch.Tensor, s) -> tuple[dict, torch.Tensor, dict]:
    """A run's test NELBO record and its samples (a diverged run: NaN, and its backbone's samples as placeholders)."""
    from diffrep.methods.base import method_named
    from diffrep.methods.run import load_model

    model, spec, _ = load_model(model_path)
    record = run_record(model_path, spec, method_named(spec.method).variant)
    latent = model.latent_shape(model.image_shape)
    if record["diverged"]:
        x, meta = model_samples(model.__class__(model.vae, None, model.binary, model.pad), s.samples, latent, s, 0.0, s.seed)
        return {**record, "nelbo": math.nan, "backbone_nelbo": math.nan, "units": "", "nfe": 0}, x, meta
    record.update(nelbo_on_test_split(model, x_test, s, s.seed), active_channels=active_channels(model))
    x, meta = model_samples(model, s.samples, latent, s, s.ode_tolerance, s.seed)
    return record, x, meta
