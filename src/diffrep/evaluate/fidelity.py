"""Sample fidelity: FID and IS computed by torch-fidelity, on Inception-v3 features or on a domain classifier.

Inception weights cannot be downloaded here, so the offline pipeline trains a small classifier on the same data,
registers it with torch-fidelity as a feature extractor and names it wherever its numbers are reported.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from diffrep.config import FidelityConfig
from diffrep.io import atomic_path
from diffrep.nets.classifier import DomainClassifier

CLASSIFIER_EXTRACTOR = "diffrep-domain-classifier"
INCEPTION_EXTRACTOR = "inception-v3-compat"


def classifier_epoch(model: DomainClassifier, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int, generator: torch.Generator) -> None:
    """One pass of cross-entropy steps over the training set in a seeded random order."""
    for idx in torch.randperm(len(x), generator=generator).split(batch_size):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def train_classifier(x_train: torch.Tensor, y_train: torch.Tensor, fc: FidelityConfig, seed: int = 0
                     ) -> DomainClassifier:
    """Fit a domain classifier to images in [0, 1] (N, C, H, W) and integer labels with Adam (sizes and budget: fc)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainClassifier(x_train.shape[1], x_train.shape[-1], int(y_train.max()) + 1, fc.classifier_channels,
                                 fc.feature_dim)
    opt = torch.optim.Adam(model.parameters(), lr=fc.classifier_lr)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(fc.classifier_epochs):
        classifier_epoch(model, opt, x_train, y_train.long(), fc.classifier_batch_size, generator)
    return model.eval()


def save_classifier(model: DomainClassifier, path: str | Path) -> None:
    """The classifier's weights with what rebuilds it: the file torch-fidelity's extractor is given."""
    with atomic_path(path) as tmp:
        torch.save({"state": model.state_dict(), "config": model.config}, tmp)


def load_classifier(path: str | Path) -> DomainClassifier:
    """Rebuild a classifier saved by `save_classifier`, in evaluation mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = DomainClassifier(**payload["config"])
    model.load_state_dict(payload["state"])
    return model.eval()


def from_uint8(x: torch.Tensor, in_ch: int) -> torch.Tensor:
    """torch-fidelity's uint8 batches in [0, 255] -> floats in [0, 1] with the classifier's channel count."""
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images from torch-fidelity, got {x.dtype}")
    x = x.float() / 255.0
    if x.shape[1] == in_ch:
        return x
    if in_ch == 1 and x.shape[1] == 3:
        return x.mean(dim=1, keepdim=True)
    raise ValueError(f"cannot feed {x.shape[1]}-channel images to a {in_ch}-channel classifier")


class ClassifierFeatures(FeatureExtractorBase):
    """torch-fidelity extractor: 'penultimate' classifier features for FID, class 'logits' for IS."""

    def __init__(self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None,
                 **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError(f"{name} needs feature_extractor_weights_path, a checkpoint written by save_classifier")
        self.classifier = load_classifier(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return "penultimate", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The requested features, in the order torch-fidelity asked for them."""
        h = self.classifier.features(from_uint8(x, self.classifier.config["in_ch"]))
        out = {"penultimate": h, "logits": self.classifier.head(h)}
        return tuple(out[name] for name in self.features_list)


def register_classifier_features() -> None:
    """Make `ClassifierFeatures` known to torch-fidelity as CLASSIFIER_EXTRACTOR (once per process)."""
    if CLASSIFIER_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(CLASSIFIER_EXTRACTOR, ClassifierFeatures)


class UInt8Images(Dataset):
    """Float images in [0, 1] (N, 1 or 3, H, W) served as torch-fidelity expects: uint8 RGB in [0, 255]."""

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("images contain non-finite values")
        x = (images.detach().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
        self.images = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def feature_setup(features: str, weights_path: str | Path) -> dict:
    """torch-fidelity's extractor and layers for `features`, with human-readable names of what FID and IS use."""
    if features not in ("inception", "classifier"):
        raise ValueError(f"unknown features {features!r}; expected 'inception' or 'classifier'")
    if not Path(weights_path).is_file():
        raise FileNotFoundError(f"no {features} feature-extractor weights at {weights_path}")
    if features == "inception":
        return {"feature_extractor": INCEPTION_EXTRACTOR, "feature_layer_fid": "2048",
                "feature_layer_isc": "logits_unbiased", "names": ("Inception-v3 pool3 (2048-d)",
                                                                  "Inception-v3 logits (1008 classes)")}
    register_classifier_features()
    config = torch.load(weights_path, map_location="cpu", weights_only=True)["config"]
    return {"feature_extractor": CLASSIFIER_EXTRACTOR, "feature_layer_fid": "penultimate",
            "feature_layer_isc": "logits", "names": (f"domain classifier penultimate ({config['feature_dim']}-d)",
                                                     f"domain classifier logits ({config['num_classes']} classes)")}


def fidelity_metrics(samples: torch.Tensor, reference: torch.Tensor | None = None, *, features: str,
                     weights_path: str | Path, isc: bool = True, fid: bool = True, batch_size: int = 256,
                     cuda: bool = False, verbose: bool = False) -> dict:
    """FID of `samples` against `reference` and IS of `samples` (images in [0, 1]) on the named features."""
    setup = feature_setup(features, weights_path)
    if fid and reference is None:
        raise ValueError("FID needs reference images")
    fid_name, isc_name = setup.pop("names")
    # cache=False: torch-fidelity keys its cache on input names, never on content; save_cpu_ram=True keeps the
    # DataLoader in-process instead of forking up to four workers to read tensors already in memory.
    raw = torch_fidelity.calculate_metrics(
        input1=UInt8Images(samples), input2=UInt8Images(reference) if fid else None, isc=isc, fid=fid,
        feature_extractor_weights_path=str(weights_path), batch_size=batch_size, cuda=cuda,
        cache=False, save_cpu_ram=True, verbose=verbose, **setup)
    out = {"features": fid_name, "isc_features": isc_name}
    if fid:
        out["fid"] = raw[torch_fidelity.KEY_METRIC_FID]
    if isc:
        out.update(isc_mean=raw[torch_fidelity.KEY_METRIC_ISC_MEAN], isc_std=raw[torch_fidelity.KEY_METRIC_ISC_STD])
    return out


def split_fids(samples: torch.Tensor, reference: torch.Tensor, splits: int, **kwargs) -> list[float]:
    """FID of each of `splits` disjoint, equal, contiguous chunks of `samples` against the whole `reference` (what the
    verdicts' intervals rest on; contiguous, so that sets drawn with one seed share each chunk's prior noise). The
    remainder of an uneven division is left out; `kwargs` go to `fidelity_metrics`."""
    size = len(samples) // splits
    if size < 2:
        raise ValueError(f"{len(samples)} samples cannot make {splits} splits of at least 2 (fidelity.fid_splits)")
    return [fidelity_metrics(samples[i * size:(i + 1) * size], reference, isc=False, **kwargs)["fid"]
            for i in range(splits)]
