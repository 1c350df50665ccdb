"""The scoreboard at the top of every report: per paper the counts of each outcome, then one line per claim (ours with
its interval, outcome, stability) linking to its section; beside another profile's report, that report's outcome and
what changed (issue: verdicts as evidence)."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict

from diffrep.report.targets import target
from diffrep.report.verdicts import OUTCOMES, Verdict

NO_CURVE = "no curve"


def stability_word(v: Verdict) -> str:
    """The first words of a verdict's stability line ("stable", "could change with more training", ...)."""
    return v.stability.split(":")[0] if v.stability else NO_CURVE


def to_json(records: list[tuple[str, Verdict]]) -> list[dict]:
    """Every verdict of a report as plain data (`verdicts.json`): the scoreboard of a later report reads it."""
    return [{"dataset": dataset, "claim": v.claim, "paper": target(v.claim).paper, "ref": target(v.claim).ref,
             "outcome": v.outcome, "stability": stability_word(v),
             "parts": [{k: val for k, val in asdict(p).items() if k != "note"} for p in v.parts]}
            for dataset, v in records]


def _interval(v: Verdict) -> str:
    """Ours, shortly: each decided part's difference and interval."""
    shown = [f"{p.part}: " + (p.note or p.outcome if math.isnan(p.difference) else f"{p.difference:+.3f} "
                               + ("(no interval)" if math.isnan(p.low) else f"[{p.low:.3f}, {p.high:.3f}]"))
             for p in v.parts if p.outcome != "not tested"]
    return "; ".join(shown) or "–"


def board(records: list[tuple[str, Verdict]], earlier: list[dict] | None = None, earlier_name: str = "") -> dict:
    """Counts per paper and outcome, one row per claim, and (beside an earlier report) the claims whose outcome
    changed."""
    before = {(r["dataset"], r["claim"]): r["outcome"] for r in earlier or []}
    counts = {}
    for _, v in records:
        counts.setdefault(target(v.claim).paper, Counter())[v.outcome] += 1
    rows = [{"paper": target(v.claim).paper, "claim": target(v.claim).ref, "anchor": v.anchor, "dataset": dataset,
             "ours": _interval(v), "outcome": v.outcome, "stability": stability_word(v),
             "before": before.get((dataset, v.claim), "–")} for dataset, v in records]
    changed = [r for r in rows if earlier is not None and r["before"] != r["outcome"]]
    return {"outcomes": OUTCOMES, "counts": {p: [c[o] for o in OUTCOMES] for p, c in counts.items()}, "rows": rows,
            "earlier": earlier is not None, "earlier_name": earlier_name, "changed": changed}
