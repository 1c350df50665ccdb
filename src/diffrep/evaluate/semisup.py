"""DRL Tables 1, 4-7 on one dataset: test accuracy of LaplaceNet per setting, label count and seed.

A setting names the pretraining the classifier starts from, whether LaplaceNet's training uses mixup, and the
budget (full, or the short 100-epoch one of Tables 4, 5); `supervised` is the warm-up alone, the
supervised-only baseline with the same labels.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from diffrep.config import SemisupExperiment, Setting, parse_setting
from diffrep.evaluate.laplacenet import (
    Optimisation,
    Semisup,
    balanced_labelled_mask,
    laplacenet_phase,
    t_search,
    warm_up,
)
from diffrep.evaluate.representation import accuracy


def settings_for(sx: SemisupExperiment, pretraining: str) -> list[Setting]:
    """The profile's settings that start from `pretraining`."""
    return [s for s in map(parse_setting, sx.settings) if s.pretraining == pretraining]


def t_grid(n: int) -> list[float]:
    """n equally spaced t in [0, 1] clipped to [0.01, 0.99] (the authors' t-search: 11 values; t = 1 has no logit)."""
    return [float(t) for t in np.clip(np.linspace(0.0, 1.0, n), 0.01, 0.99)]


def one_run(make_model: Callable[[], nn.Module], sx: SemisupExperiment, setting: Setting, run: Semisup,
            test: tuple[torch.Tensor, torch.Tensor], seed: int) -> dict:
    """Warm-up (or t-search), supervised accuracy, then the LaplaceNet phase; the row of results."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    optim = Optimisation(sx.lr, sx.momentum, sx.weight_decay, run.total_steps())
    start = time.perf_counter()
    if setting.t_search:
        model, opt, optim, t0 = t_search(make_model, optim, run, t_grid(sx.t_grid), seed)
    else:
        model = make_model()
        t0 = model.t.item()  # 0.5: loading resets it (the authors' logit(0.5))
        opt = optim.optimizer(model)
        warm_up(model, opt, optim, run, g)
    warm = accuracy(model.eval().classify, *test)
    graphs = laplacenet_phase(model, opt, optim, run, g, desc=setting.name) if run.iterations else [float("nan")]
    return {"setting": setting.name, "pretraining": setting.pretraining, "t_search": setting.t_search,
            "mixup": setting.mixup, "short": setting.short, "supervised_only": setting.supervised_only,
            "seed": seed, "t_init": t0, "t_final": model.t.item(), "warmup_accuracy": warm,
            "first_graph_accuracy": graphs[0], "pseudo_label_accuracy": graphs[-1],
            "accuracy": accuracy(model.eval().classify, *test),
            "iterations": run.iterations, "warmup_epochs": run.warmup_epochs, "seconds": time.perf_counter() - start}


def semisup_rows(make_model: Callable[[], nn.Module], sx: SemisupExperiment, settings: list[Setting],
                 labels: list[int], train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor]) -> list[dict]:
    """Every setting x label count x seed; seed s draws the same labelled images for every setting."""
    rows = []
    for n in labels:
        for seed in sx.seeds:
            labelled = balanced_labelled_mask(train[1].cpu().numpy(), n, np.random.default_rng(seed))
            for setting in settings:
                iterations = 0 if setting.supervised_only else sx.short_iterations if setting.short else sx.iterations
                run = Semisup(train[0], train[1], labelled, sx.warmup_epochs, iterations, setting.mixup, sx.knn,
                              sx.alpha, sx.batch_size, sx.labelled_batch)
                rows.append({"labels": n, **one_run(make_model, sx, setting, run, test, seed)})
    return rows
