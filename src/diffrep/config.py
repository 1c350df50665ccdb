"""The one source of defaults: typed dataclasses; `params/*.yaml` profiles only override them.

A profile is validated against the closed JSON schema (`schema.json`) before anything runs, then merged
over the defaults here and frozen into dataclasses. The resolved config is what every output directory
keeps beside its files.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """A profile that does not match the schema: names the key and the value."""


@dataclass
class SDEConfig:
    """VE SDE, sigma(t) = sigma_min * (sigma_max / sigma_min)^t (DRL sec. 4, score-SDE)."""

    kind: str = "ve"
    sigma_min: float = 0.01
    sigma_max: float = 50.0
    eps: float = 1e-5


@dataclass
class NetConfig:
    """Score U-Net and encoder sizes (DRL A.4): channels per resolution, residual blocks per resolution."""

    channels: list[int] = field(default_factory=lambda: [32, 64])
    num_res_blocks: int = 1
    emb_dim: int = 64
    code_hidden: int = 64
    dropout: float = 0.0


@dataclass
class DatasetConfig:
    """One dataset: where it comes from, the network that fits it and its training budget."""

    source: str = "sklearn"
    test_fraction: float = 0.2
    split_seed: int = 0
    url: str = ""
    files: dict[str, str] = field(default_factory=dict)
    path: str = ""  # MiniImageNet: a user-given folder (not in torchvision); checked where the DAG is planned
    net: NetConfig = field(default_factory=NetConfig)
    iterations: int = 1500
    batch_size: int = 128


@dataclass
class TrainConfig:
    """One training loop for all models (DRL authors' code: Adam 2e-4, warm-up, clip 1, EMA 0.999)."""

    lr: float = 2e-4
    warmup: int = 5000
    grad_clip: float = 1.0
    ema: float = 0.999
    checkpoint_every: int = 500
    log_every: int = 50
    device: str = "auto"
    threads: int = 1


@dataclass
class PenaltyConfig:
    """Code penalties (DRL A.4): L1 weight for DRL, KL weight for VDRL."""

    l1: float = 1e-5
    kl: float = 1e-7


@dataclass
class LatentExperiment:
    """Fig. 2, 3, 5, 7: 2-d codes with uniform t, and high-noise focus then frozen encoder."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    code_dim: int = 2
    seed: int = 0


@dataclass
class SweepExperiment:
    """Fig. 11 / workshop Fig. 4: one model per single training time t, several seeds."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    t: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    code_dim: int = 2
    iterations: int = 0


@dataclass
class FewShotExperiment:
    """Fig. 12 / A.5: SVM on codes of E(x0, t) against AE and VAE codes."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    code_dim: int = 8
    t: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    labels: list[int] = field(default_factory=lambda: [30, 300])
    draws: int = 3
    seed: int = 0


@dataclass
class CodeDimExperiment:
    """DRL Fig. 10: samples for one code as the code's dimension grows; their spread per dimension."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    code_dims: list[int] = field(default_factory=lambda: [2, 4, 8, 16])
    iterations: int = 0  # 0: the dataset's iterations
    images: int = 4  # test images whose codes are sampled from
    samples: int = 16  # samples per code
    seed: int = 0


@dataclass
class SemisupExperiment:
    """DRL Tables 1, 4-7 (A.6): LaplaceNet on a WRN whose hidden layer is the DRL code, per pretraining.

    A setting is `<pretraining>[+mixup][@short]`: pretraining none, drl, vdrl, drl_mixup (mixup during
    pretraining), ae (binary cross-entropy autoencoder) or drl_tsearch (DRL, t chosen by the t-search);
    `+mixup` applies mixup in the LaplaceNet training; `@short` uses `short_iterations` (DRL Tables 4, 5);
    `supervised` is the warm-up alone with its own cosine decay (the supervised-only baseline).
    """

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    labels: dict[str, list[int]] = field(default_factory=lambda: {"digits": [20, 50]})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    settings: list[str] = field(default_factory=lambda: [
        "supervised", "none", "none+mixup", "drl", "drl+mixup", "drl_mixup+mixup", "vdrl", "vdrl+mixup", "ae",
        "none@short", "none+mixup@short", "drl@short", "drl_tsearch@short", "ae@short"])
    pretrainings: list[str] = field(default_factory=lambda: ["drl", "vdrl", "drl_mixup", "ae"])  # models to pretrain
    depth: int = 28  # WRN-28-2 (DRL A.6)
    width: int = 2
    pretrain_iterations: int = 0  # 0: the dataset's iterations
    warmup_epochs: int = 100  # supervised epochs on the labelled images (DRL A.6)
    iterations: int = 260  # pseudo-labelling + one epoch each (DRL A.6)
    short_iterations: int = 90  # the 100-epoch budget of DRL Tables 4, 5: 10 warm-up epochs + 90
    batch_size: int = 100
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 5e-4
    knn: int = 50
    alpha: float = 0.99
    t_grid: int = 11  # equally spaced t in [0.001, 1] for the t-search


@dataclass
class SamplingConfig:
    """How samples are drawn for FID/IS (score-SDE's predictor-corrector defaults)."""

    method: str = "pc"
    steps: int = 1000  # at t_init = 1; a shortened run takes steps * t_init (DRL sec. 4.3)
    snr: float = 0.16
    batch_size: int = 500


@dataclass
class GenerationExperiment:
    """DRL Table 3, Fig. 4: sampling from t_init < 1 with a Gaussian or a uniform+Gaussian prior."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    t_init: list[float] = field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    priors: list[str] = field(default_factory=lambda: ["gaussian", "uniform+gaussian"])
    samples: int = 20000
    seed: int = 0


@dataclass
class AdversarialExperiment:
    """DRL Table 2, Fig. 13, 14: adversarial lambda'_alpha from the unconditional checkpoint, per p_KL."""

    datasets: list[str] = field(default_factory=lambda: ["digits"])
    p_kl: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.5, 0.95, 1.0])
    iterations: int = 50000
    adversary_lr_scale: float = 1.0
    samples: int = 50000
    seed: int = 0


@dataclass
class FidelityConfig:
    """FID/IS features: Inception-v3 from a local weights file when given, else the domain classifier."""

    inception_weights: str = ""
    classifier_epochs: int = 30
    classifier_lr: float = 1e-3
    feature_dim: int = 128


@dataclass
class Experiments:
    latent: LatentExperiment = field(default_factory=LatentExperiment)
    sweep: SweepExperiment = field(default_factory=SweepExperiment)
    fewshot: FewShotExperiment = field(default_factory=FewShotExperiment)
    codedim: CodeDimExperiment = field(default_factory=CodeDimExperiment)
    generation: GenerationExperiment = field(default_factory=GenerationExperiment)
    adversarial: AdversarialExperiment = field(default_factory=AdversarialExperiment)
    semisup: SemisupExperiment = field(default_factory=SemisupExperiment)


@dataclass
class Config:
    """A whole profile, resolved."""

    name: str = "default"
    data_root: str = "data"
    models_root: str = "models"
    results_root: str = "results"
    sde: SDEConfig = field(default_factory=SDEConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    penalties: PenaltyConfig = field(default_factory=PenaltyConfig)
    datasets: dict[str, DatasetConfig] = field(default_factory=lambda: {"digits": DatasetConfig()})
    experiments: Experiments = field(default_factory=Experiments)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)


SCHEMA = json.loads(resources.files("diffrep").joinpath("schema.json").read_text())


def validate(raw: dict[str, Any], origin: str = "profile") -> None:
    """Check a profile against the closed schema; the error names the key path and the offending value."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{origin}: {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid parameters\n  " + "\n  ".join(lines))
    _check_references(raw, origin)


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _check_references(raw: dict[str, Any], origin: str) -> None:
    """Every experiment's datasets must be defined under `datasets`."""
    known = set(raw.get("datasets", {"digits": {}}))
    for exp, spec in raw.get("experiments", {}).items():
        for name in spec.get("datasets", []):
            if name not in known:
                raise ConfigError(
                    f"{origin}: experiments.{exp}.datasets: {name!r} is not defined under datasets "
                    f"(defined: {sorted(known)})"
                )
    semisup = raw.get("experiments", {}).get("semisup", {})
    labels = semisup.get("labels", SemisupExperiment().labels)
    missing = [d for d in semisup.get("datasets", ["digits"]) if d not in labels]
    if missing:
        raise ConfigError(f"{origin}: experiments.semisup.labels: no label counts for {missing}")
    defaults = SemisupExperiment()
    used = {setting_pretraining(s) for s in semisup.get("settings", defaults.settings)} - {"none"}
    listed = set(semisup.get("pretrainings", defaults.pretrainings))
    if used != listed:
        raise ConfigError(f"{origin}: experiments.semisup.pretrainings: {sorted(listed)} must be the pretrainings "
                          f"that the settings start from: {sorted(used)}")


def setting_pretraining(setting: str) -> str:
    """The pretrained model a semi-supervised setting (`<pretraining>[+mixup][@short]`) starts from."""
    base = setting.removesuffix("@short").removesuffix("+mixup")
    return {"supervised": "none", "drl_tsearch": "drl"}.get(base, base)


def _build(cls: type, raw: dict[str, Any]) -> Any:
    """Dataclass `cls` with `raw` overriding its defaults, recursively."""
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        kwargs[f.name] = _build_value(f.type, value)
    return cls(**kwargs)


# every parameter block, by the type name its field annotation gives
_NESTED = {name: obj for name, obj in list(globals().items()) if isinstance(obj, type) and is_dataclass(obj)}


def _build_value(type_name: Any, value: Any) -> Any:
    type_name = str(type_name)
    if type_name in _NESTED:
        return _build(_NESTED[type_name], value)
    if type_name == "dict[str, DatasetConfig]":
        return {k: _build(DatasetConfig, v) for k, v in value.items()}
    return value


def resolve(raw: dict[str, Any], origin: str = "profile") -> Config:
    """Validate a profile and merge it over the defaults."""
    validate(raw, origin)
    return _build(Config, raw)


def load(path: str | Path) -> Config:
    """Read, validate and resolve a profile or a resolved config file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters, got {type(raw).__name__}")
    return resolve(raw, str(path))


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump(cfg: Config, path: str | Path) -> None:
    """Write the resolved config (atomically; unchanged content keeps the file's mtime)."""
    from diffrep.io import write_text_if_changed

    write_text_if_changed(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))
