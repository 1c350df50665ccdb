"""The plug-in interface: a trainable method builds its model, its per-sample loss, its schedule and its
trainable parameters, and is found by name in a registry (`method_named`); nothing else branches on its name.

A run is a `RunSpec`: its dataset, experiment, method and the method's options (t-sampling scheme, single t,
seed, a model to start from, a frozen encoder, adversarial p_KL, code dimension). Adding a method is one module
in this package that subclasses `Method` and calls `register`, plus its losses in `objectives.py`.
"""
from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from diffrep.config import Config, Experiments, own_budget, snapshot_steps
from diffrep.objectives import T_SCHEMES
from diffrep.train import LossFn, Schedule

EXPERIMENTS = tuple(f.name for f in fields(Experiments))  # latent, sweep, fewshot, codedim, ...
OPTIONS = ("scheme", "t", "init", "freeze_encoder", "p_kl", "code_dim")  # the RunSpec fields a method may take


@dataclass(frozen=True)
class DataShape:
    """What a model is sized by besides the config: the image shape (C, H, W) and the number of classes."""

    image_shape: tuple[int, int, int]
    num_classes: int


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
        if self.scheme not in T_SCHEMES:
            raise ValueError(f"unknown t-sampling scheme {self.scheme!r}; known: {sorted(T_SCHEMES)}")
        if self.scheme == "fixed" and self.t is None:
            raise ValueError("the 'fixed' scheme needs --t")
        if self.freeze_encoder and not self.init:
            raise ValueError("--freeze-encoder needs --init, the phase-1 model whose encoder is kept")
        if (self.code_dim is not None) != (self.experiment == "codedim"):
            raise ValueError("--code-dim goes with --experiment codedim, and that experiment needs it")
        method_named(self.method).check(self)

    def options(self) -> set[str]:
        """The method options this run sets (those that differ from their defaults)."""
        defaults = {f.name: f.default for f in fields(self)}
        return {name for name in OPTIONS if getattr(self, name) != defaults[name]}


class Method(ABC):
    """A trainable method; subclasses set `name`, `experiments`, `options` and implement `build` and `loss`."""

    name: ClassVar[str]
    experiments: ClassVar[tuple[str, ...]]  # the experiments it runs in
    options: ClassVar[frozenset[str]] = frozenset()  # the RunSpec options it takes
    fresh: ClassVar[frozenset[str]] = frozenset()  # state keys a run adds to the model it starts from (--init)

    def check(self, spec: RunSpec) -> None:
        """Refuse an experiment or an option this method does not take."""
        if spec.experiment not in self.experiments:
            raise ValueError(f"method {self.name!r} runs in the experiments {self.experiments}, "
                             f"not {spec.experiment!r}")
        foreign = sorted(spec.options() - self.options)
        if foreign:
            flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
            raise ValueError(f"method {self.name!r} does not take {flags}")

    @abstractmethod
    def build(self, cfg: Config, spec: RunSpec, data: DataShape) -> nn.Module:
        """The network the run trains (modules built in a fixed order: their init draws on the global RNG)."""

    @abstractmethod
    def loss(self, cfg: Config, spec: RunSpec, model: nn.Module) -> LossFn:
        """The per-sample loss of a batch: loss(model, x0, generator) -> one value per sample."""

    def start_from(self, model: nn.Module, path: str) -> None:
        """Load the weights of the model a run starts from (--init); only the `fresh` keys may be missing."""
        state = torch.load(path, map_location="cpu", weights_only=False)["state"]
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensors of other shapes
            raise ValueError(f"{path} does not fit this model: {exc}") from None
        if unexpected or set(missing) - self.fresh:
            raise ValueError(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")

    def iterations(self, cfg: Config, spec: RunSpec) -> int:
        """The training budget: the experiment's own where it sets one, else the dataset's."""
        return own_budget(cfg, spec.dataset, spec.experiment)

    def batch_size(self, cfg: Config, spec: RunSpec) -> int:
        """The training batch: the experiment's own where it sets one, else the dataset's."""
        return own_budget(cfg, spec.dataset, spec.experiment, "train_batch")

    def schedule(self, cfg: Config, spec: RunSpec) -> Schedule:
        """The training loop's schedule: the method's budget and batch with TrainConfig."""
        tr, iterations = cfg.train, self.iterations(cfg, spec)
        snapshots = experiment_setting(cfg, spec, "snapshots")
        return Schedule(iterations, self.batch_size(cfg, spec), tr.lr, tr.warmup,
                        tr.grad_clip, tr.ema, tr.checkpoint_every, tr.log_every, spec.seed,
                        snapshot_steps=snapshot_steps(iterations, snapshots))

    def parameters(self, model: nn.Module, cfg: Config, spec: RunSpec) -> list:
        """The parameters (or param groups) the optimiser updates: all but a frozen encoder's (DRL Fig. 3/7)."""
        if spec.freeze_encoder:
            model.encoder.requires_grad_(False)
        return [p for p in model.parameters() if p.requires_grad]


def experiment_setting(cfg: Config, spec: RunSpec, name: str) -> int:
    """A run's experiment's own value of `name` (iterations, train_batch, snapshots); 0 where it has none."""
    return getattr(getattr(cfg.experiments, spec.experiment), name, 0)


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Make `method` known by its name."""
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    REGISTRY[method.name] = method
    return method


def _discover() -> None:
    """Import every module of this package once, so that each plug-in registers itself."""
    import diffrep.methods as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")


def method_names() -> list[str]:
    """The names of all registered methods."""
    _discover()
    return sorted(REGISTRY)


def method_named(name: str) -> Method:
    """The registered method called `name`; an unknown name lists the known ones."""
    if name not in REGISTRY:
        _discover()
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def code_dim(cfg: Config, spec: RunSpec) -> int:
    """The code's dimension: the run's own (experiment codedim) or its experiment's."""
    return spec.code_dim or getattr(cfg.experiments, spec.experiment).code_dim


def device_of(model: nn.Module) -> torch.device:
    """Where a model's parameters live."""
    return next(model.parameters()).device
