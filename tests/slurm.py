"""A one-node SLURM cluster on this machine, and the smoke profile run through it with one training job cancelled.

The cluster comes from .ci/slurm-up.sh (root and Debian's apt; CI has both). The smoke fixture in conftest.py runs
the pipeline through it whenever a test marked `slurm` is selected; tests/test_cluster.py checks what happened.
"""
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# the training job that is cancelled (scancel) as soon as its first checkpoint is on disk, and its SLURM comment
CANCELLED_RULE = "train_score"
CANCELLED_COMMENT = "rule_train_score_wildcards_digits"
SCORE = Path("models/smoke/digits/score")


@dataclass
class SlurmRun:
    """What the SLURM run left to check: Snakemake's log and the id of the job cancelled mid-run."""

    log: str
    cancelled: str


# the daemons of the cluster and the files holding their process ids
DAEMONS = {"slurmd": "/run/slurmd.pid", "slurmctld": "/run/slurmctld.pid", "munged": "/run/munge/munged.pid"}


def running(daemon: str) -> bool:
    return subprocess.run(["pgrep", "-x", daemon], capture_output=True, check=False).returncode == 0


def start_cluster(root: Path) -> list[str]:
    """Start the one-node cluster; the daemons this call started (those already running are left to their owner)."""
    before = {d for d in DAEMONS if running(d)}
    up = subprocess.run(["bash", str(root / ".ci" / "slurm-up.sh")], capture_output=True, text=True, timeout=900,
                        check=False)
    started = [d for d in DAEMONS if d not in before and running(d)]
    if up.returncode != 0:
        stop_cluster(started)
        pytest.fail(f"no SLURM cluster could be started (deselect with -m 'not slurm'):\n{up.stdout}\n{up.stderr}")
    return started


def stop_cluster(started: list[str]) -> None:
    """Stop the daemons `start_cluster` started, by the process ids they recorded, slurmd first."""
    for daemon in started:
        pidfile = Path(DAEMONS[daemon])
        if pidfile.is_file():
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)


def squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "--states=all", "--noheader", *args], capture_output=True, text=True, check=True)
    return [line.split("|") for line in out.stdout.splitlines()]


def node_memory_mb() -> int:
    """The memory of the cluster's node, which bounds what the jobs of a group may use side by side."""
    return int(subprocess.run(["sinfo", "--noheader", "--format=%m"], capture_output=True, text=True,
                              check=True).stdout.split()[0])


# Fewer, larger SLURM jobs: each submission costs a Snakemake start inside the job and waits for squeue's next poll
# (the plugin backs off by 10 s per poll that sees nothing finish), and the CI cluster has two cores. The jobs of a
# group run one after the other in one single-core SLURM job. "others" waits for the score model's job (cancelled
# and retried) while "representations", the larger, runs; `dvc repro` runs beside them.
GROUPS = {
    "representations": ["train_latent", "train_latent_frozen", "encode_latent", "drl_samples", "train_sweep",
                        "encode_sweep", "silhouette", "train_fewshot", "encode_fewshot", "fewshot"],
    "others": ["train_classifier", "train_adversarial", "sample", "fidelity", "loss_per_t", "train_codedim",
               "train_static_vdrl", "code_dim_samples", "pretrain_semisup", "laplacenet", "train_lsgm_vae",
               "train_lsgm_vae_binary",
               "train_lsgm", "train_lsgm_binary", "lsgm_evaluate", "lsgm_speed", "lsgm_fidelity", "train_scorevae_prior",
               "train_scorevae", "train_scorevae_plus", "train_scorevae_baselines", "scorevae_evaluate"],
}
# submitted alone: the training that is cancelled, and the representation table; prepare_data and report are local rules (the Snakefile)
UNGROUPED = [CANCELLED_RULE, "representations", "curves"]  # representations and curves read both groups' models
LOCAL = ["prepare_data", "report"]


def cluster_groups(planned: list[str]) -> list[str]:
    unknown = set(planned) - {"total", *UNGROUPED, *LOCAL, *(r for rules in GROUPS.values() for r in rules)}
    assert not unknown, f"put the new rules {sorted(unknown)} in a SLURM group (tests/slurm.py GROUPS)"
    return ["--groups", *(f"{r}={g}" for g, rules in GROUPS.items() for r in rules if r in planned),
            "--group-components", *(f"{g}=1000" for g in GROUPS)]


def slurm_command(snakemake: Path, planned: list[str], target: list[str]) -> list[str]:
    return [str(snakemake), "--profile", "profiles/slurm", *target,
            # the CI cluster: two cores, and `--cores 1` makes each group a single-core job; no accounting database
            # (status from squeue); a quick first status check
            "--jobs", str(len(GROUPS)), "--cores", "1", "--resources", f"mem_mb={node_memory_mb()}",
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
            "--slurm-keep-successful-logs", *cluster_groups(planned)]


def cancel_when_checkpointed(repo: Path, proc: subprocess.Popen, deadline: float) -> str:
    """scancel the running training job as soon as its first checkpoint is on disk; its SLURM job id."""
    while not (repo / SCORE / "ckpt.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "the training job never wrote a checkpoint"
        time.sleep(0.02)
    job = next(j for j, c, s in squeue("--format=%i|%k|%T") if c == CANCELLED_COMMENT and s == "RUNNING")
    subprocess.run(["scancel", job], check=True)
    while (state := squeue("--format=%T", "--jobs", job)[0][0]) in ("RUNNING", "COMPLETING"):
        time.sleep(0.1)
    assert state == "CANCELLED" and not (repo / SCORE / "model.pt").exists(), "the job ended before the cancel"
    return job


def planned_rules(dry_run_output: str) -> list[str]:
    return [rule for rule, _ in re.findall(r"^(\w+)\s+(\d+)$", dry_run_output, flags=re.MULTILINE)]
