"""LSGM Tables 2, 4-6, sec. 5.2 and Fig. 4: our NELBO and FID per run beside the paper's numbers, and a verdict per claim.

Inputs (per dataset, under results/<profile>/<dataset>/lsgm/): `nelbo/<run>.json` from `diffrep lsgm-evaluate` (NELBO
in the papers' units, the backbone's, divergence), `fidelity.csv` from `diffrep fidelity` over the sample sets
(`<run>` and Fig. 4's `speed-*`, with their NFE and seconds).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config, lsgm_method
from diffrep.report import figures
from diffrep.report.targets import target
from diffrep.report.verdicts import verdict

NOT_TESTED = "**not tested** here: {}."
# Table 6's columns (targets.yaml) by our prior scheme and encoder t
TABLE6_COLUMNS = {("ll_uniform", "rew"): "w_ll/U/rew", ("ll_iw", "rew"): "w_ll/r_ll/rew",
                  ("drop_all_uniform", "rew"): "w_un/U/rew", ("drop_all_uniform", "ll_iw"): "w_un/U/r_ll",
                  ("drop_all_iw", "rew"): "w_un/r_un/rew", ("drop_all_iw", "ll_iw"): "w_un/r_un/r_ll",
                  ("drop_sigma2t_uniform", "rew"): "w_re/U/rew", ("drop_sigma2t_uniform", "ll_iw"): "w_re/U/r_ll",
                  ("drop_sigma2t_iw", "rew"): "w_re/r_re/rew", ("drop_sigma2t_iw", "ll_iw"): "w_re/r_re/r_ll"}


def load_runs(res: Path) -> pd.DataFrame:
    """One row per evaluated run with its FID where one was measured (NaN NELBO and FID for a diverged run)."""
    rows = [json.loads(p.read_text()) for p in sorted((res / "nelbo").glob("*.json"))]
    runs = pd.DataFrame(rows)
    fid_path = res / "fidelity.csv"
    fid = pd.read_csv(fid_path)[["run", "fid"]] if fid_path.is_file() else pd.DataFrame(columns=["run", "fid"])
    runs = runs.merge(fid, on="run", how="left")
    runs.loc[runs["diverged"], ["nelbo", "fid"]] = math.nan
    return runs


def _f(value: float, digits: int = 2) -> str:
    return "NaN" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _f3(value: float) -> str:
    """A NELBO in a verdict: bits/dim differ in the third decimal at the digits' budgets."""
    return _f(value, 3)


def _count(value) -> str:
    """A count that a run without a prior (or a diverged one) does not have: '–'."""
    return "–" if value is None or math.isnan(value) else str(int(value))


def _row(runs: pd.DataFrame, run: str) -> pd.Series | None:
    hit = runs[runs["run"] == run]
    return None if hit.empty else hit.iloc[0]


def runs_table(runs: pd.DataFrame) -> list[dict]:
    """Every run: NELBO (units), the backbone's NELBO, FID, and where a run diverged."""
    return [{"run": r["run"], "nelbo": _f(r["nelbo"]), "backbone": _f(r["backbone_nelbo"]), "units": r["units"],
             "fid": _f(r.get("fid", math.nan)), "active": _count(r.get("active_channels", math.nan)),
             "diverged": f"step {int(r['step'])} (loss {r['loss']})" if r["diverged"] else "no"} for _, r in runs.iterrows()]


def paired_difference(a: pd.Series, b: pd.Series, a_key: str = "per_image", b_key: str = "per_image"):
    """Mean and standard error of a's NELBO minus b's over the same test images (each image's estimate has one latent
    sample and one Hutchinson probe, so a difference must stand out of that noise)."""
    d = np.asarray(a[a_key], dtype=float) - np.asarray(b[b_key], dtype=float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def lower(a: pd.Series, b: pd.Series, a_key: str = "per_image", b_key: str = "per_image") -> tuple[bool, str]:
    """Whether a's NELBO is below b's by more than twice the paired standard error (a diverged a never is, a
    diverged b always is), and the difference as the verdict prints it."""
    if a["diverged"] or b["diverged"]:
        return bool(b["diverged"] and not a["diverged"]), "one of them diverged"
    mean, se = paired_difference(a, b, a_key, b_key)
    return mean < -2 * se, f"difference {mean:+.4f} ± {2 * se:.4f} (2 s.e., paired over the test images)"


def lower_fid(a: float, b: float) -> bool:
    """A FID counts as lower only below `lower_fid` times the other (one sample set each: a tie does not count)."""
    return bool(a < target("lsgm-table2").thresholds["lower_fid"] * b)


def backbone_verdict(runs: pd.DataFrame, lsgm: str, vae: str, budget: str, with_fid: bool) -> str:
    """Tables 2, 4, 5: the SGM prior lowers NELBO (and FID) against the VAE backbone trained alone, and against the same
    VAE with a N(0, I) prior (else the gain would be the VAE's longer training, not the prior's)."""
    ours, base = _row(runs, lsgm), _row(runs, vae)
    if ours is None or base is None:
        return NOT_TESTED.format(f"the profile lacks {lsgm} or {vae}")
    alone, against_alone = lower(ours, base)
    own, against_own = lower(ours, ours, "per_image", "backbone_per_image") if not ours["diverged"] else (False, "")
    why = (f"NELBO {_f3(ours['nelbo'])} against {_f3(base['nelbo'])} {ours['units']} of the backbone trained alone "
           f"({against_alone}) and {_f3(ours['backbone_nelbo'])} of the same VAE with its N(0, I) prior, the prior's "
           f"own share ({against_own})")
    ok = alone and own
    if with_fid:
        why += f", FID {_f(ours['fid'])} against {_f(base['fid'])}"
        ok = ok and lower_fid(ours["fid"], base["fid"])
    return verdict(bool(ok), f"{why} ({budget})")


def pair_verdict(runs: pd.DataFrame, better: str, worse: str, budget: str) -> str:
    """Sec. 5.2: `better` (end to end; mixed score) has a lower NELBO than `worse` (frozen VAE; no mixed score)."""
    a, b = _row(runs, better), _row(runs, worse)
    if a is None or b is None:
        return NOT_TESTED.format(f"the profile lacks {better} or {worse}")
    ok, difference = lower(a, b)
    why = (f"NELBO {_f3(a['nelbo'])} against {_f3(b['nelbo'])} {a['units']}, {difference}; FID "
           f"{_f(a.get('fid', math.nan))} against {_f(b.get('fid', math.nan))} ({budget})")
    return verdict(ok, why)


def table6(runs: pd.DataFrame, budget: str) -> tuple[list[dict], str]:
    """Table 6: NELBO and FID per cell we ran beside the paper's, and whether w_ll gives the best NELBO and w_un or
    w_re the best FID."""
    values = target("lsgm-table6").values
    cells = runs[runs["table6"]]
    rows = []
    for _, r in cells.iterrows():
        column = TABLE6_COLUMNS[(r["prior_scheme"], r["encoder_t"])]
        paper = values["rows"][r["sde"]]
        at = values["columns"].index(column)
        rows.append({"sde": r["sde"], "column": column, "nelbo": _f(r["nelbo"]), "fid": _f(r.get("fid", math.nan)),
                     "paper_nelbo": _f(paper["nelbo"][at]), "paper_fid": _f(paper["fid"][at])})
    done = cells.dropna(subset=["nelbo", "fid"])
    likelihood = done["prior_scheme"].str.startswith("ll")
    if not likelihood.any() or likelihood.all():
        return rows, NOT_TESTED.format("the profile's Table 6 cells need a w_ll cell and a w_un or w_re cell that converge")
    ll, other = done[likelihood], done[~likelihood]
    best_ll, best_other = ll.loc[ll["nelbo"].idxmin()], other.loc[other["nelbo"].idxmin()]
    nelbo_ok, difference = lower(best_ll, best_other)
    fid_ll, fid_other = ll["fid"].min(), other["fid"].min()
    why = (f"best w_ll NELBO {_f3(best_ll['nelbo'])} ({best_ll['run']}) against {_f3(best_other['nelbo'])} "
           f"({best_other['run']}), {difference}; best FID of w_un/w_re {_f(fid_other)} against w_ll's {_f(fid_ll)}; "
           f"over {len(cells)} cells ({len(cells) - len(done)} diverged; {budget})")
    return rows, verdict(nelbo_ok and lower_fid(fid_other, fid_ll), why)


def sde_verdict(runs: pd.DataFrame, budget: str) -> str:
    """Table 6: of the cells that converged, the best NELBO comes from the geometric VPSDE."""
    done = runs[runs["table6"]].dropna(subset=["nelbo"])
    if done["sde"].nunique() < 2:
        return NOT_TESTED.format("the profile's converged Table 6 cells need both SDEs")
    best = {sde: cells.loc[cells["nelbo"].idxmin()] for sde, cells in done.groupby("sde")}
    ok, difference = lower(best["geometric_vp"], best["vp"])
    why = (f"best NELBO geometric VPSDE {_f3(best['geometric_vp']['nelbo'])} ({best['geometric_vp']['run']}) against "
           f"VPSDE {_f3(best['vp']['nelbo'])} ({best['vp']['run']}), {difference} ({budget})")
    return verdict(ok, why)


def divergence_verdict(runs: pd.DataFrame, budget: str) -> str:
    """Table 6: uniform t diverges in cells where importance-sampled t does not; untestable while nothing diverges."""
    cells = runs[runs["table6"]]
    sampled = cells["prior_scheme"].str.endswith("_iw")
    if sampled.all() or not sampled.any():
        return NOT_TESTED.format("the profile's Table 6 cells need both uniform and importance-sampled t")
    uniform, iw = int(cells[~sampled]["diverged"].sum()), int(cells[sampled]["diverged"].sum())
    why = (f"{uniform} of {int((~sampled).sum())} uniform-t cells and {iw} of {int(sampled.sum())} "
           f"importance-sampled cells diverged ({budget})")
    if uniform == 0 and iw == 0:
        return NOT_TESTED.format(f"no cell diverged, so there is no divergence to avoid: {why}")
    return verdict(iw == 0, why)


def speed_table(fid: pd.DataFrame, budget: str) -> tuple[list[dict], str]:
    """Fig. 4: NFE, seconds per batch and FID of LSGM's ODE and the data-space model's ODE per tolerance, and its PC."""
    sets = fid[fid["run"].str.startswith("speed-")].copy()
    if sets.empty:
        return [], NOT_TESTED.format("the profile samples no Fig. 4 sets")
    sets["sampler"] = sets["run"].str.split("-tol").str[0].str.removeprefix("speed-")
    rows = [{"sampler": r["sampler"], "tolerance": f"{r['tolerance']:g}" if r["sampler"] != "sgm-pc" else "–",
             "nfe": int(r["nfe"]), "seconds": f"{r['seconds']:.2f}", "fid": _f(r["fid"])}
            for _, r in sets.sort_values(["sampler", "tolerance"]).iterrows()]
    ode = sets[sets["sampler"] != "sgm-pc"].pivot_table(index="tolerance", columns="sampler", values="nfe")
    if not {"lsgm", "sgm-ode"} <= set(ode.columns):
        return rows, NOT_TESTED.format("Fig. 4 needs LSGM's and the data-space model's ODE sets")
    fewer = (ode["lsgm"] < ode["sgm-ode"]).all()
    why = "NFE of LSGM against the data-space ODE per tolerance: " + ", ".join(
        f"{t:g}: {int(r['lsgm'])} vs {int(r['sgm-ode'])}" for t, r in ode.iterrows()) + f" ({budget})"
    return rows, verdict(bool(fewer), why)


def fid_against_nfe(speed: pd.DataFrame, title: str, path: Path) -> None:
    """Fig. 4: FID against NFE per sampler, one point per ODE tolerance (PC: one point)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    sns.lineplot(data=speed, x="nfe", y="fid", hue="sampler", marker="o", ax=ax)
    ax.set(xscale="log", title=title, xlabel="function evaluations per batch (NFE)", ylabel="FID")
    figures._save(fig, path)


def section(cfg: Config, name: str, res: Path, figdir: Path, rel) -> dict:
    """The LSGM part of a dataset's report: runs, Tables 2, 4/5, 6 and sec. 5.2 verdicts, Fig. 4, sample grids."""
    s = cfg.experiments.lsgm
    runs = load_runs(res)
    main, vae = lsgm_method(s.cell), lsgm_method()
    budget = (f"stage 1 {s.stage1_iterations} and stage 2 {s.stage2_iterations} iterations at batch {s.batch_size}, "
              f"{s.latent_channels}-channel latent, one seed")
    sec = {"runs": runs_table(runs), "figures": {},
           "table2": backbone_verdict(runs, main, vae, budget, with_fid=True),
           "binarized": backbone_verdict(runs, lsgm_method(s.cell, binary=True), lsgm_method(binary=True), budget,
                                         with_fid=False),
           "end_to_end": pair_verdict(runs, main, f"{main}-frozen", budget),
           "mixed_score": pair_verdict(runs, main, lsgm_method(s.cell, mixed=False), budget)}
    sec["table6"], sec["table6_verdict"] = table6(runs, budget)
    sec["sde_verdict"], sec["divergence_verdict"] = sde_verdict(runs, budget), divergence_verdict(runs, budget)
    fid = pd.read_csv(res / "fidelity.csv") if (res / "fidelity.csv").is_file() else pd.DataFrame(columns=["run"])
    sec["speed"], sec["speed_verdict"] = speed_table(fid, budget)
    grid = figdir / f"{name}_lsgm_samples.png"
    shown = [r for r in runs["run"] if (res / "samples" / f"{r}.npz").is_file() and not r.endswith("-binary")]
    figures.sample_grids([(r, np.load(res / "samples" / f"{r}.npz")["x"]) for r in shown], min(4, len(shown)),
                         f"{name}: LSGM samples (ODE, decoder mean)", grid)
    sec["figures"]["samples"] = rel(grid)
    if sec["speed"]:
        path = figdir / f"{name}_lsgm_speed.png"
        speed = fid[fid["run"].str.startswith("speed-")].assign(
            sampler=lambda f: f["run"].str.split("-tol").str[0].str.removeprefix("speed-"))
        fid_against_nfe(speed, f"{name}: FID against NFE (LSGM Fig. 4)", path)
        sec["figures"]["speed"] = rel(path)
    return sec
