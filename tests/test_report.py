"""Verdicts of the report on made-up metrics: each claim can come out either way."""

import numpy as np
import pandas as pd
import pytest

from diffrep.report.drl import codedim_table, fewshot_table, latent_verdicts, sweep_table, with_floors


def sweep(values):
    rows = [{"experiment": "sweep", "t": t, "seed": s, "silhouette": v + 0.01 * s + 0.004 * (s * s % 3) * (t > 0.3)}
            for t, v in values.items() for s in range(3)]
    return pd.DataFrame(rows)


def test_sweep_verdict_follows_the_shape():
    rows, verdict = sweep_table(sweep({0.1: -0.1, 0.5: 0.3, 1.0: 0.0}))
    assert verdict.outcome == "reproduces" and len(rows) == 3 and rows[0]["silhouette"] == "-0.090 ± 0.010"
    assert "peak t = 0.50 against t = 0.10" in verdict.line() and "n = 3 seeds" in verdict.line()
    late = sweep_table(sweep({0.1: -0.1, 0.5: 0.0, 1.0: 0.3}))[1]  # no decline at large t: the end is above the peak
    assert late.outcome == "contradicts" and "[not reproduced: peak t = 0.50 against t = 1.00]" in late.line()
    assert sweep_table(sweep({0.1: 0.3, 0.5: -0.1, 1.0: 0.3}))[1].outcome == "contradicts"  # never above the ends
    assert sweep_table(sweep({0.1: 0.0, 1.0: 0.3}))[1].outcome == "not tested"


def test_latent_verdicts_on_per_image_silhouettes():
    rng = np.random.default_rng(0)

    def images(mean):
        return mean + 0.05 * rng.standard_normal(200)

    good = latent_verdicts({(m, s): images(v) for m in ("drl", "vdrl") for s, v in (("uniform_t", 0.1),
                                                                                   ("uniform_sigma", 0.2))})
    assert good["drl-fig2"].outcome == "reproduces" and good["drl-fig3"].outcome == "reproduces"
    assert "n = 200 test images, paired" in good["drl-fig3"].line()
    bad = latent_verdicts({(m, s): images(v) for m in ("drl", "vdrl") for s, v in (("uniform_t", -0.1),
                                                                                  ("uniform_sigma", -0.2))})
    assert bad["drl-fig2"].outcome == "contradicts" and bad["drl-fig3"].outcome == "contradicts"
    assert latent_verdicts({})["drl-fig2"].outcome == "not tested"


def _fewshot(accuracies, draws=4):
    rows = []
    for method, t, acc in accuracies:
        rows += [{"method": method, "t": t, "labels": 30, "draw": d, "accuracy": acc + 0.1 * d} for d in range(draws)]
    return pd.DataFrame(rows)


def test_fewshot_verdict_compares_the_best_t_with_the_best_static_code_on_the_same_draws():
    good = [("drl", 0.0, 0.5), ("drl", 0.5, 0.8), ("drl", 1.0, 0.61), ("vdrl", 0.5, 0.7), ("vdrl", 1.0, 0.6),
            ("ae", np.nan, 0.6), ("vae", np.nan, 0.55)]
    table, verdict = fewshot_table(_fewshot(good))
    assert verdict.outcome == "reproduces" and "30 labels: best E(x0, t) (DRL, t = 0.5) against AE" in verdict.line()
    assert {r["t"] for r in table if r["method"] == "AE"} == {"static"}
    worse = [(m, t, 0.9 if m == "ae" else a) for m, t, a in good]
    assert fewshot_table(_fewshot(worse))[1].outcome == "contradicts"


def test_the_best_of_many_needs_more_than_the_best_of_two():
    """Twenty candidate t against one static code, 0.01 above it with draw noise: the Bonferroni-widened interval does
    not call that a win (the old rule did)."""
    rng = np.random.default_rng(1)
    rows = [{"method": "drl", "t": t / 20, "labels": 30, "draw": d, "accuracy": 0.5 + 0.01 + 0.01 * rng.standard_normal()}
            for t in range(21) for d in range(3)]
    rows += [{"method": "ae", "t": np.nan, "labels": 30, "draw": d, "accuracy": 0.5} for d in range(3)]
    assert fewshot_table(pd.DataFrame(rows))[1].outcome == "inconclusive"


def test_codedim_verdict_needs_a_fall_at_every_step():
    falls = {2: np.array([0.30, 0.32, 0.31, 0.29]), 4: np.array([0.25, 0.27, 0.26, 0.24]),
             8: np.array([0.20, 0.22, 0.21, 0.19])}
    rows, verdict = codedim_table(falls)
    assert verdict.outcome == "reproduces" and rows[0] == {"code_dim": 2, "spread": "0.3050"}
    rises = {**falls, 8: falls[8] + 0.1}
    assert codedim_table(rises)[1].outcome == "contradicts" and "8-d against 4-d" in codedim_table(rises)[1].line()


def test_a_representation_verdict_names_its_floors_and_a_part_below_them():
    _, verdict = fewshot_table(_fewshot([("drl", 0.5, 0.3), ("ae", np.nan, 0.2)]))
    floors = pd.DataFrame([{"experiment": "floor", "run": r, "metric": "svm", "labels": 30, "value": v}
                           for r, v in (("pixels", 0.6), ("pca", 0.55))])
    line = with_floors(verdict, floors).line()
    assert "svm floors with 30 labels: pixels 0.600, PCA 0.550" in line and "below the pixel floor" in line


def test_semisup_verdicts_compare_settings_at_the_fewest_labels():
    """Per-seed accuracies: a seed's luck (the labelled draw) moves every setting alike, so it cancels in the pairs."""
    from diffrep.report.semisup import verdicts

    means = {(20, "supervised"): 0.60, (20, "none"): 0.80, (20, "drl"): 0.82, (20, "vdrl"): 0.70, (20, "ae"): 0.85,
             (20, "drl_tsearch"): 0.825, (50, "supervised"): 0.70, (50, "none"): 0.90}

    def runs(means):
        return pd.DataFrame([{"labels": n, "setting": s, "seed": seed, "accuracy": m + luck + 0.002 * ((i + seed) % 3)}
                             for i, ((n, s), m) in enumerate(means.items())
                             for seed, luck in enumerate((0.0, 0.05, -0.04))])

    v = {t: verdict.outcome for t, verdict in verdicts(runs(means)).items()}
    assert v == {"laplacenet": "reproduces", "drl-table4": "reproduces", "drl-table1": "contradicts",
                 "drl-table6": "contradicts", "drl-table5": "reproduces"}, "82.5 against 82.0 is within 5 points"
    assert verdicts(runs({**means, (20, "drl_tsearch"): 0.90}))["drl-table5"].outcome == "contradicts"


@pytest.mark.parametrize("dataset,labels,setting,expected", [
    ("digits", 20, "none", (73.68, "T1: CIFAR-10, 100 labels")),
    ("digits", 20, "vdrl", (81.63, "T1: CIFAR-10, 100 labels")),
    ("digits", 20, "ae", (58.84, "T6: CIFAR-10, 100 labels")),
    ("digits", 20, "drl_tsearch", (67.07, "T5: CIFAR-10, 100 labels, 100 epochs")),
    ("digits", 20, "drl_tsearch@short", (67.07, "T5: CIFAR-10, 100 labels, 100 epochs")),
    ("digits", 50, "drl_tsearch", (None, "")),
    ("digits", 50, "ae", (None, "")),
    ("digits", 20, "supervised", (None, "")),
    ("cifar10", 100, "none@short", (64.12, "T4: CIFAR-10, 100 labels, 100 epochs")),
    ("cifar10", 100, "none+mixup@short", (54.06, "T5: CIFAR-10, 100 labels, 100 epochs")),
    ("cifar10", 100, "ae@short", (64.99, "T5: CIFAR-10, 100 labels, 100 epochs")),
    ("cifar100", 20000, "drl_mixup+mixup", (77.04, "T7: CIFAR-100, 20000 labels")),
    ("miniimagenet", 10000, "drl+mixup", (66.63, "T1: MiniImageNet, 10000 labels")),
    ("miniimagenet", 10000, "vdrl+mixup", (66.79, "T7: MiniImageNet, 10000 labels")),
    ("cifar10", 4000, "vdrl@short", (None, "")),
])
def test_paper_number_takes_the_first_table_that_has_the_setting(dataset, labels, setting, expected):
    from diffrep.report.semisup import paper_number

    assert paper_number(dataset, labels, setting) == expected


def test_generation_rows_are_told_apart_by_p_kl():
    from diffrep.report.generation import adversarial_rows, tinit_rows

    fid = pd.DataFrame({"run": ["a", "b", "c"], "p_kl": [np.nan, 0.5, 1.0], "t_init": [0.7, 1.0, 1.0]})
    assert tinit_rows(fid)["run"].tolist() == ["a"] and adversarial_rows(fid)["run"].tolist() == ["b", "c"]


def test_table2_verdict_needs_every_mixed_p_kl_clearly_lower():
    from diffrep.report.generation import table2

    def fid(values):
        """Sample sets per p_KL with the FIDs of four splits around each (`diffrep fidelity`'s `fid_splits`)."""
        return pd.DataFrame([{"run": f"p{p}", "p_kl": p, "fid": f, "isc_mean": 5.0, "isc_std": 0.1,
                              "fid_splits": ";".join(str(v) for v in f + 0.1 * np.sin(np.arange(4) + i))}
                             for i, (p, f) in enumerate(values.items())])

    alphas = pd.DataFrame(columns=["step", "alpha", "p_kl"])
    rows, verdict = table2(fid({0.0: 12.0, 0.5: 13.0, 1.0: 14.0}), alphas)
    assert verdict.outcome == "reproduces" and [r["p_kl"] for r in rows] == ["0", "0.5", "1"]
    assert table2(fid({0.0: 13.99, 0.5: 13.0, 1.0: 14.0}), alphas)[1].outcome == "inconclusive"  # a tie is not lower
    assert table2(fid({0.0: 15.0, 1.0: 14.0}), alphas)[1].outcome == "contradicts"
    assert table2(fid({1.0: 14.0}), alphas)[1].outcome == "not tested"


def test_busy_time_counts_overlapping_jobs_once_and_skips_pauses():
    from diffrep.report.compute import busy_seconds
    assert busy_seconds([(0, 10), (5, 12), (100, 110), (101, 105)]) == 22
    assert busy_seconds([]) == 0


def test_the_compute_line_names_the_cpu_model_from_cpuinfo(tmp_path):
    import platform

    from diffrep.report.compute import processor
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n\n"
                       "processor\t: 1\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: other\n")
    assert processor(cpuinfo) == "AMD EPYC, family 23 model 1"  # the first CPU's block
    assert processor(tmp_path / "absent") == (platform.processor() or platform.machine())
