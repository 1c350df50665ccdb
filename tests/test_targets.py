"""The papers' targets: every target a profile covers appears in its report; every other one is listed, with why."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from diffrep import config as cfgmod
from diffrep.report import targets
from diffrep.report.render import render_report

ROOT = Path(__file__).resolve().parents[1]


# --- hand-made metrics in the pipeline's formats, for any profile -------------------------------------------------


def _images(rng, n: int, shape=(1, 8, 8)) -> np.ndarray:
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def _latent_and_sweep(cfg, name: str, res: Path, rng) -> None:
    """silhouette.csv with the latent runs' codes, drl_samples/ (DRL Fig. 2-9) and the sweep (Fig. 11)."""
    rows, y = [], rng.integers(0, 10, size=40)
    for method in ("drl", "vdrl"):
        for scheme, frozen in (("uniform_t", False), ("uniform_sigma", False), ("uniform_sigma", True)):
            run = f"latent-{method}-{scheme}" + ("-frozen" if frozen else "")
            codes = res / "codes" / f"{run}.npz"
            codes.parent.mkdir(parents=True, exist_ok=True)
            np.savez(codes, codes_test=rng.normal(size=(1, 40, 2)), y_test=y)
            rows.append({"experiment": "latent", "method": method, "scheme": scheme, "freeze_encoder": frozen,
                         "silhouette": rng.uniform(-0.3, 0.3), "codes": codes.as_posix()})
            fig9 = {f"fig9_{k}": _images(rng, 8) for k in ("x0", "xt", "own_code", "other", "other_code")}
            (res / "drl_samples").mkdir(exist_ok=True)
            np.savez(res / "drl_samples" / f"{run}.npz", grid=_images(rng, 64), t=0.6, **fig9)
    rows += [{"experiment": "sweep", "method": "drl", "scheme": "single_t", "freeze_encoder": False, "t": t, "seed": s,
              "silhouette": rng.uniform(-0.3, 0.3), "codes": f"codes/sweep-t{t}-s{s}.npz"}
             for t in cfg.experiments.sweep.t for s in cfg.experiments.sweep.seeds]
    pd.DataFrame(rows).to_csv(res / "silhouette.csv", index=False)


def _fewshot(cfg, res: Path, rng) -> None:
    fs = cfg.experiments.fewshot
    rows = [{"method": m, "t": t, "labels": n, "draw": d, "accuracy": rng.uniform(0.1, 0.9)}
            for n in fs.labels for d in range(fs.draws)
            for m, ts in (("drl", fs.t), ("vdrl", fs.t), ("ae", [None]), ("vae", [None])) for t in ts]
    pd.DataFrame(rows).to_csv(res / "fewshot.csv", index=False)


def _codedim(cfg, res: Path, rng) -> None:
    cd = cfg.experiments.codedim
    (res / "codedim").mkdir(parents=True)
    for k in cd.code_dims:
        np.savez(res / "codedim" / f"d{k}.npz", code_dim=k, spread=rng.uniform(0.1, 0.3),
                 samples=_images(rng, cd.images * cd.samples).reshape(cd.images, cd.samples, 1, 8, 8),
                 x0=_images(rng, cd.images))


def _semisup(cfg, name: str, res: Path, rng) -> None:
    """One csv per pretraining (none also holds the supervised-only baseline), as `diffrep laplacenet` writes them."""
    sx = cfg.experiments.semisup
    (res / "semisup").mkdir(parents=True)
    rows = [{"labels": n, "setting": s, "seed": seed, "accuracy": rng.uniform(0.3, 0.9), "t_init": 0.5,
             "t_final": rng.uniform(0.3, 0.7), "iterations": 0 if s == "supervised" else sx.iterations,
             "warmup_accuracy": rng.uniform(0.3, 0.6),
             "first_graph_accuracy": float("nan") if s == "supervised" else rng.uniform(0.3, 0.9)}
            for n in sx.labels[name] for s in sx.settings for seed in sx.seeds]
    pretraining = [s.split("+")[0].removesuffix("@short").removesuffix("_tsearch") for s in sx.settings]
    frame = pd.DataFrame(rows).assign(pretraining=lambda f: f["setting"].map(dict(zip(sx.settings, pretraining))))
    for p in ["none", *sx.pretrainings]:
        mine = frame["pretraining"].eq(p) | (p == "none") & ~frame["pretraining"].isin(sx.pretrainings)
        frame[mine].drop(columns="pretraining").to_csv(res / "semisup" / f"{p}.csv", index=False)


def _generation(cfg, res: Path, rng) -> None:
    """fidelity.csv as `diffrep fidelity` writes it (the sample meta: t_init, prior, steps, p_kl), and the samples."""
    ex, rows = cfg.experiments, []
    common = {"features": "domain classifier penultimate (16-d)",
              "isc_features": "domain classifier logits (10 classes)", "samples": 40, "classifier_accuracy": 0.9, "method": "pc", "nfe": 12, "seconds": 1.0}
    for t in ex.generation.t_init:
        for prior in ex.generation.priors:
            rows.append({"run": f"score-tinit{t}-{prior}", "t_init": t, "prior": prior, "p_kl": None,
                         "steps": round(cfg.sampling.steps * t)})
    rows += [{"run": f"adversarial-p{p}", "t_init": 1.0, "prior": "gaussian", "p_kl": p, "steps": cfg.sampling.steps}
             for p in ex.adversarial.p_kl]
    (res / "samples").mkdir(parents=True)
    for r in rows:
        fid = rng.uniform(10, 20)
        r.update(common, fid=fid, fid_splits=";".join(str(v) for v in fid + rng.normal(0, 0.5, 4)),
                 isc_mean=rng.uniform(4, 6), isc_std=0.3)
        np.savez(res / "samples" / f"{r['run']}.npz", x=_images(rng, 16))
    pd.DataFrame(rows).to_csv(res / "fidelity.csv", index=False)
    for folder in ("alpha", "loss_per_t"):
        (res / folder).mkdir()
    for p in ex.adversarial.p_kl:
        alpha = pd.DataFrame({"step": [0, 10], "alpha": [0.0, -0.5], "p_kl": p})
        alpha.to_csv(res / "alpha" / f"p{p}.csv", index=False)
        pd.DataFrame({"t": ex.adversarial.loss_t, "loss": 1.0, "p_kl": p, "alpha": -0.5}).to_csv(
            res / "loss_per_t" / f"p{p}.csv", index=False)


def fake_results(cfg, root: Path) -> Path:
    """Metrics files for every dataset and experiment of the profile, with made-up numbers."""
    ex, rng = cfg.experiments, np.random.default_rng(0)
    for name in sorted({*ex.latent.datasets, *ex.fewshot.datasets, *ex.codedim.datasets, *ex.semisup.datasets,
                        *ex.generation.datasets}):
        res = root / name
        res.mkdir(parents=True)
        _latent_and_sweep(cfg, name, res, rng)
        if name in ex.fewshot.datasets:
            _fewshot(cfg, res, rng)
        if name in ex.codedim.datasets:
            _codedim(cfg, res, rng)
        if name in ex.semisup.datasets:
            _semisup(cfg, name, res, rng)
        if name in ex.generation.datasets:
            _generation(cfg, res, rng)
    return root


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    """The smoke profile's DRL report, rendered from hand-made metrics (LSGM and ScoreVAE, whose results are not
    faked here, are left out of it; the pipeline test checks the whole smoke report of a real run)."""
    tmp = tmp_path_factory.mktemp("smoke")
    raw = yaml.safe_load((ROOT / "params" / "smoke.yaml").read_text())
    for paper in ("lsgm", "scorevae"):
        raw["experiments"][paper]["datasets"] = []
    cfg = cfgmod.resolve(raw)
    render_report(cfg, fake_results(cfg, tmp / "results"), tmp / "reports" / "tables.md", tmp / "reports" / "figures",
                  templates=ROOT / "reports" / "templates")
    return cfg, (tmp / "reports" / "tables.md").read_text()


# --- the tests ----------------------------------------------------------------------------------------------------


def test_every_target_of_the_papers_is_listed():
    ids = [t.id for t in targets.all_targets()]
    assert len(ids) == len(set(ids))
    refs = {(t.paper, t.ref) for t in targets.all_targets()}
    for paper, ref in [("DRL", "Fig. 2, 5, 6"), ("DRL", "Fig. 3, 7, 8"), ("DRL", "Fig. 9"), ("DRL", "Fig. 10"),
                       ("DRL", "Fig. 11"), ("DRL", "Fig. 12 / A.5"), ("DRL", "Table 1"), ("DRL", "Table 4"),
                       ("DRL", "Table 5"), ("DRL", "Table 6"), ("DRL", "Table 7"), ("DRL", "Table 2, Fig. 13, 14"),
                       ("DRL", "Table 3, Fig. 4"), ("LSGM", "Table 2"), ("LSGM", "Table 4"), ("LSGM", "Table 5"),
                       ("LSGM", "Table 6"), ("LSGM", "Fig. 4"), ("ScoreVAE", "Table 1"), ("ScoreVAE", "Table 2"),
                       ("ScoreVAE", "Tables 3-6")]:
        assert (paper, ref) in refs
    assert any(t.paper == "LSGM" and t.ref.startswith("Section 5.2") for t in targets.all_targets())
    for t in targets.all_targets():
        assert t.claim and t.rule and t.experiment, t.id
        for row in t.values.get("rows", {}).values():
            for cells in (row.values() if isinstance(row, dict) else [row]):
                assert len(cells) == len(t.values["columns"]), t.id


def test_the_headline_numbers_are_the_papers():
    assert targets.target("drl-table3").values["rows"][0.7] == [3.88, 12.57, 2.98]
    assert targets.target("drl-table2").values["rows"][1.0] == [3.62, 9.44]
    assert targets.target("drl-table1").values["rows"]["cifar10"][100][4] == 81.63
    assert targets.target("lsgm-table2").values["rows"]["LSGM (FID)"] == [3.43, 2.10]
    assert targets.target("lsgm-table5").values["rows"]["LSGM"][0] == 78.47
    assert targets.target("scorevae-table1").values["rows"]["ScoreVAE (beta 0.01)"] == [2.634, 0.125]
    assert targets.target("drl-table3").comparison("short").margin == 0.1


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_coverage_of_the_profiles(profile):
    cfg = cfgmod.load(ROOT / "params" / f"{profile}.yaml")
    outside = {t.id: reason for t, reason in targets.outside(cfg)}
    assert outside["drl-table7"] == "paper profile only"
    covered = {t.id for t in targets.covered(cfg)}
    assert {"drl-fig2", "drl-fig11", "drl-table3", "drl-table2", "drl-table4", "drl-table5"} <= covered
    assert {t.id for t in targets.all_targets() if t.paper in ("LSGM", "ScoreVAE")} <= covered
    assert covered.isdisjoint(outside) and len(covered) + len(outside) == len(targets.all_targets())
    if profile == "smoke":  # its LaplaceNet runs have no VDRL and no autoencoder
        assert outside["drl-table1"] == "needs `vdrl`, which this profile does not run"
        assert outside["drl-table6"] == "needs `ae`, which this profile does not run"
    else:
        assert {"drl-table1", "drl-table6"} <= covered


def test_the_paper_profile_covers_every_target():
    cfg = cfgmod.load(ROOT / "params" / "paper.yaml")
    assert targets.outside(cfg) == []


@pytest.mark.parametrize("profile", ["default", "long"])
def test_the_committed_reports_cover_their_targets_with_budgets(profile, monkeypatch):
    """The committed reports (the default's, the long profile's) show every covered target and list the others;
    every verdict whose experiment keeps curves says whether it could change with more training; each states its
    run's compute and shows figures that are committed."""
    monkeypatch.chdir(ROOT)
    cfg = cfgmod.load(ROOT / "params" / f"{profile}.yaml")
    path = ROOT / cfg.reports_root / "tables.md"
    report = path.read_text()
    assert f"profile `{profile}`" in report and targets.missing_from(report, cfg) == []
    assert "**Compute:** not recorded" not in report, "a committed report states its run's time and hardware"
    assert_every_verdict_with_a_curve_has_its_stability(report)
    for figure in re.findall(r"\]\((figures/[^)\s]+\.png)\)", report):
        assert (path.parent / figure).is_file(), figure


def test_the_committed_long_report_sets_the_defaults_outcomes_beside_its_own():
    """The long report has the default's sections, and its scoreboard gives each claim the outcome of the committed
    default report (`report_baseline`) with the list of what changed."""
    default, long = ((ROOT / folder / "tables.md").read_text() for folder in ("reports", "reports/long"))
    headings = lambda text: [line for line in text.splitlines() if line.startswith("#") and "profile" not in line]
    assert headings(long) == headings(default)
    assert "| `reports/verdicts.json` |" in long and "Changed against `reports/verdicts.json`" in long
    board = [line for line in long.partition("| claim |")[2].splitlines()[2:] if line.startswith("| [")]
    outcomes = {"reproduces", "contradicts", "inconclusive", "not tested"}
    assert len(board) >= 20 and all(line.strip("| ").rpartition("|")[2].strip() in outcomes for line in board)


def test_the_smoke_report_covers_its_targets(smoke_report):
    cfg, report = smoke_report
    assert targets.missing_from(report, cfg) == []
    assert f"## {targets.OUTSIDE_HEADING}" in report


def test_a_report_missing_a_target_is_caught(smoke_report):
    cfg, report = smoke_report
    claim = targets.target("drl-fig11").claim
    assert targets.missing_from(report.replace(claim, ""), cfg) == ["drl-fig11: claim not in the report"]
    line = "- LSGM Table 6: the profile runs no `lsgm` experiment"
    assert line in report
    expected = "lsgm-table6: not listed as outside (the profile runs no `lsgm` experiment)"
    assert targets.missing_from(report.replace(line, ""), cfg) == [expected]


def _table(report: str, heading: str) -> list[list[str]]:
    """The cells of the first table after `heading`."""
    lines = report.partition(heading)[2].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.parametrize("source", ["smoke", "default"])
def test_the_papers_numbers_in_tables_2_and_3_come_from_the_targets(source, smoke_report):
    report = smoke_report[1] if source == "smoke" else (ROOT / "reports" / "tables.md").read_text()
    table3 = targets.target("drl-table3").values["rows"]
    report = report.partition("## Dataset")[2]  # past the scoreboard, which names the claims too
    for row in _table(report, "Table 3, Fig. 4"):
        assert [float(c) for c in row[5:]] == table3[float(row[0])]
    table2 = targets.target("drl-table2").values["rows"]
    for row in _table(report, "Table 2, Fig. 13, 14"):
        assert [float(c) for c in row[4:]] == table2[float(row[0])]


# the claims whose experiments keep convergence curves (LaplaceNet's own is not followed; Table 6 and sec. 5.2 runs,
# LSGM Fig. 4 and ScoreVAE keep none)
WITH_CURVES = ("drl-fig2", "drl-fig3", "drl-fig10", "drl-fig11", "drl-fig12", "drl-table4", "drl-table1", "drl-table6",
               "drl-table5", "drl-table3", "drl-table2", "lsgm-table2", "lsgm-table4")


def assert_every_verdict_with_a_curve_has_its_stability(report: str) -> None:
    lines = report.splitlines()
    for i, line in enumerate(lines):
        claim = re.match(r'- Ours: <a id="[^"]+?-((?:drl|lsgm)-[a-z0-9-]+)"></a>', line)
        if claim and claim.group(1) in WITH_CURVES:
            following = lines[i + 1:i + 6]
            assert any(f.startswith("- Stability: ") for f in following), (claim.group(1), following)


def test_verdict_lines_keep_their_form(smoke_report):
    verdicts = [line for line in smoke_report[1].splitlines() if line.startswith("- Ours:")]
    assert len(verdicts) >= 12
    form = r'- Ours: <a id="[a-z0-9_-]+"></a>\*\*(reproduces|contradicts|inconclusive|not tested)\*\*'
    assert all(re.match(form, v) for v in verdicts), verdicts
    board = smoke_report[1].partition("## Scoreboard")[2].partition("## Dataset")[0]
    assert len([r for r in board.splitlines() if r.startswith("| [")]) == len(verdicts)
