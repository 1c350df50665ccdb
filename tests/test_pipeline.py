"""The smoke profile end to end through Snakemake and through `dvc repro`, and the workflow's contracts."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_repo

BIN = Path(sys.executable).parent
# the rules call `diffrep`; DVC must not try to reach the network
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
SMOKE = ["--configfile", "params/smoke.yaml"]


def run(cmd, cwd, check=True, timeout=900):
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def table_numbers(text: str) -> list[float]:
    """Every number in the report's table cells (mean or mean ± std)."""
    cells = [c.strip() for line in text.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]
    return [float(m) for c in cells for m in re.findall(r"^-?\d+\.\d+", c)]


@pytest.mark.pipeline
def test_smoke_through_snakemake_and_dvc_give_the_same_report(tmp_path):
    snake, dvc = copy_repo(tmp_path / "snake"), copy_repo(tmp_path / "dvc")
    run(["diffrep", "resolve", "params/smoke.yaml", "-o", "params.yaml"], dvc)
    procs = [subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "reports/tables.md", *SMOKE], cwd=snake,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV),
             subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=dvc, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=ENV)]
    for p in procs:
        out, _ = p.communicate(timeout=1200)
        assert p.returncode == 0, out[-4000:]

    report = (snake / "reports" / "tables.md").read_text()
    assert report == (dvc / "reports" / "tables.md").read_text()
    numbers = table_numbers(report)
    assert len(numbers) >= 3 * 6 + 3 * 2, "the report's tables should hold the latent, sweep and few-shot numbers"
    for heading in ("Fig. 11", "Fig. 12", "Fig. 2, 3, 5, 7", "Table 3", "Table 2"):
        assert heading in report
    assert report.count("reproduce") >= 6, "one verdict per claim"
    assert "FID features: domain classifier penultimate" in report, "every FID names its features"
    figures = sorted(p.name for p in (snake / "reports" / "figures").glob("*.png"))
    assert "digits_silhouette_vs_t.png" in figures and "digits_tinit_samples.png" in figures and len(figures) == 14
    for model_dir in (snake / "models" / "smoke" / "digits").iterdir():
        assert yaml.safe_load((model_dir / "config.yaml").read_text())["name"] == "smoke"
    assert (snake / "results" / "smoke" / "config.yaml").is_file()

    assert "up to date" in run(["dvc", "repro"], dvc).stdout
    assert "Nothing to be done" in run(["snakemake", "-n", "reports/tables.md", *SMOKE], dvc).stdout
    again = run(["snakemake", "-n", "reports/tables.md", *SMOKE], snake)
    assert "Nothing to be done" in again.stdout

    (snake / "reports" / "tables.md").unlink()
    regen = run(["snakemake", "--cores", "1", "reports/tables.md", *SMOKE], snake)
    log = regen.stdout + regen.stderr
    assert "rule report" in log and "train_" not in log, "the report regenerates from the metrics alone"
    assert (snake / "reports" / "tables.md").read_text() == report


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("name: bad\ntrain: {lr: -0.5}\n", "train.lr", "-0.5"),
        ("name: bad\ntrain: {bogus_key: 1}\n", "train", "bogus_key"),
        ("name: bad\ndatasets: {digits: {iterations: many}}\n", "datasets.digits.iterations", "many"),
        ("name: bad\nsde: {kind: vp}\n", "sde.kind", "vp"),
        ("name: bad\nexperiments: {sweep: {datasets: [mnist]}}\n", "experiments.sweep.datasets", "mnist"),
        ("name: bad\nsampling: {method: ddim}\n", "sampling.method", "ddim"),
        ("name: bad\nfidelity: {inception_weights: nowhere/inception.pth}\n", "fidelity.inception_weights",
         "nowhere/inception.pth"),
    ],
)
def test_bad_parameters_stop_the_run_naming_key_and_value(repo, text, key, value):
    sentinel = repo / "results" / "bad" / "finished.csv"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("kept\n")
    (repo / "params" / "bad.yaml").write_text(text)
    proc = run(["snakemake", "-n", "reports/tables.md", "--configfile", "params/bad.yaml"], repo, check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert key in message and value in message, message[-2000:]
    assert sentinel.read_text() == "kept\n"
    if key != "fidelity.inception_weights":  # a path is checked where the DAG is planned, not by `resolve`
        cli = run(["diffrep", "resolve", "params/bad.yaml"], repo, check=False)
        assert cli.returncode == 1 and key in cli.stderr and value in cli.stderr


def test_lint_is_clean_and_help_lists_subcommands():
    lint = run(["snakemake", "--lint"], ROOT, check=False)
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    helptext = run(["diffrep", "--help"], ROOT).stdout
    for sub in ("resolve", "prepare", "train", "encode", "silhouette", "fewshot", "train-classifier", "sample",
                "fidelity", "loss-per-t", "drl-samples", "report"):
        assert sub in helptext


def test_paper_profile_plans_every_paper_scale_job(repo):
    weights = repo / yaml.safe_load((repo / "params" / "paper.yaml").read_text())["fidelity"]["inception_weights"]
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")  # stands in for the Inception weights a cluster user puts there
    out = run(["snakemake", "-n", "-p", "reports/tables.md", "--configfile", "params/paper.yaml"], repo).stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    assert counts["prepare_data"] == "2"  # MNIST and CIFAR-10
    assert counts["train_sweep"] == str(2 * 10 * 3)  # two datasets, ten t, three seeds
    assert counts["train_latent"] == "8" and counts["train_latent_frozen"] == "4" and counts["train_fewshot"] == "4"
    assert "models/paper/mnist/sweep-t0.5-s2/model.pt" in out and "models/paper/cifar10/fewshot-vdrl/model.pt" in out
    # DRL Table 3 (six t_init, two priors) and Table 2 (five p_KL) on CIFAR-10
    assert counts["train_score"] == "1" and counts["train_adversarial"] == "5" and counts["sample"] == str(6 * 2 + 5)
    assert counts["fidelity"] == "1" and counts["train_classifier"] == "1"
    assert "--n 20000" in out and "--n 50000" in out and "pt_inception" in out


def test_resume_after_kill_through_the_cli(repo):
    """`diffrep train` killed with SIGKILL resumes from its checkpoint to the same weights."""
    import signal
    import time

    import torch

    run(["diffrep", "prepare", "--config", "params/smoke.yaml", "--dataset", "digits", "--out", "data/digits"], repo)
    base = ["diffrep", "train", "--config", "params/smoke.yaml", "--data", "data/digits", "--dataset", "digits",
            "--experiment", "latent", "--method", "drl", "--threads", "1"]
    run([*base, "--out", "whole"], repo)
    proc = subprocess.Popen([str(BIN / base[0]), *base[1:], "--out", "killed"], cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    while not (repo / "killed" / "ckpt.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (repo / "killed" / "model.pt").exists(), "the kill came after the end; nothing was resumed"
    run([*base, "--out", "killed"], repo)
    a = torch.load(repo / "whole" / "model.pt", weights_only=False)["state"]
    b = torch.load(repo / "killed" / "model.pt", weights_only=False)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (repo / "whole" / "metrics.csv").read_text() == (repo / "killed" / "metrics.csv").read_text()
