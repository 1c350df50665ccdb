"""The papers' targets (`targets.yaml`): the paper's side of every table and figure, and which a profile covers."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml

from diffrep.config import Config
from diffrep.report.verdicts import Comparison

OUTSIDE_HEADING = "Targets outside this profile"


@dataclass
class Target:
    """One table or figure claim of a paper, the rule that decides our verdict, and the experiment that makes it."""

    id: str
    paper: str
    ref: str
    experiment: str
    claim: str
    rule: str
    thresholds: dict[str, float] = field(default_factory=dict)
    compare: dict[str, dict] = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    outside: str = ""

    @property
    def name(self) -> str:
        return f"{self.paper} {self.ref}"

    def comparison(self, key: str) -> Comparison:
        """How one part of the claim compares A with B (`compare` in targets.yaml), fixed before any result."""
        if key not in self.compare:
            raise KeyError(f"target {self.id!r} has no comparison {key!r} in targets.yaml")
        return Comparison(**self.compare[key])


@cache
def all_targets() -> tuple[Target, ...]:
    """Every target, in the file's order (the report's order within a section)."""
    text = resources.files("diffrep.report").joinpath("targets.yaml").read_text()
    return tuple(Target(**entry) for entry in yaml.safe_load(text)["targets"])


def target(target_id: str) -> Target:
    hits = [t for t in all_targets() if t.id == target_id]
    if not hits:
        raise KeyError(f"no target {target_id!r} in targets.yaml")
    return hits[0]


def threshold(target_id: str, name: str) -> float:
    """A number the verdict of a target is decided by."""
    return target(target_id).thresholds[name]


def outside_reason(t: Target, cfg: Config) -> str | None:
    """Why the profile leaves `t` out, or None when it covers it."""
    block = getattr(cfg.experiments, t.experiment, None)
    if block is None or not block.datasets:
        return t.outside or f"the profile runs no `{t.experiment}` experiment"
    settings = getattr(block, "settings", [])
    # A setting counts with either budget: the verdicts fall back on the 100-epoch runs (`@short`).
    missing = [s for s in t.needs if s not in settings and f"{s}@short" not in settings]
    if missing:
        return t.outside or f"needs {', '.join(f'`{s}`' for s in missing)}, which this profile does not run"
    return None


def covered(cfg: Config, experiment: str | None = None) -> list[Target]:
    """The targets the profile produces (of one experiment, if given)."""
    return [t for t in all_targets() if outside_reason(t, cfg) is None and experiment in (None, t.experiment)]


def outside(cfg: Config) -> list[tuple[Target, str]]:
    """The targets the profile leaves out, each with the reason."""
    return [(t, reason) for t in all_targets() if (reason := outside_reason(t, cfg)) is not None]


def outside_line(t: Target, reason: str) -> str:
    """The report's line for a target outside the profile."""
    return f"- {t.name}: {reason}"


def missing_from(report: str, cfg: Config) -> list[str]:
    """What the report lacks: a covered target whose table or figure or claim it does not show, or an
    outside target it does not list with its reason (empty when the report covers every target)."""
    problems = [f"{t.id}: {what} not in the report" for t in covered(cfg)
                for what, text in (("ref", t.ref), ("claim", t.claim)) if text not in report]
    listed = report.partition(f"## {OUTSIDE_HEADING}")[2]
    problems += [f"{t.id}: not listed as outside ({reason})" for t, reason in outside(cfg)
                 if outside_line(t, reason) not in listed.splitlines()]
    return problems
