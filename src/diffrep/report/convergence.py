"""Whether a verdict could change with more training: the verdict's own differences along training (EMA snapshots,
`diffrep curves`) and a stability rule on them (issue: verdicts as evidence).

The rule: a verdict is *stable* when the engine (`report.verdicts`) gives the same outcome on the final model and on
the last two snapshots (each snapshot's difference, taken on the same draws, seeds or test images as the final one,
with the final interval's width around it), and the trend over the last three points (a straight line in log2 of
the steps) would not flip it at twice the steps. Otherwise it "could change with more training", with the outcome
per step and the projection printed. Curves of another quantity than the verdict's (a LaplaceNet verdict follows its
pretrained code, an LSGM verdict each run's own NELBO) say so and give that quantity's trend instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.likelihood import bits_per_dim
from diffrep.report import figures, generation
from diffrep.report.drl import fewshot_parts
from diffrep.report.verdicts import NOT_TESTED, Record, Verdict

STABLE, COULD_CHANGE, OTHER = "stable", "could change with more training", "stability not assessed"


@dataclass(frozen=True)
class History:
    """Per part of a verdict, in the verdict's order of parts, its difference (A - B) at each training step, on the
    curve's own scale (only its changes count); `other` names the quantity the curve measures where it is not the
    verdict's (then `curves` holds that quantity, by name)."""

    parts: tuple[pd.Series, ...] = ()
    other: str = ""
    curves: dict[str, pd.Series] = field(default_factory=dict)


def trend(series: pd.Series) -> float:
    """The change per doubling of steps: a least-squares line through the last three points in log2(step)."""
    s = series.sort_index().iloc[-3:]
    return float(np.polyfit(np.log2(s.index.to_numpy(dtype=float)), s.to_numpy(dtype=float), 1)[0])


def part_stability(part: Record, series: pd.Series | None) -> tuple[bool, str]:
    """One part: its outcome at the last three points (the final model's difference moved by the curve's change
    since each step) and at twice the steps by the trend; stable when all four agree with the final outcome."""
    if part.outcome == NOT_TESTED:
        return True, f"{part.part}: not tested"
    if series is None or len(series.dropna()) < 3:
        return False, f"{part.part}: fewer than three points on its curve"
    s = series.dropna().sort_index()
    last = s.iloc[-3:]
    outcomes = [(int(step), part.moved(part.difference + float(v - s.iloc[-1])).outcome) for step, v in last.items()]
    slope = trend(s)
    projected = part.moved(part.difference + slope).outcome
    same = {o for _, o in outcomes} == {part.outcome} and projected == part.outcome
    return same, (f"{part.part}: " + ", ".join(f"{o} at step {step}" for step, o in outcomes)
                  + f"; trend {slope:+.3f} a doubling of steps, {projected} at step {2 * outcomes[-1][0]}")


def stability(final: Sequence[Record], history: History) -> str:
    """"stable: ..." or "could change with more training: ..." for a verdict's parts (module docstring)."""
    if history.other:
        return _other(history)
    judged = [part_stability(p, history.parts[i] if i < len(history.parts) else None) for i, p in enumerate(final)]
    state = STABLE if all(ok for ok, _ in judged) else COULD_CHANGE
    return f"{state}: " + "; ".join(why for _, why in judged)


def _other(history: History) -> str:
    moves = []
    for name, series in history.curves.items():
        s = series.dropna().sort_index()
        if len(s) >= 3:
            moves.append(f"{name} {s.iloc[-2]:.3f} at step {int(s.index[-2])}, {s.iloc[-1]:.3f} at step "
                         f"{int(s.index[-1])} (trend {trend(s):+.3f} a doubling of steps)")
    return f"{OTHER}: its curves follow {history.other}, not the verdict's own difference: " + "; ".join(moves)


def with_stability(verdict: Verdict, history: History | None) -> Verdict:
    """The verdict with its stability line (left as it is where it has no curve)."""
    if history is None or verdict.outcome == NOT_TESTED:
        return verdict
    return replace(verdict, stability=stability(verdict.parts, history))


# --- each experiment's verdicts: their curves, and the lines the figure draws -----------------------------------


def _drawn(df: pd.DataFrame, metric: str, label) -> pd.DataFrame:
    return pd.DataFrame({"step": df["step"].to_numpy(), metric: df["value"].to_numpy(),
                         "curve": [label(r) for _, r in df.iterrows()]})


def latent(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Fig. 2 (uniform-t silhouette against 0) and Fig. 3 (sigma-uniform minus uniform-t), a part per method."""
    by = c.pivot_table(index="step", columns="run", values="silhouette")
    methods = [m for m in ("drl", "vdrl") if {f"latent-{m}-uniform_t", f"latent-{m}-uniform_sigma"} <= set(by.columns)]
    fig2 = tuple(by[f"latent-{m}-uniform_t"] for m in methods)
    fig3 = tuple(by[f"latent-{m}-uniform_sigma"] - by[f"latent-{m}-uniform_t"] for m in methods)
    drawn = _drawn(c.assign(value=c["silhouette"]), "silhouette", lambda r: r["run"].removeprefix("latent-"))
    return {"drl-fig2": History(fig2), "drl-fig3": History(fig3)}, drawn


def sweep(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Fig. 11: per step, the interior peak of the mean silhouette over seeds minus the smallest and the largest
    t's (the verdict's two parts)."""
    agg = c.groupby(["step", "train_t"])["silhouette"].mean().unstack("train_t").sort_index(axis=1)
    interior = agg[agg.columns[1:-1]]
    parts = (interior.max(axis=1) - agg[agg.columns[0]], interior.max(axis=1) - agg[agg.columns[-1]])
    long = agg.stack().rename("value").reset_index()
    drawn = _drawn(long, "silhouette", lambda r: f"t = {r['train_t']:.1f}")
    return {"drl-fig11": History(parts if len(agg.columns) >= 3 else ())}, drawn


def best_timed_curve(curve: pd.DataFrame, labels: int) -> pd.DataFrame:
    """Per step, the best E(x0, t) mean accuracy over method and t and its std over draws, and the best static code
    (AE, VAE) beside it (the lines of the figure)."""
    rows = []
    at = curve[curve["labels"] == labels]
    for step, grp in at.groupby("step"):
        agg = grp.groupby(["method", "t"], dropna=False)["accuracy"].agg(["mean", "std"]).reset_index()
        for kind, part in (("best E(x0, t)", agg[agg["t"].notna()]), ("best static code", agg[agg["t"].isna()])):
            if len(part):
                best = part.loc[part["mean"].idxmax()]
                rows.append({"step": int(step), "code": kind, "accuracy": best["mean"], "std": best["std"]})
    return pd.DataFrame(rows)


def fewshot(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Fig. 12: the verdict's parts (per label count: best E(x0, t) against the best static code, E(x0, 1.0)
    against it) computed on the same labelled draws at every step."""
    per_step = {int(step): [p.difference for n, g in grp.groupby("labels") for p in fewshot_parts(int(n), g)]
                for step, grp in c.groupby("step")}
    width = max(map(len, per_step.values()))
    parts = tuple(pd.Series({st: d[i] for st, d in per_step.items() if len(d) == width}) for i in range(width))
    drawn = []
    for labels in sorted(c["labels"].unique()):
        best = best_timed_curve(c, int(labels))
        drawn.append(_drawn(best.assign(value=best["accuracy"]), "test accuracy",
                            lambda r, n=int(labels): f"{r['code']}, {n} labels"))
    return {"drl-fig12": History(parts)}, pd.concat(drawn)


def codedim(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Fig. 10: the spread of each code dimension minus the next smaller one's."""
    by = c.pivot_table(index="step", columns="code_dim", values="spread").sort_index(axis=1)
    parts = tuple(by[hi] - by[lo] for lo, hi in zip(by.columns, by.columns[1:]))
    drawn = _drawn(c.assign(value=c["spread"]), "sample spread", lambda r: f"{int(r['code_dim'])}-d code")
    return {"drl-fig10": History(parts)}, drawn


def tinit(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Table 3: the uniform+Gaussian FID at t_init = 0.7 minus the best at t_init = 1.0 (its first part; the
    curve samples no Gaussian set below t_init 0.8, so the second part has no curve)."""
    points = {}
    for step, grp in c.groupby("step"):
        pair = generation.table3_pair(grp.pivot_table(index="t_init", columns="prior", values="fid"))
        if pair:
            points[int(step)] = pair[0] - pair[1]
    drawn = _drawn(c.assign(value=c["fid"]), "FID", lambda r: f"t_init {r['t_init']:g}, {r['prior']}")
    return ({"drl-table3": History((pd.Series(points),))} if points else {}), drawn


def adversarial(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Table 2: each p_KL <= 0.95's FID minus p_KL = 1's, in the verdict's order of p_KL."""
    by = c.pivot_table(index="step", columns="p_kl", values="fid").sort_index(axis=1)
    plain = [p for p in by.columns if np.isclose(p, 1.0)]
    parts = tuple(by[p] - by[plain[0]] for p in by.columns if plain and p <= 0.95 + 1e-9)
    drawn = _drawn(c.assign(value=c["fid"]), "FID", lambda r: f"p_KL {r['p_kl']:g}")
    return {"drl-table2": History(parts)}, drawn


# the LaplaceNet verdicts and the pretrainings whose code they hinge on (DRL Tables 1, 4-7)
PRETRAINED = {"drl-table4": ("drl",), "drl-table1": ("vdrl",), "drl-table6": ("drl", "ae"), "drl-table5": ("drl",)}


def pretraining(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """DRL Tables 1, 4-7: the few-shot accuracy of each pretrained WRN code with the fewest labels, mean over draws
    (another quantity than LaplaceNet's accuracy, which is not run per snapshot)."""
    labels = int(c["labels"].min())
    few = c[c["labels"] == labels]
    agg = few.groupby(["step", "run"])["accuracy"].mean().reset_index()
    per = {run.removeprefix("semisup-"): g.set_index("step")["accuracy"] for run, g in agg.groupby("run")}
    what = f"the pretrained WRN code's few-shot SVM accuracy ({labels} labels)"
    histories = {t: History(other=what, curves={p: per[p] for p in ps if p in per}) for t, ps in PRETRAINED.items()}
    drawn = _drawn(agg.assign(value=agg["accuracy"]), "test accuracy", lambda r: r["run"].removeprefix("semisup-"))
    return histories, drawn


def nelbo(c: pd.DataFrame) -> tuple[dict[str, History], pd.DataFrame]:
    """LSGM Tables 2, 4, 5: each run's own test NELBO (gray-level runs for Table 2, binarized for Tables 4, 5), in its
    units; drawn in bits/dim (a binarized run's nats per image converted) so that both fit one figure."""
    curves: dict[str, dict[str, pd.Series]] = {}
    for run, g in c.groupby("run", sort=False):
        target = "lsgm-table4" if run.endswith("-binary") else "lsgm-table2"
        curves.setdefault(target, {})[f"{run} ({g['units'].iloc[0]})"] = g.set_index("step")["nelbo"]
    histories = {t: History(other="each run's own test NELBO", curves=cs) for t, cs in curves.items()}
    bits = np.where(c["units"] == "bits/dim", c["nelbo"], bits_per_dim(c["nelbo"], c["dims"]))
    return histories, _drawn(c.assign(value=bits), "NELBO (bits/dim)", lambda r: r["run"])


CURVES = {"latent": latent, "sweep": sweep, "fewshot": fewshot, "codedim": codedim, "generation": tinit,
          "adversarial": adversarial, "semisup": pretraining, "lsgm": nelbo}
TITLES = {"latent": "2-d code silhouette", "sweep": "silhouette per single training t", "fewshot": "few-shot accuracy",
          "codedim": "sample spread per code dimension", "generation": "FID per t_init",
          "adversarial": "FID per p_KL", "semisup": "pretrained code, few-shot accuracy", "lsgm": "test NELBO"}


def section(curve: pd.DataFrame, name: str, figdir: Path, rel) -> tuple[dict[str, History], dict[str, str]]:
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
