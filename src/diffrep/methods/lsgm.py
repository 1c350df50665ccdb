"""LSGM (Vahdat, Kreis, Kautz 2021) as plug-ins: stage 1 trains the VAE backbone with a N(0, I) prior and an annealed
KL coefficient; stage 2 (from the stage-1 model, `--init`) adds the latent score prior with the mixed score and trains
all end to end, the encoder and decoder by eq. 8, the prior by eq. 9.

A run's variant is its method's name, one registered plug-in per variant: `lsgm-vae[-binary]` for stage 1 and
`lsgm-<sde>-<prior scheme>-<encoder t>[-nomix][-binary]` for stage 2 (a Table 6 cell, `config.LSGM_CELLS`); `-binary`
trains on dynamically binarized images (a Bernoulli decoder), `-nomix` drops the mixed score (sec. 5.2), and
`--freeze-encoder` freezes the whole VAE in stage 2 (sec. 5.2). A stage-2 run whose loss goes non-finite is a result
(Table 6's NaN cells): the loop records it and stops instead of failing the job.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from diffrep.config import LSGM_CELLS, Config, LSGMExperiment, lsgm_method, snapshot_steps
from diffrep.methods.base import DataShape, Method, RunSpec, register
from diffrep.nets.unet import ScoreUNet
from diffrep.nets.vae import VAE, decoder_mean
from diffrep.objectives import (
    LSGM_SCHEMES,
    binarize,
    cross_entropy_constant,
    discrete_nll,
    gaussian_neg_entropy,
    kl_coefficient,
    kl_penalty,
    kl_per_channel,
    ll_iw,
    mixed_eps,
    reparameterize,
    weighted_eps_matching,
)
from diffrep.sde import VPFamilySDE, build_sde
from diffrep.train import Schedule


@dataclass(frozen=True)
class Variant:
    """One LSGM run's kind: stage 1 (cell "") or a stage-2 Table 6 cell; mixed score or none; binarized or not."""

    cell: str = ""
    mixed: bool = True
    binary: bool = False

    @property
    def name(self) -> str:
        return lsgm_method(self.cell, self.mixed, self.binary)

    @property
    def sde_kind(self) -> str:
        return self.cell.split("-")[0]

    @property
    def prior_scheme(self) -> str:
        return self.cell.split("-")[1]

    @property
    def encoder_t(self) -> str:
        return self.cell.split("-")[2]


OFF_LOGIT = -15.0  # the mixing logit of a switched-off channel: its prior is N(0, I) (the authors')


class LatentPrior(nn.Module):
    """The SGM prior on z: eps_theta(z_t, t) from a score U-Net, mixed with the N(0, I) score (LSGM sec. 3.2) or not."""

    def __init__(self, score: ScoreUNet, sde: VPFamilySDE, channels: int, mixing_logit: float | None):
        super().__init__()
        self.score, self.sde = score, sde
        self.mixing_logit = None if mixing_logit is None else nn.Parameter(torch.full((channels,), float(mixing_logit)))
        self.register_buffer("active", torch.ones(channels, dtype=torch.bool))

    def forward(self, zt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps_theta(z_t, t); the U-Net returns the score, so eps'(z_t, t) = -sigma_t * its output."""
        std = self.sde.noise_level(t)
        eps_prime = -std.reshape(-1, 1, 1, 1) * self.score(zt, std)
        if self.mixing_logit is None:
            return eps_prime
        logit = torch.where(self.active, self.mixing_logit, torch.full_like(self.mixing_logit, OFF_LOGIT))
        return mixed_eps(zt, std, eps_prime, logit)

    def switch_off(self, kl: torch.Tensor, threshold: float) -> None:
        """Hold the channels whose mean KL is at most `threshold` at the N(0, I) prior (LSGM App. G)."""
        if self.mixing_logit is not None:
            self.active &= kl.to(self.active.device) > threshold

    def score_fn(self, zt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """grad log p(z_t) = -eps_theta(z_t, t) / sigma_t (LSGM sec. 3.2): what the ODE sampler and likelihood take."""
        return -self(zt, t) / self.sde.noise_level(t).reshape(-1, 1, 1, 1)


class LSGMModel(nn.Module):
    """The VAE and, in stage 2, its latent prior; `step` counts the run's steps (the KL coefficient's schedule)."""

    def __init__(self, vae: VAE, prior: LatentPrior | None, binary: bool, pad: tuple[int, int] = (0, 0)):
        super().__init__()
        self.vae, self.prior, self.binary, self.pad = vae, prior, binary, pad
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.logged: dict[str, float] = {}

    def observe(self, x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """What the VAE sees: a fresh binarization per draw for binarized runs (LSGM sec. 5.1), padded with zeros
        where the authors pad (MNIST to 32 x 32)."""
        x = binarize(x0, generator) if self.binary else x0
        return nn.functional.pad(x, 2 * self.pad) if any(self.pad) else x

    def encode(self, x0: torch.Tensor, t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z_0 | x), flattened: the code LSGM's encoder gives an image (gray-level runs see
        x itself; binarized runs a fresh draw of it)."""
        mean, logvar = self.vae.encoder(self.observe(x0, None))
        return mean.flatten(1), logvar.flatten(1)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The pixels inside the padding: the likelihood and the samples are of the original image."""
        before, after = self.pad
        return x[..., before:x.shape[-2] - after, before:x.shape[-1] - after]

    def reconstruction(self, z0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z_0) per image, on the original pixels."""
        return discrete_nll(self.crop(self.vae.decoder(z0)), self.crop(x))

    def decode(self, z0: torch.Tensor) -> torch.Tensor:
        """The decoder mean, the image a sample is shown as."""
        return decoder_mean(self.crop(self.vae.decoder(z0)))

    def latent_shape(self, image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """The latent's (channels, h, w) for the (unpadded) images of `image_shape`."""
        c, h, w = image_shape
        return self.vae.latent_shape((c, h + sum(self.pad), w + sum(self.pad)))

    def log_values(self) -> dict[str, float]:
        """The KL coefficient and the batch's NELBO beside the training loss."""
        return dict(self.logged)


def settings(cfg: Config) -> LSGMExperiment:
    return cfg.experiments.lsgm


def lsgm_sde(cfg: Config, variant: Variant) -> VPFamilySDE:
    """The run's SDE: the experiment's SDE block with the cell's kind (vp or geometric_vp)."""
    return build_sde(dataclasses.replace(settings(cfg).sde, kind=variant.sde_kind))


def build_lsgm(cfg: Config, variant: Variant, dataset: str, data: DataShape) -> LSGMModel:
    """The VAE (gray levels from the config; 2 when binarized) and, for a cell, the latent prior."""
    s = settings(cfg)
    levels = 2 if variant.binary else s.levels[dataset]
    vae = VAE(data.image_shape[0], s.vae.channels, s.vae.num_res_blocks, s.latent_channels, levels)
    prior = None
    if variant.cell:
        net = ScoreUNet(s.latent_channels, s.prior.channels, s.prior.num_res_blocks, s.prior.emb_dim,
                        dropout=s.prior.dropout)
        prior = LatentPrior(net, lsgm_sde(cfg, variant), s.latent_channels, s.mixing_logit if variant.mixed else None)
    return LSGMModel(vae, prior, variant.binary, padding(s.pad_to.get(dataset, 0), data.image_shape[1]))


def padding(side: int, size: int) -> tuple[int, int]:
    """Zeros before and after each image side that make `size` pixels `side` (none for side 0)."""
    if side and side < size:
        raise ValueError(f"lsgm.pad_to: {side} is smaller than the images' side {size}")
    extra = max(0, side - size)
    return extra // 2, extra - extra // 2


def stage1_loss(s: LSGMExperiment):
    """The VAE with a N(0, I) prior: reconstruction + beta KL, beta rising from kl_start to kl_stage1 (LSGM App. G)."""

    def loss(m: LSGMModel, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        x = m.observe(x0, g)
        beta = kl_coefficient(int(m.step), s.stage1_iterations, s.kl_start, s.kl_stage1)
        m.step += 1
        mean, logvar = m.vae.encoder(x)
        rec, kl = m.reconstruction(reparameterize(mean, logvar, g), x), kl_penalty(mean, logvar)
        m.logged = {"kl_coef": beta, "nelbo": float((rec + kl).mean().detach())}
        return rec + beta * kl

    return loss


def frozen_prior(prior: LatentPrior):
    """eps_theta with the prior's parameters held fixed: the encoder's cross entropy (eq. 8) trains phi, not theta."""
    params = {k: v.detach() for k, v in prior.named_parameters()}
    return lambda zt, t: functional_call(prior, params, (zt, t))


def encoder_draw(variant: Variant, prior_draw, sde: VPFamilySDE, eps: float, z0: torch.Tensor, noise: torch.Tensor,
                 g: torch.Generator):
    """The encoder's t and noise: the prior's, reweighted to w_ll ("rew."), or its own from r_ll (Table 6)."""
    if variant.encoder_t == "rew":
        return prior_draw, noise
    return ll_iw(sde, eps, z0.shape[0], g), torch.randn(z0.shape, generator=g).to(z0.device)


def stage2_loss(s: LSGMExperiment, variant: Variant, sde: VPFamilySDE):
    """Eq. 8 for the VAE (reconstruction + beta (negative entropy + cross entropy with w_ll)) plus eq. 9 for the prior
    (its weighting and t-sampling); beta rises from kl_stage1 to 1 over the first kl_anneal of stage 2 (App. G)."""
    scheme, eps, anneal = LSGM_SCHEMES[variant.prior_scheme], s.sde.eps, round(s.kl_anneal * s.stage2_iterations)

    def loss(m: LSGMModel, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        x = m.observe(x0, g)
        beta = kl_coefficient(int(m.step), anneal, s.kl_stage1, 1.0)
        mean, logvar = m.vae.encoder(x)
        if int(m.step) == 0 and s.inactive_kl > 0:
            m.prior.switch_off(kl_per_channel(mean.detach(), logvar.detach()), s.inactive_kl)
        m.step += 1
        z0 = reparameterize(mean, logvar, g)
        rec = m.reconstruction(z0, x)
        draw = scheme(sde, eps, z0.shape[0], g)
        noise = torch.randn(z0.shape, generator=g).to(z0.device)
        ce_prior = weighted_eps_matching(m.prior, z0.detach(), sde, draw.t.to(z0), draw.prior_weight.to(z0), noise)
        q_draw, q_noise = encoder_draw(variant, draw, sde, eps, z0, noise, g)
        ce = weighted_eps_matching(frozen_prior(m.prior), z0, sde, q_draw.t.to(z0), q_draw.likelihood_weight.to(z0),
                                   q_noise) + cross_entropy_constant(sde, eps, z0[0].numel())
        kl = gaussian_neg_entropy(logvar) + ce
        m.logged = {"kl_coef": beta, "nelbo": float((rec + kl).mean().detach())}
        return rec + beta * kl + ce_prior

    return loss


class LSGM(Method):
    """One LSGM variant: stage 1 (the VAE backbone) or a stage-2 cell; see the module's docstring."""

    experiments = ("lsgm",)

    def __init__(self, variant: Variant):
        self.variant, self.name = variant, variant.name
        self.options = frozenset({"init", "freeze_encoder"} if variant.cell else ())

    def check(self, spec: RunSpec) -> None:
        super().check(spec)
        if self.variant.cell and not spec.init:
            raise ValueError(f"{self.name} is a stage-2 run: it needs --init, the stage-1 VAE (lsgm-vae)")

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> LSGMModel:
        return build_lsgm(cfg, self.variant, spec.dataset, data)

    def loss(self, cfg: Config, spec: RunSpec, model: LSGMModel):
        s = settings(cfg)
        return stage2_loss(s, self.variant, model.prior.sde) if self.variant.cell else stage1_loss(s)

    def iterations(self, cfg: Config, spec: RunSpec) -> int:
        s = settings(cfg)
        return s.stage2_iterations if self.variant.cell else s.stage1_iterations

    def batch_size(self, cfg: Config, spec: RunSpec) -> int:
        return settings(cfg).batch_size

    def schedule(self, cfg: Config, spec: RunSpec) -> Schedule:
        """The experiment's own budget and rates; a stage-2 divergence is recorded, not raised (Table 6's NaN)."""
        s, tr = settings(cfg), cfg.train
        lr, final = (s.lr_prior, s.lr_final_stage2) if self.variant.cell else (s.lr_vae, s.lr_final_stage1)
        iterations = self.iterations(cfg, spec)
        return Schedule(iterations, self.batch_size(cfg, spec), lr, s.warmup, tr.grad_clip, s.ema,
                        tr.checkpoint_every, tr.log_every, spec.seed, divergence_is_result=bool(self.variant.cell),
                        final_lr_scale=final, snapshot_steps=snapshot_steps(iterations, s.snapshots))

    def parameters(self, model: LSGMModel, cfg: Config, spec: RunSpec) -> list:
        """Stage 2: the VAE at lr_vae_stage2 (none when frozen, sec. 5.2), the prior at lr_prior."""
        if not self.variant.cell:
            return list(model.parameters())
        s = settings(cfg)
        model.vae.requires_grad_(not spec.freeze_encoder)
        vae = [] if spec.freeze_encoder else [{"params": list(model.vae.parameters()),
                                               "lr_scale": s.lr_vae_stage2 / s.lr_prior}]
        return vae + [{"params": list(model.prior.parameters())}]

    def start_from(self, model: LSGMModel, path: str) -> None:
        """Stage 2 starts from the stage-1 VAE: only the prior is new, and the step count starts again."""
        state = torch.load(path, map_location="cpu", weights_only=False)["state"]
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ValueError(f"{path} does not fit this model: {exc}") from None
        if unexpected or [k for k in missing if not k.startswith("prior.")]:
            raise ValueError(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")
        model.step.zero_()


def variants() -> list[Variant]:
    """Every LSGM variant: stage 1 and each Table 6 cell, each with and without binarization (and the mixed score)."""
    stage1 = [Variant(binary=b) for b in (False, True)]
    return stage1 + [Variant(c, m, b) for c in LSGM_CELLS for m in (True, False) for b in (False, True)]


for _variant in variants():
    register(LSGM(_variant))
