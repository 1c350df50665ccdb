"""The metric behind each verdict that a training budget can move, measured on one model (an EMA snapshot or the final model): the rows of the
verdict's convergence curve (issue: verdicts you can trust). `diffrep curves` adds each row's run and step.

One function per experiment, each measuring what the experiment's own evaluation measures on its final models:
silhouette of the 2-d test codes (latent, sweep), few-shot SVM accuracy per t (fewshot), the spread of the samples of
one code (codedim), FID of the verdict's sample sets (generation, adversarial), and for LaplaceNet's pretrainings the
few-shot SVM accuracy of the pretrained WRN's code with the semi-supervised label counts (LaplaceNet itself is not run
per snapshot: that would cost a LaplaceNet training per snapshot), and LSGM's test NELBO (lsgm).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from diffrep.config import Config
from diffrep.evaluate.fidelity import fidelity_metrics
from diffrep.evaluate.nelbo import nelbo_on_test_split
from diffrep.evaluate.representation import encode, fewshot_rows, silhouette, timed_codes
from diffrep.methods.base import RunSpec
from diffrep.methods.drl_samples import sample_spread, samples_per_code
from diffrep.methods.generation import generate
from diffrep.nets.wrn import LAPLACENET_T

# DRL Table 3's verdict compares these starts: t_init = 0.7 against the full run (issue: the curve samples only them)
TABLE3_T_INIT = (0.7, 1.0)


@dataclass(frozen=True)
class Splits:
    """The prepared data a curve is measured on, and the features FID is computed with."""

    x_train: torch.Tensor
    y_train: np.ndarray
    x_test: torch.Tensor
    y_test: np.ndarray
    features: str = ""
    weights: str = ""


Measure = Callable[[torch.nn.Module, RunSpec, Config, Splits], list[dict]]


def silhouette_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Fig. 2, 3, 11: the silhouette of the test codes with the classes as clusters."""
    return [{"silhouette": silhouette(encode(model, data.x_test), data.y_test)}]


def fewshot_curve_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Fig. 12: the few-shot table of one model."""
    fs = cfg.experiments.fewshot
    ts, train = timed_codes(model, data.x_train, fs.t)
    _, test = timed_codes(model, data.x_test, fs.t)
    return fewshot_rows(train, data.y_train, test, data.y_test, ts, fs.labels, fs.draws, fs.seed)


def pretraining_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Tables 1, 4-7: how much class information the pretrained WRN's code carries, by a few-shot SVM with the
    semi-supervised label counts, one labelled draw per LaplaceNet seed; the code at the t LaplaceNet starts from."""
    sx = cfg.experiments.semisup
    train, test = (encode(model, x, LAPLACENET_T)[None] for x in (data.x_train, data.x_test))
    return fewshot_rows(train, data.y_train, test, data.y_test, np.array([np.nan]), sx.labels[spec.dataset],
                        len(sx.seeds), sx.seeds[0])


def spread_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Fig. 10: the spread of the samples of one code (the experiment's test images and seed)."""
    ex = cfg.experiments.codedim
    x = samples_per_code(model, data.x_test[:ex.images], ex.samples, cfg.sampling, seed=ex.seed)
    return [{"code_dim": spec.code_dim, "spread": sample_spread(x)}]


def _fid(model, n: int, cfg: Config, data: Splits, t_init: float, prior: str, seed: int) -> float:
    """FID of `n` samples (or the profile's `convergence.fid_samples`) against the training images."""
    x, _ = generate(model, cfg.convergence.fid_samples or n, model.image_shape, cfg.sampling, t_init, prior, seed)
    x = (x * 255).round() / 255  # as the sample files store them (8-bit)
    return fidelity_metrics(x, data.x_train, features=data.features, weights_path=data.weights, isc=False,
                            cuda=torch.cuda.is_available())["fid"]


def tinit_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Table 3: FID of the score model from the starts its verdict compares, per prior."""
    gen = cfg.experiments.generation
    return [{"t_init": t, "prior": p, "fid": _fid(model, gen.samples, cfg, data, t, p, gen.seed)}
            for t in TABLE3_T_INIT if t in gen.t_init for p in gen.priors]


def adversarial_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """DRL Table 2: FID of an adversarial model's samples (t_init = 1, Gaussian prior, as its sample set)."""
    adv = cfg.experiments.adversarial
    return [{"p_kl": spec.p_kl, "fid": _fid(model, adv.samples, cfg, data, 1.0, "gaussian", adv.seed)}]


def nelbo_rows(model, spec: RunSpec, cfg: Config, data: Splits) -> list[dict]:
    """LSGM Tables 2, 4, 5: the test NELBO of an LSGM run (the ODE likelihood of the latent, or the backbone's with
    its exact KL for a stage-1 VAE) and its standard error over the test images, in the papers' units."""
    s = cfg.experiments.lsgm
    record = nelbo_on_test_split(model, data.x_test, s, s.seed)
    return [{"nelbo": record["nelbo"], "nelbo_se": float(np.std(record["per_image"]) / np.sqrt(record["images"])),
             "units": record["units"], "dims": data.x_test[0].numel()}]


CURVES: dict[str, Measure] = {"latent": silhouette_rows, "sweep": silhouette_rows, "fewshot": fewshot_curve_rows,
                              "codedim": spread_rows, "generation": tinit_rows, "adversarial": adversarial_rows,
                              "semisup": pretraining_rows, "lsgm": nelbo_rows}
