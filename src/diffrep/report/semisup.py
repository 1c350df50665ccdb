"""DRL Tables 1, 4-7 (LaplaceNet with DRL/VDRL/autoencoder pretraining): rows, the paper's numbers, verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config
from diffrep.report.verdicts import verdict

PAPER_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "miniimagenet": "MiniImageNet"}
# The digits' label counts stand for these CIFAR-10 ones (2 and 5 labels per class: "few" and "many" labels)
STAND_IN = {"digits": ("cifar10", {20: 100, 50: 4000})}

_FULL = ("none", "none+mixup", "drl", "drl+mixup", "vdrl", "drl_mixup+mixup", "vdrl+mixup")
# DRL Table 1 (first five columns) and Table 7 (Mixup-DRL, VDRL with mixup), test accuracy in %
_TABLE17 = {
    ("cifar10", 100): (73.68, 75.29, 74.31, 64.67, 81.63, 70.40, 77.51),
    ("cifar10", 500): (91.31, 92.53, 92.70, 92.31, 92.79, 92.55, 91.46),
    ("cifar10", 1000): (92.59, 93.13, 93.24, 93.42, 93.60, 93.14, 93.33),
    ("cifar10", 2000): (94.00, 93.96, 94.18, 93.91, 93.96, 93.80, 94.27),
    ("cifar10", 4000): (94.73, 94.97, 94.75, 95.22, 95.00, 94.75, 94.87),
    ("cifar100", 1000): (55.58, 55.24, 55.85, 55.74, 56.47, 55.15, 55.65),
    ("cifar100", 4000): (67.07, 67.25, 67.22, 67.47, 67.54, 67.09, 67.52),
    ("cifar100", 10000): (73.19, 72.84, 73.31, 73.66, 73.50, 74.36, 73.20),
    ("cifar100", 20000): (75.80, 76.07, 76.46, 76.88, 76.64, 77.04, 76.68),
    ("miniimagenet", 4000): (58.40, 58.84, 58.95, 59.29, 59.14, 59.46, 59.36),
    ("miniimagenet", 10000): (66.65, 66.80, 67.31, 66.63, 67.46, 67.31, 66.79),
}
# DRL Table 4 (100 epochs: none, DRL), Table 5 (none with mixup, t-search, autoencoder), Table 6 (autoencoder)
_TABLE4 = {("cifar10", 100): (64.12, 69.79), ("cifar10", 500): (86.24, 88.28), ("cifar10", 1000): (87.48, 88.56),
           ("cifar10", 2000): (89.99, 89.52), ("cifar10", 4000): (90.15, 91.13), ("cifar100", 1000): (45.14, 48.04),
           ("cifar100", 4000): (59.86, 60.34), ("cifar100", 10000): (64.83, 65.80), ("cifar100", 20000): (65.77, 66.39),
           ("miniimagenet", 4000): (47.18, 50.75), ("miniimagenet", 10000): (58.66, 58.62)}
_TABLE5 = {("cifar10", 100): (54.06, 67.07, 64.99), ("cifar100", 1000): (46.28, 47.08, 46.88),
           ("miniimagenet", 4000): (47.64, 50.31, 48.52)}
_TABLE6 = {("cifar10", 100): 58.84, ("cifar100", 1000): 55.41, ("miniimagenet", 4000): 57.93}

CLAIMS = {
    "laplacenet": "LaplaceNet's pseudo-labels improve on supervised training with the same labels (Sellars et al. 2021).",
    "drl": "DRL pretraining improves on no pretraining with few labels: CIFAR-10, 100 labels, 74.31 against 73.68 "
           "(Table 1) and 69.79 against 64.12 with 100 epochs (Table 4).",
    "vdrl": "VDRL pretraining improves on no pretraining with few labels: CIFAR-10, 100 labels, 81.63 against 73.68 (Table 1).",
    "ae": "Score-matching pretraining beats autoencoder pretraining: CIFAR-10, 100 labels, DRL 74.31 against AE 58.84 "
          "(Table 6) and 69.79 against 64.99 with 100 epochs (Table 5).",
    "tsearch": "Choosing t by the warm-up's training loss (t-search) does not beat starting at t = 0.5: CIFAR-10, "
               "100 labels, 67.07 against 69.79 (Table 5).",
}


def paper_number(dataset: str, labels: int, setting: str) -> tuple[float | None, str]:
    """The paper's accuracy for a setting, and the table, dataset and label count it comes from."""
    ref, n = dataset, labels
    if dataset in STAND_IN:
        ref, counts = STAND_IN[dataset]
        n = counts.get(labels)
    base, short = setting.removesuffix("@short"), setting.endswith("@short")
    where = f"{PAPER_NAMES.get(ref, ref)}, {n} labels"
    if not short and base in _FULL and (ref, n) in _TABLE17:
        return _TABLE17[(ref, n)][_FULL.index(base)], f"T{1 if _FULL.index(base) < 5 else 7}: {where}"
    if not short and base == "ae" and (ref, n) in _TABLE6:
        return _TABLE6[(ref, n)], f"T6: {where}"
    short_cols = {"none": (_TABLE4, 0), "drl": (_TABLE4, 1), "none+mixup": (_TABLE5, 0), "drl_tsearch": (_TABLE5, 1),
                  "ae": (_TABLE5, 2)}
    if base in short_cols and (ref, n) in short_cols[base][0] and (short or base == "drl_tsearch"):
        table, col = short_cols[base]
        return table[(ref, n)][col], f"T{4 if table is _TABLE4 else 5}: {where}, 100 epochs"
    return None, ""


def load_results(res: Path, pretrainings: list[str]) -> pd.DataFrame:
    """The LaplaceNet rows of every pretraining the profile runs."""
    return pd.concat([pd.read_csv(res / f"{p}.csv") for p in ["none", *pretrainings]], ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) mean, std and seed count per setting and label count; mean final t."""
    df = df.assign(accuracy=100 * df["accuracy"])
    agg = df.groupby(["labels", "setting"], sort=False).agg(
        mean=("accuracy", "mean"), std=("accuracy", "std"), seeds=("seed", "nunique"),
        t_init=("t_init", "mean"), t_final=("t_final", "mean"), iterations=("iterations", "first"))
    return agg.reset_index()


def table_rows(agg: pd.DataFrame, dataset: str) -> list[dict]:
    """One row per label count and setting, beside the paper's number."""
    rows = []
    for _, r in agg.sort_values(["labels"], kind="stable").iterrows():
        paper, where = paper_number(dataset, int(r["labels"]), r["setting"])
        rows.append({"labels": int(r["labels"]), "setting": r["setting"], "iterations": int(r["iterations"]),
                     "accuracy": f"{r['mean']:.2f} ± {0.0 if np.isnan(r['std']) else r['std']:.2f}",
                     "t": f"{r['t_init']:.2f} → {r['t_final']:.2f}", "seeds": int(r["seeds"]),
                     "paper": "–" if paper is None else f"{paper:.2f} ({where})"})
    return rows


def _compare(agg: pd.DataFrame, better: str, worse: str, labels: int | None, strict: bool = True) -> str:
    """Verdict that `better` beats `worse` (or, strict=False, that `better` does not beat `worse` by more than the
    standard deviation of `better` over seeds) at `labels`."""
    sub = agg if labels is None else agg[agg["labels"] == labels]
    by = sub.set_index(["labels", "setting"])
    pairs = [(n, by.loc[(n, better), "mean"], by.loc[(n, worse), "mean"], np.nan_to_num(by.loc[(n, better), "std"]))
             for n in sorted(sub["labels"].unique()) if (n, better) in by.index and (n, worse) in by.index]
    if not pairs:
        return f"**not tested** here: the profile lacks `{better}` or `{worse}`."
    ok = all(b > w if strict else b <= w + s for _, b, w, s in pairs)
    why = "; ".join(f"{n} labels: {better} {b:.2f} against {worse} {w:.2f}" for n, b, w, _ in pairs)
    return verdict(ok, why if strict else why + " (reproduces unless it beats it by more than its std over seeds)")


def verdicts(agg: pd.DataFrame) -> dict[str, str]:
    """One verdict per claim; 'few labels' is the profile's smallest label count."""
    few = int(agg["labels"].min())
    drl = "drl" if (agg["setting"] == "drl").any() else "drl@short"
    none = "none" if drl == "drl" else "none@short"
    ae = "ae" if drl == "drl" else "ae@short"
    tsearch = "drl_tsearch" if (agg["setting"] == "drl_tsearch").any() else "drl_tsearch@short"
    return {"laplacenet": _compare(agg, "none", "supervised", None),
            "drl": _compare(agg, drl, none, few), "vdrl": _compare(agg, "vdrl", "none", few),
            "ae": _compare(agg, drl, ae, few), "tsearch": _compare(agg, tsearch, drl, few, strict=False)}


def section(cfg: Config, dataset: str, res: Path) -> dict:
    """The semi-supervised part of a dataset's report section."""
    sx = cfg.experiments.semisup
    agg = summary(load_results(res, sx.pretrainings))
    return {"semisup": table_rows(agg, dataset), "semisup_verdicts": verdicts(agg),
            "semisup_labels": sx.labels[dataset]}
