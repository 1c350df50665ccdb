"""DRL Table 2 (adversarial lambda) and Table 3 (initial noise scale): rows beside the paper's numbers, verdicts.

The verdicts compare FIDs over disjoint splits of each sample set (`fid_splits` of `fidelity.csv`)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from diffrep.report.targets import target
from diffrep.report.verdicts import Comparison, Record, Verdict, combine, judge, not_tested

NO_SPLITS = "no FID splits in fidelity.csv (rerun `diffrep fidelity`)"


def tinit_rows(fid: pd.DataFrame) -> pd.DataFrame:
    """The sample sets of the plain score model (Table 3): they carry no p_KL."""
    return fid[fid["p_kl"].isna()]


def adversarial_rows(fid: pd.DataFrame) -> pd.DataFrame:
    """The sample sets of the adversarial models (Table 2), one per p_KL."""
    return fid[fid["p_kl"].notna()]


def fid_splits(row: pd.Series) -> np.ndarray:
    """The FIDs of a sample set's disjoint splits (`diffrep fidelity`'s `fid_splits`, joined by ';'); empty where
    the file predates the column."""
    value = row.get("fid_splits")
    return np.array([float(v) for v in value.split(";")]) if isinstance(value, str) else np.array([])


def fid_part(part: str, claim: Comparison, a: pd.Series, b: pd.Series, paired: bool, note: str = "") -> Record:
    """A FID claim part: sample set a against b over their splits (paired where both share each split's noise)."""
    a_splits, b_splits = fid_splits(a), fid_splits(b)
    if not len(a_splits) or not len(b_splits):
        return not_tested(part, NO_SPLITS)
    return judge(part, claim, a_splits, b_splits, unit="sample splits", paired=paired, note=note)


# The report's paper columns of Table 3 and the target's columns they show
_TABLE3_COLUMNS = (("sigma", "sigma"), ("gaussian", "gaussian"), ("uniform", "uniform+gaussian"))


def _paper(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _lookup(target_id: str, key: float, column: str) -> float | None:
    """The paper's number in a column of a target's table, at the row whose key is `key`."""
    values = target(target_id).values
    hit = [row for k, row in values["rows"].items() if np.isclose(k, key)]
    return hit[0][values["columns"].index(column)] if hit else None


def table3(fid: pd.DataFrame, sigma) -> tuple[list[dict], Verdict]:
    """FID per t_init and prior, beside DRL Table 3, and the verdict: uniform+Gaussian at t_init = 0.7 keeps the
    quality of t_init = 1.0, the Gaussian prior alone loses it below 0.8."""
    sub = tinit_rows(fid)
    wide = sub.pivot_table(index="t_init", columns="prior", values="fid")
    steps = sub.groupby("t_init")["steps"].first()
    rows = [{"t_init": f"{t:.1f}", "sigma": f"{sigma(t):.2f}", "steps": int(steps[t]),
             "gaussian": _num(wide, t, "gaussian"), "uniform": _num(wide, t, "uniform+gaussian"),
             **{f"paper_{key}": _paper(_lookup("drl-table3", t, column)) for key, column in _TABLE3_COLUMNS}}
            for t in wide.index]
    return rows, combine("drl-table3", [_short_part(sub, wide), _gaussian_part(sub)])


def _num(wide: pd.DataFrame, t: float, prior: str) -> str:
    return f"{wide.loc[t, prior]:.2f}" if prior in wide.columns and not np.isnan(wide.loc[t, prior]) else "–"


def _set(sub: pd.DataFrame, t_init: float, prior: str) -> pd.Series:
    """The Table 3 sample set at t_init and prior."""
    return sub[np.isclose(sub["t_init"], t_init) & (sub["prior"] == prior)].iloc[0]


def table3_pair(wide: pd.DataFrame) -> tuple[float, float] | None:
    """The FIDs the Table 3 verdict compares (t_init by prior): uniform+Gaussian at t_init = 0.7, and the best at
    t_init = 1.0; None where the profile lacks one of them."""
    full = [t for t in wide.index if np.isclose(t, 1.0)]
    short = [t for t in wide.index if np.isclose(t, 0.7)]
    if not full or not short or "uniform+gaussian" not in wide.columns:
        return None
    return float(wide.loc[short[0], "uniform+gaussian"]), float(wide.loc[full[0]].min())


def _short_part(sub: pd.DataFrame, wide: pd.DataFrame) -> Record:
    """DRL Table 3: uniform+Gaussian at t_init = 0.7 within 10 % of the best FID at 1.0. Unpaired: fewer steps draw
    the sampler's noise in another order, so the two sets share no split's noise."""
    part = "uniform+Gaussian at t_init 0.7 against the best at 1.0"
    if table3_pair(wide) is None:
        return not_tested(part, "the profile lacks t_init 0.7 or 1.0 or the uniform+Gaussian prior")
    best = wide.loc[[t for t in wide.index if np.isclose(t, 1.0)][0]].idxmin()
    return fid_part(part, target("drl-table3").comparison("short"), _set(sub, 0.7, "uniform+gaussian"),
                    _set(sub, 1.0, best), paired=False)


def _gaussian_part(sub: pd.DataFrame) -> Record:
    """DRL Table 3: the Gaussian prior's FID at its smallest t_init below 0.8 is higher than at 1.0 (unpaired)."""
    gaussian = sub[sub["prior"] == "gaussian"]
    below = gaussian[gaussian["t_init"] < 0.8 - 1e-9]["t_init"]
    if below.empty or not np.isclose(gaussian["t_init"], 1.0).any():
        return not_tested("Gaussian prior below t_init 0.8 against 1.0",
                          "the profile lacks a Gaussian set below t_init 0.8 or at 1.0")
    short = below.min()
    return fid_part(f"Gaussian prior at t_init {short:g} against 1.0", target("drl-table3").comparison("gaussian"),
                    _set(sub, short, "gaussian"), _set(sub, 1.0, "gaussian"), paired=False)


def table2(fid: pd.DataFrame, alphas: pd.DataFrame) -> tuple[list[dict], Verdict]:
    """FID and IS per p_KL with the adversary's final alpha, beside DRL Table 2, and whether p_KL <= 0.95 helps."""
    sub = adversarial_rows(fid).sort_values("p_kl")
    final_alpha = alphas.sort_values("step").groupby("p_kl")["alpha"].last() if len(alphas) else pd.Series(dtype=float)
    rows = [{"p_kl": f"{r['p_kl']:g}", "fid": f"{r['fid']:.2f}", "isc": f"{r['isc_mean']:.2f} ± {r['isc_std']:.2f}",
             "alpha": f"{final_alpha.get(r['p_kl'], np.nan):.2f}",
             "paper_fid": _paper(_lookup("drl-table2", r["p_kl"], "fid")),
             "paper_isc": _paper(_lookup("drl-table2", r["p_kl"], "isc"))}
            for _, r in sub.iterrows()]
    return rows, combine("drl-table2", _table2_parts(sub))


def _table2_parts(sub: pd.DataFrame) -> list[Record]:
    """DRL Table 2: each p_KL <= 0.95 against p_KL = 1, paired over the splits: every model samples with the same
    seed, t_init, prior and steps, so split i of each set is drawn from the same noise."""
    plain = sub[np.isclose(sub["p_kl"], 1.0)]
    mixed = sub[sub["p_kl"] <= 0.95 + 1e-9]
    if plain.empty or mixed.empty:
        return [not_tested("p_KL <= 0.95 against p_KL 1", "the profile needs p_KL = 1 and at least one p_KL <= 0.95")]
    claim = target("drl-table2").comparison("fid")
    return [fid_part(f"p_KL {r['p_kl']:g}", claim, r, plain.iloc[0], paired=True) for _, r in mixed.iterrows()]
