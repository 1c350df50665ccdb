"""Quality of codes: silhouette scores (DRL Fig. 11) and few-shot SVMs (DRL Fig. 12, A.5); a classifier's accuracy;
one protocol for the codes of every method (silhouette, SVM and kNN on shared labelled draws, a linear probe)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
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


def fewshot_rows(codes_train: np.ndarray, y_train: np.ndarray, codes_test: np.ndarray, y_test: np.ndarray,
                 ts: np.ndarray, labels: list[int], draws: int, seed: int) -> list[dict]:
    """Few-shot SVM accuracy per label count, labelled draw and t (codes stacked per t; NaN t: a static code)."""
    rows = []
    for n in labels:
        rng = np.random.default_rng(seed)
        for draw in range(draws):
            idx = labelled_subset(y_train, n, rng)
            for k, t in enumerate(ts):
                acc = fewshot_accuracy(codes_train[k], y_train, codes_test[k], y_test, idx)
                rows.append({"t": None if np.isnan(t) else float(t), "labels": n, "draw": draw, "accuracy": acc})
    return rows


def timed_codes(model, x: torch.Tensor, ts: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The t grid and the codes stacked per t: E(x0, t) at each t of `ts`, or the static code once (t NaN)."""
    timed = getattr(getattr(model, "encoder", None), "time_conditioned", False)
    grid = ts if timed else [None]
    return (np.array([np.nan if t is None else t for t in grid]), np.stack([encode(model, x, t) for t in grid]))


@torch.no_grad()
def accuracy(logits: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             batch: int = 500) -> float:
    """Top-1 accuracy: the fraction of images whose most likely class under `logits` is the label."""
    pred = torch.cat([logits(chunk).argmax(1) for chunk in x.split(batch)])
    return float((pred == y.to(pred.device)).float().mean())


def knn_accuracy(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray, test_labels: np.ndarray,
                 idx: np.ndarray, k: int) -> float:
    """Test accuracy of k nearest neighbours (Euclidean) among the codes of the labelled subset `idx`."""
    knn = KNeighborsClassifier(n_neighbors=min(k, len(idx))).fit(train_codes[idx], train_labels[idx])
    return float((knn.predict(test_codes) == test_labels).mean())


def linear_probe(train_codes: np.ndarray, train_labels: np.ndarray, test_codes: np.ndarray,
                 test_labels: np.ndarray) -> float:
    """Test accuracy of a logistic regression on the standardised codes of all training images."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(train_codes, train_labels)
    return float(probe.score(test_codes, test_labels))


def pca_codes(x_train: np.ndarray, x_test: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The floor of the comparison: the first `dim` principal components of the training pixels."""
    pca = PCA(dim, random_state=0).fit(x_train)
    return pca.transform(x_train), pca.transform(x_test)


def best_t(codes_train: np.ndarray, y_train: np.ndarray, max_points: int = 2000) -> int:
    """The index of the t whose training codes have the highest silhouette: E(x0, t)'s best t, chosen without the
    test labels (on at most `max_points` images, a fixed subset)."""
    keep = np.random.default_rng(0).permutation(len(y_train))[:max_points]
    return int(np.argmax([silhouette(codes[keep], y_train[keep]) for codes in codes_train]))


def protocol(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray, labels: list[int],
             draws: int, k: int, seed: int) -> list[dict]:
    """Every score of one code: the test codes' silhouette, a linear probe on all labels, and per label count an SVM
    (scikit-learn defaults, as DRL Fig. 12) and kNN on `draws` labelled subsets, the same subsets for every code."""
    rows = [{"metric": "silhouette", "labels": 0, "draw": 0, "value": silhouette(test, y_test)},
            {"metric": "linear_probe", "labels": len(y_train), "draw": 0,
             "value": linear_probe(train, y_train, test, y_test)}]
    for n in labels:
        rng = np.random.default_rng(seed)
        for draw in range(draws):
            idx = labelled_subset(y_train, n, rng)
            rows += [{"metric": "svm", "labels": n, "draw": draw,
                      "value": fewshot_accuracy(train, y_train, test, y_test, idx)},
                     {"metric": "knn", "labels": n, "draw": draw,
                      "value": knn_accuracy(train, y_train, test, y_test, idx, k)}]
    return rows
