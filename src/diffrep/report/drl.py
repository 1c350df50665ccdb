"""DRL Fig. 2, 3 (2-d codes), Fig. 10 (code dimension), Fig. 11 (single-t sweep) and Fig. 12 (few-shot codes): the
report's rows and one verdict per claim, decided by the verdict engine on per-image, per-seed or per-draw values."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples

from diffrep.report.targets import target
from diffrep.report.verdicts import Record, Verdict, combine, judge, not_tested

LATENT_METHODS = ("drl", "vdrl")


def _fmt(mean: float, std: float | None = None) -> str:
    return f"{mean:.3f}" if std is None or np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def latent_rows(sil: pd.DataFrame) -> list[dict]:
    """The latent-experiment runs: method, t-sampling per phase and silhouette of the 2-d test codes."""
    lat = sil[sil["experiment"] == "latent"].sort_values(["method", "freeze_encoder", "scheme"], ascending=[True, True, False])
    rows = []
    for _, r in lat.iterrows():
        sampling = "uniform t with the uniform_sigma encoder frozen" if r["freeze_encoder"] else r["scheme"]
        rows.append({"method": r["method"].upper(), "scheme": sampling, "phase": "2" if r["freeze_encoder"] else "1",
                     "silhouette": _fmt(r["silhouette"])})
    return rows


def image_silhouettes(sil: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Each phase-1 latent run's silhouette per test image (their mean is the run's silhouette), by (method, scheme)."""
    lat = sil[(sil["experiment"] == "latent") & (~sil["freeze_encoder"].astype(bool))]
    out = {}
    for _, r in lat.iterrows():
        z = np.load(r["codes"])
        out[(r["method"], r["scheme"])] = silhouette_samples(z["codes_test"][0], z["y_test"])
    return out


def latent_verdicts(per_image: dict[tuple[str, str], np.ndarray]) -> dict[str, Verdict]:
    """Fig. 2: the uniform-t codes' silhouette above 0 (the class weakly indicated); Fig. 3: sigma-uniform codes'
    silhouette above uniform-t's, paired over the test images; a part per method."""
    fig2, fig3 = target("drl-fig2").comparison("silhouette"), target("drl-fig3").comparison("silhouette")
    weak, focus = [], []
    for m in LATENT_METHODS:
        uniform, sigma = per_image.get((m, "uniform_t")), per_image.get((m, "uniform_sigma"))
        if uniform is None or sigma is None:
            weak.append(not_tested(m.upper(), "the profile lacks its uniform_t or uniform_sigma run"))
            focus.append(weak[-1])
            continue
        weak.append(judge(f"{m.upper()} uniform-t silhouette against 0", fig2, uniform, np.zeros_like(uniform),
                          unit="test images", paired=True))
        focus.append(judge(f"{m.upper()} sigma-uniform against uniform-t silhouette", fig3, sigma, uniform,
                           unit="test images", paired=True))
    return {"drl-fig2": combine("drl-fig2", weak), "drl-fig3": combine("drl-fig3", focus)}


def sweep_table(sil: pd.DataFrame) -> tuple[list[dict], Verdict]:
    """Fig. 11: silhouette mean ± std over seeds per single training time t, and the verdict."""
    sw = sil[sil["experiment"] == "sweep"]
    agg = sw.groupby("t")["silhouette"].agg(["mean", "std", "count"]).reset_index()
    rows = [{"t": f"{r['t']:.2f}", "silhouette": _fmt(r["mean"], r["std"]), "seeds": int(r["count"])} for _, r in agg.iterrows()]
    return rows, sweep_verdict(sw.pivot_table(index="seed", columns="t", values="silhouette"))


def sweep_verdict(by_seed: pd.DataFrame) -> Verdict:
    """Fig. 11: the interior t with the highest mean silhouette against the smallest and the largest t, paired over
    seeds; the interval widened for picking the peak among the interior t (Bonferroni)."""
    ts = sorted(by_seed.columns)
    if len(ts) < 3:
        return combine("drl-fig11", [not_tested("rise and decline", "the sweep needs at least three values of t")])
    interior = by_seed[ts[1:-1]]
    peak = interior.mean().idxmax()
    base = target("drl-fig11").comparison("rise")
    claim = replace(base, alpha=base.alpha / len(interior.columns))
    seeds = len(by_seed)
    parts = [judge(f"peak t = {peak:.2f} against t = {end:.2f}", claim, by_seed[peak], by_seed[end], unit="seeds",
                   paired=True, seeds=seeds) for end in (ts[0], ts[-1])]
    return combine("drl-fig11", parts)


def fewshot_table(fs: pd.DataFrame) -> tuple[list[dict], Verdict]:
    """Fig. 12: accuracy mean ± std over labelled draws per method, t and label count; one verdict over label counts."""
    agg = fs.groupby(["labels", "method", "t"], dropna=False)["accuracy"].agg(["mean", "std"]).reset_index()
    rows = [{"labels": int(r["labels"]), "method": r["method"].upper(), "t": "static" if np.isnan(r["t"]) else f"{r['t']:.1f}",
             "accuracy": _fmt(r["mean"], r["std"])} for _, r in agg.iterrows()]
    parts = [p for n, grp in fs.groupby("labels") for p in fewshot_parts(int(n), grp)]
    return rows, combine("drl-fig12", parts)


def fewshot_parts(labels: int, grp: pd.DataFrame) -> list[Record]:
    """One label count of Fig. 12: the best E(x0, t) against the best static code (Bonferroni over the (method, t)
    candidates), and the best E(x0, 1.0) equivalent to it; paired over the labelled draws."""
    key = grp["method"] + "@" + grp["t"].map(lambda t: "static" if np.isnan(t) else f"{t:.1f}")
    wide = grp.assign(key=key).pivot_table(index="draw", columns="key", values="accuracy")
    static = [k for k in wide.columns if k.endswith("@static")]
    timed = [k for k in wide.columns if not k.endswith("@static")]
    if not static or not timed:
        return [not_tested(f"{labels} labels", "the profile lacks E(x0, t) or a static code")]
    best_static = wide[static].mean().idxmax()
    best = wide[timed].mean().idxmax()
    fig12 = target("drl-fig12")
    picked = replace(fig12.comparison("best"), alpha=fig12.comparison("best").alpha / len(timed))
    parts = [judge(f"{labels} labels: best E(x0, t) ({_name(best)}) against {_name(best_static)}", picked,
                   wide[best], wide[best_static], unit="labelled draws", paired=True)]
    at_one = [k for k in timed if k.endswith("@1.0")]
    if at_one:
        one = wide[at_one].mean().idxmax()
        parts.append(judge(f"{labels} labels: {_name(one)} against {_name(best_static)}", fig12.comparison("at_one"),
                           wide[one], wide[best_static], unit="labelled draws", paired=True))
    return parts


def _name(key: str) -> str:
    method, t = key.split("@")
    return method.upper() if t == "static" else f"{method.upper()}, t = {t}"


def codedim_table(per_image: dict[int, np.ndarray]) -> tuple[list[dict], Verdict]:
    """Fig. 10: the spread of the samples of one code per code dimension (mean over the test images whose codes are
    sampled), and whether it falls at every step, paired over those images."""
    dims = sorted(per_image)
    rows = [{"code_dim": d, "spread": f"{per_image[d].mean():.4f}"} for d in dims]
    claim = target("drl-fig10").comparison("spread")
    parts = [judge(f"{hi}-d against {lo}-d", claim, per_image[hi], per_image[lo], unit="test images", paired=True)
             for lo, hi in zip(dims, dims[1:])]
    return rows, combine("drl-fig10", parts or [not_tested("spread", "one code dimension only")])


# the representation verdicts and the floor metric each is held against (the representation table's pixels and PCA)
FLOOR_METRICS = {"drl-fig2": "silhouette", "drl-fig3": "silhouette", "drl-fig11": "silhouette", "drl-fig12": "svm"}


def with_floors(verdict: Verdict, scores: pd.DataFrame) -> Verdict:
    """A representation verdict with the pixel and PCA floors of its metric beside it, and the parts whose A falls
    below the pixel floor named (few-shot parts at their own label count)."""
    metric = FLOOR_METRICS.get(verdict.claim)
    floors = scores[(scores["experiment"] == "floor") & (scores["metric"] == metric)] if metric else scores.iloc[:0]
    if floors.empty:
        return verdict
    mean = floors.groupby(["labels", "run"])["value"].mean()
    notes = []
    for labels, by_run in mean.groupby(level=0):
        at = by_run.droplevel(0)
        count = f" with {labels} labels" if labels else ""
        below = [p.part for p in verdict.parts if p.part.startswith(f"{labels} labels" if labels else "")
                 and not np.isnan(p.a) and p.a < at.get("pixels", -np.inf)]
        notes.append(f"{metric} floors{count}: pixels {at.get('pixels', np.nan):.3f}, PCA {at.get('pca', np.nan):.3f}"
                     + (f" ({'; '.join(below)}: below the pixel floor)" if below else ""))
    return replace(verdict, note="; ".join(filter(None, [verdict.note, *notes])))
