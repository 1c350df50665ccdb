"""Quality of codes: silhouette scores (DRL Fig. 11) and few-shot SVMs (DRL Fig. 12, A.5); a classifier's accuracy."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import silhouette_score
from sklearn.svm import SVC


@torch.no_grad()
def encode(model: torch.nn.Module, x: torch.Tensor, t: float | None = None, batch: int = 512) -> np.ndarray:
    """Codes of `x` (the encoder's mean; E(x0, t) at the given t for a time-conditioned encoder)."""
    out = []
    for chunk in x.split(batch):
        tt = None if t is None else torch.full((chunk.shape[0],), float(t))
        mean, _ = model.encode(chunk, tt)
        out.append(mean.cpu().numpy())
    return np.concatenate(out)


def silhouette(codes: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the codes with the classes as clusters, Euclidean distance (Rousseeuw 1987)."""
    if not np.isfinite(codes).all():
        raise ValueError("codes contain non-finite values")
    return float(silhouette_score(codes, labels, metric="euclidean"))


def labelled_subset(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` training images drawn at random, redrawn until at least two classes are present."""
    if n > len(labels):
        raise ValueError(f"asked for {n} labelled images but the training set has {len(labels)}")
    while True:
        idx = rng.choice(len(labels), size=n, replace=False)
        if len(np.unique(labels[idx])) > 1:
            return idx


def fewshot_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                     test_labels: np.ndarray, idx: np.ndarray) -> float:
    """Test accuracy of an SVM (scikit-learn defaults) fitted on the codes of the labelled subset `idx`."""
    svm = SVC().fit(train_codes[idx], train_labels[idx])
    return float((svm.predict(test_codes) == test_labels).mean())


@torch.no_grad()
def accuracy(logits: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             batch: int = 500) -> float:
    """Top-1 accuracy: the fraction of images whose most likely class under `logits` is the label."""
    pred = torch.cat([logits(chunk).argmax(1) for chunk in x.split(batch)])
    return float((pred == y.to(pred.device)).float().mean())
