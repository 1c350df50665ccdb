"""Whether a verdict's metric has settled at the profile's budget: the metric against training steps (EMA snapshots,
`diffrep curves`) and a rule that tells "settled" from "still rising" or "still falling" (issue: verdicts you can
trust).

The rule: over the last doubling of steps (the final model against the snapshot at half its steps) the metric moves
by at most its spread (the std over labelled draws or seeds at the final step, at least the metric's floor below):
settled. Otherwise it is still moving, and the verdict says "at this budget (still rising)" instead of "here".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.likelihood import bits_per_dim
from diffrep.report import figures, generation

# The smallest change that counts as moving, per metric: a silhouette (in [-1, 1]) and an accuracy differ in the
# second decimal on a few hundred test digits; a sample spread (pixels in [0, 1], ~0.2) in its third; a FID ratio
# by the 1 % margin of the Table 2 verdict, doubled for the sampling noise of a few hundred samples.
# A NELBO (bits/dim or nats per image) by its standard error over the test images, at least 0.01.
FLOORS = {"silhouette": 0.02, "test accuracy": 0.01, "sample spread": 0.005, "FID ratio": 0.02, "NELBO": 0.01}


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


@dataclass(frozen=True)
class Budget:
    """Where one curve of a verdict's metric stands at the final step."""

    what: str
    state: str
    why: str
    steps: int

    def line(self) -> str:
        return f"{self.what} is **{self.state}** at {self.steps} iterations ({self.why}, the last doubling of steps)"


def follow(what: str, metric: str, steps, values, spread: float = 0.0) -> Budget:
    """The settled rule on one curve, with the metric's floor."""
    steps, values = np.asarray(steps), np.asarray(values, dtype=float)
    state, why = settled(steps, values, float(np.nan_to_num(spread)), FLOORS[metric])
    return Budget(what, state, why, int(steps.max()))


def overall(budgets: list[Budget]) -> str:
    """A verdict's state: settled when all of its curves are, else the first that moves."""
    return next((b.state for b in budgets if b.state != "settled"), "settled")


def qualified(text: str, budgets: list[Budget]) -> str:
    """A verdict with where its metric stands: "**reproduces** here (settled)", "**does not reproduce** at this
    budget (still rising)"; a verdict without curves, or not tested, is left as it is."""
    if not budgets or not re.match(r"\*\*(reproduces|does not reproduce)\*\* here", text):
        return text
    state = overall(budgets)
    return text.replace("** here", "** here (settled)" if state == "settled" else f"** at this budget ({state})", 1)


# --- each experiment's verdicts: their curves, and the lines the figure draws -----------------------------------


def _drawn(df: pd.DataFrame, metric: str, label) -> pd.DataFrame:
    return pd.DataFrame({"step": df["step"].to_numpy(), metric: df["value"].to_numpy(),
                         "curve": [label(r) for _, r in df.iterrows()]})


def latent(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Fig. 2 (uniform-t silhouette per method) and Fig. 3 (sigma-uniform minus uniform-t)."""
    by = c.pivot_table(index="step", columns="run", values="silhouette")
    methods = [m for m in ("drl", "vdrl") if {f"latent-{m}-uniform_t", f"latent-{m}-uniform_sigma"} <= set(by.columns)]
    fig2 = [follow(f"{m.upper()} uniform-t silhouette", "silhouette", by.index, by[f"latent-{m}-uniform_t"])
            for m in methods]
    fig3 = [follow(f"{m.upper()} sigma-uniform minus uniform-t silhouette", "silhouette", by.index,
                   by[f"latent-{m}-uniform_sigma"] - by[f"latent-{m}-uniform_t"]) for m in methods]
    drawn = _drawn(c.assign(value=c["silhouette"]), "silhouette", lambda r: r["run"].removeprefix("latent-"))
    return {"drl-fig2": fig2, "drl-fig3": fig3}, drawn


def sweep(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Fig. 11: the peak over t of the mean silhouette over seeds (its spread: the std over seeds there)."""
    agg = c.groupby(["step", "train_t"])["silhouette"].agg(["mean", "std"]).reset_index()
    peaks = agg.loc[agg.groupby("step")["mean"].idxmax()]
    budget = follow("the peak silhouette over t (mean over seeds)", "silhouette", peaks["step"], peaks["mean"],
                    peaks["std"].iloc[-1])
    drawn = _drawn(agg.assign(value=agg["mean"]), "silhouette", lambda r: f"t = {r['train_t']:.1f}")
    return {"drl-fig11": [budget]}, drawn


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


def fewshot(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Fig. 12: the best E(x0, t) accuracy per label count (one verdict each, in label order)."""
    budgets, drawn = [], []
    for labels in sorted(c["labels"].unique()):
        best = best_timed_curve(c, int(labels))
        timed = best[best["code"] == "best E(x0, t)"]
        budgets.append(follow(f"{int(labels)} labels: the best E(x0, t) accuracy", "test accuracy", timed["step"],
                              timed["accuracy"], timed["std"].iloc[-1]))
        drawn.append(_drawn(best.assign(value=best["accuracy"]), "test accuracy",
                            lambda r, n=int(labels): f"{r['code']}, {n} labels"))
    return {"drl-fig12": budgets}, pd.concat(drawn)


def codedim(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Fig. 10: the sample spread of each code dimension."""
    by = c.pivot_table(index="step", columns="code_dim", values="spread")
    budgets = [follow(f"the {int(k)}-d spread", "sample spread", by.index, by[k]) for k in by.columns]
    drawn = _drawn(c.assign(value=c["spread"]), "sample spread", lambda r: f"{int(r['code_dim'])}-d code")
    return {"drl-fig10": budgets}, drawn


def tinit(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Table 3: the uniform+Gaussian FID at t_init = 0.7 over the best at t_init = 1.0, the verdict's ratio."""
    points = []
    for step, grp in c.groupby("step"):
        pair = generation.table3_pair(grp.pivot_table(index="t_init", columns="prior", values="fid"))
        points += [(step, pair[0] / pair[1])] if pair else []
    drawn = _drawn(c.assign(value=c["fid"]), "FID", lambda r: f"t_init {r['t_init']:g}, {r['prior']}")
    if not points:
        return {}, drawn
    steps, values = zip(*points, strict=True)
    budget = follow("the FID ratio of t_init 0.7 (uniform+Gaussian) to the best at 1.0", "FID ratio", steps, values)
    return {"drl-table3": [budget]}, drawn


def adversarial(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Table 2: each p_KL <= 0.95's FID over p_KL = 1's, per step of the adversarial training."""
    by = c.pivot_table(index="step", columns="p_kl", values="fid")
    plain = [p for p in by.columns if np.isclose(p, 1.0)]
    budgets = [follow(f"the FID ratio of p_KL {p:g} to p_KL 1", "FID ratio", by.index, by[p] / by[plain[0]])
               for p in by.columns if plain and p <= 0.95 + 1e-9]
    drawn = _drawn(c.assign(value=c["fid"]), "FID", lambda r: f"p_KL {r['p_kl']:g}")
    return {"drl-table2": budgets}, drawn


# the LaplaceNet verdicts and the pretrainings whose code they hinge on (DRL Tables 1, 4-7)
PRETRAINED = {"drl-table4": ("drl",), "drl-table1": ("vdrl",), "drl-table6": ("drl", "ae"), "drl-table5": ("drl",)}


def pretraining(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """DRL Tables 1, 4-7: the few-shot accuracy of each pretrained WRN code with the fewest labels (the verdicts'
    label count), mean over draws."""
    few = c[c["labels"] == c["labels"].min()]
    agg = few.groupby(["step", "run"])["accuracy"].agg(["mean", "std"]).reset_index()
    per = {run.removeprefix("semisup-"): g for run, g in agg.groupby("run")}
    labels = int(c["labels"].min())
    budget = {p: follow(f"the {p} pretraining's code ({labels} labels, few-shot SVM)", "test accuracy", g["step"],
                        g["mean"], g["std"].iloc[-1]) for p, g in per.items()}
    drawn = _drawn(agg.assign(value=agg["mean"]), "test accuracy", lambda r: r["run"].removeprefix("semisup-"))
    return {t: [budget[p] for p in ps if p in budget] for t, ps in PRETRAINED.items()}, drawn


def nelbo(c: pd.DataFrame) -> tuple[dict[str, list[Budget]], pd.DataFrame]:
    """LSGM Tables 2, 4, 5: the test NELBO of the main cell and of the backbone trained alone, gray-level (Table 2)
    and binarized (Tables 4, 5), each in its own units with the standard error over the test images as its spread;
    drawn in bits/dim (a binarized run's nats per image converted) so that both fit one figure."""
    budgets: dict[str, list[Budget]] = {}
    for run, g in c.groupby("run", sort=False):
        target = "lsgm-table4" if run.endswith("-binary") else "lsgm-table2"
        budgets.setdefault(target, []).append(follow(f"{run}'s NELBO ({g['units'].iloc[0]})", "NELBO", g["step"],
                                                     g["nelbo"], g.sort_values("step")["nelbo_se"].iloc[-1]))
    bits = np.where(c["units"] == "bits/dim", c["nelbo"], bits_per_dim(c["nelbo"], c["dims"]))
    return budgets, _drawn(c.assign(value=bits), "NELBO (bits/dim)", lambda r: r["run"])


CURVES = {"latent": latent, "sweep": sweep, "fewshot": fewshot, "codedim": codedim, "generation": tinit,
          "adversarial": adversarial, "semisup": pretraining, "lsgm": nelbo}
TITLES = {"latent": "2-d code silhouette", "sweep": "silhouette per single training t", "fewshot": "few-shot accuracy",
          "codedim": "sample spread per code dimension", "generation": "FID per t_init",
          "adversarial": "FID per p_KL", "semisup": "pretrained code, few-shot accuracy", "lsgm": "test NELBO"}


def section(curve: pd.DataFrame, name: str, figdir: Path, rel) -> tuple[dict[str, list[Budget]], dict[str, str]]:
    """Every verdict's curves (by target id) and a figure per experiment."""
    budgets, paths = {}, {}
    for experiment, grp in curve.groupby("experiment"):
        ours, drawn = CURVES[experiment](grp)
        budgets.update(ours)
        path = figdir / f"{name}_{experiment}_convergence.png"
        metric = drawn.columns[1]
        figures.metric_against_steps(drawn, metric, f"{name}: {TITLES[experiment]} along training", path)
        paths[f"{experiment}_convergence"] = rel(path)
    return budgets, paths
