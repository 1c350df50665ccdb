"""How DRL/VDRL and the AE/VAE baselines assemble the parts into trainable runs.

A run is named by its experiment (latent, sweep, fewshot), method (drl, vdrl, ae, vae), t-sampling scheme,
seed, and optionally a phase-1 model whose encoder it keeps frozen (DRL Fig. 3/7, second phase).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from diffrep.config import Config, to_dict
from diffrep.io import atomic_path
from diffrep.methods.generation import (
    ScoreModel,
    adversarial_loss,
    param_groups,
    score_loss,
)
from diffrep.nets.encoder import Decoder, Encoder
from diffrep.nets.unet import ScoreUNet
from diffrep.objectives import drl_objective, reconstruction_objective, t_sampler
from diffrep.sde import build_sde
from diffrep.train import Schedule, State, fit, new_state, pick_device

EXPERIMENTS = ("latent", "sweep", "fewshot", "codedim", "generation", "adversarial", "semisup")
METHODS = ("drl", "vdrl", "ae", "vae", "score")
SCHEMES = ("uniform_t", "uniform_sigma", "fixed")


@dataclass
class RunSpec:
    """Everything that makes one trained model, besides the resolved config."""

    dataset: str
    experiment: str
    method: str
    scheme: str = "uniform_t"
    t: float | None = None
    seed: int = 0
    init: str | None = None
    freeze_encoder: bool = False
    p_kl: float | None = None
    code_dim: int | None = None

    def __post_init__(self):
        if self.experiment not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {self.experiment!r}; known: {EXPERIMENTS}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; known: {METHODS}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown t-sampling scheme {self.scheme!r}; known: {SCHEMES}")
        if self.scheme == "fixed" and self.t is None:
            raise ValueError("the 'fixed' scheme needs --t")
        if self.freeze_encoder and not self.init:
            raise ValueError("--freeze-encoder needs --init, the phase-1 model whose encoder is kept")
        if self.p_kl is not None and (self.method != "score" or not self.init):
            raise ValueError("--p-kl (adversarial lambda) needs --method score and --init, the pretrained score model")
        if (self.code_dim is not None) != (self.experiment == "codedim"):
            raise ValueError("--code-dim goes with --experiment codedim, and that experiment needs it")


class DRLModel(nn.Module):
    """Encoder E(x0) or E(x0, t) and the code-conditioned score network s(x_t, t, z)."""

    def __init__(self, encoder: Encoder, score: ScoreUNet, sde):
        super().__init__()
        self.encoder, self.score, self.sde = encoder, score, sde

    def encode(self, x0: torch.Tensor, t: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        sigma = self.sde.sigma(t) if self.encoder.time_conditioned else None
        return self.encoder(x0, sigma)

    def score_fn(self, xt: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.score(xt, self.sde.sigma(t), z)


class AutoEncoder(nn.Module):
    """AE (deterministic code, L1) or VAE (Gaussian code, KL) with the same encoder and a mirrored decoder."""

    def __init__(self, encoder: Encoder, decoder: Decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def encode(self, x0: torch.Tensor, t: torch.Tensor | None = None):
        return self.encoder(x0, None)


def code_dim(cfg: Config, spec: RunSpec) -> int:
    return spec.code_dim or getattr(cfg.experiments, spec.experiment).code_dim


def build_model(cfg: Config, spec: RunSpec, image_shape: tuple[int, int, int]) -> nn.Module:
    """The network a run trains, sized by the dataset's parameters."""
    net = cfg.datasets[spec.dataset].net
    c, h, _ = image_shape
    sde = build_sde(cfg.sde.kind, cfg.sde.sigma_min, cfg.sde.sigma_max)
    if spec.method == "score":
        score = ScoreUNet(c, net.channels, net.num_res_blocks, net.emb_dim, 0, net.code_hidden, net.dropout)
        return ScoreModel(score, sde, adversarial=spec.p_kl is not None)
    probabilistic = spec.method in ("vdrl", "vae")
    time_conditioned = spec.experiment == "fewshot" and spec.method in ("drl", "vdrl")
    encoder = Encoder(c, h, net.channels, net.num_res_blocks, net.emb_dim, code_dim(cfg, spec), net.code_hidden,
                      time_conditioned=time_conditioned, probabilistic=probabilistic)
    if spec.method in ("ae", "vae"):
        return AutoEncoder(encoder, Decoder(c, h, net.channels, net.num_res_blocks, code_dim(cfg, spec), net.code_hidden))
    score = ScoreUNet(c, net.channels, net.num_res_blocks, net.emb_dim, code_dim(cfg, spec), net.code_hidden, net.dropout)
    return DRLModel(encoder, score, sde)


def loss_function(cfg: Config, spec: RunSpec, model: nn.Module):
    """Per-sample loss of a batch: DRL eq. 7/8 for drl/vdrl, reconstruction for ae/vae."""
    pen = cfg.penalties
    if isinstance(model, ScoreModel):
        return score_loss(cfg.sde.eps) if spec.p_kl is None else adversarial_loss(cfg.sde.eps, spec.p_kl)
    if isinstance(model, AutoEncoder):
        kl = 1.0 if spec.method == "vae" else 0.0
        return lambda m, x0, g: reconstruction_objective(m.decoder, m.encode, x0, g, l1=pen.l1, kl=kl)
    sample_t = t_sampler(spec.scheme, model.sde, cfg.sde.eps, spec.t)

    def loss(m: DRLModel, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        t = sample_t(x0.shape[0], g).to(x0.device)
        noise = torch.randn(x0.shape, generator=g).to(x0.device)
        return drl_objective(m.score_fn, m.encode, x0, t, m.sde, noise, g, l1=pen.l1, kl=pen.kl)

    return loss


def schedule(cfg: Config, spec: RunSpec) -> Schedule:
    ds, tr = cfg.datasets[spec.dataset], cfg.train
    iterations = ds.iterations
    if spec.experiment in ("sweep", "codedim") and getattr(cfg.experiments, spec.experiment).iterations:
        iterations = getattr(cfg.experiments, spec.experiment).iterations
    if spec.experiment == "adversarial":
        iterations = cfg.experiments.adversarial.iterations
    return Schedule(iterations, ds.batch_size, tr.lr, tr.warmup, tr.grad_clip, tr.ema,
                    tr.checkpoint_every, tr.log_every, spec.seed)


def fingerprint(cfg: Config, spec: RunSpec) -> str:
    """Identifies the configuration a checkpoint belongs to."""
    blob = json.dumps({"config": to_dict(cfg), "spec": asdict(spec)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def trainable_parameters(model: nn.Module, cfg: Config, spec: RunSpec) -> list:
    """All parameters, all but the encoder's in the frozen-encoder phase, or the adversary's own group."""
    if isinstance(model, ScoreModel):
        return param_groups(model, cfg.experiments.adversarial.adversary_lr_scale)
    if spec.freeze_encoder:
        model.encoder.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def save_model(model: nn.Module, cfg: Config, spec: RunSpec, image_shape, path: Path) -> None:
    """The EMA weights with what rebuilds the network."""
    payload = {"state": model.state_dict(), "config": to_dict(cfg), "spec": asdict(spec), "image_shape": list(image_shape)}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_model(path: str | Path, device: torch.device | None = None) -> tuple[nn.Module, RunSpec, Config]:
    """Rebuild a saved model (EMA weights) for evaluation."""
    from diffrep.config import resolve

    payload = torch.load(path, map_location="cpu", weights_only=False)
    cfg, spec = resolve(payload["config"], str(path)), RunSpec(**payload["spec"])
    model = build_model(cfg, spec, tuple(payload["image_shape"]))
    model.load_state_dict(payload["state"])
    model.image_shape = tuple(payload["image_shape"])
    return model.to(device or torch.device("cpu")).eval(), spec, cfg


def start_from(model: nn.Module, path: str) -> None:
    """Load a pretrained model's weights; only a new adversary (DRL A.7) may be missing from them."""
    state = torch.load(path, map_location="cpu", weights_only=False)["state"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"adversary"}:
        raise ValueError(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")


def train_run(cfg: Config, spec: RunSpec, x_train: torch.Tensor, out_dir: Path) -> State:
    """Train one run to completion (resuming when a checkpoint is there) and save its EMA model."""
    torch.manual_seed(spec.seed)
    device = pick_device(cfg.train.device)
    image_shape = tuple(x_train.shape[1:])
    model = build_model(cfg, spec, image_shape)
    if spec.init:
        start_from(model, spec.init)
    model = model.to(device)
    sched = schedule(cfg, spec)
    state = new_state(model, trainable_parameters(model, cfg, spec), sched)
    desc = f"{spec.dataset}/{spec.experiment}/{spec.method}"
    state = fit(state, loss_function(cfg, spec, model), x_train.to(device), sched, out_dir, fingerprint(cfg, spec), desc)
    save_model(state.ema, cfg, spec, image_shape, out_dir / "model.pt")
    return state
