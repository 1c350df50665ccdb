"""Shared fixtures: a clean copy of the repository for pipeline runs."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", ".snakemake", "data", "models", "results", "logs", "benchmarks",
                              "params.yaml", "__pycache__", "*.egg-info", ".pytest_cache", "dvc.lock", "tmp", "cache")


def copy_repo(dest: Path) -> Path:
    """The project's files, without outputs of earlier runs, as a fresh git + DVC repository."""
    shutil.copytree(ROOT, dest, ignore=SKIP)
    shutil.rmtree(dest / "reports" / "figures", ignore_errors=True)
    (dest / "reports" / "tables.md").unlink(missing_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")
