"""DRL Tables 1, 4-7 (LaplaceNet with DRL/VDRL/autoencoder pretraining): rows, the paper's numbers, verdicts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config, parse_setting
from diffrep.report.targets import Target, all_targets, outside_reason, target
from diffrep.report.verdicts import Record, Verdict, combine, judge, not_tested

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


def percent(df: pd.DataFrame, columns: tuple[str, ...] = ("accuracy",)) -> pd.DataFrame:
    """The per-seed rows with the accuracies in `columns` in %."""
    return df.assign(**{name: 100 * df[name] for name in columns})


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) mean, std and seed count per setting and label count; mean warm-up and first-graph accuracy;
    mean start and final t."""
    rows = percent(df, ("accuracy", "warmup_accuracy", "first_graph_accuracy"))
    agg = rows.groupby(["labels", "setting"], sort=False).agg(
        mean=("accuracy", "mean"), std=("accuracy", "std"), seeds=("seed", "nunique"),
        warmup=("warmup_accuracy", "mean"), first_graph=("first_graph_accuracy", "mean"),
        t_init=("t_init", "mean"), t_final=("t_final", "mean"), iterations=("iterations", "first"))
    return agg.reset_index()


def table_rows(agg: pd.DataFrame, dataset: str) -> list[dict]:
    """One row per label count and setting, beside the paper's number."""
    rows = []
    for _, r in agg.sort_values(["labels"], kind="stable").iterrows():
        paper, where = paper_number(dataset, int(r["labels"]), r["setting"])
        rows.append({"labels": int(r["labels"]), "setting": r["setting"], "iterations": int(r["iterations"]),
                     "accuracy": f"{r['mean']:.2f} ± {0.0 if np.isnan(r['std']) else r['std']:.2f}",
                     "warmup": f"{r['warmup']:.1f}",
                     "first_graph": "–" if np.isnan(r["first_graph"]) else f"{r['first_graph']:.1f}",
                     "t": f"{r['t_init']:.2f} → {r['t_final']:.2f}", "seeds": int(r["seeds"]),
                     "paper": "–" if paper is None else f"{paper:.2f} ({where})"})
    return rows


def compare(runs: pd.DataFrame, target_id: str, a: str, b: str, labels: int) -> Record:
    """One part of a DRL Tables 1, 4-6 / LaplaceNet claim: `a`'s accuracy (%) against `b`'s at `labels`, paired by
    seed (seed s draws the same labelled images, and the same batch order, in every setting: `semisup_rows`)."""
    part = f"{labels} labels ({a} against {b})"
    acc = runs[runs["labels"] == labels].pivot(index="seed", columns="setting", values="accuracy")
    if a not in acc or b not in acc:
        return not_tested(part, f"the profile lacks `{a if a not in acc else b}`")
    both = acc[[a, b]].dropna()
    return judge(part, target(target_id).comparison("accuracy"), both[a], both[b], unit="seeds", paired=True,
                 seeds=len(both))


def budgeted(present: set[str], name: str, budget: str) -> str:
    """`name` at `budget` ("" full, "@short" 100 epochs), or at the other budget where the profile runs only that."""
    wanted, other = f"{name}{budget}", f"{name}{'' if budget else '@short'}"
    return other if wanted not in present and other in present else wanted


def verdicts(df: pd.DataFrame) -> dict[str, Verdict]:
    """One verdict per target (by its id) from the per-seed rows (`load_results`): LaplaceNet's `none` beats
    `supervised` at every label count; at the fewest labels DRL beats no pretraining (DRL Table 4), VDRL beats it
    (Table 1), DRL beats AE (Table 6) at the full budget where run, and the t-search is within 5 points of DRL at
    the 100-epoch budget where run (Table 5)."""
    runs, present = percent(df), set(df["setting"])
    few, full = int(runs["labels"].min()), "" if "drl" in present else "@short"
    drl, none, ae = (budgeted(present, s, full) for s in ("drl", "none", "ae"))
    tsearch = budgeted(present, "drl_tsearch", "@short")
    drl_as_tsearch = budgeted(present, "drl", "@short" if tsearch.endswith("@short") else "")
    parts = {"laplacenet": [compare(runs, "laplacenet", "none", "supervised", n) for n in sorted(set(runs["labels"]))],
             "drl-table4": [compare(runs, "drl-table4", drl, none, few)],
             "drl-table1": [compare(runs, "drl-table1", "vdrl", "none", few)],
             "drl-table6": [compare(runs, "drl-table6", drl, ae, few)],
             "drl-table5": [compare(runs, "drl-table5", tsearch, drl_as_tsearch, few)]}
    return {target_id: combine(target_id, records) for target_id, records in parts.items()}


def section(cfg: Config, dataset: str, res: Path) -> dict:
    """The semi-supervised part of a dataset's report section."""
    sx = cfg.experiments.semisup
    runs = load_results(res, sx.pretrainings)
    agg, ours = summary(runs), verdicts(runs)
    # Every claim with a verdict (a missing setting says "not tested"), and the covered ones without a verdict rule.
    claims = [(t, ours.get(t.id)) for t in all_targets()
              if t.experiment == "semisup" and (t.id in ours or outside_reason(t, cfg) is None)]
    return {"semisup": table_rows(agg, dataset), "semisup_claims": claims, "semisup_labels": sx.labels[dataset]}
