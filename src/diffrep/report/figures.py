"""Seaborn figures of the DRL representation results."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torchvision.utils import make_grid

from diffrep.io import atomic_path
from diffrep.objectives import adversarial_lambda_prime


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


def sample_grids(panels: list[tuple[str, np.ndarray]], ncols: int, title: str, path: Path, per_panel: int = 36,
                 nrow: int | None = None, panel_size: tuple[float, float] = (1.9, 2.1)) -> None:
    """Grids of uint8 images (N, C, H, W), one panel per setting, `nrow` images per grid row (square by default)."""
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, images) in zip(axes.flat, panels):
        grid = make_grid(torch.from_numpy(images[:per_panel]), nrow=nrow or int(np.sqrt(per_panel)), padding=1,
                         pad_value=255)
        ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def adversary_over_training(alphas: pd.DataFrame, title: str, path: Path) -> None:
    """The adversary's alpha against the training step, one line per p_KL (DRL Fig. 14)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=alphas, x="step", y="alpha", hue="p_kl", palette="viridis", ax=ax)
    ax.set(title=title, xlabel="training step (model and adversary turns)", ylabel="alpha", ylim=(-1.05, 1.05))
    _save(fig, path)


def t_density_and_loss(losses: pd.DataFrame, title: str, path: Path) -> None:
    """The t-density lambda'_alpha at the final alpha and the test loss per t, per p_KL (DRL Fig. 13)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    grid = np.linspace(0, 1, 101)
    for p_kl, alpha in losses.groupby("p_kl")["alpha"].first().items():
        prime = adversarial_lambda_prime(torch.from_numpy(grid), torch.tensor(alpha)).numpy()
        mix = p_kl + (1 - p_kl) * prime  # plain steps draw t uniformly
        left.plot(grid, mix, label=f"p_KL = {p_kl:g} (alpha {alpha:.2f})")
    left.set(xlabel="t", ylabel="density of t on model turns", title="distribution of t")
    left.legend(fontsize=6)
    sns.lineplot(data=losses, x="t", y="loss", hue="p_kl", palette="viridis", marker="o", ax=right)
    right.set(yscale="log", xlabel="t", ylabel="DSM loss, test images", title="loss per t")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def accuracy_per_code(svm: pd.DataFrame, title: str, path: Path) -> None:
    """The representation table's figure: SVM accuracy of every code, one point per label count, mean ± std."""
    fig, ax = plt.subplots(figsize=(6.0, 0.28 * svm["name"].nunique() + 1.2))
    dodge = 0.4 if svm["labels"].nunique() > 1 else False  # seaborn divides the dodge among the hue levels
    sns.pointplot(data=svm, y="name", x="value", hue="labels", errorbar="sd", linestyles="none", dodge=dodge,
                  markersize=4, ax=ax)
    ax.set(title=title, xlabel="test accuracy", ylabel="")
    ax.legend(title="labels", fontsize=7, title_fontsize=7)
    _save(fig, path)


def metric_against_steps(curve: pd.DataFrame, metric: str, title: str, path: Path) -> None:
    """A convergence curve: a verdict's metric (column `metric`) against training steps, a line per `curve`."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    sns.lineplot(data=curve, x="step", y=metric, hue="curve", marker="o", ax=ax)
    ax.set(xscale="log", title=title, xlabel="training iterations (EMA snapshots)", ylabel=metric)
    steps = sorted(curve["step"].unique())
    ax.set_xticks(steps, [f"{int(s)}" for s in steps], fontsize=7)
    ax.minorticks_off()
    ax.legend(fontsize=6)
    _save(fig, path)
