"""Render `reports/tables.md` (Jinja) and the figures from the metrics files; trains nothing."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import torch

from diffrep.config import Config, own_budget
from diffrep.io import write_text
from diffrep.report import (
    compute,
    convergence,
    figures,
    generation,
    lsgm,
    representations,
    metrics,
    scorevae,
    semisup,
    targets,
)
from diffrep.report.verdicts import verdict
from diffrep.sde import build_sde


def _fmt(mean: float, std: float | None = None) -> str:
    return f"{mean:.3f}" if std is None or np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def latent_rows(sil: pd.DataFrame) -> list[dict]:
    """The latent-experiment runs: method, t-sampling per phase and silhouette of the 2-d test codes."""
    lat = sil[sil["experiment"] == "latent"].sort_values(["method", "freeze_encoder", "scheme"], ascending=[True, True, False])
    rows = []
    for _, r in lat.iterrows():
        sampling = "uniform_sigma, then uniform t with the encoder frozen" if r["freeze_encoder"] else r["scheme"]
        rows.append({"method": r["method"].upper(), "scheme": sampling, "phase": "2" if r["freeze_encoder"] else "1",
                     "silhouette": _fmt(r["silhouette"])})
    return rows


def latent_verdicts(sil: pd.DataFrame) -> dict[str, str]:
    """Uniform-t codes cluster by class (silhouette above the threshold); sigma-uniform codes cluster better than
    uniform-t ones."""
    clusters = targets.threshold("drl-fig2", "silhouette")
    lat = sil[(sil["experiment"] == "latent") & (~sil["freeze_encoder"].astype(bool))]
    by = lat.set_index(["method", "scheme"])["silhouette"]
    methods = [m for m in ("drl", "vdrl") if (m, "uniform_t") in by and (m, "uniform_sigma") in by]
    clustered = [m for m in methods if by[(m, "uniform_t")] > clusters]
    focus = [m for m in methods if by[(m, "uniform_sigma")] > by[(m, "uniform_t")]]
    uniform = ", ".join(f"{m.upper()} {by[(m, 'uniform_t')]:.3f}" for m in methods)
    pairs = ", ".join(f"{m.upper()} {by[(m, 'uniform_sigma')]:.3f} against {by[(m, 'uniform_t')]:.3f}" for m in methods)
    return {
        "drl-fig2": verdict(bool(methods) and len(clustered) == len(methods),
                             f"uniform-t silhouette {uniform} (reproduces if above {clusters:g} for both)"),
        "drl-fig3": verdict(bool(methods) and len(focus) == len(methods),
                          f"sigma-uniform against uniform-t silhouette: {pairs} (reproduces if higher for both)"),
    }


def sweep_table(sil: pd.DataFrame) -> tuple[list[dict], str]:
    """Silhouette mean ± std over seeds per single training time t, and the verdict."""
    sw = sil[sil["experiment"] == "sweep"]
    agg = sw.groupby("t")["silhouette"].agg(["mean", "std", "count"]).reset_index()
    rows = [{"t": f"{r['t']:.2f}", "silhouette": _fmt(r["mean"], r["std"]), "seeds": int(r["count"])} for _, r in agg.iterrows()]
    peak = agg.loc[agg["mean"].idxmax()]
    low, high = agg.iloc[0], agg.iloc[-1]
    low_std = 0.0 if np.isnan(low["std"]) else low["std"]
    noise_stds, min_rise = (targets.threshold("drl-fig11", k) for k in ("noise_stds", "min_rise"))
    rises = peak["mean"] > 0 and peak["mean"] - low["mean"] > max(noise_stds * low_std, min_rise)
    falls = peak["t"] < high["t"] and high["mean"] < peak["mean"]
    why = (f"t = {low['t']:.2f} gives {low['mean']:.3f}, the peak is {peak['mean']:.3f} at t = {peak['t']:.2f}, "
           f"t = {high['t']:.2f} gives {high['mean']:.3f}")
    return rows, verdict(rises and falls, why)


def fewshot_table(fs: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Accuracy mean ± std over labelled draws per method, t and label count; a verdict per label count."""
    agg = fs.groupby(["labels", "method", "t"], dropna=False)["accuracy"].agg(["mean", "std"]).reset_index()
    rows = [{"labels": int(r["labels"]), "method": r["method"].upper(), "t": "static" if np.isnan(r["t"]) else f"{r['t']:.1f}",
             "accuracy": _fmt(r["mean"], r["std"])} for _, r in agg.iterrows()]
    verdicts = []
    for n, grp in agg.groupby("labels"):
        static = grp[grp["t"].isna()].set_index("method")["mean"]
        timed = grp[grp["t"].notna()]
        best = timed.loc[timed["mean"].idxmax()]
        baseline = static.max()
        at_one = timed[np.isclose(timed["t"], 1.0)]["mean"]
        comparable = ", ".join(f"{m.upper()} {v:.3f}" for m, v in at_one.groupby(timed["method"]).first().items())
        why = (f"{n} labels: best E(x0, t) {best['mean']:.3f} ({best['method'].upper()}, t = {best['t']:.1f}) against "
               f"the best static code {baseline:.3f}; at t = 1.0: {comparable}")
        verdicts.append(verdict(best["mean"] > baseline, why))
    return rows, verdicts


def codedim_table(spreads: pd.DataFrame) -> tuple[list[dict], str]:
    """Spread of the samples of one code per code dimension (DRL Fig. 10), and whether it falls at every step."""
    spreads = spreads.sort_values("code_dim")
    rows = [{"code_dim": int(r["code_dim"]), "spread": f"{r['spread']:.4f}"} for _, r in spreads.iterrows()]
    falls = bool(len(spreads) > 1 and (np.diff(spreads["spread"].to_numpy()) < 0).all())
    why = "spread " + ", ".join(f"{int(r['code_dim'])}-d {r['spread']:.4f}" for _, r in spreads.iterrows())
    return rows, verdict(falls, why + " (reproduces if it falls at every step)")


def render_report(cfg: Config, results: Path, out: Path, figdir: Path, benchmarks: Path | None = None,
                  templates: Path = Path("reports/templates")) -> None:
    """Figures, `tables.md` and the metrics summary beside it, for every dataset of the profile; the run's compute
    from the benchmark files in `benchmarks`."""
    sections = [_dataset_section(cfg, name, results / name, figdir, out.parent) for name in _datasets(cfg)]
    metrics.write_summary(results, _datasets(cfg), out.with_name("metrics.json"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["own_budget"] = lambda dataset, experiment, key="iterations": own_budget(cfg, dataset, experiment, key)
    text = env.get_template("tables.md.j2").render(
        cfg=cfg, sections=sections, targets={t.id: t for t in targets.all_targets()},
        compute=compute.summary(benchmarks) if benchmarks else "not recorded (no benchmark folder given)",
        outside=[targets.outside_line(t, reason) for t, reason in targets.outside(cfg)],
        outside_heading=targets.OUTSIDE_HEADING)
    write_text(out, text)


def _datasets(cfg: Config) -> list[str]:
    ex = cfg.experiments
    return sorted({name for f in fields(ex) for name in getattr(ex, f.name).datasets})


def _dataset_section(cfg: Config, name: str, res: Path, figdir: Path, root: Path) -> dict:
    ds, ex = cfg.datasets[name], cfg.experiments
    sec = {"name": name, "iterations": ds.iterations, "batch_size": ds.batch_size, "source": ds.source, "figures": {},
           "batch": {f.name: own_budget(cfg, name, f.name, "train_batch") for f in fields(ex)}}
    rel = lambda p: p.relative_to(root).as_posix() if p.is_relative_to(root) else p.as_posix()
    sil_path = res / "silhouette.csv"
    if sil_path.is_file():
        sil = pd.read_csv(sil_path)
        if name in ex.latent.datasets:
            sec["latent"], sec["latent_verdicts"] = latent_rows(sil), latent_verdicts(sil)
            sec["scatters"] = _scatters(sil, name, figdir, rel)
            sec["figures"].update(_drl_sample_figures(name, res, figdir, rel))
        if name in ex.sweep.datasets:
            sec["sweep"], sec["sweep_verdict"] = sweep_table(sil)
            path = figdir / f"{name}_silhouette_vs_t.png"
            figures.silhouette_vs_t(sil[sil["experiment"] == "sweep"], f"{name}: silhouette vs single training t", path)
            sec["figures"]["sweep"] = rel(path)
    if name in ex.semisup.datasets and (res / "semisup").is_dir():
        sec.update(semisup.section(cfg, name, res / "semisup"))
    fs_path = res / "fewshot.csv"
    if name in ex.fewshot.datasets and fs_path.is_file():
        fs = pd.read_csv(fs_path)
        sec["fewshot"], sec["fewshot_verdicts"] = fewshot_table(fs)
        path = figdir / f"{name}_fewshot.png"
        figures.fewshot_vs_t(fs, f"{name}: few-shot SVM on 8-d codes", path)
        sec["figures"]["fewshot"] = rel(path)
    if name in ex.codedim.datasets and (res / "codedim").is_dir():
        _codedim_section(sec, res, figdir, rel)
    if (res / "fidelity.csv").is_file():
        _generation_section(cfg, sec, res, figdir, rel)
    if (res / "lsgm" / "nelbo").is_dir():
        sec["lsgm"] = lsgm.section(cfg, name, res / "lsgm", figdir, rel)
    if (res / "scorevae.csv").is_file():
        sec["scorevae"] = scorevae.section(cfg, name, res, figdir, rel)
    if (res / "representations.csv").is_file():
        sec["representations"] = representations.section(name, res, figdir, rel)
    sec["budgets"] = {}
    curves = sorted((res / "curves").glob("*.csv"))
    if curves:
        _convergence_section(sec, pd.concat(map(pd.read_csv, curves), ignore_index=True), figdir, rel)
    return sec


# the verdicts of a dataset's section that a single curve target qualifies
_QUALIFIED = {"sweep_verdict": "drl-fig11", "codedim_verdict": "drl-fig10", "table3_verdict": "drl-table3",
              "table2_verdict": "drl-table2"}


def _convergence_section(sec: dict, curve: pd.DataFrame, figdir: Path, rel) -> None:
    """Each DRL verdict with where its metric stands along training ("Budget:" lines, "here (settled)" or "at this
    budget (still rising)"), and a curve figure per experiment."""
    budgets, paths = convergence.section(curve, sec["name"], figdir, rel)
    sec["figures"].update(paths)
    sec["budgets"] = {t: [b.line() for b in bs] for t, bs in budgets.items()}
    qualified = convergence.qualified
    for key, target in _QUALIFIED.items():
        if key in sec:
            sec[key] = qualified(sec[key], budgets.get(target, []))
    if "latent_verdicts" in sec:
        sec["latent_verdicts"] = {t: qualified(v, budgets.get(t, [])) for t, v in sec["latent_verdicts"].items()}
    per_label = budgets.get("drl-fig12", [])  # one curve per label count, in the order of the verdicts
    if "fewshot_verdicts" in sec and len(per_label) == len(sec["fewshot_verdicts"]):
        sec["fewshot_verdicts"] = [qualified(v, [b]) for v, b in zip(sec["fewshot_verdicts"], per_label, strict=True)]
    if "lsgm" in sec:  # Tables 2 (gray levels) and 4, 5 (binarized): the main cell against the backbone alone
        for key, target in (("table2", "lsgm-table2"), ("binarized", "lsgm-table4")):
            sec["lsgm"][key] = qualified(sec["lsgm"][key], budgets.get(target, []))
    if "semisup_claims" in sec:
        sec["semisup_claims"] = [(t, v and qualified(v, budgets.get(t.id, []))) for t, v in sec["semisup_claims"]]
        sec["budgets"]["laplacenet"] = ["no pretraining: LaplaceNet's own training is not followed along (the "
                                        "snapshots are the pretrainings'), so this verdict has no curve"]


def _generation_section(cfg: Config, sec: dict, res: Path, figdir: Path, rel) -> None:
    """DRL Table 3 and Fig. 4 (t_init), Table 2 and Fig. 13, 14 (adversarial lambda) of one dataset."""
    name, fid = sec["name"], pd.read_csv(res / "fidelity.csv")
    first = fid.iloc[0]
    sec.update(features=first["features"], isc_features=first["isc_features"], fid_samples=int(first["samples"]),
               classifier_accuracy=float(first["classifier_accuracy"]))
    noise_level = build_sde(cfg.sde).noise_level
    if name in cfg.experiments.generation.datasets:
        sec["table3"], sec["table3_verdict"] = generation.table3(fid, lambda t: float(noise_level(torch.tensor(t))))
        rows = generation.tinit_rows(fid).sort_values(["prior", "t_init"])  # a row per prior (Fig. 4)
        path = _grid_figure(rows, res, figdir / f"{name}_tinit_samples.png", len(cfg.experiments.generation.t_init),
                            "t_init {t_init:g}, {prior}", f"{name}: samples per t_init and prior")
        sec["figures"]["tinit"] = rel(path)
    if name in cfg.experiments.adversarial.datasets:
        alphas, losses = (pd.concat(pd.read_csv(p) for p in sorted((res / d).glob("*.csv")))
                          for d in ("alpha", "loss_per_t"))
        sec["table2"], sec["table2_verdict"] = generation.table2(fid, alphas)
        adv = generation.adversarial_rows(fid)
        sec["figures"]["adversarial"] = rel(_grid_figure(adv, res, figdir / f"{name}_adversarial_samples.png", len(adv),
                                                         "p_KL {p_kl:g}", f"{name}: samples per p_KL"))
        path = figdir / f"{name}_adversary_alpha.png"
        figures.adversary_over_training(alphas, f"{name}: adversary alpha over training", path)
        sec["figures"]["alpha"] = rel(path)
        path = figdir / f"{name}_t_density_loss.png"
        figures.t_density_and_loss(losses, f"{name}: t on model turns and test loss per t", path)
        sec["figures"]["loss_per_t"] = rel(path)


def _codedim_section(sec: dict, res: Path, figdir: Path, rel) -> None:
    """DRL Fig. 10: a row per test image (the image, then samples for its code), a panel per code dimension."""
    runs = sorted((np.load(p) for p in (res / "codedim").glob("d*.npz")), key=lambda z: int(z["code_dim"]))
    spreads = pd.DataFrame([{"code_dim": int(z["code_dim"]), "spread": float(z["spread"])} for z in runs])
    sec["codedim"], sec["codedim_verdict"] = codedim_table(spreads)
    images, n = runs[0]["samples"].shape[:2]
    panels = [(f"{int(z['code_dim'])}-d code", np.concatenate([np.concatenate([z["x0"][i:i + 1], z["samples"][i]])
                                                            for i in range(images)])) for z in runs]
    path = figdir / f"{sec['name']}_code_dim_samples.png"
    figures.sample_grids(panels, 1, f"{sec['name']}: the test image, then samples for its code", path,
                         images * (n + 1), nrow=n + 1, panel_size=(0.3 * (n + 1), 0.3 * images + 0.4))
    sec["figures"]["codedim"] = rel(path)
    sec.update(codedim_images=int(images), codedim_samples=int(n))


def _drl_sample_figures(name: str, res: Path, figdir: Path, rel) -> dict:
    """Samples over the grid of 2-d codes per latent run (DRL Fig. 2a, 3a, 5a, 7a); denoising with codes (Fig. 9)."""
    paths = sorted((res / "drl_samples").glob("*.npz"))
    if not paths:
        return {}
    runs = [(p.stem.removeprefix("latent-"), np.load(p)) for p in paths]
    grid = figdir / f"{name}_code_grid_samples.png"
    figures.sample_grids([(run, z["grid"]) for run, z in runs], 3, f"{name}: samples over a grid of 2-d codes", grid, 64)
    keys = ("fig9_x0", "fig9_xt", "fig9_own_code", "fig9_other", "fig9_other_code")
    rows = [(run, np.concatenate([z[k] for k in keys])) for run, z in runs if run.endswith("uniform_t")]
    t = float(runs[0][1]["t"])
    denoise = figdir / f"{name}_denoise_other_code.png"
    figures.sample_grids(rows, 2, f"{name}: x_t (t = {t:g}) denoised with its own code and with another image's", denoise,
                         8 * len(keys), nrow=8)
    return {"code_grid": rel(grid), "denoise": rel(denoise), "denoise_t": t}


def _grid_figure(rows: pd.DataFrame, res: Path, path: Path, ncols: int, label: str, title: str) -> Path:
    panels = [(label.format(**r), np.load(res / "samples" / f"{r['run']}.npz")["x"]) for _, r in rows.iterrows()]
    figures.sample_grids(panels, ncols, title, path)
    return path


def _scatters(sil: pd.DataFrame, name: str, figdir: Path, rel) -> list[dict]:
    out = []
    for _, r in sil[sil["experiment"] == "latent"].iterrows():
        z = np.load(r["codes"])
        path = figdir / f"{name}_{Path(r['codes']).stem}.png"
        phase = ", phase 2 (frozen encoder)" if r["freeze_encoder"] else ""
        title = f"{r['method'].upper()}, {r['scheme']}{phase} (silhouette {r['silhouette']:.2f})"
        figures.latent_scatter(z["codes_test"][0], z["y_test"], title, path)
        out.append({"title": title, "path": rel(path)})
    return out
