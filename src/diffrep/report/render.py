"""Render `reports/tables.md` (Jinja) and the figures from the metrics files; trains nothing."""
from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import torch

from diffrep.config import Config, own_budget
from diffrep.io import write_text
from diffrep.methods.drl_samples import code_spreads
from diffrep.report import (
    compute,
    convergence,
    figures,
    generation,
    lsgm,
    representations,
    metrics,
    scoreboard,
    scorevae,
    semisup,
    targets,
)
from diffrep.report.drl import (
    codedim_table,
    fewshot_table,
    image_silhouettes,
    latent_rows,
    latent_verdicts,
    sweep_table,
    with_floors,
)
from diffrep.report.verdicts import Verdict
from diffrep.sde import build_sde


def render_report(cfg: Config, results: Path, out: Path, figdir: Path, benchmarks: Path | None = None,
                  templates: Path = Path("reports/templates"), baseline: Path | None = None) -> None:
    """Figures, `tables.md`, the metrics summary and every verdict (`verdicts.json`) beside it, for every dataset of
    the profile; the run's compute from the benchmark files in `benchmarks`; the outcomes of another profile's report
    (`baseline`, its verdicts.json) beside ours in the scoreboard."""
    sections = [_dataset_section(cfg, name, results / name, figdir, out.parent) for name in _datasets(cfg)]
    metrics.write_summary(results, _datasets(cfg), out.with_name("metrics.json"))
    records = [(s["name"], v) for s in sections for v in verdicts_in(s)]
    write_text(out.with_name("verdicts.json"), json.dumps(scoreboard.to_json(records), indent=1) + "\n")
    earlier = json.loads(baseline.read_text()) if baseline else None
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.globals["own_budget"] = lambda dataset, experiment, key="iterations": own_budget(cfg, dataset, experiment, key)
    text = env.get_template("tables.md.j2").render(
        cfg=cfg, sections=sections, targets={t.id: t for t in targets.all_targets()},
        scoreboard=scoreboard.board(records, earlier, baseline.as_posix() if baseline else ""),
        compute=compute.summary(benchmarks) if benchmarks else "not recorded (no benchmark folder given)",
        outside=[targets.outside_line(t, reason) for t, reason in targets.outside(cfg)],
        outside_heading=targets.OUTSIDE_HEADING)
    write_text(out, text)


def map_verdicts(obj, fn):
    """`obj` (a section: dicts, lists and tuples of anything) with every Verdict in it replaced by fn(verdict)."""
    if isinstance(obj, Verdict):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: map_verdicts(v, fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map_verdicts(v, fn) for v in obj)
    return obj


def verdicts_in(section: dict) -> list[Verdict]:
    """Every verdict of a section, once, in the order of targets.yaml."""
    found: list[Verdict] = []
    map_verdicts(section, found.append)
    order = {t.id: i for i, t in enumerate(targets.all_targets())}
    return sorted({id(v): v for v in found}.values(), key=lambda v: order.get(v.claim, len(order)))


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
            sec["latent"], sec["latent_verdicts"] = latent_rows(sil), latent_verdicts(image_silhouettes(sil))
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
        sec["fewshot"], sec["fewshot_verdict"] = fewshot_table(fs)
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
        floors = pd.read_csv(res / "representations.csv")
        sec = map_verdicts(sec, lambda v: with_floors(v, floors))
    curves = sorted((res / "curves").glob("*.csv"))
    if curves:
        _convergence_section(sec, pd.concat(map(pd.read_csv, curves), ignore_index=True), figdir, rel)
    sec = map_verdicts(sec, lambda v: replace(v, anchor=f"{name}-{v.claim}"))
    sec["verdicts"] = {v.claim: v for v in verdicts_in(sec)}
    return sec


def _convergence_section(sec: dict, curve: pd.DataFrame, figdir: Path, rel) -> None:
    """Each verdict with its stability along training (`convergence.stability`), and a curve figure per experiment."""
    histories, paths = convergence.section(curve, sec["name"], figdir, rel)
    sec["figures"].update(paths)
    sec.update(map_verdicts({k: v for k, v in sec.items() if k != "figures"},
                            lambda v: convergence.with_stability(v, histories.get(v.claim))))


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
    spreads = {int(z["code_dim"]): code_spreads(torch.from_numpy(z["samples"]).float() / 255).numpy() for z in runs}
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
        scheme = "uniform t with the uniform_sigma encoder frozen (phase 2)" if r["freeze_encoder"] else r["scheme"]
        title = f"{r['method'].upper()}, {scheme} (silhouette {r['silhouette']:.2f})"
        figures.latent_scatter(z["codes_test"][0], z["y_test"], title, path)
        out.append({"title": title, "path": rel(path)})
    return out
