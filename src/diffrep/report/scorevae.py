"""The ScoreVAE section: Tables 1, 2 (L2 and the perceptual distance per method, mean ± std over seeds, the paper's
numbers beside ours), the reconstructions side by side (Tables 3-6) and the verdicts of sec. 4."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config
from diffrep.evaluate.reconstruction import METRIC_NAMES, RESIZE_NOTE
from diffrep.report import figures, targets
from diffrep.report.verdicts import verdict

# our method -> the paper's row in Tables 1, 2
ROWS = {"beta_vae": "VAE (beta 0.01)", "scorevae": "ScoreVAE (beta 0.01)", "scorevae_plus": "ScoreVAE+ (beta 0.01)",
        "diffdecoder": "DiffDecoder (beta 0.01)", "diffdecoder_b0": "DiffDecoder (beta 0)"}
PAPER_TABLES = {"CIFAR-10": "scorevae-table1", "CelebA 64x64": "scorevae-table2"}
LABELS = {"l2": "L2", "lpips": "LPIPS, [-1, 1] inputs", "lpips_authors": "LPIPS, [0, 1] inputs (authors')",
          "classifier_features": "classifier feature distance"}


def perceptual_metric(scores: pd.DataFrame) -> str:
    """LPIPS in the authors' protocol where VGG weights were found, else the domain classifier's feature distance."""
    return "lpips_authors" if "lpips_authors" in set(scores["metric"]) else "classifier_features"


def _fmt(values: pd.Series) -> str:
    std = values.std()
    return f"{values.mean():.3f}" if len(values) < 2 else f"{values.mean():.3f} ± {std:.3f}"


def table(scores: pd.DataFrame) -> tuple[list[str], list[dict]]:
    """Our metrics (mean ± std over seeds) and the paper's L2, LPIPS of both tables, a row per method."""
    metrics = [m for m in METRIC_NAMES if m in set(scores["metric"])]
    rows = []
    for method, row in ROWS.items():
        ours = scores[scores["method"] == method]
        paper = {name: targets.target(t).values["rows"][row] for name, t in PAPER_TABLES.items()}
        rows.append({"method": row, "seeds": ours["seed"].nunique(),
                     "ours": [_fmt(ours[ours["metric"] == m]["value"]) if len(ours) else "not run" for m in metrics],
                     "paper": [f"{v:g}" for name in PAPER_TABLES for v in paper[name]]})
    return metrics, rows


def _untested(why: str) -> str:
    return f"**not tested** here: {why}."


def clearly_below(scores: pd.DataFrame, metric: str, a: str, b: str) -> bool:
    """Method a's mean over seeds is below b's by more than the larger std over seeds of the two, and at least
    `margin` of b's (one seed has no spread): a difference within the seeds' noise does not count."""
    values = scores[scores["metric"] == metric].groupby("method")["value"]
    mean, std = values.mean(), values.std().fillna(0.0)
    gap = max(std[a], std[b], targets.threshold("scorevae-table1", "margin") * abs(mean[b]))
    return bool(mean[a] < mean[b] - gap)


def verdicts(scores: pd.DataFrame) -> dict[str, str]:
    """ScoreVAE vs beta-VAE (perceptual), DiffDecoder beta 0.01 vs 0, ScoreVAE+ vs ScoreVAE, beta-VAE vs ScoreVAE (L2)."""
    metric = perceptual_metric(scores)
    mean = scores.groupby(["metric", "method"])["value"].mean()
    have = set(scores["method"])
    p, l2 = (lambda m: mean[(metric, m)]), (lambda m: mean[("l2", m)])
    ratio = targets.threshold("scorevae-table1", "fail_ratio")
    below = partial(clearly_below, scores)

    def judge(methods, ok, why):
        missing = [m for m in methods if m not in have]
        return _untested(f"{', '.join(missing)} not run") if missing else verdict(ok(), why())

    name = metric.replace("_", " ")
    return {
        "vae": judge(("scorevae", "beta_vae"), lambda: below(metric, "scorevae", "beta_vae"),
                     lambda: f"{name} ScoreVAE {p('scorevae'):.3f} against beta-VAE {p('beta_vae'):.3f}"),
        "diffdecoder": judge(("diffdecoder", "diffdecoder_b0"), lambda: p("diffdecoder") > ratio * p("diffdecoder_b0"),
                             lambda: f"{name} DiffDecoder beta = 0.01 {p('diffdecoder'):.3f} against beta = 0 "
                                     f"{p('diffdecoder_b0'):.3f} (fails if above {ratio:g} times)"),
        "plus": judge(("scorevae_plus", "scorevae"), lambda: below(metric, "scorevae_plus", "scorevae"),
                      lambda: f"{name} ScoreVAE+ {p('scorevae_plus'):.3f} against ScoreVAE {p('scorevae'):.3f}"),
        "l2": judge(("beta_vae", "scorevae"), lambda: not below("l2", "scorevae", "beta_vae"),
                    lambda: f"L2 beta-VAE {l2('beta_vae'):.3f} against ScoreVAE {l2('scorevae'):.3f} "
                            "(the CelebA direction: ScoreVAE not clearly lower)"),
    }


def _uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def reconstruction_figure(recon: Path, n: int, title: str, path: Path) -> None:
    """Originals, then each method's reconstructions of the same test images (first seed), a row each."""
    runs = {p.stem: np.load(p) for p in sorted(recon.glob("*.npz"))}
    first = {}
    for run in sorted(runs, key=lambda r: int(runs[r]["seed"])):
        first.setdefault(str(runs[run]["method"]), runs[run])
    panels = [("originals", _uint8(next(iter(first.values()))["x0"][:n]))]
    panels += [(ROWS[m], _uint8(first[m]["x_hat"][:n])) for m in ROWS if m in first]
    figures.sample_grids(panels, 1, title, path, per_panel=n, nrow=n, panel_size=(0.45 * n, 0.75))


def section(cfg: Config, name: str, res: Path, figdir: Path, rel) -> dict:
    """The report's ScoreVAE part of one dataset."""
    ex = cfg.experiments.scorevae
    scores = pd.read_csv(res / "scorevae.csv")
    metrics, rows = table(scores)
    path = figdir / f"{name}_scorevae_reconstructions.png"
    reconstruction_figure(res / "scorevae", ex.figure_images, f"{name}: test images, then reconstructions", path)
    perceptual = perceptual_metric(scores)
    return {"metrics": [LABELS[m] for m in metrics], "rows": rows, "verdicts": verdicts(scores),
            "perceptual": METRIC_NAMES[perceptual], "resize": RESIZE_NOTE if perceptual.startswith("lpips") else "",
            "images": int(scores["images"].iloc[0]), "figure": rel(path), "paper": list(PAPER_TABLES)}
