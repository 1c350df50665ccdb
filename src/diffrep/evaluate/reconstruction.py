"""Reconstructions and their distances to the originals (ScoreVAE Tables 1, 2): L2 as the authors compute it, LPIPS
with VGG when its backbone weights are found locally, and a distance on the domain classifier's features otherwise.

LPIPS is given twice: as the `lpips` library expects its inputs ([-1, 1]) and in the authors' protocol, which called it
on [0, 1] images without `normalize=True`; the paper's numbers come from the latter. Images smaller than VGG needs
(32 pixels a side: four max-poolings leave 2x2) are upsampled bilinearly and grey images are repeated to RGB first.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from diffrep.evaluate.fidelity import load_classifier

VGG_FILE = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16, the file torch.hub keeps in $TORCH_HOME/hub/checkpoints
VGG_MIN_SIDE = 32
RESIZE_NOTE = (f"images below {VGG_MIN_SIDE}x{VGG_MIN_SIDE} are upsampled bilinearly to {VGG_MIN_SIDE} pixels a side "
               "before VGG, grey images repeated to three channels")

# How each LPIPS variant maps [0, 1] images before the network: applied once, here only.
LPIPS_INPUTS = {"lpips": lambda x: 2 * x - 1, "lpips_authors": lambda x: x}

METRIC_NAMES = {
    "l2": "L2 (mean over images of ||x - x_hat||_2, images in [0, 1])",
    "lpips": "LPIPS (VGG, inputs in [-1, 1] as the library expects)",
    "lpips_authors": "LPIPS (VGG, inputs in [0, 1]: the authors' protocol)",
    "classifier_features": "domain-classifier feature distance (squared distance of unit-normalised penultimate "
                           "features; not LPIPS)",
}


def l2_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x - y||_2 of each flattened image pair; the authors' L2 is its mean."""
    return (x - y).flatten(1).norm(dim=1)


def vgg_weights(given: str = "") -> Path | None:
    """The VGG16 backbone file: the path given, else torch.hub's checkpoint folder; None when neither holds it."""
    path = Path(given) if given else Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILE
    return path if path.is_file() else None


def load_lpips(vgg_path: str | Path) -> torch.nn.Module:
    """LPIPS-VGG with the package's own linear layers and the VGG16 trunk read from `vgg_path` (never downloaded)."""
    import lpips  # imported here: jobs without LPIPS need not pay for it

    model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
    vgg = torch.load(vgg_path, map_location="cpu", weights_only=True)
    # the trunk's slices keep torchvision's layer indices: slice{k}.{i}.weight is features.{i}.weight
    model.net.load_state_dict({k: vgg[f"features.{k.split('.', 1)[1]}"] for k in model.net.state_dict()})
    return model.eval()


def backbone_input(x: torch.Tensor, min_side: int = VGG_MIN_SIDE) -> torch.Tensor:
    """Three channels, and at least `min_side` pixels a side (bilinear upsampling), values unchanged in range."""
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    side = min(x.shape[-2:])
    if side >= min_side:
        return x
    return F.interpolate(x, scale_factor=min_side / side, mode="bilinear", align_corners=False)


@torch.no_grad()
def lpips_distances(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, variant: str) -> torch.Tensor:
    """LPIPS of each pair of [0, 1] images, their inputs mapped by `variant` (see LPIPS_INPUTS)."""
    to_input = LPIPS_INPUTS[variant]
    return model(to_input(backbone_input(x)), to_input(backbone_input(y)), normalize=False).flatten()


@torch.no_grad()
def classifier_distances(classifier: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||f(x) / ||f(x)|| - f(y) / ||f(y)|| ||^2 on the classifier's penultimate features, per pair (LPIPS' form on
    one layer, without learned weights)."""
    fx, fy = (F.normalize(classifier.features(v), dim=1) for v in (x, y))
    return (fx - fy).pow(2).sum(1)


def metric_functions(vgg_path: Path | None, classifier_path: str | Path | None) -> dict[str, Callable]:
    """Every metric this setting can compute, as (x, y) -> distance per image pair: L2 always, both LPIPS variants
    with VGG weights, the classifier's feature distance with a classifier; each network loaded once."""
    out: dict[str, Callable] = {"l2": l2_distances}
    if vgg_path is not None:
        model = load_lpips(vgg_path)
        out.update({v: partial(lpips_distances, model, variant=v) for v in LPIPS_INPUTS})
    if classifier_path is not None:
        out["classifier_features"] = partial(classifier_distances, load_classifier(classifier_path))
    return out


@torch.no_grad()
def reconstruct(model: torch.nn.Module, x0: torch.Tensor, steps: int, batch_size: int, seed: int) -> torch.Tensor:
    """The model's reconstructions of `x0` ([0, 1]) in batches, one seeded generator for all, clamped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    parts = [model.reconstruct(x, steps, generator).clamp(0.0, 1.0) for x in x0.split(batch_size)]
    return torch.cat(parts)


def read_reconstructions(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Originals, reconstructions and what made them, from a file of `diffrep reconstruct` (x0, x_hat in [0, 1],
    method, seed, steps)."""
    import numpy as np

    with np.load(path) as f:
        meta = {k: f[k].item() for k in ("method", "seed", "steps")}
        return torch.from_numpy(f["x0"]), torch.from_numpy(f["x_hat"]), {"run": Path(path).stem, **meta}


def random_others(n: int, seed: int) -> torch.Tensor:
    """For each of n images the index of another one, uniform over the other n - 1 (seeded)."""
    j = torch.randint(0, n - 1, (n,), generator=torch.Generator().manual_seed(seed))
    return j + (j >= torch.arange(n)).long()


def class_means(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean image of each class 0..max(y), a row per class."""
    classes = int(y.max()) + 1
    sums = torch.zeros(classes, *x.shape[1:], dtype=x.dtype).index_add_(0, y, x)
    return sums / torch.bincount(y, minlength=classes).to(x.dtype).view(-1, *[1] * (x.dim() - 1))


def nearest(x: torch.Tensor, pool: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Each image's nearest image of `pool` in L2."""
    flat = pool.flatten(1)
    return torch.cat([pool[torch.cdist(part.flatten(1), flat).argmin(1)] for part in x.split(batch_size)])


def floors(x0: torch.Tensor, y0: torch.Tensor, train: tuple[torch.Tensor, torch.Tensor], seed: int = 0
           ) -> list[tuple[torch.Tensor, torch.Tensor, dict]]:
    """Reconstructions that use no model, the reference rows of ScoreVAE Tables 1, 2: for each test image a random
    other test image, the mean training image of its class, and the nearest training image (L2)."""
    references = {"floor_random": x0[random_others(len(x0), seed)],
                  "floor_class_mean": class_means(*train)[y0], "floor_nearest_train": nearest(x0, train[0])}
    return [(x0, x_hat, {"run": name, "method": name, "seed": seed, "steps": 0}) for name, x_hat in references.items()]


def score_reconstructions(runs: Iterable[tuple[torch.Tensor, torch.Tensor, dict]], vgg_path: Path | None,
                          classifier_path: str | Path | None) -> list[dict]:
    """One row per run (originals, reconstructions, what made them) and metric: the mean distance over its images."""
    rows, metrics = [], metric_functions(vgg_path, classifier_path)
    for x0, x_hat, meta in runs:
        rows += [{**meta, "images": len(x0), "metric": metric, "value": distance(x0, x_hat).mean().item()}
                 for metric, distance in metrics.items()]
    return rows
