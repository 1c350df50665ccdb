"""The ScoreVAE section: Tables 1, 2 (L2 and the perceptual distance per method, mean ± std over seeds, the paper's
numbers beside ours), the reconstructions side by side (Tables 3-6) and the verdicts of sec. 4."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diffrep.config import Config
from diffrep.evaluate.reconstruction import METRIC_NAMES, RESIZE_NOTE
from diffrep.report import figures, targets
from diffrep.report.verdicts import Record, Verdict, combine, judge, not_tested

# our method -> the paper's row in Tables 1, 2
ROWS = {"beta_vae": "VAE (beta 0.01)", "scorevae": "ScoreVAE (beta 0.01)", "scorevae_plus": "ScoreVAE+ (beta 0.01)",
        "diffdecoder": "DiffDecoder (beta 0.01)", "diffdecoder_b0": "DiffDecoder (beta 0)"}
# the reference reconstructions that use no model (`evaluate.reconstruction.floors`) -> their rows
FLOORS = {"floor_random": "reference: a random other test image", "floor_class_mean": "reference: the class-mean image",
          "floor_nearest_train": "reference: the nearest training image"}
PAPER_TABLES = {"CIFAR-10": "scorevae-table1", "CelebA 64x64": "scorevae-table2"}
# the paper's data each dataset that runs ScoreVAE stands for: natural or digit images CIFAR-10, faces CelebA
STANDS_FOR = {"digits": "CIFAR-10", "mnist": "CIFAR-10", "cifar10": "CIFAR-10", "celeba64": "CelebA 64x64",
              "celebahq256": "CelebA 64x64"}
# a claim's parts (the comparisons in targets.yaml): the part's name, A and B
PARTS = {"perceptual": ("perceptual distance", "scorevae", "beta_vae"), "l2": ("L2", "scorevae", "beta_vae"),
         "plus": ("ScoreVAE+", "scorevae_plus", "scorevae"),
         "diffdecoder": ("DiffDecoder beta = 0.01 fails", "diffdecoder", "diffdecoder_b0")}
LABELS = {"l2": "L2", "lpips": "LPIPS, [-1, 1] inputs", "lpips_authors": "LPIPS, [0, 1] inputs (authors')",
          "classifier_features": "classifier feature distance"}


def perceptual_metric(scores: pd.DataFrame) -> str:
    """LPIPS in the authors' protocol where VGG weights were found, else the domain classifier's feature distance."""
    return "lpips_authors" if "lpips_authors" in set(scores["metric"]) else "classifier_features"


def _fmt(values: pd.Series, floor: float = np.inf) -> str:
    """Mean ± std over seeds, noted when the mean is above (worse than) `floor`."""
    text = f"{values.mean():.3f}" if len(values) < 2 else f"{values.mean():.3f} ± {values.std():.3f}"
    return text + (" (above the class-mean floor)" if values.mean() > floor else "")


def _paper(method: str) -> list[str]:
    """The paper's L2 and LPIPS of a method in Tables 1, 2; "–" for a reference row (not in the paper)."""
    if method not in ROWS:
        return ["–"] * 2 * len(PAPER_TABLES)
    return [f"{v:g}" for t in PAPER_TABLES.values() for v in targets.target(t).values["rows"][ROWS[method]]]


def table(scores: pd.DataFrame) -> tuple[list[str], list[dict]]:
    """Our metrics (mean ± std over seeds) and the paper's L2, LPIPS of Tables 1, 2, a row per method, then the
    reference rows (no model). A model whose mean is above the class-mean reference's is noted."""
    metrics = [m for m in METRIC_NAMES if m in set(scores["metric"])]
    by_metric = {m: scores[scores["metric"] == m] for m in metrics}
    floor = {m: s[s["method"] == "floor_class_mean"]["value"].mean() for m, s in by_metric.items()}
    rows = []
    for method, row in {**ROWS, **FLOORS}.items():
        ours = {m: s[s["method"] == method]["value"] for m, s in by_metric.items()}
        bound = floor if method in ROWS else {}
        rows.append({"method": row, "seeds": scores[scores["method"] == method]["seed"].nunique(),
                     "ours": [_fmt(v, bound.get(m, np.inf)) if len(v) else "not run" for m, v in ours.items()],
                     "paper": _paper(method)})
    return metrics, rows


def per_seed(scores: pd.DataFrame, metric: str, method: str) -> pd.Series:
    """A method's value of a metric, indexed by seed."""
    return scores[(scores["metric"] == metric) & (scores["method"] == method)].set_index("seed")["value"]


def claim_part(scores: pd.DataFrame, target_id: str, key: str) -> Record:
    """One part of ScoreVAE Table 1 or 2 (`PARTS`), paired over seeds (every method reconstructs the same test
    images, and ScoreVAE+ of seed s corrects ScoreVAE of seed s)."""
    name, a, b = PARTS[key]
    missing = [m for m in (a, b) if m not in set(scores["method"])]
    if missing:
        return not_tested(name, f"{', '.join(missing)} not run")
    metric = "l2" if key == "l2" else perceptual_metric(scores)
    both = pd.concat([per_seed(scores, metric, a), per_seed(scores, metric, b)], axis=1, join="inner")
    return judge(name, targets.target(target_id).comparison(key), both.iloc[:, 0], both.iloc[:, 1], unit="seeds",
                 paired=True, seeds=len(both))


def stands_for(dataset: str) -> str:
    """The paper's data (a key of `PAPER_TABLES`) that a dataset stands for."""
    return STANDS_FOR.get(dataset, "neither paper table")


def verdicts(scores: pd.DataFrame, dataset: str) -> dict[str, Verdict]:
    """The verdicts of ScoreVAE Tables 1 (CIFAR-10) and 2 (CelebA 64x64), by target id: the table whose data the
    dataset stands for (`STANDS_FOR`) is decided, the other is not tested."""
    why = f"the profile's data ({dataset}) stands for {stands_for(dataset)}"
    return {t: combine(t, [claim_part(scores, t, key) for key in PARTS] if data == stands_for(dataset)
                       else [not_tested(data, why)]) for data, t in PAPER_TABLES.items()}


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
    return {"metrics": [LABELS[m] for m in metrics], "rows": rows, "verdicts": verdicts(scores, name),
            "stands_for": stands_for(name),
            "perceptual": METRIC_NAMES[perceptual], "resize": RESIZE_NOTE if perceptual.startswith("lpips") else "",
            "images": int(scores["images"].iloc[0]), "figure": rel(path), "paper": list(PAPER_TABLES)}
