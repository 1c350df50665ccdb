"""Shared fixtures: a clean copy of the repository for pipeline runs, and the smoke profile run once per session."""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", ".snakemake", "data", "models", "results", "logs", "benchmarks",
                              "params.yaml", "__pycache__", "*.egg-info", ".pytest_cache", "dvc.lock", "tmp", "cache")
BIN = Path(sys.executable).parent
# the rules call `diffrep`; DVC must not try to reach the network
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1"}
SMOKE = ["--configfile", "params/smoke.yaml"]


def copy_repo(dest: Path) -> Path:
    """The project's files, without outputs of earlier runs, as a fresh git + DVC repository."""
    shutil.copytree(ROOT, dest, ignore=SKIP)
    shutil.rmtree(dest / "reports" / "figures", ignore_errors=True)
    (dest / "reports" / "tables.md").unlink(missing_ok=True)
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
    """The smoke profile run once through Snakemake and once through `dvc repro`, each in its own copy."""

    snake: Path
    dvc: Path
    report: str  # reports/tables.md of the Snakemake run, as it was written


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SmokeRuns:
    base = tmp_path_factory.mktemp("smoke")
    snake, dvc = copy_repo(base / "snake"), copy_repo(base / "dvc")
    run(["diffrep", "resolve", "params/smoke.yaml", "-o", "params.yaml"], dvc)
    # one core each, side by side: the two runs share the machine's two cores
    procs = [subprocess.Popen([str(BIN / "snakemake"), "--cores", "1", "reports/tables.md", *SMOKE], cwd=snake,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV),
             subprocess.Popen([str(BIN / "dvc"), "repro"], cwd=dvc, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=ENV)]
    for p in procs:
        out, _ = p.communicate(timeout=1200)
        assert p.returncode == 0, out[-4000:]
    return SmokeRuns(snake, dvc, (snake / "reports" / "tables.md").read_text())
