"""LSGM in the run plan and the report: every job of the paper profile is planned with a registered method, and the
report's verdicts follow the metrics (a diverged cell is NaN, not a failure)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffrep import config
from diffrep.config import LSGM_CELLS, lsgm_method
from diffrep.methods.base import method_names
from diffrep.plan import Plan
from diffrep.report import lsgm
from diffrep.report.verdicts import OUTCOMES, Comparison


def test_the_paper_profile_plans_every_lsgm_job_with_registered_methods():
    plan = Plan(config.load("params/paper.yaml"), "params.yaml")
    stage2 = plan["train_lsgm"].jobs
    assert {j.run for j in stage2} >= {lsgm_method(c) for c in LSGM_CELLS}
    assert {j.run for j in stage2} >= {"lsgm-vp-ll_iw-rew-frozen", "lsgm-vp-ll_iw-rew-nomix"}
    assert {j.dataset for j in stage2} == {"cifar10", "celebahq256"}
    assert {(j.dataset, j.run) for j in plan["train_lsgm_binary"].jobs} == {
        (d, "lsgm-vp-ll_iw-rew-binary") for d in ("mnist", "omniglot")}
    # stage 1 per gray-level dataset, every stage-2 run, and stage 1 and 2 per binarized dataset; Fig. 4 on CIFAR-10
    assert len(plan["lsgm_evaluate"].jobs) == 2 + len(stage2) + 2 * 2 and len(plan["lsgm_speed"].jobs) == 1
    known = set(method_names())
    assert all(j.method in known for f in ("train_lsgm", "train_lsgm_vae", "train_lsgm_binary") for j in plan[f].jobs)
    assert all(j.settings["--init"] for j in stage2)


def test_the_smoke_profile_runs_one_stage2_cell():
    plan = Plan(config.load("params/smoke.yaml"), "params.yaml")
    assert [j.run for j in plan["train_lsgm"].jobs] == ["lsgm-vp-ll_iw-rew"]
    assert "train_lsgm_binary" not in [f.name for f in plan]


def per_image(mean: float, images: int = 20) -> list[float]:
    """Per-image NELBOs around `mean`, the same spread for every run (so that 0.05 apart is a clear difference)."""
    return list(mean + 0.01 * np.sin(np.arange(images)))


def fid_splits(fid: float, phase: int) -> str:
    """`diffrep fidelity`'s FIDs of four disjoint splits around `fid`."""
    return ";".join(str(v) for v in fid + 0.1 * np.sin(np.arange(4) + phase))


def write_results(res: Path, diverged: str) -> None:
    """Metrics as `diffrep lsgm-evaluate` and `diffrep fidelity` write them."""
    (res / "nelbo").mkdir(parents=True)
    (res / "samples").mkdir()
    runs = {"lsgm-vae": (3.0, "", 10.0), "lsgm-vp-ll_iw-rew": (2.8, "vp-ll_iw-rew", 5.0),
            "lsgm-vp-ll_iw-rew-frozen": (2.9, "vp-ll_iw-rew", 8.0),
            "lsgm-vp-ll_iw-rew-nomix": (2.85, "vp-ll_iw-rew", 8.0),
            "lsgm-vp-drop_sigma2t_iw-rew": (2.95, "vp-drop_sigma2t_iw-rew", 4.0),
            "lsgm-vp-drop_all_uniform-rew": (2.9, "vp-drop_all_uniform-rew", 6.0)}
    fid = []
    for i, (run, (nelbo, cell, run_fid)) in enumerate(runs.items()):
        sde, prior, enc = cell.split("-") if cell else ("", "", "")
        bad = run == diverged
        record = {"run": run, "nelbo": nelbo, "backbone_nelbo": 3.0, "units": "bits/dim", "nfe": 10, "sde": sde,
                  "per_image": per_image(nelbo), "backbone_per_image": per_image(3.0),
                  "prior_scheme": prior, "encoder_t": enc, "diverged": bad, "step": 7 if bad else None,
                  "loss": "nan" if bad else None,
                  "table6": bool(cell) and not run.endswith(("frozen", "nomix"))}
        (res / "nelbo" / f"{run}.json").write_text(json.dumps(record))
        np.savez(res / "samples" / f"{run}.npz", x=np.zeros((4, 1, 8, 8), np.uint8))
        fid.append({"run": run, "fid": run_fid, "fid_splits": fid_splits(run_fid, i)})
    for sampler, nfe in (("lsgm", 20), ("sgm-ode", 80)):
        fid += [{"run": f"speed-{sampler}-tol{t:g}", "fid": 5.0, "fid_splits": fid_splits(5.0, j + len(fid)),
                 "nfe": nfe + 3 * j * j, "seconds": 1.0, "tolerance": t} for j, t in enumerate((1e-2, 1e-3, 1e-4))]
    fid.append({"run": "speed-sgm-pc", "fid": 4.0, "fid_splits": fid_splits(4.0, 0), "nfe": 400, "seconds": 9.0,
                "tolerance": float("nan")})
    pd.DataFrame(fid).to_csv(res / "fidelity.csv", index=False)


@pytest.mark.parametrize("diverged", ["", "lsgm-vp-drop_all_uniform-rew"])
def test_report_section_gives_verdicts_and_nan_for_a_diverged_cell(tmp_path, diverged):
    cfg = config.load("params/default.yaml")
    res = tmp_path / "lsgm"
    write_results(res, diverged)
    sec = lsgm.section(cfg, "digits", res, tmp_path / "figures", lambda p: p.as_posix())
    claims = {"table2": "lsgm-table2", "binarized": "lsgm-table4", "end_to_end": "lsgm-end-to-end",
              "mixed_score": "lsgm-mixed-score", "table6_verdict": "lsgm-table6", "sde_verdict": "lsgm-table6-sde",
              "divergence_verdict": "lsgm-table6-divergence", "speed_verdict": "lsgm-fig4"}
    assert {k: sec[k].claim for k in claims} == claims and all(sec[k].outcome in OUTCOMES for k in claims)
    assert all(str(sec[k]).startswith(f"**{sec[k].outcome}**") for k in claims)
    assert sec["table2"].outcome == "reproduces" and sec["end_to_end"].outcome == "reproduces"
    assert sec["binarized"].outcome == "not tested" and sec["speed_verdict"].outcome == "reproduces"
    # the best w_un/w_re FID (4.0) is below w_ll's (5.0) whether or not the w_un cell diverged
    assert sec["table6_verdict"].outcome == "reproduces"
    assert sec["divergence_verdict"].outcome == ("reproduces" if diverged else "not tested")
    row = next(r for r in sec["runs"] if r["run"] == "lsgm-vp-drop_all_uniform-rew")
    assert (row["nelbo"] == "NaN") == bool(diverged) and (row["diverged"] == "step 7 (loss nan)") == bool(diverged)
    assert (row["fid"] == "NaN") == bool(diverged)
    assert (tmp_path / "figures" / "digits_lsgm_speed.png").is_file()


def cells(sdes_schemes_nelbo_diverged) -> pd.DataFrame:
    """Table 6 rows as `load_runs` gives them (a diverged cell's NELBO is NaN)."""
    return pd.DataFrame([{"run": f"lsgm-{sde}-{scheme}-rew", "sde": sde, "prior_scheme": scheme, "table6": True,
                          "nelbo": np.nan if bad else nelbo, "diverged": bad, "per_image": per_image(nelbo)}
                         for sde, scheme, nelbo, bad in sdes_schemes_nelbo_diverged])


def test_the_geometric_vpsde_verdict_needs_both_sdes_and_reads_the_best_converged_nelbo():
    one_sde = cells([("vp", "ll_iw", 2.9, False), ("vp", "ll_uniform", 2.8, False)])
    assert lsgm.sde_verdict(one_sde, "b").outcome == "not tested"
    geometric_best = cells([("vp", "ll_iw", 2.9, False), ("geometric_vp", "ll_uniform", 2.8, False),
                            ("vp", "ll_uniform", 1.0, True)])
    assert lsgm.sde_verdict(geometric_best, "b").outcome == "reproduces"
    vp_best = cells([("vp", "ll_iw", 2.7, False), ("geometric_vp", "ll_uniform", 2.8, False)])
    assert lsgm.sde_verdict(vp_best, "b").outcome == "contradicts"


def test_the_divergence_verdict_is_untested_while_nothing_diverges():
    calm = cells([("vp", "ll_iw", 2.9, False), ("vp", "ll_uniform", 2.8, False)])
    assert lsgm.divergence_verdict(calm, "b").outcome == "not tested"
    uniform_fails = cells([("vp", "ll_iw", 2.9, False), ("vp", "ll_uniform", 2.8, True)])
    assert lsgm.divergence_verdict(uniform_fails, "b").outcome == "reproduces"
    sampled_fails = cells([("vp", "ll_iw", 2.9, True), ("vp", "ll_uniform", 2.8, True)])
    assert lsgm.divergence_verdict(sampled_fails, "b").outcome == "contradicts"
    only_sampled = cells([("vp", "ll_iw", 2.9, True)])
    assert lsgm.divergence_verdict(only_sampled, "b").outcome == "not tested"


def test_a_nelbo_difference_within_the_estimates_noise_does_not_count():
    """Two runs whose per-image NELBOs differ by less than the paired interval's half-width are a tie, not a win."""
    noise = np.random.default_rng(0).normal(0, 0.05, 400)
    claim = Comparison("NELBO", "lower")

    def run(name, per_image, diverged=False):
        return pd.Series({"run": name, "per_image": per_image, "diverged": diverged})

    a = run("a", list(3.0 + noise))
    close = run("close", list(3.0 + noise + np.random.default_rng(1).normal(0.001, 0.05, 400)))
    far = run("far", list(3.02 + noise))
    outcome = lambda x, y: lsgm.nelbo_part("NELBO", claim, x, y).outcome  # noqa: E731
    assert (outcome(a, close), outcome(a, far), outcome(far, a)) == ("inconclusive", "reproduces", "contradicts")
    gone = lsgm.nelbo_part("NELBO", claim, a, run("gone", np.nan, diverged=True))
    assert gone.outcome == "not tested" and gone.note == "gone diverged"
    assert "n = 400 test images, paired" in lsgm.nelbo_part("NELBO", claim, a, far).text()
