"""The verdict engine: every claim of the report is decided here, by one rule (issue: verdicts as evidence).

A claim part compares a quantity of A with that of B (`Comparison`, read from `targets.yaml`). The engine takes the
values per unit (per training seed where there are two or more, else per labelled draw, test image or sample split),
paired wherever A and B share the unit, and computes the difference A - B with a 95 % t-interval (paired: over the
differences; unpaired: Welch). The outcome is decided by where that interval lies:

- `higher` / `lower`: **reproduces** when the whole interval is on the claimed side of the margin, **contradicts**
  when it is on the other side of zero, **inconclusive** otherwise;
- `within` (equivalence, two one-sided tests at 5 % each, i.e. the 90 % interval): **reproduces** when the interval
  lies inside (-margin, margin), **contradicts** when it lies wholly outside, **inconclusive** otherwise;
- `not_above` (non-inferiority of a lower-is-better quantity): **reproduces** when the interval ends below the margin,
  **contradicts** when it starts above it.

A claim with several parts reproduces only when every part does (`combine`). With one training seed the interval
covers evaluation noise only, and the record says so.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

REPRODUCES, CONTRADICTS, INCONCLUSIVE, NOT_TESTED = "reproduces", "contradicts", "inconclusive", "not tested"
OUTCOMES = (REPRODUCES, CONTRADICTS, INCONCLUSIVE, NOT_TESTED)
SENSES = ("higher", "lower", "within", "not_above")
LEVEL = 0.95


@dataclass(frozen=True)
class Comparison:
    """One claim part as data: A's `quantity` is `sense` than B's, beyond `margin` (a fraction of |B| when
    `relative`); `alpha` is the error rate of the interval (smaller where the claim picks the best of many)."""

    quantity: str
    sense: str
    margin: float = 0.0
    relative: bool = False
    alpha: float = 1 - LEVEL

    def __post_init__(self):
        if self.sense not in SENSES:
            raise ValueError(f"unknown comparison {self.sense!r}; expected one of {SENSES}")
        if self.sense in ("within", "not_above") and self.margin <= 0:
            raise ValueError(f"a `{self.sense}` comparison needs a positive margin")

    def bound(self, b_mean: float) -> float:
        """The margin in the quantity's units."""
        return self.margin * abs(b_mean) if self.relative else self.margin


@dataclass(frozen=True)
class Record:
    """One decided claim part: the difference A - B, its interval, how many units it rests on, and the outcome."""

    part: str
    outcome: str
    difference: float = math.nan
    low: float = math.nan
    high: float = math.nan
    n: int = 0
    unit: str = ""
    paired: bool = False
    seeds: int = 1
    a: float = math.nan
    b: float = math.nan
    margin: float = 0.0
    sense: str = "higher"
    note: str = ""

    def moved(self, difference: float) -> Record:
        """The same interval around another difference, decided again (a snapshot or a trend's projection)."""
        shift = difference - self.difference
        return decide(replace(self, difference=difference, low=self.low + shift, high=self.high + shift))

    def text(self, digits: int = 3) -> str:
        """The part as the report prints it: A against B, the difference with its interval and n."""
        if self.outcome == NOT_TESTED:
            return f"{self.part}: not tested ({self.note})"
        f = lambda v: f"{v:.{digits}f}"  # noqa: E731
        interval = "no interval" if math.isnan(self.low) else f"[{f(self.low)}, {f(self.high)}]"
        level = "90 %" if self.sense == "within" else "95 %"
        what = f"{self.part}: {f(self.a)} against {f(self.b)}, difference {self.difference:+.{digits}f} {interval}"
        units = self.unit.removesuffix("s") if self.n == 1 else self.unit
        unit = (f"{level}, n = {self.n} {units}, {'paired' if self.paired else 'unpaired'}"
                + (", one training seed: evaluation noise only" if self.seeds < 2 and not math.isnan(self.low) else ""))
        margin = f", margin {f(self.margin)}" if self.margin else ""
        return f"{what} ({unit}{margin}){': ' + self.note if self.note else ''}"


def interval(a: Sequence[float], b: Sequence[float], paired: bool, level: float = LEVEL
             ) -> tuple[float, float, float, int]:
    """Mean difference A - B and its two-sided t-interval at `level`, and n (paired: the differences; else Welch).
    With one value on a side there is no interval (NaN bounds)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired values need the same units on both sides, got {a.shape} and {b.shape}")
        d = a - b
        n, mean = len(d), float(d.mean())
        if n < 2:
            return mean, math.nan, math.nan, n
        se, df = float(d.std(ddof=1)) / math.sqrt(n), n - 1
    else:
        n, mean = min(len(a), len(b)), float(a.mean() - b.mean())
        if n < 2:
            return mean, math.nan, math.nan, n
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else len(a) + len(b) - 2
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return mean, mean - half, mean + half, n


def outcome(low: float, high: float, sense: str, margin: float) -> str:
    """Where the interval lies against the claim (module docstring); no interval: inconclusive."""
    if math.isnan(low) or math.isnan(high):
        return INCONCLUSIVE
    if sense == "lower":
        low, high = -high, -low
    if sense in ("higher", "lower"):
        return REPRODUCES if low > margin else CONTRADICTS if high < 0 else INCONCLUSIVE
    if sense == "within":
        return REPRODUCES if -margin < low and high < margin else (
            CONTRADICTS if low >= margin or high <= -margin else INCONCLUSIVE)
    return REPRODUCES if high < margin else CONTRADICTS if low > margin else INCONCLUSIVE


def decide(record: Record) -> Record:
    """A record with its outcome set from its interval."""
    return replace(record, outcome=outcome(record.low, record.high, record.sense, record.margin))


def judge(part: str, claim: Comparison, a: Sequence[float], b: Sequence[float], *, unit: str, paired: bool,
          seeds: int = 1, note: str = "") -> Record:
    """The engine: one claim part decided from A's and B's values per unit."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a_arr) or not len(b_arr) or np.isnan(a_arr).any() or np.isnan(b_arr).any():
        return not_tested(part, note or "a value is missing or diverged")
    level = 1 - 2 * claim.alpha if claim.sense == "within" else 1 - claim.alpha
    mean, low, high, n = interval(a_arr, b_arr, paired, level)
    return decide(Record(part, INCONCLUSIVE, mean, low, high, n, unit, paired, seeds, float(a_arr.mean()),
                         float(b_arr.mean()), claim.bound(float(b_arr.mean())), claim.sense, note))


def not_tested(part: str, why: str) -> Record:
    """A part the profile cannot decide, and why."""
    return Record(part, NOT_TESTED, note=why)


@dataclass(frozen=True)
class Verdict:
    """A claim's outcome over its parts, the parts themselves, and (where it has curves) whether it is stable."""

    claim: str
    outcome: str
    parts: tuple[Record, ...]
    stability: str = ""
    note: str = ""
    anchor: str = ""

    def __str__(self) -> str:
        return self.line()

    def line(self) -> str:
        """'**outcome** (stable | could change with more training): part; part'."""
        state = f" ({self.stability.split(':')[0]})" if self.stability else ""
        parts = "; ".join(p.text() for p in self.parts)
        failed = [p.part for p in self.parts if p.outcome != REPRODUCES]
        shown = self.outcome in (CONTRADICTS, INCONCLUSIVE) and len(self.parts) > 1
        which = f" [not reproduced: {', '.join(failed)}]" if shown else ""
        anchor = f'<a id="{self.anchor}"></a>' if self.anchor else ""
        return f"{anchor}**{self.outcome}**{state}{which}: {parts}{'; ' + self.note if self.note else ''}"


def combine(claim: str, parts: Sequence[Record], note: str = "") -> Verdict:
    """Every part must reproduce; one contradicting part contradicts the claim; all untested: not tested."""
    outcomes = [p.outcome for p in parts]
    if not parts or all(o == NOT_TESTED for o in outcomes):
        result = NOT_TESTED
    elif CONTRADICTS in outcomes:
        result = CONTRADICTS
    elif all(o == REPRODUCES for o in outcomes):
        result = REPRODUCES
    else:
        result = INCONCLUSIVE
    return Verdict(claim, result, tuple(parts), note=note)
