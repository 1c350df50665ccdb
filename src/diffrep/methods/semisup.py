"""Pretraining of LaplaceNet's classifier (DRL A.6, Tables 1, 4-7) and the classifier that starts from it.

The encoder is the classifier's WRN: in DRL (or VDRL) pretraining it is E(x0, t), each sample's diffusion time
in every block, and its hidden layer (VDRL: a Gaussian head on it) is the code that conditions the score U-Net; the
autoencoder pretraining decodes the hidden layer with a binary cross-entropy. Each pretraining is a registered
method (`wrn_<pretraining>`), trained by `train_run` like every other model, and, as in the authors' code, saves
its raw weights, not an average (`WRNPretraining.schedule`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from diffrep.config import PRETRAININGS, Config, own_budget
from diffrep.methods.autoencoder import AutoEncoder
from diffrep.methods.base import DataShape, Method, RunSpec, register
from diffrep.methods.drl import DRLModel, drl_loss
from diffrep.methods.score import score_unet
from diffrep.nets.encoder import Decoder
from diffrep.nets.wrn import LAPLACENET_T, WideResNet
from diffrep.objectives import bce_reconstruction_objective, mixup
from diffrep.sde import build_sde
from diffrep.train import Schedule


def build_wrn(cfg: Config, dataset: str, image_shape: tuple[int, int, int], num_classes: int,
              probabilistic: bool = False) -> WideResNet:
    """The classifier / encoder: WRN-depth-width whose blocks see the embedding of log noise_level(t)."""
    sx, emb_dim = cfg.experiments.semisup, cfg.datasets[dataset].net.emb_dim
    return WideResNet(image_shape[0], num_classes, sx.depth, sx.width, emb_dim, sigma=build_sde(cfg.sde).noise_level,
                      probabilistic=probabilistic)


def pretraining_method(pretraining: str) -> str:
    """The registered method that a LaplaceNet pretraining is."""
    if pretraining not in PRETRAININGS:
        raise ValueError(f"unknown pretraining {pretraining!r}; known: {PRETRAININGS}")
    return f"wrn_{pretraining}"


def run_spec(dataset: str, pretraining: str, seed: int = 0) -> RunSpec:
    """The run a pretraining is."""
    return RunSpec(dataset, "semisup", pretraining_method(pretraining), seed=seed)


class WRNPretraining(Method):
    """A pretraining of LaplaceNet's WRN: runs in the semisup experiment, for its own budget."""

    experiments = ("semisup",)

    def iterations(self, cfg: Config, spec: RunSpec) -> int:
        return own_budget(cfg, spec.dataset, "semisup", "pretrain_iterations")

    def schedule(self, cfg: Config, spec: RunSpec) -> Schedule:
        """The common schedule with no weight averaging: the authors' checkpoint holds the raw weights, whose
        BatchNorm statistics belong to them (EMA decay 0 makes the saved model the trained one)."""
        return replace(super().schedule(cfg, spec), ema=0.0)


class WRNDRL(WRNPretraining):
    """DRL eq. 8 with the WRN as E(x0, t); VDRL with a Gaussian code from its head; drl_mixup on mixed-up images."""

    def __init__(self, pretraining: str, probabilistic: bool = False, use_mixup: bool = False):
        self.name, self.probabilistic, self.use_mixup = pretraining_method(pretraining), probabilistic, use_mixup

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> DRLModel:
        wrn = build_wrn(cfg, spec.dataset, data.image_shape, data.num_classes, self.probabilistic)
        return DRLModel(wrn, score_unet(cfg, spec.dataset, data, wrn.code_dim), build_sde(cfg.sde))

    def loss(self, cfg: Config, spec: RunSpec, model: DRLModel):
        loss = drl_loss(cfg, spec, model.sde)
        if not self.use_mixup:
            return loss
        return lambda m, x0, g: loss(m, mixup(x0, g)[0], g)  # mixup changes the images, not the DRL objective


class WRNAutoEncoder(WRNPretraining):
    """The autoencoder pretraining of DRL Tables 5, 6: the WRN's hidden layer decoded, binary cross-entropy."""

    name = pretraining_method("ae")

    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> AutoEncoder:
        wrn = build_wrn(cfg, spec.dataset, data.image_shape, data.num_classes)
        net, (c, h, _) = cfg.datasets[spec.dataset].net, data.image_shape
        return AutoEncoder(wrn, Decoder(c, h, net.channels, net.num_res_blocks, wrn.code_dim, net.code_hidden))

    def loss(self, cfg: Config, spec: RunSpec, model: AutoEncoder):
        return lambda m, x0, g: bce_reconstruction_objective(m.decoder, m.encode, x0, g, l1=cfg.penalties.l1)


register(WRNDRL("drl"))
register(WRNDRL("vdrl", probabilistic=True))
register(WRNDRL("drl_mixup", use_mixup=True))
register(WRNAutoEncoder())


def load_pretrained(classifier: WideResNet, path: str | Path) -> None:
    """Start the classifier from a pretrained encoder: every tensor of its WRN (BatchNorm statistics and time MLP
    included) but the class head and VDRL's code head; its own t set to LAPLACENET_T (the authors' loading)."""
    state = torch.load(path, map_location="cpu", weights_only=False)["state"]
    encoder = {k.removeprefix("encoder."): v for k, v in state.items()
               if k.startswith("encoder.") and not k.startswith(("encoder.fc.", "encoder.head."))}
    missing, unexpected = classifier.load_state_dict(encoder, strict=False)
    if unexpected or any(not k.startswith("fc.") for k in missing):
        raise ValueError(f"{path} does not fit this classifier: missing {missing}, unexpected {unexpected}")
    classifier.set_t(LAPLACENET_T)
