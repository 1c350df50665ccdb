"""LaplaceNet (Sellars et al. 2021): pseudo-labels from the graph Laplacian of the classifier's features.

Training (DRL A.6 and the authors' code): a supervised warm-up on the labelled images (mixup where the setting
asks), then iterations that each assign pseudo-labels to every training image by label propagation on a
k-nearest-neighbour graph of the classifier's L2-normalised hidden features and train one epoch over the unlabelled
images, each batch 50 pseudo-labelled and 50 labelled images, mixup always on (one lambda ~ Beta(1, 1) per batch),
the cross-entropy unweighted (the certainty weights are computed and not used); SGD with Nesterov momentum 0.9,
weight decay 5e-4, lr 0.03 decayed by a cosine over the whole run.
"""
from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import cg
from sklearn.neighbors import NearestNeighbors
from torch import nn
from tqdm import tqdm

from diffrep.objectives import mixup

CG_TOL, CG_ITERATIONS = 1e-3, 30  # LaplaceNet's conjugate-gradient settings
log = logging.getLogger(__name__)


def _check_propagation_inputs(features: np.ndarray, labels: np.ndarray, labelled: np.ndarray, k: int) -> int:
    """The number of classes; refuses shapes that disagree, too few points or a class without a labelled sample."""
    if features.ndim != 2 or len(features) != len(labels) or labelled.shape != labels.shape:
        raise ValueError(f"features {features.shape}, labels {labels.shape} and labelled {labelled.shape} disagree")
    if labelled.dtype != bool:
        raise ValueError(f"labelled must be a boolean mask, got dtype {labelled.dtype}")
    if not 0 < k < len(features):
        raise ValueError(f"k = {k} neighbours needs more than k points, got {len(features)}")
    num_classes = int(labels[labels >= 0].max()) + 1 if (labels >= 0).any() else 0
    missing = sorted(set(range(num_classes)) - set(labels[labelled].tolist()))
    if missing or num_classes < 2:
        raise ValueError(f"every class needs a labelled sample; classes without one: {missing or 'all'}")
    return num_classes


def knn_graph(features: np.ndarray, k: int) -> sp.csr_matrix:
    """Symmetric affinity W: inner products of L2-normalised features to the k nearest neighbours, max(W, W^T)."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)  # Euclidean order = inner-product order
    n = len(x)
    rows = np.arange(n)[:, None]
    keep = idx != rows
    keep[keep.all(axis=1), -1] = False  # duplicates can push a point's self-match out of its list: drop the farthest
    cols = idx[keep].reshape(n, k)
    sims = np.clip(np.einsum("nd,nkd->nk", x, x[cols]), 0.0, None)
    w = sp.csr_matrix((sims.ravel(), (np.repeat(np.arange(n), k), cols.ravel())), shape=(n, n))
    return w.maximum(w.T).tocsr()


def normalized_affinity(w: sp.csr_matrix) -> sp.csr_matrix:
    """W_n = D^-1/2 W D^-1/2 with D the degree matrix (an isolated point keeps a zero row)."""
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-12)), 0.0)
    d = sp.diags(inv_sqrt)
    return (d @ w @ d).tocsr()


def solve_per_class(wn: sp.csr_matrix, labels: np.ndarray, labelled: np.ndarray, num_classes: int,
                    alpha: float) -> np.ndarray:
    """f_c solving (I - alpha W_n) f_c = Y_c by conjugate gradient, Y_c = 1/n_c on the labelled samples of class c."""
    a = sp.identity(wn.shape[0], format="csr") - alpha * wn
    scores = np.zeros((wn.shape[0], num_classes))
    for c in range(num_classes):
        members = labelled & (labels == c)
        y = members / members.sum()
        scores[:, c], _ = cg(a, y, rtol=CG_TOL, maxiter=CG_ITERATIONS)
    return scores


def align_distribution(probs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rescale each class column so the mean prediction matches the labelled class distribution; rows sum to 1."""
    aligned = probs * (target / np.maximum(probs.mean(axis=0), 1e-12))
    return aligned / np.maximum(aligned.sum(axis=1, keepdims=True), 1e-12)


def propagate_labels(features, labels, labelled, k: int = 50, alpha: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-labels of every sample and their weights, by label propagation on the features' kNN graph (LaplaceNet).

    `labels` holds the classes of the labelled samples (other entries are ignored; negative ones are allowed);
    `labelled` is a boolean mask. The weight of a pseudo-label is its certainty 1 - H(p) / log C, H the entropy
    of its row of propagated scores (as in LaplaceNet and Iscen et al. 2019); a labelled sample keeps its label
    with weight 1.
    """
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    labelled = np.asarray(labelled)
    num_classes = _check_propagation_inputs(features, labels, labelled, k)
    wn = normalized_affinity(knn_graph(features, k))
    scores = np.clip(solve_per_class(wn, labels, labelled, num_classes, alpha), 0.0, None)
    probs = scores / np.maximum(scores.sum(axis=1, keepdims=True), 1e-12)
    target = np.bincount(labels[labelled], minlength=num_classes) / labelled.sum()
    probs = align_distribution(probs, target)
    pseudo = probs.argmax(axis=1)
    entropy = -(probs * np.log(np.maximum(probs, 1e-12))).sum(axis=1)
    weights = 1.0 - entropy / math.log(num_classes)
    pseudo[labelled], weights[labelled] = labels[labelled], 1.0
    return pseudo, weights


def laplacenet_epochs(step_budget: int, labels: int, train_size: int, batch_size: int, labelled_batch_size: int,
                      augmentations: int, warmup_epochs: int = 10) -> int:
    """Epochs of a LaplaceNet run from its step budget (the authors' arithmetic, steps -> epochs).

    The budget counts optimiser steps: the warm-up takes floor(labels / batch) * 100 of them, and a
    semi-supervised epoch over the `augmentations` copies of the `train_size` images takes
    floor(copies / (batch - labelled batch)). LaplaceNet's CIFAR-10 command (4000 labels, batch 300 with 48
    labelled, 5 augmentations, 250k steps) gives 10 + floor(248 700 / 992) = 260. Our reading: the code's 260
    epochs include the 10 warm-up epochs of 10 supervised passes each (DRL's "100 supervised epochs"), while
    DRL A.6 calls all 260 "iterations" after the warm-up; the paper profile follows the text (260 iterations).
    """
    warmup_steps = (labels // batch_size) * 100
    steps_per_epoch = (train_size * augmentations) // (batch_size - labelled_batch_size)
    if steps_per_epoch <= 0 or step_budget < warmup_steps:
        raise ValueError("the step budget does not cover the warm-up, or an epoch has no steps")
    return warmup_epochs + (step_budget - warmup_steps) // steps_per_epoch


def balanced_labelled_mask(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of `n` labelled training images, n // C per class (the remainder drawn from the rest)."""
    classes = np.unique(y)
    if n < len(classes) or n > len(y):
        raise ValueError(f"{n} labels cannot cover {len(classes)} classes with {len(y)} training images")
    mask = np.zeros(len(y), dtype=bool)
    for c in classes:
        members = np.flatnonzero(y == c)
        mask[rng.choice(members, size=min(n // len(classes), len(members)), replace=False)] = True
    mask[rng.choice(np.flatnonzero(~mask), size=n - mask.sum(), replace=False)] = True
    return mask


@dataclass
class Optimisation:
    """SGD with Nesterov momentum and a cosine decay over `total_steps` (LaplaceNet's settings: SemisupExperiment)."""

    lr: float
    momentum: float
    weight_decay: float
    total_steps: int
    step: int = 0

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                               weight_decay=self.weight_decay, nesterov=True)

    def cosine_lr(self) -> float:
        """lr * (1 + cos(pi * progress)) / 2."""
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * min(self.step / max(self.total_steps, 1), 1.0)))


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Batches of an epoch over n images: a last batch of one image is dropped (batch norm needs two)."""
    full, rest = divmod(n, batch_size)
    return full + (rest > 1) if full else 1


def epoch_batches(n: int, batch_size: int, g: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch of indices in `batches_per_epoch` batches."""
    return list(torch.randperm(n, generator=g).split(batch_size))[:batches_per_epoch(n, batch_size)]


def labelled_stream(n: int, per_batch: int, batches: int, g: torch.Generator) -> list[torch.Tensor]:
    """`batches` groups of `per_batch` labelled indices from reshuffled passes over the n labelled images, chained
    (LaplaceNet's endless labelled stream)."""
    passes = -(-per_batch * batches // n)
    return list(torch.cat([torch.randperm(n, generator=g) for _ in range(passes)]).split(per_batch))[:batches]


def cross_entropy(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, use_mixup: bool,
                  g: torch.Generator) -> torch.Tensor:
    """Mean cross-entropy of a batch, unweighted (the authors compute the certainty weights and do not use them);
    with mixup, of the mixed images against both labels."""
    if not use_mixup:
        return nn.functional.cross_entropy(model.classify(xb), yb)
    xb, perm, lam = mixup(xb, g)
    logits = model.classify(xb)
    return lam * nn.functional.cross_entropy(logits, yb) + (1 - lam) * nn.functional.cross_entropy(logits, yb[perm])


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, optim: Optimisation,
                batches: list[tuple[torch.Tensor, torch.Tensor]], use_mixup: bool, g: torch.Generator) -> float:
    """One optimiser step per (images, labels) batch at the cosine lr; returns the mean batch loss."""
    model.train()
    losses = []
    for xb, yb in batches:
        loss = cross_entropy(model, xb, yb, use_mixup, g)
        for group in opt.param_groups:
            group["lr"] = optim.cosine_lr()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        optim.step += 1
        losses.append(loss.item())
    return float(np.mean(losses))


@torch.no_grad()
def hidden_features(model: nn.Module, x: torch.Tensor, batch: int = 500) -> np.ndarray:
    """The classifier's hidden layer of every image (evaluation mode)."""
    model.eval()
    return torch.cat([model.features(chunk) for chunk in x.split(batch)]).cpu().numpy()


@dataclass
class Semisup:
    """One LaplaceNet run: data on the model's device, the labelled mask, and the schedule."""

    x: torch.Tensor
    y: torch.Tensor
    labelled: np.ndarray
    warmup_epochs: int
    iterations: int
    warmup_mixup: bool
    k: int
    alpha: float
    batch_size: int
    labelled_batch: int

    def __post_init__(self):
        if not 0 < self.labelled_batch < self.batch_size - 1:
            raise ValueError(f"a batch of {self.batch_size} needs at least two pseudo-labelled images besides its "
                             f"{self.labelled_batch} labelled ones")
        if self.labelled.all():
            raise ValueError("every training image is labelled: LaplaceNet needs unlabelled ones")

    def indices(self, mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.flatnonzero(mask)).to(self.x.device)

    def warmup_batches(self, g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """An epoch over the labelled images in batches of `batch_size`."""
        idx = self.indices(self.labelled)
        return [(self.x[idx[b]], self.y[idx[b]]) for b in epoch_batches(len(idx), self.batch_size, g)]

    def pseudo_batches(self, pseudo: torch.Tensor, g: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """An epoch over the unlabelled images with their pseudo-labels, each batch completed by `labelled_batch`
        labelled images with their labels (LaplaceNet: 50 + 50)."""
        unl, lab = self.indices(~self.labelled), self.indices(self.labelled)
        chunks = epoch_batches(len(unl), self.batch_size - self.labelled_batch, g)
        stream = labelled_stream(len(lab), self.labelled_batch, len(chunks), g)
        batches = []
        for u, l in zip(chunks, stream):
            iu, il = unl[u.to(unl.device)], lab[l.to(lab.device)]
            batches.append((torch.cat([self.x[il], self.x[iu]]), torch.cat([self.y[il], pseudo[iu]])))
        return batches

    def total_steps(self) -> int:
        """Optimiser steps of the warm-up and the pseudo-label phase, for the cosine decay."""
        warm = batches_per_epoch(int(self.labelled.sum()), self.batch_size)
        epoch = batches_per_epoch(int((~self.labelled).sum()), self.batch_size - self.labelled_batch)
        return self.warmup_epochs * warm + self.iterations * epoch


def warm_up(model: nn.Module, opt, optim: Optimisation, run: Semisup, g: torch.Generator) -> float:
    """The supervised warm-up on the labelled images (mixup where the setting asks); returns the last epoch's loss."""
    loss = float("nan")
    for _ in range(run.warmup_epochs):
        loss = train_steps(model, opt, optim, run.warmup_batches(g), run.warmup_mixup, g)
    return loss


def pseudo_label_step(model: nn.Module, run: Semisup) -> tuple[torch.Tensor, float]:
    """Pseudo-labels of all training images from the current features, and their accuracy on the unlabelled."""
    y = run.y.cpu().numpy()
    pseudo, _ = propagate_labels(hidden_features(model, run.x), y, run.labelled, run.k, run.alpha)
    unl = ~run.labelled
    return torch.from_numpy(pseudo).to(run.x.device), float((pseudo[unl] == y[unl]).mean())


def laplacenet_phase(model: nn.Module, opt, optim: Optimisation, run: Semisup, g: torch.Generator,
                     desc: str = "laplacenet") -> list[float]:
    """Alternate pseudo-labelling and one mixed-up epoch on 50 labelled + 50 pseudo-labelled batches (the authors'
    phase: mixup always on); returns each graph's pseudo-label accuracy, the first one's predicting the result."""
    accuracies = []
    for i in tqdm(range(run.iterations), desc=desc, file=sys.stderr, mininterval=5.0):
        pseudo, acc = pseudo_label_step(model, run)
        accuracies.append(acc)
        if i == 0:
            log.info("%s: the first graph's pseudo-labels are %.1f %% right", desc, 100 * acc)
        train_steps(model, opt, optim, run.pseudo_batches(pseudo, g), True, g)
    return accuracies


def t_search(make_model: Callable[[], nn.Module], optim: Optimisation, run: Semisup, grid: list[float],
             seed: int) -> tuple[nn.Module, torch.optim.Optimizer, Optimisation, float]:
    """DRL A.6: the warm-up from the pretrained weights with t set to each value of `grid`; keep the lowest loss.
    (With t before the BatchNorm, as the authors have it, the warm-ups differ only through the running statistics.)"""
    best = None
    for t in grid:
        model, trial = make_model(), Optimisation(**vars(optim))
        model.set_t(t)
        opt = trial.optimizer(model)
        loss = warm_up(model, opt, trial, run, torch.Generator().manual_seed(seed))
        if best is None or loss < best[3]:
            best = (model, opt, trial, loss, t)
    return best[0], best[1], best[2], best[4]
