"""DRL Tables 1, 4-7 (LaplaceNet with DRL/VDRL/autoencoder pretraining): rows, the paper's numbers, verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config, parse_setting
from diffrep.report.targets import Target, all_targets, outside_reason
from diffrep.report.verdicts import verdict

PAPER_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "miniimagenet": "MiniImageNet"}
# The digits' label counts stand for these CIFAR-10 ones (2 and 5 labels per class: "few" and "many" labels)
STAND_IN = {"digits": ("cifar10", {20: 100, 50: 4000})}


def _paper_tables() -> list[Target]:
    """The semi-supervised targets that hold a table of the paper's numbers, the full-budget tables first."""
    tables = [t for t in all_targets() if t.experiment == "semisup" and t.values]
    return sorted(tables, key=lambda t: "budget" in t.values)


def paper_number(dataset: str, labels: int, setting: str) -> tuple[float | None, str]:
    """The paper's accuracy for a setting, and the table, dataset and label count it comes from."""
    ref, n = dataset, labels
    if dataset in STAND_IN:
        ref, counts = STAND_IN[dataset]
        n = counts.get(labels)
    parsed = parse_setting(setting)
    base, short = parsed.column, parsed.short
    where = f"{PAPER_NAMES.get(ref, ref)}, {n} labels"
    # A full-budget setting falls back on the 100-epoch tables: the paper ran the t-search only there.
    for t in _paper_tables():
        budget, columns = t.values.get("budget"), t.values["columns"]
        row = t.values["rows"].get(ref, {}).get(n)
        if row is not None and base in columns and (budget or not short):
            table = f"T{t.ref.removeprefix('Table ')}"
            return row[columns.index(base)], f"{table}: {where}" + (f", {budget}" if budget else "")
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
    """One verdict per target (by its id); 'few labels' is the profile's smallest label count."""
    few = int(agg["labels"].min())
    drl = "drl" if (agg["setting"] == "drl").any() else "drl@short"
    none = "none" if drl == "drl" else "none@short"
    ae = "ae" if drl == "drl" else "ae@short"
    tsearch = "drl_tsearch" if (agg["setting"] == "drl_tsearch").any() else "drl_tsearch@short"
    return {"laplacenet": _compare(agg, "none", "supervised", None),
            "drl-table4": _compare(agg, drl, none, few), "drl-table1": _compare(agg, "vdrl", "none", few),
            "drl-table6": _compare(agg, drl, ae, few), "drl-table5": _compare(agg, tsearch, drl, few, strict=False)}


def section(cfg: Config, dataset: str, res: Path) -> dict:
    """The semi-supervised part of a dataset's report section."""
    sx = cfg.experiments.semisup
    agg = summary(load_results(res, sx.pretrainings))
    ours = verdicts(agg)
    # Every claim with a verdict (a missing setting says "not tested"), and the covered ones without a verdict rule.
    claims = [(t, ours.get(t.id)) for t in all_targets()
              if t.experiment == "semisup" and (t.id in ours or outside_reason(t, cfg) is None)]
    return {"semisup": table_rows(agg, dataset), "semisup_claims": claims, "semisup_labels": sx.labels[dataset]}
