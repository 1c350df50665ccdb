"""One training loop for every model: Adam with warm-up, gradient clipping, EMA, atomic checkpoints, resume.

A run killed at any moment resumes from its last checkpoint; on the CPU with a fixed seed it ends with
exactly the weights and metrics of an uninterrupted run, because the checkpoint holds every piece of
state the loop draws on (weights, EMA, optimiser, the random generator, the metrics so far).
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import logging
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from diffrep.io import atomic_path, remove_orphans, write_json, write_text

log = logging.getLogger(__name__)

LossFn = Callable[[torch.nn.Module, torch.Tensor, torch.Generator], torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the last good checkpoint is kept."""

    def __init__(self, message: str, step: int = 0, loss: float = math.nan):
        super().__init__(message)
        self.step, self.loss = step, loss


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or belongs to another configuration."""


@dataclass
class Schedule:
    """What the loop runs for and how it saves (from TrainConfig and the dataset's budget)."""

    iterations: int
    batch_size: int
    lr: float
    warmup: int
    grad_clip: float
    ema: float
    checkpoint_every: int
    log_every: int
    seed: int
    divergence_is_result: bool = False  # a non-finite loss ends the run as a recorded result (LSGM Table 6's NaN)
    final_lr_scale: float = 1.0  # after warm-up, cosine decay to this share of lr (1: constant, as score-SDE)
    snapshot_steps: tuple[int, ...] = ()  # steps whose EMA weights are kept (the convergence curve)


@dataclass
class State:
    """Everything the loop's future depends on."""

    step: int
    model: torch.nn.Module
    ema: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    metrics: list[dict] = field(default_factory=list)
    window: list[float] = field(default_factory=lambda: [0.0, 0])  # loss sum and count since the last log row
    snapshots: dict[int, dict] = field(default_factory=dict)  # EMA weights kept at the snapshot steps so far


def pick_device(name: str = "auto") -> torch.device:
    """CUDA when present (or asked for), the CPU otherwise."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def learning_rate(step: int, sched: Schedule) -> float:
    """Linear warm-up to the base rate, then constant (score-SDE's schedule) or a cosine decay to
    `final_lr_scale` times it at the last step (LSGM's and NVAE's)."""
    if step < sched.warmup:
        return sched.lr * (step + 1) / sched.warmup
    progress = (step - sched.warmup) / max(1, sched.iterations - 1 - sched.warmup)
    return sched.lr * (sched.final_lr_scale + (1 - sched.final_lr_scale) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model (one fused update over all tensors: small networks are dominated by
    per-tensor overhead on the CPU)."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def new_state(model: torch.nn.Module, params: Iterable, sched: Schedule) -> State:
    """Fresh state; `params` are parameters or param groups (a group may carry an `lr_scale`)."""
    generator = torch.Generator().manual_seed(sched.seed)
    optimizer = torch.optim.Adam(list(params), lr=sched.lr, foreach=True)  # fused over tensors on the CPU as well
    return State(0, model, copy.deepcopy(model).requires_grad_(False), optimizer, generator)


def network_code(model: torch.nn.Module) -> dict[str, str]:
    """The code that shapes a model's weights: the class of each of its modules, and a digest of the source file of
    each class defined outside torch (so that a changed network refuses an old checkpoint instead of resuming it)."""
    classes = {f"{c.__module__}.{c.__qualname__}": c for c in map(type, model.modules())}
    return {name: _source_digest(c) for name, c in sorted(classes.items())}


def _source_digest(cls: type) -> str:
    if cls.__module__.split(".")[0] == "torch":
        return ""  # torch's own layers are named by their class; their source is the installed torch's
    return hashlib.sha256(Path(inspect.getsourcefile(cls)).read_bytes()).hexdigest()


def save_checkpoint(state: State, path: Path, fingerprint: str) -> None:
    """Write the whole state atomically."""
    payload = {
        "fingerprint": fingerprint,
        "step": state.step,
        "model": state.model.state_dict(),
        "ema": state.ema.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "metrics": state.metrics,
        "window": state.window,
        "snapshots": state.snapshots,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(state: State, path: Path, fingerprint: str) -> None:
    """Restore `state` in place from `path`; a corrupt or foreign checkpoint is a CheckpointError."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(f"checkpoint {path} cannot be read ({exc}); delete it to start over") from exc
    if payload.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was written by another configuration; delete it to start over"
        )
    state.step = payload["step"]
    state.model.load_state_dict(payload["model"])
    state.ema.load_state_dict(payload["ema"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.metrics, state.window = payload["metrics"], payload["window"]
    state.snapshots = payload.get("snapshots", {})


def train_step(state: State, loss_fn: LossFn, data: torch.Tensor, sched: Schedule) -> float:
    """One Adam step on a random batch; returns the mean loss, refusing a non-finite one."""
    idx = torch.randint(0, data.shape[0], (sched.batch_size,), generator=state.generator)
    loss = loss_fn(state.model, data[idx.to(data.device)], state.generator).mean()
    value = loss.item()
    if not math.isfinite(value):
        raise NonFiniteLossError(f"non-finite loss ({value}) at step {state.step + 1}", state.step + 1, value)
    for group in state.optimizer.param_groups:
        group["lr"] = learning_rate(state.step, sched) * group.get("lr_scale", 1.0)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in state.optimizer.param_groups for p in g["params"]]
    torch.nn.utils.clip_grad_norm_(params, sched.grad_clip, foreach=True)
    state.optimizer.step()
    ema_update(state.ema, state.model, sched.ema)
    state.step += 1
    return value


def write_metrics(metrics: list[dict], path: Path) -> None:
    """The metrics log as CSV (rewritten whole, so a resumed run's log equals an uninterrupted one's)."""
    if not metrics:
        return
    keys = list(metrics[0])
    lines = [",".join(keys)] + [",".join(str(row[k]) for k in keys) for row in metrics]
    write_text(path, "\n".join(lines) + "\n")


def fit(state: State, loss_fn: LossFn, data: torch.Tensor, sched: Schedule, out_dir: Path,
        fingerprint: str, desc: str = "train", snapshot: Callable[[int, torch.nn.Module], None] | None = None) -> State:
    """Train to `sched.iterations`, resuming from `out_dir/ckpt.pt` when one is there; `snapshot(step, ema)` at each
    of the schedule's snapshot steps; a resumed run writes the earlier ones again from the checkpoint's copies."""
    ckpt, metrics_path = out_dir / "ckpt.pt", out_dir / "metrics.csv"
    if ckpt.is_file():
        remove_orphans(out_dir)  # a killed run's half-written files
        load_checkpoint(state, ckpt, fingerprint)
        log.info("resumed %s from %s at step %d", desc, ckpt, state.step)
        if snapshot is not None:
            rewrite_snapshots(state, snapshot)
    with tqdm(total=sched.iterations, initial=state.step, desc=desc, file=sys.stderr,
              mininterval=5.0, disable=False) as bar:
        while state.step < sched.iterations:
            try:
                value = train_step(state, loss_fn, data, sched)
            except NonFiniteLossError as exc:
                if sched.divergence_is_result:
                    if snapshot is not None:  # the steps not reached keep the last good weights, as model.pt does
                        for step in (s for s in sched.snapshot_steps if s > state.step):
                            snapshot(step, state.ema)
                    return diverged(state, exc, out_dir, desc)
                kept = f"last good checkpoint kept: {ckpt}" if ckpt.is_file() else "no checkpoint was written yet"
                raise NonFiniteLossError(f"{desc}: {exc}; {kept}") from None
            state.window = [state.window[0] + value, state.window[1] + 1]
            bar.update(1)
            if snapshot is not None and state.step in sched.snapshot_steps:
                state.snapshots[state.step] = {k: v.detach().clone() for k, v in state.ema.state_dict().items()}
                snapshot(state.step, state.ema)
            if state.step % sched.log_every == 0 or state.step == sched.iterations:
                mean = state.window[0] / state.window[1]
                logged = getattr(state.model, "log_values", dict)()
                state.metrics.append({"step": state.step, "loss": mean, "lr": learning_rate(state.step - 1, sched), **logged})
                bar.set_postfix(loss=f"{mean:.4g}")
                state.window = [0.0, 0]
            if state.step % sched.checkpoint_every == 0 or state.step == sched.iterations:
                save_checkpoint(state, ckpt, fingerprint)
                write_metrics(state.metrics, metrics_path)
    if sched.divergence_is_result:
        write_json(out_dir / DIVERGENCE, {"diverged": False, "step": state.step, "loss": None})
    return state


def rewrite_snapshots(state: State, snapshot: Callable[[int, torch.nn.Module], None]) -> None:
    """Write again the snapshots taken before the checkpoint a run resumes from, from the copies it holds: the
    workflow deletes a failed job's outputs, the snapshots among them, before it reruns the job."""
    if not state.snapshots:
        return
    held = copy.deepcopy(state.ema)
    for step, weights in sorted(state.snapshots.items()):
        held.load_state_dict(weights)
        snapshot(step, held)


DIVERGENCE = "divergence.json"  # beside a run whose divergence is a result: whether, where and with which loss


def diverged(state: State, exc: NonFiniteLossError, out_dir: Path, desc: str) -> State:
    """Record a divergence (the failing step and loss) instead of raising it; the run ends with the last good weights."""
    log.warning("%s diverged: %s; recorded in %s", desc, exc, out_dir / DIVERGENCE)
    write_metrics(state.metrics, out_dir / "metrics.csv")
    write_json(out_dir / DIVERGENCE, {"diverged": True, "step": exc.step, "loss": str(exc.loss)})
    return state
