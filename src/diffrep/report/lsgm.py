"""LSGM Tables 2, 4-6, sec. 5.2 and Fig. 4: our NELBO and FID per run beside the paper's numbers, a verdict per claim.

Inputs (per dataset, under results/<profile>/<dataset>/lsgm/): `nelbo/<run>.json` from `diffrep lsgm-evaluate` (NELBO
in the papers' units per test image, the backbone's, divergence), `fidelity.csv` from `diffrep fidelity` over the
sample sets (`<run>` and Fig. 4's `speed-*`, with their NFE and seconds, and the FIDs of disjoint splits).

NELBO parts are paired over the test images (each image's estimate has one latent sample and one Hutchinson probe).
FID parts compare the split FIDs; the runs' sets are paired over the splits (every run samples its N(0, I) latent with
the profile's seed, so split i of each set starts from the same latent noise), Fig. 4's latent and data-space sets not.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config, lsgm_method
from diffrep.report import figures
from diffrep.report.generation import fid_part
from diffrep.report.targets import target
from diffrep.report.verdicts import CONTRADICTS, REPRODUCES, Comparison, Record, Verdict, combine, judge, not_tested

# Table 6's columns (targets.yaml) by our prior scheme and encoder t
TABLE6_COLUMNS = {("ll_uniform", "rew"): "w_ll/U/rew", ("ll_iw", "rew"): "w_ll/r_ll/rew",
                  ("drop_all_uniform", "rew"): "w_un/U/rew", ("drop_all_uniform", "ll_iw"): "w_un/U/r_ll",
                  ("drop_all_iw", "rew"): "w_un/r_un/rew", ("drop_all_iw", "ll_iw"): "w_un/r_un/r_ll",
                  ("drop_sigma2t_uniform", "rew"): "w_re/U/rew", ("drop_sigma2t_uniform", "ll_iw"): "w_re/U/r_ll",
                  ("drop_sigma2t_iw", "rew"): "w_re/r_re/rew", ("drop_sigma2t_iw", "ll_iw"): "w_re/r_re/r_ll"}


def load_runs(res: Path) -> pd.DataFrame:
    """One row per evaluated run with its FID and split FIDs where measured (NaN NELBO and FID for a diverged run)."""
    rows = [json.loads(p.read_text()) for p in sorted((res / "nelbo").glob("*.json"))]
    runs = pd.DataFrame(rows)
    fid = read_fidelity(res)
    runs = runs.merge(fid[[c for c in ("run", "fid", "fid_splits") if c in fid.columns]], on="run", how="left")
    runs.loc[runs["diverged"], ["nelbo", "fid"]] = math.nan
    return runs


def read_fidelity(res: Path) -> pd.DataFrame:
    """`fidelity.csv` of the LSGM sample sets (empty, with a `run` and `fid` column, before it is made)."""
    path = res / "fidelity.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["run", "fid"])


def _f(value: float | None, digits: int = 2) -> str:
    """A number of the tables: '–' where none was measured."""
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _measured(r: pd.Series, key: str) -> str:
    """A run's NELBO or FID: 'NaN' where it diverged (as in the paper), '–' where none was measured (binarized
    runs have no FID)."""
    return "NaN" if r["diverged"] else _f(r.get(key, math.nan))


def _paper(value: float | None) -> str:
    """A paper's Table 6 number: 'NaN' for a diverged cell, '–' for one it does not report."""
    return "–" if value is None else "NaN" if math.isnan(value) else f"{value:.2f}"


def _count(value) -> str:
    """A count that a run without a prior (or a diverged one) does not have: '–'."""
    return "–" if value is None or math.isnan(value) else str(int(value))


def _row(runs: pd.DataFrame, run: str) -> pd.Series | None:
    hit = runs[runs["run"] == run]
    return None if hit.empty else hit.iloc[0]


def runs_table(runs: pd.DataFrame) -> list[dict]:
    """Every run: NELBO (units), the backbone's NELBO, FID, and where a run diverged."""
    return [{"run": r["run"], "nelbo": _measured(r, "nelbo"), "backbone": _measured(r, "backbone_nelbo"),
             "units": r["units"], "fid": _measured(r, "fid"), "active": _count(r.get("active_channels", math.nan)),
             "diverged": f"step {int(r['step'])} (loss {r['loss']})" if r["diverged"] else "no"}
            for _, r in runs.iterrows()]


def _diverged(a: pd.Series, b: pd.Series) -> str:
    """Which of two runs diverged ('' where neither did)."""
    runs = dict.fromkeys(r["run"] for r in (a, b) if r["diverged"])
    return f"{' and '.join(runs)} diverged" if runs else ""


def nelbo_part(part: str, claim: Comparison, a: pd.Series, b: pd.Series, b_key: str = "per_image",
               note: str = "") -> Record:
    """A NELBO part: run a's per-image NELBOs against b's `b_key` (its own, or its VAE's with the N(0, I) prior),
    paired over the test images; not tested where either run diverged."""
    diverged = _diverged(a, b)
    if diverged:
        return not_tested(part, diverged)
    return judge(part, claim, a["per_image"], b[b_key], unit="test images", paired=True, note=note)


def run_fid_part(part: str, claim: Comparison, a: pd.Series, b: pd.Series, note: str = "") -> Record:
    """A FID part between two runs' sample sets, paired over the splits (module docstring); not tested where either
    run diverged."""
    diverged = _diverged(a, b)
    return not_tested(part, diverged) if diverged else fid_part(part, claim, a, b, paired=True, note=note)


def backbone_verdict(runs: pd.DataFrame, claim: str, lsgm: str, vae: str, budget: str) -> Verdict:
    """LSGM Tables 2, 4, 5: the SGM prior lowers NELBO (Table 2: and FID) against the VAE backbone trained alone, and
    against the same VAE with a N(0, I) prior (else the gain would be the VAE's longer training, not the prior's)."""
    t = target(claim)
    parts = ["NELBO against the backbone alone", "NELBO against its own N(0, I) prior",
             *(["FID against the backbone"] if "fid" in t.compare else [])]
    ours, base = _row(runs, lsgm), _row(runs, vae)
    if ours is None or base is None:
        return combine(claim, [not_tested(p, f"the profile lacks {lsgm} or {vae}") for p in parts], budget)
    records = [nelbo_part(parts[0], t.comparison("nelbo"), ours, base),
               nelbo_part(parts[1], t.comparison("nelbo"), ours, ours, "backbone_per_image")]
    if len(parts) > 2:
        records.append(run_fid_part(parts[2], t.comparison("fid"), ours, base))
    return combine(claim, records, budget)


def pair_verdict(runs: pd.DataFrame, claim: str, better: str, worse: str, against: str, budget: str) -> Verdict:
    """LSGM sec. 5.2: `better` (end to end; mixed score) has a lower NELBO and FID than `worse` (frozen VAE; no mixed
    score), named `against` in the parts."""
    t, parts = target(claim), [f"NELBO against {against}", f"FID against {against}"]
    a, b = _row(runs, better), _row(runs, worse)
    if a is None or b is None:
        return combine(claim, [not_tested(p, f"the profile lacks {better} or {worse}") for p in parts], budget)
    return combine(claim, [nelbo_part(parts[0], t.comparison("nelbo"), a, b),
                           run_fid_part(parts[1], t.comparison("fid"), a, b)], budget)


def table6(runs: pd.DataFrame, budget: str) -> tuple[list[dict], Verdict]:
    """LSGM Table 6: NELBO and FID per cell we ran beside the paper's, and whether w_ll gives the best NELBO and w_un
    or w_re the best FID."""
    values = target("lsgm-table6").values
    cells = runs[runs["table6"]]
    rows = []
    for _, r in cells.iterrows():
        column = TABLE6_COLUMNS[(r["prior_scheme"], r["encoder_t"])]
        paper = values["rows"][r["sde"]]
        at = values["columns"].index(column)
        rows.append({"sde": r["sde"], "column": column, "nelbo": _measured(r, "nelbo"), "fid": _measured(r, "fid"),
                     "paper_nelbo": _paper(paper["nelbo"][at]), "paper_fid": _paper(paper["fid"][at])})
    note = f"over {len(cells)} cells ({int(cells['diverged'].sum())} diverged); {budget}"
    return rows, combine("lsgm-table6", _table6_parts(cells), note)


def _table6_parts(cells: pd.DataFrame) -> list[Record]:
    """LSGM Table 6: the best converged w_ll cell's NELBO against the best other cell's; the best FID of w_un or w_re
    against w_ll's best FID."""
    t, nelbo, fid = (target("lsgm-table6"), "best w_ll NELBO against the best other cell",
                     "best w_un/w_re FID against w_ll's best FID")
    done = cells[~cells["diverged"]]
    likelihood = done["prior_scheme"].str.startswith("ll")
    ll, other = done[likelihood], done[~likelihood]
    if ll.empty or other.empty:
        why = "the profile's Table 6 cells need a w_ll cell and a w_un or w_re cell that converge"
        return [not_tested(nelbo, why), not_tested(fid, why)]
    a, b = ll.loc[ll["nelbo"].idxmin()], other.loc[other["nelbo"].idxmin()]
    records = [nelbo_part(nelbo, t.comparison("nelbo"), a, b, note=f"{a['run']} against {b['run']}")]
    ll, other = ll.dropna(subset=["fid"]), other.dropna(subset=["fid"])
    if ll.empty or other.empty:
        return records + [not_tested(fid, "no FID of a converged w_ll cell and a w_un or w_re cell")]
    a, b = other.loc[other["fid"].idxmin()], ll.loc[ll["fid"].idxmin()]
    return records + [run_fid_part(fid, t.comparison("fid"), a, b, note=f"{a['run']} against {b['run']}")]


def sde_verdict(runs: pd.DataFrame, budget: str) -> Verdict:
    """LSGM Table 6 (sec. 3.4): of the cells that converged, the best NELBO comes from the geometric VPSDE."""
    part = "best geometric VPSDE NELBO against the best VPSDE"
    done = runs[runs["table6"] & ~runs["diverged"].astype(bool)]
    if not {"geometric_vp", "vp"} <= set(done["sde"]):
        return combine("lsgm-table6-sde", [not_tested(part, "the profile's converged Table 6 cells need both SDEs")],
                       budget)
    best = {sde: cells.loc[cells["nelbo"].idxmin()] for sde, cells in done.groupby("sde")}
    a, b = best["geometric_vp"], best["vp"]
    claim = target("lsgm-table6-sde").comparison("nelbo")
    return combine("lsgm-table6-sde", [nelbo_part(part, claim, a, b, note=f"{a['run']} against {b['run']}")], budget)


def divergence_verdict(runs: pd.DataFrame, budget: str) -> Verdict:
    """LSGM Table 6 (sec. 5.2): uniform t diverges in cells where importance-sampled t does not. No interval: the
    share of diverged cells of each kind decides; not tested while nothing diverges."""
    part = "diverged share, uniform t against importance-sampled t"
    cells = runs[runs["table6"]]
    sampled = cells["prior_scheme"].str.endswith("_iw")
    if sampled.all() or not sampled.any():
        why = "the profile's Table 6 cells need both uniform and importance-sampled t"
        return combine("lsgm-table6-divergence", [not_tested(part, why)], budget)
    uniform, iw = cells[~sampled]["diverged"].astype(bool), cells[sampled]["diverged"].astype(bool)
    why = (f"{int(uniform.sum())} of {len(uniform)} uniform-t cells and {int(iw.sum())} of {len(iw)} "
           f"importance-sampled cells diverged")
    if not uniform.any() and not iw.any():
        record = not_tested(part, f"no cell diverged, so there is no divergence to avoid: {why}")
    else:
        a, b = float(uniform.mean()), float(iw.mean())
        record = Record(part, CONTRADICTS if iw.any() else REPRODUCES, a - b, n=len(cells), unit="cells", a=a, b=b,
                        note=why)
    return combine("lsgm-table6-divergence", [record], budget)


def speed_sets(fid: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4's sample sets (`speed-<sampler>[-tol<tolerance>]`) with their sampler."""
    sets = fid[fid["run"].str.startswith("speed-")]
    return sets.assign(sampler=sets["run"].str.split("-tol").str[0].str.removeprefix("speed-"))


def speed_table(fid: pd.DataFrame, budget: str) -> tuple[list[dict], Verdict]:
    """LSGM Fig. 4: NFE, seconds per batch and FID of LSGM's ODE and the data-space model's ODE per tolerance, and
    its PC; the verdict: fewer NFE at each tolerance, and no FID more than 10 % worse at LSGM's cheapest setting."""
    sets = speed_sets(fid)
    if sets.empty:
        return [], combine("lsgm-fig4", _speed_parts(sets), budget)
    rows = [{"sampler": r["sampler"], "tolerance": f"{r['tolerance']:g}" if r["sampler"] != "sgm-pc" else "–",
             "nfe": int(r["nfe"]), "seconds": f"{r['seconds']:.2f}", "fid": _f(r["fid"])}
            for _, r in sets.sort_values(["sampler", "tolerance"]).iterrows()]
    return rows, combine("lsgm-fig4", _speed_parts(sets), budget)


def _speed_parts(sets: pd.DataFrame) -> list[Record]:
    """LSGM Fig. 4: LSGM's NFE against the data-space ODE's, paired over the tolerances; and the FID part."""
    parts = ("NFE at each tolerance",
             "FID at LSGM's cheapest ODE setting against the data-space ODE at the nearest NFE at least as large")
    lsgm_ode, sgm_ode = (sets[sets["sampler"] == s] for s in ("lsgm", "sgm-ode"))
    if lsgm_ode.empty or sgm_ode.empty:
        why = "the profile samples no Fig. 4 sets" if sets.empty else "Fig. 4 needs LSGM's and the data-space ODE sets"
        return [not_tested(p, why) for p in parts]
    t = target("lsgm-fig4")
    both = lsgm_ode.merge(sgm_ode, on="tolerance", suffixes=("", "_sgm"))
    nfe = judge(parts[0], t.comparison("nfe"), both["nfe"], both["nfe_sgm"], unit="tolerances", paired=True)
    return [nfe, _speed_fid(parts[1], t.comparison("fid"), lsgm_ode, sgm_ode)]


def _speed_fid(part: str, claim: Comparison, lsgm_ode: pd.DataFrame, sgm_ode: pd.DataFrame) -> Record:
    """LSGM Fig. 4: FID at LSGM's cheapest tolerance against the data-space ODE's set with the nearest NFE at least as
    large. Unpaired: the latent ODE and the data-space ODE start from noise of different shapes."""
    cheap = lsgm_ode.loc[lsgm_ode["nfe"].idxmin()]
    dearer = sgm_ode[sgm_ode["nfe"] >= cheap["nfe"]]
    if dearer.empty:
        return not_tested(part, f"no data-space ODE set takes {int(cheap['nfe'])} NFE or more")
    match = dearer.loc[dearer["nfe"].idxmin()]
    note = (f"tolerance {cheap['tolerance']:g} ({int(cheap['nfe'])} NFE) against {match['tolerance']:g} "
            f"({int(match['nfe'])} NFE)")
    return fid_part(part, claim, cheap, match, paired=False, note=note)


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
           "table2": backbone_verdict(runs, "lsgm-table2", main, vae, budget),
           "binarized": backbone_verdict(runs, "lsgm-table4", lsgm_method(s.cell, binary=True),
                                         lsgm_method(binary=True), budget),
           "end_to_end": pair_verdict(runs, "lsgm-end-to-end", main, f"{main}-frozen", "the frozen VAE", budget),
           "mixed_score": pair_verdict(runs, "lsgm-mixed-score", main, lsgm_method(s.cell, mixed=False),
                                       "no mixed score", budget)}
    sec["table6"], sec["table6_verdict"] = table6(runs, budget)
    sec["sde_verdict"], sec["divergence_verdict"] = sde_verdict(runs, budget), divergence_verdict(runs, budget)
    fid = read_fidelity(res)
    sec["speed"], sec["speed_verdict"] = speed_table(fid, budget)
    grid = figdir / f"{name}_lsgm_samples.png"
    shown = [r for r in runs["run"] if (res / "samples" / f"{r}.npz").is_file() and not r.endswith("-binary")]
    figures.sample_grids([(r, np.load(res / "samples" / f"{r}.npz")["x"]) for r in shown], min(4, len(shown)),
                         f"{name}: LSGM samples (ODE, decoder mean)", grid)
    sec["figures"]["samples"] = rel(grid)
    if sec["speed"]:
        path = figdir / f"{name}_lsgm_speed.png"
        fid_against_nfe(speed_sets(fid), f"{name}: FID against NFE (LSGM Fig. 4)", path)
        sec["figures"]["speed"] = rel(path)
    return sec
