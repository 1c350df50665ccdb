"""ScoreVAE (Batzolis, Stanczuk, Schoenlieb): an encoder trained against a frozen unconditional prior, and its baselines.

Six plug-ins, all in the `scorevae` experiment and under its own SDE block (a VP SDE, beta 0.1 -> 20):
- `scorevae_prior`: the unconditional score model of DRL (`methods.score`) on pixels, lambda(t) = sigma_t^2, trained
  alone and then frozen.
- `scorevae`: the time-dependent Gaussian encoder q(z | x_t, t) (the DRL encoder with `time_conditioned` and
  `probabilistic`); the decoder score is the prior's plus grad_{x_t} log q by autograd (Bayes' rule for scores).
  Starts from the prior's model.pt (`--init`) and trains the encoder only.
- `scorevae_plus`: ScoreVAE+ (sec. 3.6), a corrector c(x_t, z, t) added to that score, trained with the same loss from
  the ScoreVAE model (`--init`) with encoder and prior frozen. The corrector is a code-conditioned score U-Net whose
  output layer starts at zero, so that training starts from ScoreVAE's decoder.
- `beta_vae`: the DRL encoder (static, Gaussian) and the mirrored decoder with a sigmoid output, the authors' loss
  ||x - x_hat||_2 + beta KL; reconstructs from z = mean.
- `diffdecoder` (beta KL, Gaussian code) and `diffdecoder_b0` (beta = 0, deterministic code): DRL/VDRL's model under
  the VP SDE, encoder and conditional score network trained jointly from scratch. The code enters the network as in
  DRL: four dense layers lift it to the time embedding's width, the two are concatenated, and every residual block
  adds a dense projection of that as a per-channel bias.

The diffusion models see images in [-1, 1] (DDPM's scaling, which the VP prior N(0, I) expects) and hand back
reconstructions in [0, 1]; the beta-VAE works on [0, 1] images, as its sigmoid decoder.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from diffrep.config import Config, latent_dim_of, own_budget
from diffrep.methods.autoencoder import AutoEncoder
from diffrep.methods.base import DataShape, Method, RunSpec, register
from diffrep.methods.drl import DRLModel
from diffrep.methods.score import Score, ScoreModel, score_loss, score_unet
from diffrep.nets.encoder import Decoder, Encoder
from diffrep.nets.unet import ScoreUNet
from diffrep.objectives import (
    LOSS_WEIGHTINGS,
    bayes_decoder_score,
    beta_vae_objective,
    encoder_log_density,
    reparameterize,
    scorevae_objective,
    uniform_t,
)
from diffrep.sampling import sample
from diffrep.sde import SDE, build_sde


def to_model(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], the diffusion models' scale."""
    return 2 * x - 1


def to_image(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], the scale the metrics are computed on."""
    return (x + 1) / 2


def experiment_sde(cfg: Config) -> SDE:
    """The SDE of the ScoreVAE experiment (its own block; `cfg.sde` stays DRL's)."""
    return build_sde(cfg.experiments.scorevae.sde)


def code_of(mean: torch.Tensor, logvar: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    """z ~ q(z | x0): a draw of a Gaussian code (ScoreVAE Fig. 1), the code itself when deterministic."""
    return mean if logvar is None else reparameterize(mean, logvar, generator)


class ConditionalDecoding:
    """Reconstruction by the conditional reverse SDE: encode x0, then Euler-Maruyama from t = 1 to eps with the
    decoder score, noise-free last step (ScoreVAE Fig. 1). Needs `sde`, `eps`, `encode_data` and `decoder_score`."""

    def reconstruct(self, x0: torch.Tensor, steps: int, generator: torch.Generator | None) -> torch.Tensor:
        z = code_of(*self.encode_data(to_model(x0)), generator)
        x, _ = sample(lambda x, t: self.decoder_score(x, t, z), self.sde, x0.shape, "em", steps, snr=0.0, eps=self.eps,
                      generator=generator, device=x0.device)
        return to_image(x)


class ScoreVAEModel(ConditionalDecoding, nn.Module):
    """Frozen prior s(x_t, t), encoder q(z | x_t, t) and, for ScoreVAE+, a corrector c(x_t, z, t)."""

    def __init__(self, prior: ScoreModel, encoder: Encoder, eps: float, full: bool, corrector: ScoreUNet | None = None):
        super().__init__()
        self.prior, self.encoder, self.corrector = prior, encoder, corrector
        self.sde, self.eps, self.full = prior.sde, eps, full
        self.prior.eval()

    def train(self, mode: bool = True) -> ScoreVAEModel:
        """The prior stays in evaluation mode (no dropout): it is frozen."""
        super().train(mode)
        self.prior.eval()
        return self

    def encode(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x_t, t) (eq. 12); t = 0 enters as the noise level at eps (log 0 is no input)."""
        return self.encoder(x, self.sde.noise_level(t.clamp(min=self.eps)))

    def encode_data(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x0, 0)."""
        return self.encode(x0, torch.zeros(x0.shape[0], device=x0.device))

    def log_q(self, z: torch.Tensor):
        """(x_t, t) -> log q(z | x_t, t) per sample, full or the authors' variant."""
        return lambda x, t: encoder_log_density(z, *self.encode(x, t), full=self.full)

    def decoder_score(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Prior score + grad log q (+ the corrector): sec. 3.3, 3.6; differentiable while the encoder trains."""
        create_graph = torch.is_grad_enabled() and next(self.encoder.parameters()).requires_grad
        score = bayes_decoder_score(self.prior.score_fn, self.log_q(z), xt, t, create_graph)
        if self.corrector is None:
            return score
        return score + self.corrector(xt, self.sde.noise_level(t), z)


class DiffDecoderModel(ConditionalDecoding, DRLModel):
    """DRL's encoder E(x0) and code-conditioned score network, decoded by the conditional reverse SDE."""

    def __init__(self, encoder: Encoder, score: ScoreUNet, sde: SDE, eps: float):
        super().__init__(encoder, score, sde)
        self.eps = eps

    def encode_data(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encode(x0, None)

    def decoder_score(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.score_fn(xt, t, z)


class BetaVAEModel(AutoEncoder):
    """The beta-VAE baseline: Gaussian encoder, decoder with a sigmoid output."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x0: torch.Tensor, steps: int, generator: torch.Generator | None) -> torch.Tensor:
        """The decoder at z = mean (the authors' evaluation); `steps` and `generator` are unused."""
        return self.decode(self.encode(x0)[0])


def diffusion_loss(cfg: Config, beta: float):
    """ScoreVAE L_beta for any model with `encode_data` and `decoder_score`: t ~ U(eps, 1), then the noise."""
    ex = cfg.experiments.scorevae
    sample_t, weighting = uniform_t(ex.sde.eps), LOSS_WEIGHTINGS[ex.weighting]

    def loss(m: nn.Module, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        x0 = to_model(x0)
        t = sample_t(x0.shape[0], g).to(x0.device)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        return scorevae_objective(m.decoder_score, m.encode_data, x0, t, m.sde, noise, g, beta, weighting(m.sde, t))

    return loss


def encoder(cfg: Config, spec: RunSpec, data: DataShape, time_conditioned: bool, probabilistic: bool) -> Encoder:
    """The DRL encoder sized by the dataset's network, with the experiment's latent dimension."""
    net, (c, h, _) = cfg.datasets[spec.dataset].net, data.image_shape
    return Encoder(c, h, net.channels, net.num_res_blocks, net.emb_dim,
                   latent_dim_of(cfg.experiments.scorevae, spec.dataset), net.code_hidden,
                   time_conditioned=time_conditioned, probabilistic=probabilistic)


class Budgeted:
    """A method whose iterations are one field of the ScoreVAE experiment (0: the dataset's)."""

    budget: ClassVar[str]

    def iterations(self, cfg: Config, spec: RunSpec) -> int:
        return own_budget(cfg, spec.dataset, spec.experiment, self.budget)


class ScorePrior(Budgeted, Score):
    """The unconditional prior (the DRL score model) under the experiment's VP SDE, lambda(t) = sigma_t^2."""

    name, experiments, options, budget = "scorevae_prior", ("scorevae",), frozenset(), "prior_iterations"

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> ScoreModel:
        return ScoreModel(score_unet(cfg, spec.dataset, data), experiment_sde(cfg))

    def loss(self, cfg: Config, spec: RunSpec, model: ScoreModel):
        plain = score_loss(cfg.experiments.scorevae.sde.eps)
        return lambda m, x0, g: plain(m, to_model(x0), g)


class ScoreVAE(Budgeted, Method):
    """ScoreVAE (sec. 3.5) or, `corrected`, ScoreVAE+ (sec. 3.6): trains the submodule `trains`, the rest frozen."""

    experiments, options = ("scorevae",), frozenset({"init"})

    def __init__(self, name: str, corrected: bool):
        self.name, self.corrected = name, corrected
        self.trains, self.budget = ("corrector", "corrector_iterations") if corrected else ("encoder", "encoder_iterations")
        self.init_prefix = "" if corrected else "prior."  # the model it starts from: ScoreVAE's, or the prior alone

    def check(self, spec: RunSpec) -> None:
        super().check(spec)
        if not spec.init:
            raise ValueError(f"{self.name} needs --init: the {'ScoreVAE model' if self.corrected else 'prior'}")

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> ScoreVAEModel:
        ex = cfg.experiments.scorevae
        prior = ScoreModel(score_unet(cfg, spec.dataset, data), experiment_sde(cfg))
        enc = encoder(cfg, spec, data, time_conditioned=True, probabilistic=True)
        corrector = score_unet(cfg, spec.dataset, data, latent_dim_of(ex, spec.dataset)) if self.corrected else None
        if corrector is not None:
            nn.init.zeros_(corrector.up.out[-1].weight)
            nn.init.zeros_(corrector.up.out[-1].bias)
        return ScoreVAEModel(prior, enc, ex.sde.eps, ex.log_density == "full", corrector)

    def loss(self, cfg: Config, spec: RunSpec, model: ScoreVAEModel):
        return diffusion_loss(cfg, cfg.experiments.scorevae.beta)

    def start_from(self, model: nn.Module, path: str) -> None:
        """Load the prior (or ScoreVAE) weights; only the trained submodule may be missing."""
        state = torch.load(path, map_location="cpu", weights_only=False)["state"]
        missing, unexpected = model.load_state_dict({self.init_prefix + k: v for k, v in state.items()}, strict=False)
        stray = [k for k in missing if not k.startswith(f"{self.trains}.")]
        if unexpected or stray:
            raise ValueError(f"{path} does not fit this model: missing {stray}, unexpected {unexpected}")

    def parameters(self, model: ScoreVAEModel, cfg: Config, spec: RunSpec) -> list:
        model.requires_grad_(False)
        return list(getattr(model, self.trains).requires_grad_(True).parameters())


class BetaVAE(Budgeted, Method):
    """The beta-VAE baseline (ScoreVAE sec. 4, App. B.2)."""

    name, experiments, budget = "beta_vae", ("scorevae",), "vae_iterations"

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> BetaVAEModel:
        net, (c, h, _) = cfg.datasets[spec.dataset].net, data.image_shape
        decoder = Decoder(c, h, net.channels, net.num_res_blocks, latent_dim_of(cfg.experiments.scorevae, spec.dataset),
                          net.code_hidden)
        return BetaVAEModel(encoder(cfg, spec, data, time_conditioned=False, probabilistic=True), decoder)

    def loss(self, cfg: Config, spec: RunSpec, model: BetaVAEModel):
        beta = cfg.experiments.scorevae.beta
        return lambda m, x0, g: beta_vae_objective(m.decode, m.encode, x0, g, beta)


class DiffDecoder(Budgeted, Method):
    """DiffDecoder (sec. 3.2): encoder and conditional score model trained jointly; Gaussian code with beta KL, or
    (`probabilistic` False) a deterministic code with beta = 0."""

    experiments, budget = ("scorevae",), "diffdecoder_iterations"

    def __init__(self, name: str, probabilistic: bool):
        self.name, self.probabilistic = name, probabilistic

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> DiffDecoderModel:
        ex = cfg.experiments.scorevae
        enc = encoder(cfg, spec, data, time_conditioned=False, probabilistic=self.probabilistic)
        score = score_unet(cfg, spec.dataset, data, latent_dim_of(ex, spec.dataset))
        return DiffDecoderModel(enc, score, experiment_sde(cfg), ex.sde.eps)

    def loss(self, cfg: Config, spec: RunSpec, model: DiffDecoderModel):
        return diffusion_loss(cfg, cfg.experiments.scorevae.beta if self.probabilistic else 0.0)


register(ScorePrior())
register(ScoreVAE("scorevae", corrected=False))
register(ScoreVAE("scorevae_plus", corrected=True))
register(BetaVAE())
register(DiffDecoder("diffdecoder", probabilistic=True))
register(DiffDecoder("diffdecoder_b0", probabilistic=False))
