"""The training loop: exact resume after kill -9, non-finite losses, corrupt checkpoints, config errors."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from diffrep.train import CheckpointError, NonFiniteLossError, Schedule, fit, new_state

SCRIPT = r"""
import logging, sys, torch
from pathlib import Path
logging.basicConfig(level=logging.INFO)
from diffrep.train import Schedule, fit, new_state
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(16, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256), torch.nn.Tanh(), torch.nn.Linear(256, 16))
data = torch.randn(512, 16, generator=torch.Generator().manual_seed(1))
def loss(m, x, g):
    noise = torch.randn(x.shape, generator=g)
    return (m(x + noise) - x).pow(2).sum(1)
sched = Schedule(iterations=int(sys.argv[2]), batch_size=64, lr=1e-3, warmup=10, grad_clip=1.0, ema=0.9,
                 checkpoint_every=25, log_every=10, seed=0)
state = fit(new_state(model, model.parameters(), sched), loss, data, sched, Path(sys.argv[1]), "fp")
torch.save({"model": state.model.state_dict(), "ema": state.ema.state_dict()}, Path(sys.argv[1]) / "final.pt")
"""


def run_script(out: Path, iterations: int, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out), str(iterations)],
                            stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def test_kill_9_then_resume_gives_identical_weights_and_metrics(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_script(whole, 1000).wait(timeout=300) == 0
    proc = run_script(killed, 1000)
    deadline = time.time() + 120
    while not (killed / "ckpt.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "ckpt.pt").exists() and not (killed / "final.pt").exists(), "kill came too late to test resume"
    kept = torch.load(killed / "ckpt.pt", weights_only=False)["step"]
    rerun = run_script(killed, 1000, stderr=subprocess.PIPE)
    _, log = rerun.communicate(timeout=300)
    assert rerun.returncode == 0
    assert f"at step {kept}" in log and "resumed" in log and kept > 0, "a restart from step 0 would give these weights too"
    a, b = torch.load(whole / "final.pt"), torch.load(killed / "final.pt")
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert (whole / "metrics.csv").read_text() == (killed / "metrics.csv").read_text()
    assert not [p for p in killed.iterdir() if p.name.endswith(".tmp")]


def tiny(tmp_path, loss, iterations=30):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 4)
    sched = Schedule(iterations, 8, 1e-2, 0, 1.0, 0.9, 10, 5, 0)
    return fit(new_state(model, model.parameters(), sched), loss, torch.randn(64, 4), sched, tmp_path, "fp")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def loss(m, x, g):
        calls["n"] += 1
        value = m(x).pow(2).sum(1)
        return value * float("nan") if calls["n"] == 17 else value

    with pytest.raises(NonFiniteLossError, match="non-finite loss.*step 17.*last good checkpoint kept"):
        tiny(tmp_path, loss)
    assert torch.load(tmp_path / "ckpt.pt", weights_only=False)["step"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "metrics.csv"], "no partial file is left"


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(tmp_path):
    loss = lambda m, x, g: m(x).pow(2).sum(1)
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        tiny(tmp_path, loss)
    (tmp_path / "ckpt.pt").unlink()
    tiny(tmp_path, loss, iterations=10)
    model = torch.nn.Linear(4, 4)
    sched = Schedule(20, 8, 1e-2, 0, 1.0, 0.9, 10, 5, 0)
    with pytest.raises(CheckpointError, match="another configuration"):
        fit(new_state(model, model.parameters(), sched), loss, torch.randn(64, 4), sched, tmp_path, "other")


def test_a_resume_removes_the_half_written_files_of_the_killed_run(tmp_path):
    """SIGKILL during an atomic write leaves its temporary file (no cleanup runs); the resumed run deletes it."""
    loss = lambda m, x, g: (m(x) - x).pow(2).sum(1)  # noqa: E731
    tiny(tmp_path, loss, iterations=10)
    orphan = tmp_path / ".metrics.csv.abc123.tmp"
    orphan.write_text("partial")
    tiny(tmp_path, loss, iterations=20)
    assert not orphan.exists() and (tmp_path / "metrics.csv").is_file()
