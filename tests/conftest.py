"""Shared fixtures: a clean copy of the repository for pipeline runs, and the smoke profile run once per session."""
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from slurm import (
    SlurmRun,
    cancel_when_checkpointed,
    planned_rules,
    slurm_command,
    start_cluster,
    stop_cluster,
)

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", ".snakemake", "data", "models", "results", "logs", "benchmarks",
                              "__pycache__", "*.egg-info", ".pytest_cache", "dvc.lock", "tmp", "cache")
BIN = Path(sys.executable).parent
# the rules call `diffrep`; DVC must not try to reach the network
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
SMOKE = ["--configfile", "params/smoke.yaml"]


# Fig. 4's rows: sampler | tolerance | NFE | seconds per batch | FID
WALL_CLOCK = re.compile(r"^(\| (?:lsgm|sgm-ode|sgm-pc) \| [^|]+ \| \d+ \| )\d+\.\d+( \|)", re.MULTILINE)


COMPUTE = re.compile(r"^\*\*Compute:\*\* .*$", re.MULTILINE)


def without_wall_clock(report: str) -> str:
    """The report with the seconds of LSGM Fig. 4's sampling runs and the run's compute line masked: the numbers no
    two runs share."""
    return COMPUTE.sub("**Compute:** …", WALL_CLOCK.sub(r"\1s\2", report))


def copy_repo(dest: Path) -> Path:
    """The project's files, without outputs of earlier runs, as a fresh git + DVC repository."""
    shutil.copytree(ROOT, dest, ignore=SKIP)
    shutil.rmtree(dest / "reports" / "figures", ignore_errors=True)
    for made in ("tables.md", "metrics.json"):
        (dest / "reports" / made).unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def run(cmd, cwd, check=True, timeout=900):
    """Run a command of the virtual environment (snakemake, dvc, diffrep) in `cwd`."""
    proc = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=ENV, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def stand_in_paper_inputs(repo: Path) -> None:
    """Empty stand-ins for what a cluster user provides to the paper profile: the Inception weights and the dataset
    folders it reads instead of downloading (MiniImageNet)."""
    paper = yaml.safe_load((repo / "params" / "paper.yaml").read_text())
    weights = repo / paper["fidelity"]["inception_weights"]
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"")
    for dataset in paper["datasets"].values():
        if dataset.get("source") == "folder":
            (repo / dataset["path"]).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


@dataclass
class SmokeRuns:
    """The smoke profile run once through Snakemake and once through `dvc repro`, each in its own copy.

    Snakemake runs through a one-node SLURM cluster, with its score model's job cancelled mid-run, when a test marked
    `slurm` is selected (as in CI), and on this machine (`--cores 1`) when none is (`-m "not slurm"`).
    """

    snake: Path
    dvc: Path
    report: str  # reports/tables.md of the Snakemake run, as it was written
    slurm: SlurmRun | None


THROUGH_SLURM = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config, items):
    config.stash[THROUGH_SLURM] = any(item.get_closest_marker("slurm") for item in items)


def snakemake_through_slurm(repo: Path, log: Path) -> SlurmRun:
    target = ["reports/tables.md", *SMOKE]
    cmd = slurm_command(BIN / "snakemake", planned_rules(run(["snakemake", "-n", *target], repo).stdout), target)
    with log.open("w") as sink:
        proc = subprocess.Popen(cmd, cwd=repo, env=ENV, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.time() + 1500
        try:
            cancelled = cancel_when_checkpointed(repo, proc, deadline)
            assert proc.wait(timeout=max(1, deadline - time.time())) == 0, log.read_text()[-5000:]
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    return SlurmRun(log.read_text(), cancelled)


@pytest.fixture(scope="session")
def smoke(request, tmp_path_factory):
    """The smoke runs; the SLURM daemons started for them are stopped at the end of the session."""
    through_slurm = request.config.stash.get(THROUGH_SLURM, False)
    started = start_cluster(ROOT) if through_slurm else []
    try:
        yield run_smoke(tmp_path_factory.mktemp("smoke"), through_slurm)
    finally:
        stop_cluster(started)


def run_smoke(base: Path, through_slurm: bool) -> SmokeRuns:
    snake, dvc = copy_repo(base / "snake"), copy_repo(base / "dvc")
    run(["diffrep", "plan", "params/smoke.yaml"], dvc)  # params.yaml and dvc.yaml of the smoke profile
    # side by side: `dvc repro` runs one job at a time, Snakemake two on SLURM or one here (the machine has two cores)
    with (base / "dvc.log").open("w") as sink:
        repro = subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=dvc, stdout=sink, stderr=subprocess.STDOUT, env=ENV)
        try:
            if through_slurm:
                slurm = snakemake_through_slurm(snake, base / "snakemake.log")
            else:
                slurm = None
                run(["snakemake", "--cores", "1", "reports/tables.md", *SMOKE], snake, timeout=1500)
            assert repro.wait(timeout=1500) == 0, (base / "dvc.log").read_text()[-4000:]
        finally:
            if repro.poll() is None:
                repro.terminate()
                repro.wait(timeout=60)
    return SmokeRuns(snake, dvc, (snake / "reports" / "tables.md").read_text(), slurm)
