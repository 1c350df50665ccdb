"""The ScoreVAE report section: its table and verdicts from a results file, and its figure."""
from __future__ import annotations

import numpy as np
import pandas as pd

from diffrep.report.scorevae import (
    ROWS,
    perceptual_metric,
    reconstruction_figure,
    table,
    verdicts,
)


def _scores(perceptual: dict[str, float], l2: dict[str, float], metric: str = "classifier_features",
            spread: float = 0.01) -> pd.DataFrame:
    rows = [{"method": m, "seed": s, "metric": name, "value": v + spread * s}
            for name, values in (("l2", l2), (metric, perceptual)) for m, v in values.items() for s in (0, 1)]
    return pd.DataFrame(rows)


PAPER_LIKE = {"beta_vae": 0.27, "scorevae": 0.125, "scorevae_plus": 0.119, "diffdecoder": 0.56, "diffdecoder_b0": 0.13}


def test_verdicts_reproduce_on_paper_like_numbers():
    scores = _scores(PAPER_LIKE, {"beta_vae": 6.9, "scorevae": 7.3, "scorevae_plus": 7.2, "diffdecoder": 40,
                                  "diffdecoder_b0": 8.6}, spread=0.001)
    v = verdicts(scores)
    assert all(line.startswith("**reproduces** here:") for line in v.values()), v
    assert "classifier features" in v["vae"]


def test_a_difference_within_the_seeds_spread_does_not_count():
    """ScoreVAE+ 0.006 below ScoreVAE while the seeds spread by 0.007: a tie, so the claim does not reproduce."""
    v = verdicts(_scores(PAPER_LIKE, {m: 3.0 for m in PAPER_LIKE}, spread=0.01))
    assert v["plus"].startswith("**does not reproduce**") and v["vae"].startswith("**reproduces**")


def test_verdicts_fail_and_untested():
    flipped = {**PAPER_LIKE, "scorevae": 0.3, "diffdecoder": 0.15}
    scores = _scores(flipped, {m: 3.0 for m in flipped})
    v = verdicts(scores[scores["method"] != "scorevae_plus"])
    assert v["vae"].startswith("**does not reproduce**") and v["diffdecoder"].startswith("**does not reproduce**")
    assert v["plus"] == "**not tested** here: scorevae_plus not run."


def test_table_holds_ours_and_the_papers_numbers():
    scores = _scores(PAPER_LIKE, {m: 3.0 for m in PAPER_LIKE}, metric="lpips_authors")
    assert perceptual_metric(scores) == "lpips_authors"
    metrics, rows = table(scores)
    assert metrics == ["l2", "lpips_authors"]
    vae = rows[0]
    assert vae["method"] == ROWS["beta_vae"] and vae["seeds"] == 2
    assert vae["ours"] == ["3.005 ± 0.007", "0.275 ± 0.007"] and vae["paper"] == ["3.41", "0.269", "6.97", "0.217"]


def test_reconstruction_figure(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    x0 = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    for m in ROWS:
        for s in (1, 0):
            np.savez(rec / f"{m}-s{s}.npz", x0=x0, x_hat=x0[::-1], method=m, seed=s, steps=3)
    reconstruction_figure(rec, 4, "t", tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
