"""The run plan: the same jobs as the hand-written rules it replaced, and the committed dvc.yaml and params.yaml in
sync with it."""
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from diffrep import config
from diffrep.cli import main
from diffrep.plan import Plan, dvc_stage, dvc_yaml, stage_name, unplanned_results

# jobs per rule that `snakemake -n` planned with the hand-written rules (git 96740ac), which the plan must keep
BEFORE = {
    "default": {"prepare_data": 1, "train_latent": 4, "train_latent_frozen": 2, "train_sweep": 30, "train_fewshot": 4,
                "train_codedim": 4, "encode_latent": 1, "encode_sweep": 1, "encode_fewshot": 1, "drl_samples": 1,
                "code_dim_samples": 1, "silhouette": 1, "fewshot": 1, "train_score": 1, "train_adversarial": 5,
                "train_classifier": 1, "sample": 17, "fidelity": 1, "loss_per_t": 5, "pretrain_semisup": 3,
                "laplacenet": 4, "report": 1},
    "smoke": {"prepare_data": 1, "train_latent": 4, "train_latent_frozen": 2, "train_sweep": 2, "train_fewshot": 4,
              "train_codedim": 2, "encode_latent": 1, "encode_sweep": 1, "encode_fewshot": 1, "drl_samples": 1,
              "code_dim_samples": 1, "silhouette": 1, "fewshot": 1, "train_score": 1, "train_adversarial": 2,
              "train_classifier": 1, "sample": 6, "fidelity": 1, "loss_per_t": 2, "pretrain_semisup": 1,
              "laplacenet": 2, "report": 1},
}


def plan_of(profile: str, config_path: str = "params.yaml") -> Plan:
    return Plan(config.load(ROOT / "params" / f"{profile}.yaml"), config_path)


@pytest.mark.parametrize("profile", ["default", "smoke"])
def test_the_plan_has_the_jobs_of_the_rules_it_replaced(profile):
    jobs = {f.name: len(f.jobs) for f in plan_of(profile)}
    assert {name: jobs.get(name) for name in BEFORE[profile]} == BEFORE[profile], "the DRL jobs are those of before"


@pytest.mark.parametrize("profile", ["default", "smoke", "paper"])
def test_every_output_has_one_job_and_every_input_a_maker(profile):
    plan = plan_of(profile)
    outputs = Counter(p for f in plan for j in f.jobs for paths in j.outputs.values() for p in paths)
    assert max(outputs.values()) == 1, [p for p, n in outputs.items() if n > 1]
    given = {"params.yaml", "reports/templates/tables.md.j2", "src/diffrep/report/targets.yaml"}
    inputs = {p for f in plan for j in f.jobs for paths in j.inputs.values() for p in paths}
    assert inputs - given <= set(outputs), sorted(inputs - given - set(outputs))


def test_a_job_is_found_by_its_wildcards_and_its_pattern_matches_its_outputs():
    for family in plan_of("default"):
        pattern = family.pattern()
        for job in family.jobs:
            assert family.job(job.dataset, job.run) is job
            assert {k: [p.format(dataset=job.dataset, run=job.run) for p in v] for k, v in pattern.items()} == job.outputs


def test_commands_name_every_flag_once_and_keep_zero_values():
    sweep = plan_of("default")["train_sweep"].job("digits", "sweep-t0.1-s0").cmd(threads=2)
    assert sweep.endswith("--scheme fixed --t 0.1 --seed 0 --threads 2")
    adversarial = plan_of("default")["train_adversarial"].job("digits", "adversarial-p0.0").cmd()
    assert "--p-kl 0.0" in adversarial and "--init models/default/digits/score/model.pt" in adversarial
    assert "--model" not in plan_of("default")["laplacenet"].job("digits", "none").cmd()


def test_sampling_jobs_run_on_the_device_they_reserve():
    for profile, device, gpu in (("smoke", "cpu", 0), ("paper", "cuda", 1)):
        for name in ("drl_samples", "code_dim_samples"):
            job = plan_of(profile)[name].jobs[0]
            assert f"--device {device}" in job.cmd() and job.resources.gpu == gpu


def test_prepare_data_depends_on_the_split_parameters_only():
    params = plan_of("default")["prepare_data"].job("digits").params
    assert "datasets.digits.split_seed" in params and "datasets.digits.test_fraction" in params
    assert not any(p.endswith(("iterations", "net", "batch_size")) for p in params)


def test_weights_a_profile_names_are_a_job_that_dvc_leaves_in_place():
    plan = plan_of("paper")
    fetch = plan["fetch_inception"].job("", "inception")
    assert fetch.outputs["weights"] == [plan.cfg.fidelity.inception_weights]
    assert fetch.outputs["weights"] == plan["fidelity"].jobs[0].inputs["inception"]
    assert dvc_stage(plan["fetch_inception"], fetch)["outs"] == [{plan.cfg.fidelity.inception_weights: {"persist": True}}]
    assert "fetch_inception" not in [f.name for f in plan_of("default")], "the default scores FID with its classifier"


def test_committed_params_yaml_is_the_resolved_default_profile():
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == config.to_dict(config.load(ROOT / "params" / "default.yaml")), "run `diffrep plan params/default.yaml`"


def test_committed_dvc_yaml_is_the_plan_of_the_default_profile():
    assert (ROOT / "dvc.yaml").read_text() == dvc_yaml(plan_of("default")), "run `diffrep plan params/default.yaml`"


def test_dvc_declares_metrics_and_plots_and_one_stage_per_job():
    plan = plan_of("smoke")
    document = yaml.safe_load(dvc_yaml(plan))
    assert list(document["stages"]) == [stage_name(f, j) for f in plan for j in f.jobs]
    assert "reports/metrics.json" in document["metrics"]
    assert "models/smoke/digits/classifier/accuracy.json" in document["metrics"]
    assert "reports/figures/digits_silhouette_vs_t.png" in document["plots"]
    report = document["stages"]["report"]
    assert {"reports/tables.md": {"cache": False}} in report["outs"]


def test_the_paper_profile_prepares_every_dataset_it_defines_and_checks_each_folder(tmp_path, monkeypatch):
    """The planning check (rules/common.smk) sees every folder dataset a job uses, not only LaplaceNet's."""
    plan = plan_of("paper")
    used = {j.dataset for f in plan for j in f.jobs}
    assert {j.dataset for j in plan["prepare_data"].jobs} == set(plan.cfg.datasets)
    monkeypatch.chdir(tmp_path)  # the profile's folders are relative: none is here
    folders = [d for d, spec in plan.cfg.datasets.items() if spec.source == "folder"]
    assert folders == ["miniimagenet", "celebahq256"]
    for name in folders:
        with pytest.raises(config.ConfigError, match=rf"datasets\.{name}\.path: '{plan.cfg.datasets[name].path}'"):
            config.check_folders(plan.cfg, used)
        (tmp_path / plan.cfg.datasets[name].path).mkdir(parents=True)
    config.check_folders(plan.cfg, used)


def test_a_result_no_job_of_the_profile_writes_stops_the_report(tmp_path, monkeypatch, capsys):
    """A code dimension taken out of the profile leaves its samples beside the planned ones; the report, which reads
    that folder whole, refuses to run rather than draw it."""
    monkeypatch.chdir(tmp_path)
    plan = plan_of("smoke", "params.yaml")
    config.dump(plan.cfg, tmp_path / "params.yaml")
    planned = [Path(p) for p in plan["report"].jobs[0].inputs["codedim"]]
    left = planned[0].with_name("d99.npz")
    for p in [*planned, left, planned[0].with_name("notes.txt")]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    assert unplanned_results(plan) == [left], "only the unplanned file of a kind the report reads there"
    args = ["report", "--config", "params.yaml", "--results", "results/smoke", "--figures", "reports/figures",
            "--out", "reports/tables.md"]
    assert main(args) == 1
    assert f"1 result files that no job of profile 'smoke' writes would enter the report: {left}" in capsys.readouterr().err
    assert not Path("reports/tables.md").exists()
    left.unlink()
    assert unplanned_results(plan) == []
