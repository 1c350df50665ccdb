"""Seaborn figures of the DRL representation results."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from diffrep.io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=110, bbox_inches="tight")
    plt.close(fig)


def latent_scatter(codes: np.ndarray, labels: np.ndarray, title: str, path: Path) -> None:
    """Test codes in the 2-d latent space coloured by class (DRL Fig. 2b, 3b, 5b, 7b)."""
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    sns.scatterplot(x=codes[:, 0], y=codes[:, 1], hue=labels.astype(str), hue_order=[str(c) for c in np.unique(labels)],
                    palette="tab10", s=10, linewidth=0, ax=ax, legend="brief")
    ax.set(title=title, xlabel="z1", ylabel="z2")
    ax.legend(title="class", fontsize=6, title_fontsize=7, markerscale=0.8, loc="best")
    _save(fig, path)


def silhouette_vs_t(sweep: pd.DataFrame, title: str, path: Path) -> None:
    """Silhouette mean and std over seeds against the single training time t (DRL Fig. 11)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=sweep, x="t", y="silhouette", errorbar="sd", marker="o", ax=ax)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set(title=title, xlabel="training time t", ylabel="silhouette score")
    _save(fig, path)


def fewshot_vs_t(fewshot: pd.DataFrame, title: str, path: Path) -> None:
    """Few-shot SVM accuracy of E(x0, t) per t against the static AE and VAE codes (DRL Fig. 12)."""
    timed = fewshot[fewshot["t"].notna()]
    static = fewshot[fewshot["t"].isna()].groupby(["method", "labels"])["accuracy"].mean()
    g = sns.relplot(data=timed, x="t", y="accuracy", hue="method", col="labels", kind="line",
                    errorbar="sd", marker="o", height=3.0, aspect=1.2)
    for (labels, ax) in zip(sorted(timed["labels"].unique()), g.axes.flat):
        for (method, n), acc in static.items():
            if n == labels:
                ax.axhline(acc, ls="--", lw=1, color="black" if method == "ae" else "tab:red", label=method.upper())
        ax.legend(fontsize=7)
    g.figure.suptitle(title, y=1.03)
    _save(g.figure, path)
