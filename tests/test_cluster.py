"""Execution environments: the Snakemake profiles, a real one-node SLURM cluster, interrupted jobs, conda.

When the SLURM test is selected, the smoke fixture starts a cluster on this machine with .ci/slurm-up.sh (root and
Debian's apt; CI has both) and runs the smoke profile through it; it fails, rather than skips, when it cannot:
deselect it with `-m "not slurm"` on a machine where it cannot run (Snakemake then runs the smoke profile here).
"""
import os
import re
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import BIN, ENV, ROOT, SMOKE, run, stand_in_paper_inputs, without_wall_clock
from diffrep import config
from diffrep.plan import Plan
from slurm import CANCELLED_COMMENT, GROUPS, LOCAL, SCORE, UNGROUPED, squeue

# Checkpoint every step: the same results (resume is exact on the CPU), and a cancelled job has a checkpoint to
# resume from at once. The file goes after params/smoke.yaml, which it updates.
EVERY_STEP = "train: {checkpoint_every: 1}\n"


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
    run(["snakemake", "--unlock", *target], repo)  # what Snakemake asks for after a kill -9 left its lock behind
    rerun = run(["snakemake", "--profile", "profiles/local", *target], repo)
    assert "rule train_score" in rerun.stdout + rerun.stderr, "the half-trained model must be planned again"
    assert re.search(r"resumed .* at step [1-9]\d*", (repo / "logs" / "smoke" / "train_score_digits.log").read_text())


# --- a real one-node SLURM cluster: the smoke fixture (conftest.py) runs the pipeline through it ------------------


@pytest.mark.slurm
@pytest.mark.pipeline
def test_smoke_profile_through_slurm_survives_a_cancelled_job(smoke):
    assert smoke.slurm, "a slurm test is selected, so the smoke fixture should have run through SLURM"
    text, cancelled = smoke.slurm.log, smoke.slurm.cancelled

    # the jobs went through SLURM: every submission has a SLURM job id that squeue knows, with its log
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", text)
    states = dict(squeue("--format=%i|%T", "--jobs", ",".join(submitted)))
    assert cancelled in submitted and states.pop(cancelled) == "CANCELLED"
    assert set(states.values()) == {"COMPLETED"}, states
    slurm_logs = {p.stem for p in (smoke.snake / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(submitted) <= slurm_logs
    # one SLURM job per group and per job of an ungrouped rule, and the cancelled training's retry; local rules stay
    # local
    plan = Plan(config.load(ROOT / "params" / "smoke.yaml"), "params.yaml")
    assert len(submitted) == len(GROUPS) + sum(len(plan[r].jobs) for r in UNGROUPED) + 1, submitted
    assert all(f"localrule {rule}:" in text for rule in LOCAL)
    assert {p.name.split("_")[1] for p in (smoke.snake / ".snakemake" / "slurm_logs").glob("group_*")} == set(GROUPS)
    # the cancelled training job was submitted again and resumed from its checkpoint
    score_jobs = [j for j, c in squeue("--format=%i|%k") if c == CANCELLED_COMMENT and j in submitted]
    assert len(score_jobs) == 2, score_jobs
    resumed = re.search(r"resumed .* at step (\d+)", (smoke.snake / "logs" / "smoke" / "train_score_digits.log").read_text())
    assert resumed and int(resumed.group(1)) >= 1
    # and the report is the one of a run on one machine (`dvc repro`)
    assert without_wall_clock(smoke.report) == without_wall_clock((smoke.dvc / "reports" / "tables.md").read_text())
