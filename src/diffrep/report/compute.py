"""What a run cost, for the report's "Compute" line: the jobs' time per paper and the wall time during which a job
ran, read from Snakemake's benchmark files (one per job), and the machine that wrote the report."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd
import torch

# a job's paper by its rule's name (the benchmark file is named <rule>_<dataset>[_<run>].tsv); the rest is DRL's
PAPERS = (("lsgm", "LSGM"), ("scorevae", "ScoreVAE"), ("representations", "the representation table"))


def paper_of(job: str) -> str:
    return next((paper for key, paper in PAPERS if key in job), "DRL")


def machine() -> str:
    """The machine this runs on: CPU cores and processor, and the GPU torch sees."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({processor()}), {gpu}, torch {torch.__version__}"


def processor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name, family and model where Linux tells them (machines sold under one name differ severalfold
    in speed: bench/README.md), else what `platform` knows."""
    first = cpuinfo.read_text().split("\n\n")[0] if cpuinfo.is_file() else ""
    info = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}
    if "model name" not in info:
        return platform.processor() or platform.machine()
    return f"{info['model name']}, family {info.get('cpu family', '?')} model {info.get('model', '?')}"


def summary(benchmarks: Path) -> str:
    """Jobs, job time per paper and wall time of the run whose benchmark files are in `benchmarks` (the report's own
    job left out: it is the one writing this)."""
    files = [p for p in sorted(benchmarks.glob("*.tsv")) if p.stem != "report"]
    if not files:
        return f"not recorded (no Snakemake benchmark files in `{benchmarks}`; `dvc repro` writes none)"
    jobs = pd.DataFrame([{"paper": paper_of(p.stem), "seconds": float(pd.read_csv(p, sep="\t")["s"].iloc[-1]),
                          "end": p.stat().st_mtime} for p in files])
    busy = busy_seconds(list(zip(jobs["end"] - jobs["seconds"], jobs["end"], strict=True)))
    per = jobs.groupby("paper", sort=False)["seconds"].sum().sort_values(ascending=False)
    papers = ", ".join(f"{paper} {seconds / 60:.1f}" for paper, seconds in per.items())
    return (f"{len(jobs)} jobs, {jobs['seconds'].sum() / 60:.1f} minutes of job time ({papers}), "
            f"{busy / 60:.1f} minutes of wall time with a job running (Snakemake's benchmark files, `{benchmarks}`; "
            f"a run resumed or extended later counts its sittings' time, not the pauses between them); the report "
            f"written on {machine()}")


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """The time covered by at least one of the (start, end) intervals."""
    total, reach = 0.0, -float("inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
