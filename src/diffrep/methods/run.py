"""The one entry for every training (`train_run`): the registered method builds the model, its loss, schedule and
parameters; the one loop (`train.fit`) trains it with checkpoints, resume and the fingerprint; the EMA model is
saved with what rebuilds it (`load_model`)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from diffrep.config import Config, resolve, to_dict
from diffrep.io import atomic_path
from diffrep.methods.base import DataShape, RunSpec, method_named
from diffrep.train import State, fit, network_code, new_state, pick_device


def build_model(cfg: Config, spec: RunSpec, data: DataShape) -> nn.Module:
    """The network a run trains, built by its method."""
    return method_named(spec.method).build(cfg, spec, data)


def fingerprint(cfg: Config, spec: RunSpec, model: nn.Module) -> str:
    """Identifies what a checkpoint belongs to: the resolved config, the run and the code that shapes the network."""
    blob = json.dumps({"config": to_dict(cfg), "spec": asdict(spec), "network": network_code(model)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_model(model: nn.Module, cfg: Config, spec: RunSpec, data: DataShape, path: Path, step: int | None = None) -> None:
    """The EMA weights with what rebuilds the network (and, for a snapshot, the step it was taken at)."""
    payload = {"state": model.state_dict(), "config": to_dict(cfg), "spec": asdict(spec),
               "image_shape": list(data.image_shape), "num_classes": data.num_classes, "step": step}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def snapshot_path(out_dir: Path, index: int) -> Path:
    """The `index`-th EMA snapshot of a run (its step is inside: the steps depend on the dataset's budget)."""
    return out_dir / "snapshots" / f"{index}.pt"


def run_of(path: Path) -> str:
    """The run a model file belongs to: its folder for model.pt, the folder above for a snapshot (`snapshot_path`)."""
    return path.parent.name if path.name == "model.pt" else path.parent.parent.name


def load_model(path: str | Path, device: torch.device | None = None) -> tuple[nn.Module, RunSpec, Config]:
    """Rebuild a saved model (EMA weights) for evaluation."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "num_classes" not in payload:
        raise ValueError(f"{path} was saved without its number of classes by an older diffrep; train it again")
    cfg, spec = resolve(payload["config"], str(path)), RunSpec(**payload["spec"])
    data = DataShape(tuple(payload["image_shape"]), payload["num_classes"])
    model = build_model(cfg, spec, data)
    model.load_state_dict(payload["state"])
    model.image_shape, model.trained_steps = data.image_shape, payload.get("step")
    return model.to(device or torch.device("cpu")).eval(), spec, cfg


def train_run(cfg: Config, spec: RunSpec, x_train: torch.Tensor, y_train: torch.Tensor, out_dir: Path) -> State:
    """Train one run to completion (resuming when a checkpoint is there) and save its EMA model as out_dir/model.pt."""
    method = method_named(spec.method)
    torch.manual_seed(spec.seed)
    device = pick_device(cfg.train.device)
    data = DataShape(tuple(x_train.shape[1:]), int(y_train.max()) + 1)
    model = method.build(cfg, spec, data)
    if spec.init:
        method.start_from(model, spec.init)
    model = model.to(device)
    sched = method.schedule(cfg, spec)
    state = new_state(model, method.parameters(model, cfg, spec), sched)
    def snapshot(step: int, ema: nn.Module) -> None:
        for index in (i for i, s in enumerate(sched.snapshot_steps) if s == step):  # short runs repeat a step
            save_model(ema, cfg, spec, data, snapshot_path(out_dir, index), step)

    state = fit(state, method.loss(cfg, spec, model), x_train.to(device), sched, out_dir,
                fingerprint(cfg, spec, model), f"{spec.dataset}/{spec.experiment}/{spec.method}", snapshot)
    save_model(state.ema, cfg, spec, data, out_dir / "model.pt", sched.iterations)
    # A finished run needs no checkpoint (model.pt and metrics.csv hold its result); left there, it would stop the
    # rerun that a changed parameter asks for (`dvc exp run -S`, Snakemake's params trigger) as a foreign checkpoint.
    (out_dir / "ckpt.pt").unlink(missing_ok=True)
    return state
