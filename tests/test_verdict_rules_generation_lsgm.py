"""The verdict rules of DRL Tables 2, 3 and of LSGM through the engine: hand-made split FIDs and per-image NELBOs on
either side of each claim's threshold, and the split FIDs that `diffrep fidelity` writes."""
import numpy as np
import pandas as pd
import pytest
import torch

from diffrep.config import FidelityConfig
from diffrep.evaluate.fidelity import fidelity_metrics, save_classifier, split_fids, train_classifier
from diffrep.report import generation, lsgm
from diffrep.report.verdicts import CONTRADICTS, INCONCLUSIVE, NOT_TESTED, REPRODUCES

SHORT = "uniform+Gaussian at t_init 0.7 against the best at 1.0"


def splits(centre: float, spread: float = 0.1, phase: int = 0) -> str:
    """Four split FIDs around `centre` as `fidelity.csv` holds them (another phase: another set's noise)."""
    return ";".join(str(float(v)) for v in centre + spread * np.sin(np.arange(4) + 1.7 * phase))


def part(verdict, name: str):
    return next(p for p in verdict.parts if p.part == name)


# DRL Table 3

def tinit_sets(fids: dict, spread: float = 0.1) -> pd.DataFrame:
    """Table 3 sample sets {(t_init, prior): FID}, with split FIDs around each."""
    return pd.DataFrame([{"run": f"{t}-{p}", "p_kl": np.nan, "t_init": t, "prior": p, "steps": round(10 * t), "fid": f,
                          "fid_splits": splits(f, spread, i)} for i, ((t, p), f) in enumerate(fids.items())])


def table3(fids: dict, spread: float = 0.1):
    return generation.table3(tinit_sets(fids, spread), lambda t: t)[1]


PAPER_LIKE = {(0.5, "gaussian"): 30.0, (0.7, "uniform+gaussian"): 10.1, (1.0, "gaussian"): 10.0,
              (1.0, "uniform+gaussian"): 10.4}


def test_table3_reproduces_when_t_init_0_7_keeps_quality_and_the_gaussian_loses_it():
    verdict = table3(PAPER_LIKE)
    assert verdict.claim == "drl-table3" and verdict.outcome == REPRODUCES
    short = part(verdict, SHORT)
    assert short.b == pytest.approx(10.0, abs=0.1) and not short.paired and short.unit == "sample splits" and short.n == 4
    assert part(verdict, "Gaussian prior at t_init 0.5 against 1.0").outcome == REPRODUCES


def test_table3_contradicts_when_t_init_0_7_is_clearly_worse():
    verdict = table3({**PAPER_LIKE, (0.7, "uniform+gaussian"): 15.0})
    assert verdict.outcome == CONTRADICTS and part(verdict, SHORT).outcome == CONTRADICTS
    assert f"[not reproduced: {SHORT}]" in str(verdict)


def test_table3_is_inconclusive_when_the_splits_straddle_the_margin():
    verdict = table3({**PAPER_LIKE, (0.7, "uniform+gaussian"): 10.9}, spread=1.0)
    assert part(verdict, SHORT).outcome == INCONCLUSIVE and verdict.outcome == INCONCLUSIVE


def test_table3_gaussian_part_contradicts_when_the_short_gaussian_is_better():
    verdict = table3({**PAPER_LIKE, (0.5, "gaussian"): 8.0})
    assert part(verdict, "Gaussian prior at t_init 0.5 against 1.0").outcome == CONTRADICTS
    assert verdict.outcome == CONTRADICTS


def test_table3_without_split_fids_or_settings_is_not_tested():
    old = tinit_sets(PAPER_LIKE).drop(columns="fid_splits")
    verdict = generation.table3(old, lambda t: t)[1]
    assert verdict.outcome == NOT_TESTED and "rerun `diffrep fidelity`" in part(verdict, SHORT).note
    missing = table3({(1.0, "gaussian"): 10.0, (1.0, "uniform+gaussian"): 10.4})
    assert missing.outcome == NOT_TESTED and len(missing.parts) == 2


# DRL Table 2

def adversarial_sets(fids: dict, spread: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame([{"run": f"p{p}", "p_kl": p, "fid": f, "isc_mean": 5.0, "isc_std": 0.1,
                          "fid_splits": splits(f, spread, i)} for i, (p, f) in enumerate(fids.items())])


def table2(fids: dict):
    return generation.table2(adversarial_sets(fids), pd.DataFrame(columns=["step", "alpha", "p_kl"]))[1]


def test_table2_needs_every_mixed_p_kl_clearly_lower_paired_over_the_splits():
    verdict = table2({0.0: 12.0, 0.5: 13.0, 1.0: 14.0})
    assert verdict.claim == "drl-table2" and verdict.outcome == REPRODUCES
    assert [p.part for p in verdict.parts] == ["p_KL 0", "p_KL 0.5"] and all(p.paired for p in verdict.parts)
    worse = table2({0.0: 12.0, 0.5: 15.0, 1.0: 14.0})
    assert worse.outcome == CONTRADICTS and "[not reproduced: p_KL 0.5]" in str(worse)
    assert table2({0.0: 13.99, 1.0: 14.0}).outcome == INCONCLUSIVE  # a tie is not lower
    assert table2({1.0: 14.0}).outcome == NOT_TESTED


# LSGM: runs as `lsgm.load_runs` gives them

def images(mean: float, n: int = 40, seed: int = 0) -> list[float]:
    """Per-image NELBOs around `mean` (one latent sample per image: noisy)."""
    return list(mean + np.random.default_rng(seed).normal(0, 0.05, n))


def run(name: str, nelbo: float, fid: float | None = None, own_prior: float = 3.0, diverged: bool = False,
        cell: str = "", seed: int = 0) -> dict:
    sde, scheme, enc = cell.split("-") if cell else ("", "", "")
    return {"run": name, "nelbo": np.nan if diverged else nelbo, "backbone_nelbo": own_prior, "units": "bits/dim",
            "per_image": images(nelbo, seed=seed), "backbone_per_image": images(own_prior, seed=seed + 1),
            "diverged": diverged, "step": 7 if diverged else None, "loss": "nan" if diverged else None,
            "fid": np.nan if fid is None or diverged else fid, "fid_splits": splits(fid, 0.1, seed) if fid else np.nan,
            "sde": sde, "prior_scheme": scheme, "encoder_t": enc, "table6": bool(cell)}


def runs(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_lsgm_table2_reproduces_with_lower_nelbo_on_both_baselines_and_lower_fid():
    verdict = lsgm.backbone_verdict(runs(run("lsgm-vae", 3.0, 10.0, seed=1), run("main", 2.8, 5.0, seed=2)),
                                    "lsgm-table2", "main", "lsgm-vae", "b")
    assert verdict.claim == "lsgm-table2" and verdict.outcome == REPRODUCES
    assert [p.part for p in verdict.parts] == ["NELBO against the backbone alone", "NELBO against its own N(0, I) prior",
                                               "FID against the backbone"]
    nelbo, _, fid = verdict.parts
    assert nelbo.paired and nelbo.unit == "test images" and nelbo.n == 40 and fid.paired and fid.n == 4


def test_lsgm_table2_contradicts_when_the_prior_loses_to_its_own_n01_prior():
    verdict = lsgm.backbone_verdict(runs(run("lsgm-vae", 3.0, 10.0, seed=1), run("main", 2.8, 5.0, own_prior=2.6)),
                                    "lsgm-table2", "main", "lsgm-vae", "b")
    assert verdict.outcome == CONTRADICTS and "[not reproduced: NELBO against its own N(0, I) prior]" in str(verdict)


def test_lsgm_binarized_tables_have_only_nelbo_parts_and_a_diverged_run_is_not_tested():
    both = runs(run("lsgm-vae-binary", 90.0, own_prior=90.0, seed=1), run("main-binary", 88.0, own_prior=91.0, seed=2))
    verdict = lsgm.backbone_verdict(both, "lsgm-table4", "main-binary", "lsgm-vae-binary", "b")
    assert verdict.claim == "lsgm-table4" and verdict.outcome == REPRODUCES and len(verdict.parts) == 2
    diverged = runs(run("lsgm-vae-binary", 90.0, seed=1), run("main-binary", 88.0, diverged=True))
    verdict = lsgm.backbone_verdict(diverged, "lsgm-table4", "main-binary", "lsgm-vae-binary", "b")
    assert verdict.outcome == NOT_TESTED and all(p.note == "main-binary diverged" for p in verdict.parts)


def test_lsgm_end_to_end_with_lower_nelbo_but_higher_fid_contradicts_on_the_fid_part():
    verdict = lsgm.pair_verdict(runs(run("main", 2.8, 9.0, seed=1), run("main-frozen", 3.0, 5.0, seed=2)),
                                "lsgm-end-to-end", "main", "main-frozen", "the frozen VAE", "b")
    assert verdict.claim == "lsgm-end-to-end" and verdict.outcome == CONTRADICTS
    assert part(verdict, "NELBO against the frozen VAE").outcome == REPRODUCES
    assert "[not reproduced: FID against the frozen VAE]" in str(verdict)
    both = lsgm.pair_verdict(runs(run("main", 2.8, 5.0, seed=1), run("main-frozen", 3.0, 9.0, seed=2)),
                             "lsgm-end-to-end", "main", "main-frozen", "the frozen VAE", "b")
    assert both.outcome == REPRODUCES


def test_lsgm_mixed_score_with_a_nelbo_within_the_estimates_noise_is_inconclusive():
    same = runs(run("main", 3.0, 5.0, seed=1), run("nomix", 3.001, 9.0, seed=2))
    verdict = lsgm.pair_verdict(same, "lsgm-mixed-score", "main", "nomix", "no mixed score", "b")
    assert part(verdict, "NELBO against no mixed score").outcome == INCONCLUSIVE
    assert verdict.claim == "lsgm-mixed-score" and verdict.outcome == INCONCLUSIVE
    old = runs(run("main", 2.8, 5.0, seed=1), run("nomix", 3.0, 9.0, seed=2)).drop(columns="fid_splits")
    verdict = lsgm.pair_verdict(old, "lsgm-mixed-score", "main", "nomix", "no mixed score", "b")
    assert part(verdict, "FID against no mixed score").note.startswith("no FID splits in fidelity.csv")


TABLE6 = ("best w_ll NELBO against the best other cell", "best w_un/w_re FID against w_ll's best FID")


def test_lsgm_table6_reproduces_and_contradicts_on_fid():
    cells = [run("ll", 2.8, 8.0, cell="vp-ll_iw-rew", seed=1), run("ll2", 2.9, 7.0, cell="vp-ll_uniform-rew", seed=2),
             run("re", 2.95, 5.0, cell="vp-drop_sigma2t_iw-rew", seed=3),
             run("un", 2.9, 1.0, cell="vp-drop_all_uniform-rew", diverged=True)]
    rows, verdict = lsgm.table6(runs(*cells), "b")
    assert verdict.claim == "lsgm-table6" and verdict.outcome == REPRODUCES
    assert part(verdict, TABLE6[0]).note == "ll against re" and part(verdict, TABLE6[1]).note == "re against ll2"
    assert [r["nelbo"] for r in rows] == ["2.80", "2.90", "2.95", "NaN"] and rows[3]["fid"] == "NaN"
    assert rows[0]["paper_fid"] == "8.00" and rows[3]["paper_fid"] == "NaN"  # w_un/U/rew on the VPSDE diverged
    cells[2] = run("re", 2.95, 9.0, cell="vp-drop_sigma2t_iw-rew", seed=3)
    verdict = lsgm.table6(runs(*cells), "b")[1]
    assert verdict.outcome == CONTRADICTS and f"[not reproduced: {TABLE6[1]}]" in str(verdict)


def test_lsgm_table6_prints_a_dash_for_a_cell_the_paper_does_not_report():
    rows, verdict = lsgm.table6(runs(run("x", 2.8, 8.0, cell="geometric_vp-ll_iw-rew")), "b")
    assert rows[0]["paper_nelbo"] == "–" and verdict.outcome == NOT_TESTED


def test_lsgm_geometric_vpsde_verdict():
    one_sde = runs(run("a", 2.9, cell="vp-ll_iw-rew"), run("b", 2.8, cell="vp-ll_uniform-rew"))
    assert lsgm.sde_verdict(one_sde, "b").outcome == NOT_TESTED
    geometric = runs(run("a", 2.9, cell="vp-ll_iw-rew", seed=1), run("b", 2.8, cell="geometric_vp-ll_uniform-rew"),
                     run("c", 1.0, cell="vp-ll_uniform-rew", diverged=True))
    verdict = lsgm.sde_verdict(geometric, "b")
    assert verdict.claim == "lsgm-table6-sde" and verdict.outcome == REPRODUCES and verdict.parts[0].note == "b against a"
    vp = runs(run("a", 2.7, cell="vp-ll_iw-rew", seed=1), run("b", 2.8, cell="geometric_vp-ll_uniform-rew"))
    assert lsgm.sde_verdict(vp, "b").outcome == CONTRADICTS


def test_lsgm_divergence_verdict_counts_cells():
    def outcome(*cells):
        verdict = lsgm.divergence_verdict(runs(*(run(f"c{i}", 2.9, cell=c, diverged=d)
                                                 for i, (c, d) in enumerate(cells))), "b")
        assert verdict.claim == "lsgm-table6-divergence"
        return verdict.outcome, verdict.parts[0]

    assert outcome(("vp-ll_iw-rew", False), ("vp-ll_uniform-rew", False))[0] == NOT_TESTED
    reproduces, record = outcome(("vp-ll_iw-rew", False), ("vp-ll_uniform-rew", True), ("vp-ll_uniform-ll_iw", False))
    assert reproduces == REPRODUCES and record.unit == "cells" and record.n == 3 and record.a == 0.5
    assert "1 of 2 uniform-t cells and 0 of 1 importance-sampled cells diverged" in record.note
    assert outcome(("vp-ll_iw-rew", True), ("vp-ll_uniform-rew", True))[0] == CONTRADICTS
    assert outcome(("vp-ll_iw-rew", True))[0] == NOT_TESTED


# LSGM Fig. 4

SPEED_FID = "FID at LSGM's cheapest ODE setting against the data-space ODE at the nearest NFE at least as large"


def speed(lsgm_nfe, sgm_nfe, lsgm_fid: float = 5.0, sgm_fid: float = 5.0) -> pd.DataFrame:
    """Fig. 4's sets per tolerance (LSGM's FID at every tolerance `lsgm_fid`), and the data-space PC set."""
    tolerances = (1e-2, 1e-3, 1e-4, 1e-5)
    rows = [{"run": f"speed-{name}-tol{t:g}", "nfe": nfe, "seconds": 1.0, "tolerance": t, "fid": fid,
             "fid_splits": splits(fid, 0.1, i + 4 * (name == "lsgm"))}
            for name, nfes, fid in (("lsgm", lsgm_nfe, lsgm_fid), ("sgm-ode", sgm_nfe, sgm_fid))
            for i, (t, nfe) in enumerate(zip(tolerances, nfes, strict=True))]
    return pd.DataFrame(rows + [{"run": "speed-sgm-pc", "nfe": 400, "seconds": 9.0, "tolerance": np.nan, "fid": 4.0,
                                 "fid_splits": splits(4.0)}])


def test_lsgm_fig4_reproduces_with_fewer_nfe_and_no_worse_fid():
    rows, verdict = lsgm.speed_table(speed((20, 30, 44, 60), (80, 120, 150, 200)), "b")
    assert verdict.claim == "lsgm-fig4" and verdict.outcome == REPRODUCES and len(rows) == 9
    nfe, fid = verdict.parts
    assert nfe.part == "NFE at each tolerance" and nfe.paired and nfe.n == 4 and nfe.unit == "tolerances"
    assert fid.part == SPEED_FID and not fid.paired and fid.note == "tolerance 0.01 (20 NFE) against 0.01 (80 NFE)"


def test_lsgm_fig4_compares_the_fid_at_the_nearest_dearer_data_space_set():
    verdict = lsgm.speed_table(speed((100, 110, 130, 140), (80, 105, 150, 200), lsgm_fid=8.0), "b")[1]
    assert part(verdict, "NFE at each tolerance").outcome == INCONCLUSIVE
    assert part(verdict, SPEED_FID).note == "tolerance 0.01 (100 NFE) against 0.001 (105 NFE)"
    assert part(verdict, SPEED_FID).outcome == CONTRADICTS and verdict.outcome == CONTRADICTS


def test_lsgm_fig4_contradicts_with_more_nfe_and_is_not_tested_without_sets():
    assert lsgm.speed_table(speed((90, 130, 160, 210), (80, 120, 150, 200)), "b")[1].outcome == CONTRADICTS
    verdict = lsgm.speed_table(speed((300, 310, 320, 330), (80, 120, 150, 200)), "b")[1]
    assert part(verdict, SPEED_FID).outcome == NOT_TESTED
    assert lsgm.speed_table(pd.DataFrame(columns=["run"]), "b")[1].outcome == NOT_TESTED


def test_lsgm_runs_table_prints_nan_only_for_a_diverged_run():
    table = lsgm.runs_table(runs(run("a-binary", 88.0), run("b", 2.9, 5.0), run("c", 2.9, 5.0, diverged=True)))
    assert [r["fid"] for r in table] == ["–", "5.00", "NaN"] and table[2]["nelbo"] == "NaN"


# the split FIDs `diffrep fidelity` writes, as the report reads them

def test_split_fids_are_the_fids_of_contiguous_equal_chunks(tmp_path):
    torch.manual_seed(0)
    reference, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    path = tmp_path / "classifier.pt"
    save_classifier(train_classifier(reference, y, FidelityConfig(classifier_epochs=1, feature_dim=8)), path)
    samples = torch.rand(10, 1, 8, 8)
    fids = split_fids(samples, reference, 2, features="classifier", weights_path=path)
    chunk = fidelity_metrics(samples[5:10], reference, features="classifier", weights_path=path, isc=False)["fid"]
    assert len(fids) == 2 and fids[1] == pytest.approx(chunk)
    column = pd.Series({"fid_splits": ";".join(str(float(v)) for v in fids)})
    np.testing.assert_array_equal(generation.fid_splits(column), fids)
    with pytest.raises(ValueError, match="fid_splits"):
        split_fids(samples, reference, 6, features="classifier", weights_path=path)
