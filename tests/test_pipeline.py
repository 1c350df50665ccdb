"""The smoke profile end to end through Snakemake and through `dvc repro`, and the workflow's contracts."""
import itertools
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import BIN, ENV, ROOT, SMOKE, run, stand_in_paper_inputs, without_wall_clock

from diffrep import config as cfgmod
from diffrep.report import targets


def table_numbers(text: str) -> list[float]:
    """Every number in the report's table cells (mean or mean ± std)."""
    cells = [c.strip() for line in text.splitlines() if line.startswith("|") for c in line.strip("|").split("|")]
    return [float(m) for c in cells for m in re.findall(r"^-?\d+\.\d+", c)]


@pytest.mark.pipeline
def test_snakemake_and_dvc_give_the_same_report(smoke):
    report = smoke.report
    assert without_wall_clock(report) == without_wall_clock((smoke.dvc / "reports" / "tables.md").read_text())
    assert without_wall_clock(report) != report, "Fig. 4's seconds are in the report, masked for the comparison"
    numbers = table_numbers(report)
    assert len(numbers) >= 3 * 6 + 3 * 2, "the report's tables should hold the latent, sweep and few-shot numbers"
    for heading in ("Fig. 11", "Fig. 12", "Fig. 2, 3, 5, 7", "Fig. 9", "Fig. 10", "Table 3", "Table 2",
                    "Tables 1, 4, 5, 6, 7", targets.OUTSIDE_HEADING):
        assert heading in report
    assert targets.missing_from(report, cfgmod.load(ROOT / "params" / "smoke.yaml")) == []
    verdicts = [line for line in report.splitlines() if line.startswith("- Ours:")]
    assert len(verdicts) >= 12, "one verdict per claim"
    assert all(re.search(r"\*\*(reproduces|contradicts|inconclusive|not tested)\*\*", v) for v in verdicts), verdicts
    assert "FID features: domain classifier penultimate" in report, "every FID names its features"
    referenced = set(re.findall(r"\]\((figures/[^)\s]+\.png)\)", report))
    made = {f"figures/{p.name}" for p in (smoke.snake / "reports" / "figures").glob("*.png")}
    assert {"figures/digits_silhouette_vs_t.png", "figures/digits_tinit_samples.png"} <= referenced
    assert referenced == made, "every figure the report shows was made, and every figure made is shown"
    assert made == {f"figures/{p.name}" for p in (smoke.dvc / "reports" / "figures").glob("*.png")}
    for model_dir in (smoke.snake / "models" / "smoke" / "digits").iterdir():
        assert yaml.safe_load((model_dir / "config.yaml").read_text())["name"] == "smoke"
    assert (smoke.snake / "results" / "smoke" / "config.yaml").is_file()


def _rows(report: str, heading: str) -> list[list[str]]:
    """The cells of the first table after `heading`."""
    lines = report.partition(heading)[2].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    return [[c.strip() for c in line.strip("|").split("|")] for line in
            itertools.takewhile(lambda x: x.startswith("|"), lines[start + 2:])]


@pytest.mark.pipeline
def test_the_reports_numbers_and_verdicts_are_the_csvs_and_the_engines(smoke):
    """Content, not form: the few-shot and sweep tables hold the means and stds of the CSVs they come from; every
    verdict line and scoreboard row says what the engine's record (verdicts.json) says, and the few-shot verdict
    recomputed here from fewshot.csv is the same record."""
    from diffrep.report.drl import fewshot_table, sweep_table

    report, res = smoke.report, smoke.snake / "results" / "smoke" / "digits"
    fs = pd.read_csv(res / "fewshot.csv")
    agg = fs.groupby(["labels", "method", "t"], dropna=False)["accuracy"].agg(["mean", "std"]).reset_index()
    shown = _rows(report, "### DRL Fig. 12")
    assert len(shown) == len(agg)
    for cells, (_, r) in zip(shown, agg.iterrows(), strict=True):
        assert cells[0] == str(int(r["labels"])) and cells[1] == r["method"].upper()
        assert cells[3] == f"{r['mean']:.3f} ± {r['std']:.3f}"
    sil = pd.read_csv(res / "silhouette.csv")
    sweep = sil[sil["experiment"] == "sweep"].groupby("t")["silhouette"].agg(["mean", "count"])
    assert [c[1].split(" ±")[0] for c in _rows(report, "### DRL Fig. 11")] == [f"{m:.3f}" for m in sweep["mean"]]
    records = json.loads((smoke.snake / "reports" / "verdicts.json").read_text())
    lines = {line.split('"')[1]: line for line in report.splitlines() if line.startswith('- Ours: <a id="')}
    assert len(records) == len(lines) >= 12
    for rec in records:
        line = lines[f"{rec['dataset']}-{rec['claim']}"]
        assert f"**{rec['outcome']}**" in line
        for part in rec["parts"]:
            if part["outcome"] != "not tested" and not np.isnan(part["difference"]):
                assert f"difference {part['difference']:+.3f}" in line, (part, line)
    board = report.partition("## Scoreboard")[2].partition("## Dataset")[0]
    for rec in records:
        assert f"(#{rec['dataset']}-{rec['claim']}) | `{rec['dataset']}` |" in board and f"**{rec['outcome']}**" in board
    fewshot = next(r for r in records if r["claim"] == "drl-fig12")
    again = fewshot_table(fs)[1]
    assert again.outcome == fewshot["outcome"]
    assert [p.difference for p in again.parts] == pytest.approx([p["difference"] for p in fewshot["parts"]])
    sweep_again = next(r for r in records if r["claim"] == "drl-fig11")
    assert sweep_table(sil)[1].outcome == sweep_again["outcome"]


@pytest.mark.pipeline
def test_each_curve_ends_at_its_final_table(smoke):
    """A convergence curve's last point is the final model measured as its experiment's own evaluation measures it
    (silhouette, few-shot SVM, sample spread, FID of the same sample sets, LSGM's NELBO), and its other points are the
    snapshots."""
    res = smoke.snake / "results" / "smoke" / "digits"
    curve = pd.concat([pd.read_csv(p) for p in sorted((res / "curves").glob("*.csv"))], ignore_index=True)
    final = curve[curve.groupby("run")["step"].transform("max") == curve["step"]]
    sil = pd.read_csv(res / "silhouette.csv").assign(run=lambda d: d["codes"].map(lambda p: p.split("/")[-1][:-4]))
    both = final.merge(sil[["run", "silhouette"]], on="run", suffixes=("", "_table"))
    assert set(both["experiment"]) == {"latent", "sweep"} and np.allclose(both["silhouette"], both["silhouette_table"])
    keys = ["method", "labels", "draw", "t"]
    ours = final[final["experiment"] == "fewshot"].sort_values(keys)["accuracy"].to_numpy()
    assert np.allclose(ours, pd.read_csv(res / "fewshot.csv").sort_values(keys)["accuracy"].to_numpy())
    fid = pd.read_csv(res / "fidelity.csv")
    gen = final.merge(fid[fid["p_kl"].isna()][["t_init", "prior", "fid"]], on=["t_init", "prior"], suffixes=("", "_table"))
    adv = final.merge(fid[fid["p_kl"].notna()][["p_kl", "fid"]], on="p_kl", suffixes=("", "_table"))
    assert len(gen) == 4 and len(adv) == 2
    assert np.allclose(gen["fid"], gen["fid_table"], rtol=1e-5) and np.allclose(adv["fid"], adv["fid_table"], rtol=1e-5)
    for _, r in final[final["experiment"] == "lsgm"].iterrows():
        record = json.loads((res / "lsgm" / "nelbo" / f"{r['run']}.json").read_text())
        assert np.isclose(r["nelbo"], record["nelbo"]) and r["units"] == record["units"]
    assert set(final.loc[final["experiment"] == "lsgm", "run"]) == {"lsgm-vae", "lsgm-vp-ll_iw-rew"}
    for _, r in final[final["experiment"] == "codedim"].iterrows():
        assert np.isclose(r["spread"], float(np.load(res / "codedim" / f"d{int(r['code_dim'])}.npz")["spread"]))
    steps = curve.groupby("run")["step"].apply(lambda s: sorted(set(s)))
    cfg = cfgmod.load(ROOT / "params" / "smoke.yaml")
    assert steps["latent-drl-uniform_t"] == [*cfgmod.snapshot_steps(cfg.datasets["digits"].iterations, 4),
                                             cfg.datasets["digits"].iterations]
    assert steps["adversarial-p1.0"] == sorted({*cfgmod.snapshot_steps(cfg.experiments.adversarial.iterations, 4),
                                                cfg.experiments.adversarial.iterations})
    assert steps["lsgm-vp-ll_iw-rew"] == sorted({*cfgmod.snapshot_steps(cfg.experiments.lsgm.stage2_iterations, 4),
                                                cfg.experiments.lsgm.stage2_iterations})


@pytest.mark.pipeline
def test_nothing_to_do_after_either_run(smoke):
    assert "up to date" in run(["dvc", "repro"], smoke.dvc).stdout
    assert "Nothing to be done" in run(["snakemake", "-n", "reports/tables.md", *SMOKE], smoke.dvc).stdout
    assert "Nothing to be done" in run(["snakemake", "-n", "reports/tables.md", *SMOKE], smoke.snake).stdout


@pytest.mark.pipeline
def test_report_regenerates_from_the_metrics_alone(smoke):
    (smoke.snake / "reports" / "tables.md").unlink()
    regen = run(["snakemake", "--cores", "1", "reports/tables.md", *SMOKE], smoke.snake)
    log = regen.stdout + regen.stderr
    assert "rule report" in log and "train_" not in log, "the report regenerates from the metrics alone"
    assert (smoke.snake / "reports" / "tables.md").read_text() == smoke.report


@pytest.mark.pipeline
def test_snakemake_report_is_one_html_file_with_the_figures(smoke, tmp_path):
    html = tmp_path / "report.html"
    run(["snakemake", "--report", str(html), "reports/tables.md", *SMOKE], smoke.snake)
    text = html.read_text()
    for figure in (smoke.snake / "reports" / "figures").glob("*.png"):
        assert figure.name in text, figure.name
    assert "data:image/png;base64" in text or "image/png" in text, "the figures are embedded, not linked"


@pytest.mark.pipeline
def test_dvc_lists_the_results_as_metrics_and_plots(smoke):
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], smoke.dvc).stdout)[""]["data"]
    digits = shown["reports/metrics.json"]["data"]["digits"]
    assert set(digits) == {"silhouette", "fewshot", "fidelity", "semisup", "lsgm", "scorevae", "representations"}, digits
    assert {"nelbo", "backbone_nelbo"} <= set(digits["lsgm"]["lsgm-vae"]) and digits["scorevae"]["scorevae-l2"] > 0
    assert 0 < digits["representations"]["pca: SVM, 30 labels"] <= 1
    assert digits["silhouette"]["sweep-t0.5-s0"] == pytest.approx(silhouette_of(smoke.dvc, "sweep-t0.5-s0"))
    assert 0 <= digits["semisup"]["drl-20labels"] <= 1 and digits["fidelity"]["adversarial-p0.5"]["fid"] > 0
    assert 0 < shown["models/smoke/digits/classifier/accuracy.json"]["data"]["test_accuracy"] <= 1
    assert "results/smoke/digits/loss_per_t/adversarial-p0.5.csv" in run(["dvc", "plots", "show", "--json"], smoke.dvc).stdout


@pytest.mark.pipeline
def test_dvc_exp_run_sets_a_parameter_and_reruns_what_depends_on_it(smoke, tmp_path):
    """`dvc exp run -S key=value` on the committed params.yaml: only the stages that read the key run again (the
    few-shot models depend on their experiment's block and retrain to the same weights; their model.pt holds the
    resolved parameters, so they are encoded again, to the same codes)."""
    work = tmp_path / "exp"
    shutil.copytree(smoke.dvc, work, symlinks=True)
    for cmd in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke"]):
        subprocess.run(["git", *cmd], cwd=work, check=True, capture_output=True)
    exp = run(["dvc", "exp", "run", "-S", "experiments.fewshot.draws=3"], work).stdout
    retrained = {f"train_fewshot-digits-fewshot-{m}" for m in ("drl", "vdrl", "ae", "vae")}
    assert set(stages_run(exp)) == retrained | {"encode_fewshot-digits", "fewshot-digits", "curves-digits-fewshot",
                                               "report"}, exp[-3000:]
    codes = "results/smoke/digits/codes/fewshot-drl.npz"
    with np.load(smoke.dvc / codes) as before, np.load(work / codes) as after:
        assert np.array_equal(before["codes_test"], after["codes_test"]), "the retrained models are the same"
    assert yaml.safe_load((work / "params.yaml").read_text())["experiments"]["fewshot"]["draws"] == 3
    shown = json.loads(run(["dvc", "exp", "show", "--json"], work).stdout)
    draws = [r["data"]["params"]["params.yaml"]["data"]["experiments"]["fewshot"]["draws"]
             for commit in shown for exp_ in commit.get("experiments") or [] for r in exp_["revs"]]
    assert draws == [3], "`dvc exp show` lists the experiment with its parameter"


def silhouette_of(repo, run_name: str) -> float:
    import pandas as pd

    sil = pd.read_csv(repo / "results" / "smoke" / "digits" / "silhouette.csv")
    return float(sil[sil["codes"].str.endswith(f"/{run_name}.npz")]["silhouette"].iloc[0])


def stages_run(dvc_output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", dvc_output)


@pytest.mark.pipeline
def test_dvc_remote_round_trip_regenerates_the_report_without_training(smoke, tmp_path):
    """Push to a local remote, lose the cache and every output, pull: only the report stage runs again, and gives the
    report of the pushed results."""
    work = tmp_path / "clone"
    pushed = (smoke.dvc / "reports" / "tables.md").read_text()
    shutil.copytree(smoke.dvc, work, symlinks=True)
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], work)
    run(["dvc", "push"], work)
    assert any(p.is_file() for p in remote.rglob("*")), "the push stored nothing"
    for cached in ("data", "models", "results", ".dvc/cache"):
        shutil.rmtree(work / cached)
    shutil.rmtree(work / "reports" / "figures")
    (work / "reports" / "tables.md").unlink()
    run(["dvc", "pull"], work)
    assert (work / "models" / "smoke" / "digits" / "score" / "model.pt").is_file()
    assert not (work / "reports" / "tables.md").exists(), "the report is not cached; it is made from the metrics"
    repro = run(["dvc", "repro"], work).stdout
    assert stages_run(repro) == ["report"], repro[-3000:]
    assert (work / "reports" / "tables.md").read_text() == pushed
    assert stages_run(run(["dvc", "repro"], work).stdout) == []


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("name: bad\ntrain: {lr: -0.5}\n", "train.lr", "-0.5"),
        ("name: bad\ntrain: {bogus_key: 1}\n", "train", "bogus_key"),
        ("name: bad\ndatasets: {digits: {iterations: many}}\n", "datasets.digits.iterations", "many"),
        ("name: bad\nsde: {kind: subvp}\n", "sde.kind", "subvp"),
        ("name: bad\nexperiments: {sweep: {datasets: [mnist]}}\n", "experiments.sweep.datasets", "mnist"),
        ("name: bad\nsampling: {method: ddim}\n", "sampling.method", "ddim"),
        (("name: bad\ndatasets: {miniimagenet: {source: folder, path: nowhere/mini}}\n"
          "experiments: {semisup: {datasets: [miniimagenet], labels: {miniimagenet: [20]}}}\n"),
         "datasets.miniimagenet.path", "nowhere/mini"),
        (("name: bad\ndatasets: {digits: {}, celebahq256: {source: folder, path: nowhere/hq}}\n"
          "experiments: {lsgm: {datasets: [celebahq256], binarized: []}}\n"),
         "datasets.celebahq256.path", "nowhere/hq"),
    ],
)
def test_bad_parameters_stop_the_run_naming_key_and_value(repo, text, key, value, capsys, monkeypatch):
    sentinel = repo / "results" / "bad" / "finished.csv"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text("kept\n")
    (repo / "params" / "bad.yaml").write_text(text)
    proc = run(["snakemake", "-n", "reports/tables.md", "--configfile", "params/bad.yaml"], repo, check=False)
    message = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert key in message and value in message, message[-2000:]
    assert sentinel.read_text() == "kept\n"
    assert sorted(p.name for p in sentinel.parent.iterdir()) == ["finished.csv"], "a refused run writes nothing"
    if not key.endswith(".path"):  # dataset folders are checked where the DAG is planned, not by `resolve`
        from diffrep.cli import main

        monkeypatch.chdir(repo)
        assert main(["resolve", "params/bad.yaml"]) == 1
        err = capsys.readouterr().err
        assert key in err and value in err, err


def test_missing_weights_fail_their_own_job_not_the_planning(repo):
    """Weights named by path but absent: the rest plans, and the job that fetches them fails naming the file."""
    profile = yaml.safe_load((repo / "params" / "smoke.yaml").read_text())
    profile.update(name="weights", fidelity={**profile["fidelity"], "inception_weights": "nowhere/inception.pth"})
    (repo / "params" / "weights.yaml").write_text(yaml.safe_dump(profile))
    plan = run(["snakemake", "-n", "reports/tables.md", "--configfile", "params/weights.yaml"], repo).stdout
    assert re.search(r"^fetch_inception\s+1$", plan, flags=re.MULTILINE) and "train_score" in plan, plan[-2000:]
    fetch = run(["snakemake", "--cores", "1", "nowhere/inception.pth", "--configfile", "params/weights.yaml"], repo,
                check=False)
    log = (repo / "logs" / "weights" / "fetch_inception.log").read_text()
    assert fetch.returncode != 0 and "nowhere/inception.pth is missing" in log and "fidelity.inception_url" in log, log
    assert not (repo / "nowhere" / "inception.pth").exists()


def test_lint_is_clean_and_help_lists_subcommands():
    lint = run(["snakemake", "--lint"], ROOT, check=False)
    assert lint.returncode == 0 and "Lints for" not in lint.stdout + lint.stderr, lint.stdout + lint.stderr
    helptext = run(["diffrep", "--help"], ROOT).stdout
    for sub in ("resolve", "prepare", "train", "encode", "silhouette", "fewshot", "train-classifier", "sample",
                "fidelity", "loss-per-t", "drl-samples", "code-dim-samples", "pretrain", "laplacenet", "curves", "report"):
        assert sub in helptext


@pytest.mark.parametrize("sub, lists", [("encode", ["--out"]), ("drl-samples", ["--codes", "--out"]),
                                        ("code-dim-samples", ["--out"])])
def test_one_job_for_many_models_needs_one_entry_per_model(sub, lists, capsys):
    from diffrep.cli import main

    argv = [sub, "--data", "data/digits", "--model", "a/model.pt", "b/model.pt"]
    for flag in lists:
        argv += [flag, "only-one.npz"]
    if sub != "encode":
        argv += ["--config", "params/smoke.yaml"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"give one {' and one '.join(lists)} per --model" in err and "2 --model" in err, err


def test_paper_profile_plans_every_paper_scale_job(repo):
    stand_in_paper_inputs(repo)
    out = run(["snakemake", "-n", "-p", "reports/tables.md", "--configfile", "params/paper.yaml"], repo).stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    paper_datasets = yaml.safe_load((repo / "params" / "paper.yaml").read_text())["datasets"]
    assert counts["prepare_data"] == str(len(paper_datasets))  # MNIST and CIFAR-10, and those of later experiments
    assert counts["train_sweep"] == str(2 * 10 * 3)  # two datasets, ten t, three seeds
    assert counts["train_latent"] == "8" and counts["train_latent_frozen"] == "4" and counts["train_fewshot"] == "4"
    assert "models/paper/mnist/sweep-t0.5-s2/model.pt" in out and "models/paper/cifar10/fewshot-vdrl/model.pt" in out
    # DRL Table 3 (six t_init, two priors) and Table 2 (five p_KL) on CIFAR-10
    assert counts["train_score"] == "1" and counts["train_adversarial"] == "5" and counts["sample"] == str(6 * 2 + 5)
    # the domain classifier of CIFAR-10, and of the CelebA sets of LSGM and ScoreVAE (one class: it learns nothing)
    assert counts["fidelity"] == "1" and counts["train_classifier"] == "3"
    assert "--n 20000" in out and "--n 50000" in out and "pt_inception" in out
    assert counts["train_codedim"] == "4" and counts["code_dim_samples"] == "1"  # DRL Fig. 10 on MNIST: 2, 4, 8, 16
    # DRL Tables 1, 4-7 on CIFAR-10, CIFAR-100 and MiniImageNet: four pretrainings, five LaplaceNet jobs each
    assert counts["pretrain_semisup"] == str(3 * 4) and counts["laplacenet"] == str(3 * 5)


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
    kept = torch.load(repo / "killed" / "ckpt.pt", weights_only=False)["step"]
    rerun = run([*base, "--out", "killed"], repo)
    assert kept > 0 and f"at step {kept}" in rerun.stderr and "resumed" in rerun.stderr, rerun.stderr[-2000:]
    a = torch.load(repo / "whole" / "model.pt", weights_only=False)["state"]
    b = torch.load(repo / "killed" / "model.pt", weights_only=False)["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (repo / "whole" / "metrics.csv").read_text() == (repo / "killed" / "metrics.csv").read_text()


def test_corrupt_checkpoint_stops_the_training_job(repo):
    """A damaged ckpt.pt: `diffrep train` stops naming the file, keeps it, and writes no model."""
    run(["diffrep", "prepare", "--config", "params/smoke.yaml", "--dataset", "digits", "--out", "data/digits"], repo)
    out = repo / "models" / "drl"
    out.mkdir(parents=True)
    (out / "ckpt.pt").write_bytes(b"half a checkpoint")
    proc = run(["diffrep", "train", "--config", "params/smoke.yaml", "--data", "data/digits", "--dataset", "digits",
                "--experiment", "latent", "--method", "drl", "--threads", "1", "--out", str(out)], repo, check=False)
    assert proc.returncode != 0 and f"checkpoint {out / 'ckpt.pt'} cannot be read" in proc.stderr, proc.stderr[-2000:]
    assert (out / "ckpt.pt").read_bytes() == b"half a checkpoint"
    assert not (out / "model.pt").exists() and not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
