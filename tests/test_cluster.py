"""Execution environments: the Snakemake profiles, a real one-node SLURM cluster, interrupted jobs, conda.

The SLURM test starts a cluster on this machine with .ci/slurm-up.sh (root and Debian's apt; CI has both) and
fails, rather than skips, when it cannot: deselect it with `-m "not slurm"` on a machine where it cannot run.
"""
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import BIN, ENV, ROOT, SMOKE, run, stand_in_paper_inputs

# Checkpoint every step: the same results (resume is exact on the CPU), and a cancelled job has a checkpoint to
# resume from at once. The file goes after params/smoke.yaml, which it updates.
EVERY_STEP = "train: {checkpoint_every: 1}\n"
SCORE = Path("models/smoke/digits/score")


def slurm_profile() -> dict:
    return yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())


def test_profiles_set_what_a_cluster_needs():
    slurm, local = slurm_profile(), yaml.safe_load((ROOT / "profiles" / "local" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm" and slurm["retries"] >= 1 and slurm["jobs"] >= 1
    assert slurm["latency-wait"] > 0 and slurm["rerun-incomplete"] and local["rerun-incomplete"]
    for profile in (slurm, local):
        assert {"mem_mb", "runtime"} <= set(profile["default-resources"])


def planned_resources(repo: Path, *args: str) -> dict[str, set[str]]:
    """Rule name -> the resources lines a dry run through a profile prints for its jobs."""
    out = run(["snakemake", "-n", "reports/tables.md", *args], repo).stdout
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?:\n\n|\Z)", out, flags=re.MULTILINE | re.DOTALL)
    plan: dict[str, set[str]] = {}
    for rule, body in jobs:
        plan.setdefault(rule, set()).update(re.findall(r"resources: (.*)", body))
    return plan


@pytest.mark.parametrize("params, gpu", [("params/smoke.yaml", "0"), ("params/paper.yaml", "1")])
def test_every_job_has_memory_and_time_and_training_asks_for_a_gpu(repo, params, gpu):
    stand_in_paper_inputs(repo)
    plan = planned_resources(repo, "--profile", "profiles/slurm", "--configfile", params)
    assert plan and len(plan) >= 10
    for rule, lines in plan.items():
        for line in lines:
            assert re.search(r"\bmem_mb=\d+", line) and re.search(r"\bruntime=\d+", line), (rule, line)
            if rule.startswith("train_") or rule == "sample":
                assert re.search(rf"\bgpu={gpu}\b", line), (rule, line)


def test_conda_env_lists_the_packages_of_pyproject():
    env = yaml.safe_load((ROOT / "envs" / "diffrep.yaml").read_text())
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ../" in pip, "the environment installs this package, so every rule finds `diffrep`"
    assert sorted(p for p in pip if not p.startswith("-e")) == sorted(d.replace(" ", "") for d in deps)
    rules = "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk"))
    assert 'ENV = "../envs/diffrep.yaml"' in rules and rules.count("conda:") == rules.count("shell:")


def test_killed_snakemake_leaves_no_output_taken_as_complete(repo):
    """kill -9 of Snakemake and its training job: the model is planned again and the rerun resumes training."""
    (repo / "every_step.yaml").write_text(EVERY_STEP)
    target = [str(SCORE / "model.pt"), *SMOKE, "every_step.yaml"]
    proc = subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", *target], cwd=repo, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (repo / SCORE / "ckpt.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (repo / SCORE / "ckpt.pt").exists() and not (repo / SCORE / "model.pt").exists(), "killed too late"
    assert "rule train_score" in run(["snakemake", "-n", *target], repo).stdout
    run(["snakemake", "--unlock", *target], repo)  # what Snakemake asks for after a kill -9 left its lock behind
    run(["snakemake", "--profile", "profiles/local", *target], repo)
    assert re.search(r"resumed .* at step [1-9]\d*", (repo / "logs" / "smoke" / "train_digits_score.log").read_text())


# --- a real one-node SLURM cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster():
    up = subprocess.run(["bash", str(ROOT / ".ci" / "slurm-up.sh")], capture_output=True, text=True, timeout=900,
                        check=False)
    if up.returncode != 0:
        pytest.fail(f"no SLURM cluster could be started (deselect with -m 'not slurm'):\n{up.stdout}\n{up.stderr}")
    return up.stdout


def squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "--states=all", "--noheader", *args], capture_output=True, text=True, check=True)
    return [line.split("|") for line in out.stdout.splitlines()]


def node_memory_mb() -> int:
    """The memory of the cluster's node, which bounds what the jobs of a group may use side by side."""
    return int(subprocess.run(["sinfo", "--noheader", "--format=%m"], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def cancel_when_checkpointed(repo: Path, proc: subprocess.Popen, comment: str, deadline: float) -> str:
    """scancel the running SLURM job with this comment as soon as its first checkpoint is on disk."""
    while not (repo / SCORE / "ckpt.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "the training job never wrote a checkpoint"
        time.sleep(0.02)
    job = next(j for j, c, s in squeue("--format=%i|%k|%T") if c == comment and s == "RUNNING")
    subprocess.run(["scancel", job], check=True)
    while (state := squeue("--format=%T", "--jobs", job)[0][0]) in ("RUNNING", "COMPLETING"):
        time.sleep(0.1)
    assert state == "CANCELLED" and not (repo / SCORE / "model.pt").exists(), "the job ended before the cancel"
    return job


def cluster_groups(planned: dict[str, str], cancelled_rule: str) -> list[str]:
    """Fewer, larger SLURM jobs: the CI cluster has two cores, and each submission waits for squeue's next poll.

    Every job but the data preparation and the cancelled rule's shares one SLURM job, so the cancel hits one
    training and the rest costs one submission.
    """
    rules = [r for r in planned if r not in ("total", "prepare_data", cancelled_rule)]
    return ["--groups", *(f"{r}=after" for r in rules), "--group-components", "after=1000"]


# The generation branch of the smoke DAG: the score model (whose job is cancelled), the domain classifier, the
# adversarial models, their samples, FID/IS and loss per t. The SLURM run starts from the local run's outputs without
# these, so that it fits CI's time: a whole third smoke run through the two-core cluster takes over 15 minutes.
GENERATION = ["models/smoke/digits/score", "models/smoke/digits/classifier", "models/smoke/digits/adversarial-p*",
              "results/smoke/digits/samples", "results/smoke/digits/fidelity.csv", "results/smoke/digits/loss_per_t",
              "results/smoke/digits/alpha", "reports/tables.md", "reports/figures"]


def without_generation(local: Path, dest: Path) -> Path:
    """A copy of the local smoke run (mtimes kept) without the generation branch's outputs."""
    shutil.copytree(local, dest, symlinks=True)
    for pattern in GENERATION:
        for path in dest.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return dest


@pytest.mark.slurm
@pytest.mark.pipeline
def test_smoke_profile_through_slurm_survives_a_cancelled_job(slurm_cluster, smoke, tmp_path):
    repo = without_generation(smoke.snake, tmp_path / "slurm")
    (repo / "every_step.yaml").write_text(EVERY_STEP)
    target = ["reports/tables.md", *SMOKE, "every_step.yaml", "--rerun-triggers", "mtime", "input"]
    planned = dict(re.findall(r"^(\w+)\s+(\d+)$", run(["snakemake", "-n", *target], repo).stdout, flags=re.MULTILINE))
    assert {"train_score", "train_classifier", "train_adversarial", "sample", "fidelity", "report"} <= set(planned)
    assert not {"train_sweep", "train_latent", "encode"} & set(planned), planned
    cmd = [str(BIN / "snakemake"), "--profile", "profiles/slurm", *target,
           # the CI cluster: two cores, no accounting database (status from squeue), quick first status check
           "--jobs", "2", "--cores", "2", "--resources", f"mem_mb={node_memory_mb()}", "--slurm-status-command", "squeue",
           "--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs",
           *cluster_groups(planned, "train_score")]
    log = tmp_path / "snakemake.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=repo, env=ENV, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.time() + 1500
        try:
            cancelled = cancel_when_checkpointed(repo, proc, "rule_train_score_wildcards_digits", deadline)
            assert proc.wait(timeout=max(1, deadline - time.time())) == 0, log.read_text()[-5000:]
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    text = log.read_text()

    # the jobs went through SLURM: every submission has a SLURM job id that squeue knows, with its log
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", text)
    states = dict(squeue("--format=%i|%T", "--jobs", ",".join(submitted)))
    assert cancelled in submitted and states.pop(cancelled) == "CANCELLED"
    assert set(states.values()) == {"COMPLETED"}, states
    slurm_logs = {p.stem for p in (repo / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(submitted) <= slurm_logs
    # the cancelled training job was submitted again and resumed from its checkpoint
    score_jobs = [j for j, c in squeue("--format=%i|%k") if c == "rule_train_score_wildcards_digits" and j in submitted]
    assert len(score_jobs) == 2, score_jobs
    resumed = re.search(r"resumed .* at step (\d+)", (repo / "logs" / "smoke" / "train_digits_score.log").read_text())
    assert resumed and int(resumed.group(1)) >= 1
    # and the report is the one of a run on one machine
    assert (repo / "reports" / "tables.md").read_text() == smoke.report
