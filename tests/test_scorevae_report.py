"""The ScoreVAE report section: its table and verdicts from a results file, and its figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from diffrep.report.scorevae import (
    FLOORS,
    ROWS,
    perceptual_metric,
    reconstruction_figure,
    table,
    verdicts,
)


def _scores(perceptual: dict[str, float], l2: dict[str, float], metric: str = "classifier_features",
            spread: float = 0.01, seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """Per-seed scores: a seed effect shared by every method (`spread` per seed) and a little noise of each method's
    own (0 to 0.002), so that paired differences vary."""
    rows = [{"method": m, "seed": s, "metric": name, "value": v + spread * s + 0.001 * ((i + s) % 3)}
            for name, values in (("l2", l2), (metric, perceptual)) for i, (m, v) in enumerate(values.items())
            for s in seeds]
    return pd.DataFrame(rows)


PAPER_LIKE = {"beta_vae": 0.27, "scorevae": 0.125, "scorevae_plus": 0.119, "diffdecoder": 0.56, "diffdecoder_b0": 0.13}
CELEBA_L2 = {"beta_vae": 6.9, "scorevae": 7.3, "scorevae_plus": 7.2, "diffdecoder": 40, "diffdecoder_b0": 8.6}


def test_verdicts_reproduce_on_paper_like_numbers():
    """CelebA-like numbers reproduce Table 2 on faces; Table 1 is then not tested."""
    v = verdicts(_scores(PAPER_LIKE, CELEBA_L2), "celeba64")
    assert v["scorevae-table2"].outcome == "reproduces", v["scorevae-table2"]
    assert [p.outcome for p in v["scorevae-table2"].parts] == ["reproduces"] * 4
    assert v["scorevae-table1"].outcome == "not tested" and "(celeba64) stands for CelebA 64x64" in str(
        v["scorevae-table1"])
    vae = v["scorevae-table2"].parts[0]
    assert vae.b == pytest.approx(0.27 + 0.01 + 0.001), "the perceptual part reads the classifier's feature distance"


def test_a_shared_seed_effect_cancels_but_disagreeing_seeds_do_not_count():
    """ScoreVAE+ 0.006 below ScoreVAE while the seeds move both by 0.01 each: paired, that is a clear difference;
    when one seed puts ScoreVAE+ above ScoreVAE, it is not."""
    scores = _scores(PAPER_LIKE, {m: 3.0 for m in PAPER_LIKE})
    assert verdicts(scores, "digits")["scorevae-table1"].parts[2].outcome == "reproduces"
    flip = (scores["method"] == "scorevae_plus") & (scores["seed"] == 2) & (scores["metric"] != "l2")
    scores.loc[flip, "value"] += 0.02
    plus = verdicts(scores, "digits")["scorevae-table1"].parts[2]
    assert plus.part == "ScoreVAE+" and plus.outcome == "inconclusive"


def test_verdicts_fail_and_untested():
    flipped = {**PAPER_LIKE, "scorevae": 0.3, "diffdecoder": 0.1}
    scores = _scores(flipped, {m: 3.0 for m in flipped})
    v = verdicts(scores[scores["method"] != "scorevae_plus"], "digits")["scorevae-table1"]
    assert v.outcome == "contradicts"
    assert [p.outcome for p in v.parts] == ["contradicts", "inconclusive", "not tested", "contradicts"]
    assert v.parts[2].text() == "ScoreVAE+: not tested (scorevae_plus not run)"


def test_table_holds_ours_and_the_papers_numbers():
    scores = _scores(PAPER_LIKE, {m: 3.0 for m in PAPER_LIKE}, metric="lpips_authors")
    assert perceptual_metric(scores) == "lpips_authors"
    metrics, rows = table(scores)
    assert metrics == ["l2", "lpips_authors"]
    vae = rows[0]
    assert vae["method"] == ROWS["beta_vae"] and vae["seeds"] == 3
    assert vae["ours"] == ["3.011 ± 0.011", "0.281 ± 0.011"] and vae["paper"] == ["3.41", "0.269", "6.97", "0.217"]
    assert [r["method"] for r in rows[len(ROWS):]] == list(FLOORS.values())
    assert all(r["ours"] == ["not run"] * 2 and r["paper"] == ["–"] * 4 for r in rows[len(ROWS):])


def test_reconstruction_figure(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    x0 = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    for m in ROWS:
        for s in (1, 0):
            np.savez(rec / f"{m}-s{s}.npz", x0=x0, x_hat=x0[::-1], method=m, seed=s, steps=3)
    reconstruction_figure(rec, 4, "t", tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
