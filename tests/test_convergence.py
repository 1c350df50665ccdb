"""Convergence along training: EMA snapshots at log-spaced steps, written again the same after a kill, and the rule
that tells a settled metric from one still moving."""
import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from diffrep import train
from diffrep.config import Config, NetConfig, snapshot_steps
from diffrep.methods.base import RunSpec
from diffrep.methods.run import load_model, snapshot_path, train_run
from diffrep.report import convergence
from diffrep.report.convergence import Budget, best_timed_curve, qualified, settled


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
    shutil.rmtree(tmp_path / "killed" / "snapshots")  # the workflow removes a failed job's outputs before its rerun
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


def _budget(state: str) -> Budget:
    return Budget("the metric", state, "why", 1000)


def test_a_verdict_says_where_its_metric_stands():
    text = "**does not reproduce** here: 0.3 against 0.5."
    assert qualified(text, [_budget("settled"), _budget("still rising")]).startswith(
        "**does not reproduce** at this budget (still rising): ")
    assert qualified(text, [_budget("settled")]).startswith("**does not reproduce** here (settled): ")
    assert qualified("**not tested** here: no runs.", [_budget("still rising")]) == "**not tested** here: no runs."
    assert qualified(text, []) == text


def test_the_sweep_curve_follows_the_peak_over_t_with_the_seed_spread():
    rows = pd.DataFrame([{"experiment": "sweep", "step": s, "train_t": t, "seed": seed,
                          "silhouette": base + (0.2 if t == 0.6 else 0.0) + 0.01 * seed}
                         for s, base in ((250, 0.0), (500, 0.1), (1000, 0.3)) for t in (0.1, 0.6, 1.0)
                         for seed in (0, 1, 2)])
    budgets, drawn = convergence.sweep(rows)
    [b] = budgets["drl-fig11"]
    assert b.state == "still rising" and b.steps == 1000 and "0.310 at step 500, 0.510 at step 1000" in b.why
    assert set(drawn["curve"]) == {"t = 0.1", "t = 0.6", "t = 1.0"}


def test_the_table3_curve_is_the_verdicts_fid_ratio():
    rows = pd.DataFrame([{"experiment": "generation", "step": s, "t_init": t, "prior": p, "fid": fid}
                         for s, scale in ((50, 2.0), (100, 1.0)) for t, p, fid in
                         ((0.7, "uniform+gaussian", 11.0), (1.0, "gaussian", 10.0 * scale), (1.0, "uniform+gaussian", 12.0))])
    [b] = convergence.tinit(rows)[0]["drl-table3"]
    assert "1.100 at step 100" in b.why and "0.917 at step 50" in b.why and b.state == "still rising"


def test_the_table2_curve_divides_each_fid_by_p_kl_1s():
    rows = pd.DataFrame([{"experiment": "adversarial", "step": s, "p_kl": p, "fid": fid}
                         for s in (150, 300) for p, fid in ((0.5, 9.0), (1.0, 10.0))])
    [b] = convergence.adversarial(rows)[0]["drl-table2"]
    assert b.state == "settled" and "0.900 at step 150, 0.900 at step 300" in b.why


def test_the_latent_curves_follow_each_method_and_the_sigma_focus_gain():
    runs = {"latent-drl-uniform_t": [0.0, 0.1], "latent-drl-uniform_sigma": [0.0, 0.3],
            "latent-vdrl-uniform_t": [0.2, 0.2], "latent-vdrl-uniform_sigma": [0.25, 0.25]}
    rows = pd.DataFrame([{"experiment": "latent", "step": s, "run": r, "silhouette": v[i]}
                         for r, v in runs.items() for i, s in enumerate((500, 1000))])
    budgets, _ = convergence.latent(rows)
    assert [b.state for b in budgets["drl-fig2"]] == ["still rising", "settled"]
    assert [b.state for b in budgets["drl-fig3"]] == ["still rising", "settled"]  # DRL: 0.0 -> 0.2; VDRL 0.05 flat



def test_the_nelbo_curves_go_to_their_tables_with_the_standard_error_as_spread():
    """LSGM: gray-level runs qualify Table 2, binarized ones Tables 4, 5; a fall within the standard error is settled;
    the figure draws a binarized run's nats per image in bits/dim."""
    runs = {"lsgm-vp-ll_iw-rew": ("bits/dim", [2.50, 2.10], 0.05), "lsgm-vae": ("bits/dim", [2.30, 2.28], 0.05),
            "lsgm-vp-ll_iw-rew-binary": ("nats", [30.0, 29.9], 0.4)}
    rows = pd.DataFrame([{"experiment": "lsgm", "step": s, "run": r, "nelbo": v[i], "nelbo_se": se, "units": u, "dims": 64}
                         for r, (u, v, se) in runs.items() for i, s in enumerate((500, 1000))])
    budgets, drawn = convergence.nelbo(rows)
    assert [b.state for b in budgets["lsgm-table2"]] == ["still falling", "settled"]
    assert [b.state for b in budgets["lsgm-table4"]] == ["settled"] and "(nats)" in budgets["lsgm-table4"][0].what
    binary = drawn[drawn["curve"] == "lsgm-vp-ll_iw-rew-binary"]["NELBO (bits/dim)"]
    assert np.allclose(binary, np.array([30.0, 29.9]) / (64 * np.log(2)))
