"""Pretraining of LaplaceNet's classifier (DRL A.6, Tables 1, 4-7) and the classifier that starts from it.

The encoder is the classifier's WRN, time-conditioned through its own learnable t; its hidden layer is the code
of a DRL (or VDRL) model whose score network is the code-conditioned score U-Net, or of an autoencoder with a
binary cross-entropy reconstruction. Pretraining runs in the one training loop (`train.fit`: checkpoints, resume).
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from torch import nn

from diffrep.config import Config
from diffrep.methods.drl import (
    AutoEncoder,
    DRLModel,
    RunSpec,
    fingerprint,
    loss_function,
    save_model,
    schedule,
)
from diffrep.nets.encoder import Decoder
from diffrep.nets.unet import ScoreUNet
from diffrep.nets.wrn import WideResNet
from diffrep.objectives import bce_reconstruction_objective, mixup
from diffrep.sde import build_sde
from diffrep.train import State, fit, new_state, pick_device

PRETRAININGS = ("drl", "vdrl", "drl_mixup", "ae")  # "none" needs no pretraining


def build_wrn(cfg: Config, dataset: str, image_shape: tuple[int, int, int], num_classes: int,
              probabilistic: bool = False) -> WideResNet:
    """The classifier / encoder: WRN-depth-width whose blocks see the embedding of log sigma(t), t learnable."""
    sx, emb_dim = cfg.experiments.semisup, cfg.datasets[dataset].net.emb_dim
    sde = build_sde(cfg.sde.kind, cfg.sde.sigma_min, cfg.sde.sigma_max)
    return WideResNet(image_shape[0], num_classes, sx.depth, sx.width, emb_dim, sigma=sde.sigma,
                      probabilistic=probabilistic)


def run_spec(dataset: str, pretraining: str, seed: int = 0) -> RunSpec:
    """The run a pretraining is (mixup is not part of the DRL objective, so drl_mixup is method drl)."""
    if pretraining not in PRETRAININGS:
        raise ValueError(f"unknown pretraining {pretraining!r}; known: {PRETRAININGS}")
    return RunSpec(dataset, "semisup", pretraining.removesuffix("_mixup"), seed=seed)


def build_pretraining(cfg: Config, dataset: str, pretraining: str, image_shape, num_classes: int) -> nn.Module:
    """DRL/VDRL model (WRN encoder, code-conditioned score U-Net) or the WRN autoencoder."""
    net, c, h = cfg.datasets[dataset].net, image_shape[0], image_shape[1]
    wrn = build_wrn(cfg, dataset, image_shape, num_classes, probabilistic=pretraining == "vdrl")
    if pretraining == "ae":
        return AutoEncoder(wrn, Decoder(c, h, net.channels, net.num_res_blocks, wrn.code_dim, net.code_hidden))
    score = ScoreUNet(c, net.channels, net.num_res_blocks, net.emb_dim, wrn.code_dim, net.code_hidden, net.dropout)
    return DRLModel(wrn, score, build_sde(cfg.sde.kind, cfg.sde.sigma_min, cfg.sde.sigma_max))


def pretraining_loss(cfg: Config, spec: RunSpec, pretraining: str, model: nn.Module):
    """DRL eq. 8 with the encoder's own t (on mixed-up images for drl_mixup), or BCE reconstruction for ae."""
    if pretraining == "ae":
        return lambda m, x0, g: bce_reconstruction_objective(m.decoder, m.encode, x0, g, l1=cfg.penalties.l1)
    loss = loss_function(cfg, spec, model)
    if pretraining != "drl_mixup":
        return loss
    return lambda m, x0, g: loss(m, mixup(x0, g)[0], g)


def pretrain(cfg: Config, dataset: str, pretraining: str, x_train: torch.Tensor, num_classes: int,
             out_dir: Path) -> State:
    """Pretrain to completion (resuming from out_dir/ckpt.pt) and save the EMA model as out_dir/model.pt."""
    spec = run_spec(dataset, pretraining)
    torch.manual_seed(spec.seed)
    device, image_shape = pick_device(cfg.train.device), tuple(x_train.shape[1:])
    model = build_pretraining(cfg, dataset, pretraining, image_shape, num_classes).to(device)
    iterations = cfg.experiments.semisup.pretrain_iterations or cfg.datasets[dataset].iterations
    sched = dataclasses.replace(schedule(cfg, spec), iterations=iterations)
    key = hashlib.sha256(f"{fingerprint(cfg, spec)}/{pretraining}".encode()).hexdigest()
    state = new_state(model, model.parameters(), sched)
    state = fit(state, pretraining_loss(cfg, spec, pretraining, model), x_train.to(device), sched, out_dir, key,
                f"{dataset}/semisup/{pretraining}")
    save_model(state.ema, cfg, spec, image_shape, out_dir / "model.pt")
    return state


def load_pretrained(classifier: WideResNet, path: str | Path) -> None:
    """Start the classifier from a pretrained encoder (its hidden layers; the class head and logvar head are not kept)."""
    state = torch.load(path, map_location="cpu", weights_only=False)["state"]
    encoder = {k.removeprefix("encoder."): v for k, v in state.items()
               if k.startswith("encoder.") and not k.startswith(("encoder.fc.", "encoder.logvar."))}
    missing, unexpected = classifier.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("fc.") for k in missing):
        raise ValueError(f"{path} does not fit this classifier: missing {missing}, unexpected {unexpected}")
