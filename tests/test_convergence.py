"""Convergence along training: EMA snapshots at log-spaced steps, written again the same after a kill, and the rule
that tells a settled metric from one still moving."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from diffrep import train
from diffrep.config import Config, NetConfig, snapshot_steps
from diffrep.methods.base import RunSpec
from diffrep.methods.run import load_model, snapshot_path, train_run
from diffrep.report.convergence import best_timed_curve, settled


def test_snapshot_steps_are_log_spaced_before_the_end():
    assert snapshot_steps(1000, 4) == (62, 125, 250, 500)
    assert snapshot_steps(3, 3) == (1, 1, 1) and snapshot_steps(100, 0) == ()


def tiny(snapshots: int = 3) -> Config:
    cfg = Config()
    digits = dataclasses.replace(cfg.datasets["digits"], iterations=20, batch_size=16,
                                 net=NetConfig(channels=[8, 16], emb_dim=16, code_hidden=16))
    cfg.datasets = {"digits": digits}
    cfg.train.checkpoint_every, cfg.train.log_every, cfg.train.warmup = 4, 5, 2
    cfg.experiments.fewshot = dataclasses.replace(cfg.experiments.fewshot, snapshots=snapshots)
    return cfg


def digits(n: int = 64):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.arange(n) % 10


def test_snapshots_are_written_at_the_planned_steps_and_again_the_same_after_a_kill(tmp_path, monkeypatch):
    cfg, (x, y) = tiny(), digits()
    spec = RunSpec("digits", "fewshot", "ae")
    train_run(cfg, spec, x, y, tmp_path / "whole")
    steps = [torch.load(snapshot_path(tmp_path / "whole", i), weights_only=False)["step"] for i in range(3)]
    assert steps == [2, 5, 10]
    model, _, _ = load_model(snapshot_path(tmp_path / "whole", 1))  # a snapshot loads like a model
    assert model is not None

    calls, step = {"n": 0}, train.train_step

    def killed_at_7(*args):
        calls["n"] += 1
        if calls["n"] > 7:
            raise KeyboardInterrupt  # after the checkpoint at step 4 and the snapshot at 5
        return step(*args)

    monkeypatch.setattr(train, "train_step", killed_at_7)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, spec, x, y, tmp_path / "killed")
    monkeypatch.setattr(train, "train_step", step)
    train_run(cfg, spec, x, y, tmp_path / "killed")
    for i in range(3):
        a, b = (torch.load(snapshot_path(tmp_path / run, i), weights_only=False) for run in ("whole", "killed"))
        assert a["step"] == b["step"] and all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


def test_a_method_without_snapshots_writes_none(tmp_path):
    cfg, (x, y) = tiny(snapshots=0), digits()
    train_run(cfg, RunSpec("digits", "fewshot", "ae"), x, y, tmp_path / "run")
    assert not (tmp_path / "run" / "snapshots").exists()


@pytest.mark.parametrize("values,spread,state", [
    ([0.50, 0.70, 0.71, 0.71], 0.02, "settled"),      # flat over the last doubling
    ([0.20, 0.35, 0.50, 0.80], 0.02, "still rising"),  # the few-shot curve at 1 000 of 24 000 iterations
    ([0.60, 0.40, 0.62, 0.55], 0.10, "settled"),      # noisy: the change is within the spread
    ([0.90, 0.80, 0.70, 0.60], 0.02, "still falling"),
])
def test_settled_against_hand_made_curves(values, spread, state):
    assert settled(np.array([125, 250, 500, 1000]), np.array(values), spread)[0] == state


def test_settled_needs_a_point_at_half_the_steps():
    assert settled(np.array([1000]), np.array([0.5]), 0.01)[0] == "one point"


def test_the_curve_takes_the_best_t_and_the_best_static_code_per_step():
    rows = [{"step": s, "method": m, "t": t, "labels": 30, "draw": d, "accuracy": a + 0.01 * d}
            for s, scale in ((500, 1.0), (1000, 1.2)) for d in (0, 1)
            for m, t, a in (("drl", 0.0, 0.3 * scale), ("drl", 0.5, 0.5 * scale), ("ae", np.nan, 0.6))]
    curve = best_timed_curve(pd.DataFrame(rows), 30)
    timed = curve[curve["code"] == "best E(x0, t)"]
    assert timed["accuracy"].round(3).tolist() == [0.505, 0.605]
    assert curve[curve["code"] == "best static code"]["accuracy"].round(3).tolist() == [0.605, 0.605]
