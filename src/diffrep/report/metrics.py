"""The headline numbers of a profile's results in one flat JSON file, `reports/metrics.json`: what `dvc metrics show`
lists and `dvc metrics diff` compares between commits (the CSV files behind them hold one row per draw or seed,
which DVC cannot summarise)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from diffrep.io import write_text
from diffrep.report.representations import named


def _silhouette(res: Path) -> dict[str, float]:
    """Silhouette of the test codes per model."""
    sil = pd.read_csv(res / "silhouette.csv")
    return {Path(c).stem: float(s) for c, s in zip(sil["codes"], sil["silhouette"], strict=True)}


def _fewshot(res: Path) -> dict[str, float]:
    """Mean few-shot SVM accuracy over the labelled draws, per method, label count and t."""
    fs = pd.read_csv(res / "fewshot.csv").fillna({"t": -1.0})
    mean = fs.groupby(["method", "labels", "t"])["accuracy"].mean()
    return {f"{m}-{n}labels-" + ("static" if t < 0 else f"t{t:g}"): float(v) for (m, n, t), v in mean.items()}


def _fidelity(res: Path) -> dict[str, dict[str, float]]:
    """FID and Inception Score per sample set (features as the report names them)."""
    fid = pd.read_csv(res / "fidelity.csv")
    return {r["run"]: {"fid": float(r["fid"]), "isc": float(r["isc_mean"])} for _, r in fid.iterrows()}


def _semisup(res: Path) -> dict[str, float]:
    """Mean LaplaceNet test accuracy over seeds, per setting and label count."""
    rows = pd.concat(pd.read_csv(p) for p in sorted((res / "semisup").glob("*.csv")))
    mean = rows.groupby(["setting", "labels"])["accuracy"].mean()
    return {f"{s}-{n}labels": float(v) for (s, n), v in mean.items()}


def _lsgm(res: Path) -> dict[str, dict]:
    """LSGM's NELBO per run (its units; null for a diverged run) and the backbone's beside it."""
    records = [json.loads(p.read_text()) for p in sorted((res / "lsgm" / "nelbo").glob("*.json"))]
    return {r["run"]: {"nelbo": None if r["diverged"] else r["nelbo"], "units": r["units"],
                       "backbone_nelbo": None if r["diverged"] else r["backbone_nelbo"]} for r in records}


def _scorevae(res: Path) -> dict[str, float]:
    """Mean over seeds of each reconstruction metric (L2, LPIPS or the classifier's feature distance) per method."""
    mean = pd.read_csv(res / "scorevae.csv").groupby(["method", "metric"])["value"].mean()
    return {f"{m}-{k}": float(v) for (m, k), v in mean.items()}


def _representations(res: Path) -> dict[str, float]:
    """Mean over draws and seeds of every protocol score, per code (the representation table)."""
    scores = named(pd.read_csv(res / "representations.csv"))
    mean = scores.groupby(["name", "column"], sort=False)["value"].mean()
    return {f"{n}: {c}": float(v) for (n, c), v in mean.items()}


SOURCES = {"silhouette": ("silhouette.csv", _silhouette), "fewshot": ("fewshot.csv", _fewshot),
           "fidelity": ("fidelity.csv", _fidelity), "semisup": ("semisup", _semisup), "lsgm": ("lsgm/nelbo", _lsgm),
           "scorevae": ("scorevae.csv", _scorevae), "representations": ("representations.csv", _representations)}


def summary(results: Path, datasets: list[str]) -> dict[str, dict]:
    """Per dataset, the numbers of every result file the profile produced."""
    return {d: {name: read(results / d) for name, (file, read) in SOURCES.items() if (results / d / file).exists()}
            for d in datasets}


def write_summary(results: Path, datasets: list[str], out: Path) -> None:
    write_text(out, json.dumps(summary(results, datasets), indent=1, sort_keys=True) + "\n")
