"""One representation table for every method: each code under the same protocol (silhouette of the test codes, SVM
and kNN on the same labelled draws, a linear probe on all labels), mean ± std over draws and seeds, with its training
budget; raw pixels and PCA as floors. No paper of the three makes this comparison.

Input: `representations.csv` from `diffrep representations` (one row per code, metric, label count and draw).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from diffrep.report import figures

CODE_NAMES = {"static": "{method}", "t = 0": "{method} E(x0, t) at t = 0", "best t": "{method} E(x0, t) at its best t"}


METRICS = {"silhouette": "silhouette", "svm": "SVM, {n} labels", "knn": "kNN, {n} labels",
           "linear_probe": "linear probe, all {n} labels"}  # the table's columns, in this order


def named(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores with each code's row name (its method, and for E(x0, t) which t) and its table column."""
    return scores.assign(name=[CODE_NAMES[c].format(method=m) for c, m in zip(scores["code"], scores["method"])],
                         column=[METRICS[m].format(n=n) for m, n in zip(scores["metric"], scores["labels"])],
                         order=scores["metric"].map(list(METRICS).index))


def _cell(values: pd.Series) -> str:
    return f"{values.mean():.3f}" if len(values) < 2 else f"{values.mean():.3f} ± {values.std():.3f}"


def table(scores: pd.DataFrame) -> tuple[list[str], list[dict]]:
    """A row per code, in the file's order: dimension, budget, seeds, the best t per seed (E(x0, t)), and each metric's
    mean ± std over draws and seeds."""
    scores = named(scores)
    columns = list(dict.fromkeys(scores.sort_values(["order", "labels"])["column"]))
    rows = []
    for name, group in scores.groupby("name", sort=False):
        ts = group.loc[group["code"] == "best t"].drop_duplicates("seed")["t"]
        rows.append({"code": name, "experiment": group["experiment"].iloc[0], "dim": int(group["dim"].iloc[0]), "iterations": int(group["iterations"].iloc[0]),
                     "batch": int(group["batch"].iloc[0]),
                     "seeds": group["seed"].nunique(), "best_t": ", ".join(f"{t:g}" for t in ts) or "–",
                     "values": [_cell(group.loc[group["column"] == c, "value"]) for c in columns]})
    return columns, rows


def best_code(scores: pd.DataFrame, metric: str) -> str:
    """The code with the highest mean of `metric` at its largest label count (the table's headline)."""
    hits = named(scores[scores["metric"] == metric])
    hits = hits[hits["labels"] == hits["labels"].max()]
    means = hits.groupby("name")["value"].mean()
    return f"{means.idxmax()} ({means.max():.3f} with {int(hits['labels'].max())} labels)"


def section(name: str, res: Path, figdir: Path, rel) -> dict:
    """The representation table of a dataset, its headlines and its figure (SVM accuracy per code and label count)."""
    scores = pd.read_csv(res / "representations.csv")
    columns, rows = table(scores)
    path = figdir / f"{name}_representations.png"
    svm = named(scores[scores["metric"] == "svm"])
    figures.accuracy_per_code(svm, f"{name}: SVM accuracy per code (mean ± std over draws and seeds)", path)
    return {"columns": columns, "rows": rows, "figure": rel(path), "best_svm": best_code(scores, "svm"),
            "best_knn": best_code(scores, "knn"), "best_probe": best_code(scores, "linear_probe")}
