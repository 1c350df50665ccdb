"""What a pretraining hands LaplaceNet (issue "Three contradictions explained", part 1): label propagation on the
classifier's features right after loading, before any fine-tuning (not a test).

For raw pixels, a randomly initialised WRN and each pretrained WRN of a profile's run (`models/<profile>/<dataset>/
semisup-<pretraining>/model.pt`), the features of every training image (evaluation mode, LaplaceNet's t = 0.5) are
propagated from the labelled draws LaplaceNet uses (seed s, balanced, the profile's smallest label count) with the
profile's k and alpha; the pseudo-label accuracy on the unlabelled images is printed with the share of the features'
variance along their first principal direction (a code collapsed onto one direction propagates badly).

Usage: python bench/laplacenet_features.py [--config params/default.yaml] [--dataset digits] [--out bench/laplacenet_features.csv]
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from diffrep import config, data
from diffrep.evaluate.laplacenet import balanced_labelled_mask, hidden_features, propagate_labels
from diffrep.methods.semisup import build_wrn, load_pretrained


def first_direction_share(features: np.ndarray) -> float:
    """The fraction of the features' variance along their first principal direction."""
    s = np.linalg.svd(features - features.mean(0), compute_uv=False) ** 2
    return float(s[0] / s.sum())


def initialisations(cfg: config.Config, dataset: str, x: torch.Tensor, classes: int):
    """(name, features of x) for pixels, a random WRN and each pretraining the profile trained."""
    yield "pixels", x.flatten(1).numpy()
    torch.manual_seed(0)
    yield "random", hidden_features(build_wrn(cfg, dataset, tuple(x.shape[1:]), classes), x)
    for pretraining in cfg.experiments.semisup.pretrainings:
        path = Path("models") / cfg.name / dataset / f"semisup-{pretraining}" / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the profile's pretrain_semisup jobs first")
        model = build_wrn(cfg, dataset, tuple(x.shape[1:]), classes)
        load_pretrained(model, path)
        yield pretraining, hidden_features(model, x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="params/default.yaml")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--out", default="bench/laplacenet_features.csv")
    args = ap.parse_args()
    cfg = config.load(args.config)
    sx = cfg.experiments.semisup
    x, y = data.load(Path("data") / args.dataset, "train")
    y_np, labels = y.numpy(), min(sx.labels[args.dataset])
    rows = []
    for name, features in initialisations(cfg, args.dataset, x, int(y.max()) + 1):
        for seed in sx.seeds:
            labelled = balanced_labelled_mask(y_np, labels, np.random.default_rng(seed))
            pseudo, weights = propagate_labels(features, y_np, labelled, sx.knn, sx.alpha)
            rows.append({"init": name, "seed": seed, "labels": labels,
                         "accuracy": float((pseudo[~labelled] == y_np[~labelled]).mean()),
                         "mean_certainty": float(weights[~labelled].mean()),
                         "first_direction_share": first_direction_share(features)})
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    print(df.groupby("init", sort=False)[["accuracy", "mean_certainty", "first_direction_share"]].mean().round(3))


if __name__ == "__main__":
    main()
