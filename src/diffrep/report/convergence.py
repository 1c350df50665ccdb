"""Whether a verdict's metric has settled at the profile's budget: the metric against training steps (EMA snapshots)
and a rule that tells "settled" from "still rising" or "still falling" (issue: verdicts you can trust).

The rule: over the last doubling of steps (the final model against the snapshot at half its steps) the metric moves
by at most its spread (the std over labelled draws or seeds at the final step, at least `floor`): settled. Otherwise
it is still moving, and a verdict taken there says "at this budget".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.report import figures


def settled(steps: np.ndarray, values: np.ndarray, spread: float, floor: float = 0.01) -> tuple[str, str]:
    """("settled" | "still rising" | "still falling" | "one point", why) for a curve of `values` at `steps`."""
    order = np.argsort(steps)
    steps, values = np.asarray(steps)[order], np.asarray(values)[order]
    earlier = np.flatnonzero(steps <= steps[-1] / 2)
    if not len(earlier):
        return "one point", f"only step {int(steps[-1])}"
    half = earlier[-1]
    change, tolerance = values[-1] - values[half], max(spread, floor)
    why = (f"{values[half]:.3f} at step {int(steps[half])}, {values[-1]:.3f} at step {int(steps[-1])}: "
           f"{change:+.3f} against a spread of {tolerance:.3f}")
    if abs(change) <= tolerance:
        return "settled", why
    return ("still rising" if change > 0 else "still falling"), why


def best_timed_curve(curve: pd.DataFrame, labels: int) -> pd.DataFrame:
    """Per step, the best E(x0, t) mean accuracy over method and t (the Fig. 12 verdict's metric) and its std over
    draws; the best static code (AE, VAE) beside it."""
    rows = []
    at = curve[curve["labels"] == labels]
    for step, grp in at.groupby("step"):
        agg = grp.groupby(["method", "t"], dropna=False)["accuracy"].agg(["mean", "std"]).reset_index()
        for kind, part in (("best E(x0, t)", agg[agg["t"].notna()]), ("best static code", agg[agg["t"].isna()])):
            if len(part):
                best = part.loc[part["mean"].idxmax()]
                rows.append({"step": int(step), "code": kind, "accuracy": best["mean"], "std": best["std"]})
    return pd.DataFrame(rows)


def fewshot_convergence(curve: pd.DataFrame, name: str, figdir: Path, rel) -> tuple[list[str], str]:
    """A line per label count saying whether the best E(x0, t) accuracy has settled, and the curve's figure."""
    lines, drawn = [], []
    for labels in sorted(curve["labels"].unique()):
        best = best_timed_curve(curve, int(labels))
        timed = best[best["code"] == "best E(x0, t)"]
        state, why = settled(timed["step"].to_numpy(), timed["accuracy"].to_numpy(),
                             float(np.nan_to_num(timed["std"].iloc[-1])))
        lines.append(f"{int(labels)} labels: the best E(x0, t) accuracy is **{state}** at {int(timed['step'].max())} "
                     f"iterations ({why}, the last doubling of steps)")
        drawn.append(best.assign(labels=f"{int(labels)} labels"))
    path = figdir / f"{name}_fewshot_convergence.png"
    figures.accuracy_against_steps(pd.concat(drawn), f"{name}: few-shot accuracy along training", path)
    return lines, rel(path)
