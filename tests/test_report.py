"""Verdicts of the report on made-up metrics: each claim can come out either way."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diffrep.report.render import fewshot_table, latent_verdicts, sweep_table


def sweep(values):
    rows = [{"experiment": "sweep", "t": t, "seed": s, "silhouette": v + 0.01 * s}
            for t, v in values.items() for s in range(3)]
    return pd.DataFrame(rows)


def test_sweep_verdict_follows_the_shape():
    rows, verdict = sweep_table(sweep({0.1: -0.1, 0.5: 0.3, 1.0: 0.0}))
    assert verdict.startswith("**reproduces**") and len(rows) == 3 and rows[1]["silhouette"] == "0.310 ± 0.010"
    assert sweep_table(sweep({0.1: -0.1, 0.5: 0.0, 1.0: 0.3}))[1].startswith("**does not")  # no decline at large t
    assert sweep_table(sweep({0.1: -0.2, 0.5: -0.1, 1.0: -0.15}))[1].startswith("**does not")  # never any class info


def test_latent_verdicts():
    def frame(t_drl, sigma_drl):
        rows = []
        for m in ("drl", "vdrl"):
            rows += [{"experiment": "latent", "method": m, "scheme": "uniform_t", "freeze_encoder": False, "silhouette": t_drl},
                     {"experiment": "latent", "method": m, "scheme": "uniform_sigma", "freeze_encoder": False, "silhouette": sigma_drl}]
        return pd.DataFrame(rows)

    good = latent_verdicts(frame(0.3, 0.4))
    assert good["drl-fig2"].startswith("**reproduces**") and good["drl-fig3"].startswith("**reproduces**")
    assert "above 0.1 for both" in good["drl-fig2"], "the threshold comes from the targets file"
    bad = latent_verdicts(frame(0.05, 0.0))
    assert bad["drl-fig2"].startswith("**does not") and bad["drl-fig3"].startswith("**does not")


def test_fewshot_verdict_compares_best_t_with_static_codes():
    rows = []
    for method, t, acc in [("drl", 0.0, 0.5), ("drl", 0.5, 0.8), ("drl", 1.0, 0.6), ("vdrl", 0.5, 0.7), ("vdrl", 1.0, 0.6),
                           ("ae", np.nan, 0.6), ("vae", np.nan, 0.55)]:
        rows += [{"method": method, "t": t, "labels": 30, "draw": d, "accuracy": acc} for d in range(2)]
    table, verdicts = fewshot_table(pd.DataFrame(rows))
    assert verdicts[0].startswith("**reproduces**") and "0.800" in verdicts[0]
    assert {r["t"] for r in table if r["method"] == "AE"} == {"static"}
    worse = pd.DataFrame([{**r, "accuracy": 0.9} if r["method"] == "ae" else r for r in rows])
    assert fewshot_table(worse)[1][0].startswith("**does not")


def test_semisup_verdicts_compare_settings_at_the_fewest_labels():
    import pandas as pd

    from diffrep.report.semisup import verdicts

    rows = [(20, "supervised", 60.0, 2.0), (20, "none", 80.0, 2.0), (20, "drl", 82.0, 1.0), (20, "vdrl", 70.0, 3.0),
            (20, "ae", 85.0, 1.0), (20, "drl_tsearch", 82.5, 1.0), (50, "supervised", 70.0, 1.0),
            (50, "none", 90.0, 1.0)]
    agg = pd.DataFrame(rows, columns=["labels", "setting", "mean", "std"])
    v = verdicts(agg)
    assert v["laplacenet"].startswith("**reproduces**") and v["drl-table4"].startswith("**reproduces**")
    assert v["drl-table1"].startswith("**does not") and v["drl-table6"].startswith("**does not")
    assert v["drl-table5"].startswith("**reproduces**"), "82.5 against 82.0 is within the t-search's std of 1.0"
    agg.loc[agg["setting"] == "drl_tsearch", "mean"] = 84.0
    assert verdicts(agg)["drl-table5"].startswith("**does not")


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
        return pd.DataFrame([{"run": f"p{p}", "p_kl": p, "fid": f, "isc_mean": 5.0, "isc_std": 0.1}
                             for p, f in values.items()])

    alphas = pd.DataFrame(columns=["step", "alpha", "p_kl"])
    rows, verdict = table2(fid({0.0: 12.0, 0.5: 13.0, 1.0: 14.0}), alphas)
    assert verdict.startswith("**reproduces**") and [r["p_kl"] for r in rows] == ["0", "0.5", "1"]
    assert table2(fid({0.0: 13.99, 0.5: 13.0, 1.0: 14.0}), alphas)[1].startswith("**does not")  # a tie is not lower
    assert table2(fid({0.0: 15.0, 1.0: 14.0}), alphas)[1].startswith("**does not")
    assert table2(fid({1.0: 14.0}), alphas)[1].startswith("**not tested**")


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


def test_the_committed_long_report_has_the_default_reports_sections():
    """The issue asks for the long report "with the same sections as the default": regenerate both after a template
    change."""
    root = Path(__file__).resolve().parents[1]

    def sections(path):
        return [line for line in path.read_text().splitlines()[1:] if line.startswith("#")]

    assert sections(root / "reports/long/tables.md") == sections(root / "reports/tables.md")
