"""The benchmark's statistics: acceptance rules, the claimed step of a run set, runs needed.

This is the single statistics module: the CLI, the leaderboard, the workspace and the submission checker
all call it. Every function takes the rule (a preset name or a `Rule`; None is the default preset) and the
target as parameters; the target is never defaulted (keyword `target=` where a rule comes first), so a
medium-track (2.92) caller cannot silently get 3.28. "Below the target" is optbench.target.below_target.

Single-result rule (one-sided z-test over n non-cherry-picked runs, track3.md section 7):

    pass  iff  (target - mean) * sqrt(n) >= margin          (margin = z_{1-p} * sigma)

Pairwise rule (is run set B significantly better than run set A?):

    ((mean_A - mean_B) + (steps_A - steps_B) * loss_per_100_steps / 100) / sqrt(1/n_A + 1/n_B) >= margin

Claimed step of a run set: the earliest eval step that ALL runs evaluated at which the mean over the
runs passes the single-result rule. It is one fixed step for the whole set, never chosen per run
(per-run early stopping on val loss is forbidden upstream).

Floating point at the boundaries: the comparison is `stat >= margin - BOUNDARY_TOL` with
BOUNDARY_TOL = 1e-9 (val-loss units). The rule is ">= margin", so a mean exactly on the published
threshold (n=4, mean 3.2775 under `workspace`: (3.28-3.2775)*2 = 0.005) passes, even though
3.28 - 3.2775 is 0.0024999999999995 in binary floating point. Losses are logged with 5 decimals, so a
tolerance of 1e-9 cannot turn a genuinely failing mean into a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Iterable, Mapping, Sequence

from optbench.errors import OptbenchError
from optbench.target import below_target

BOUNDARY_TOL = 1e-9


@dataclass(frozen=True)
class Rule:
    """A named, versioned acceptance rule (one-sided z-test at a known per-run sigma)."""

    name: str
    sigma: float  # assumed seed-to-seed std of the final val loss
    margin: float  # required (target - mean) * sqrt(n); = z_{1-p} * sigma, rounded as published
    p: float  # one-sided significance level
    loss_per_100_steps: float = 0.0045  # step -> loss conversion for the pairwise rule
    source: str = ""

    def describe(self) -> str:
        return f"{self.name} (sigma {self.sigma:g}, p < {self.p:g}, margin {self.margin:g})"


RULES: dict[str, Rule] = {
    "upstream-2026-04-29": Rule(
        name="upstream-2026-04-29",
        sigma=0.00215,
        margin=0.005,
        p=0.01,
        source="KJ records/track_3_optimization/README.md @29925d96 (sigma 0.002) and @21e9dcb2 (sigma 0.00215), "
        "2026-04-29, the first stated rule: p < .01, n=1 < 3.275, n=4 < 3.2775",
    ),
    "workspace": Rule(
        name="workspace",
        sigma=0.0016,
        margin=0.005,
        p=0.001,
        source="spec/workspace.md 'statistical bar'; upstream KJ 5bfd7fe0 (2026-04-30): "
        "n=1 < 3.275, n=4 < 3.2775, n=9 < 3.2783",
    ),
    "upstream-2026-04-30": Rule(
        name="upstream-2026-04-30",
        sigma=0.0013,
        margin=0.004,
        p=0.001,
        source="KJ records/track_3_optimization/README.md @52929885 (2026-04-30): "
        "n=1 < 3.276, n=4 < 3.278, n=10 < 3.27874",
    ),
}
DEFAULT_RULE = "workspace"


def rule_names() -> list[str]:
    return sorted(RULES)


def get_rule(rule: str | Rule | None = None) -> Rule:
    """A Rule from a preset name (None: the default `workspace`); OptbenchError on unknown names."""
    if rule is None:
        return RULES[DEFAULT_RULE]
    if isinstance(rule, Rule):
        return rule
    if rule not in RULES:
        raise OptbenchError(f"--rule: unknown stats rule {rule!r}; known: {', '.join(rule_names())}")
    return RULES[rule]


# ----------------------------------------------------------------------------- single-result rule


def z_stat(mean: float, n: int, target: float) -> float:
    """(target - mean) * sqrt(n): the single-result statistic (NaN when mean is NaN)."""
    if n < 1:
        raise OptbenchError(f"n: need at least 1 run, got {n}")
    return (target - mean) * math.sqrt(n)


def passes(mean: float, n: int, rule: str | Rule | None = None, *, target: float) -> bool:
    """True iff n runs with this mean val loss pass the rule: (target - mean)*sqrt(n) >= margin."""
    r = get_rule(rule)
    if not math.isfinite(mean):
        return False
    return z_stat(mean, n, target) >= r.margin - BOUNDARY_TOL


def required_mean(n: int, rule: str | Rule | None = None, *, target: float) -> float:
    """The largest mean val loss that n runs may have and still pass: target - margin/sqrt(n)."""
    r = get_rule(rule)
    if n < 1:
        raise OptbenchError(f"n: need at least 1 run, got {n}")
    return target - r.margin / math.sqrt(n)


def runs_needed(
    mean: float,
    rule: str | Rule | None = None,
    *,
    target: float,
    std: float | None = None,
    confidence: float = 0.5,
    max_runs: int = 10_000,
) -> int | None:
    """Fewest runs n whose mean is expected to pass, for a setting whose runs have true mean `mean`.

    Without a spread (or confidence 0.5) this is the smallest n with (target - mean)*sqrt(n) >= margin.
    With a per-run std and a confidence c, the sample mean of n runs ~ N(mean, std/sqrt(n)) must land
    below required_mean(n) with probability c:  (target - mean)*sqrt(n) >= margin + z_c * std.
    None when no number of runs (up to max_runs) suffices (mean >= target, or the bar needs > max_runs).
    """
    r = get_rule(rule)
    if not below_target(mean, target):
        return None
    if not 0.0 < confidence < 1.0:
        raise OptbenchError(f"confidence: must be in (0, 1), got {confidence}")
    need = r.margin
    if std is not None:
        if std < 0 or not math.isfinite(std):
            raise OptbenchError(f"std: must be a finite number >= 0, got {std}")
        need += NormalDist().inv_cdf(confidence) * std
    if need <= 0:
        return 1
    n = max(1, math.ceil((need / (target - mean)) ** 2 - 1e-9))
    # guard the ceil against floating point on either side
    while n > 1 and (target - mean) * math.sqrt(n - 1) >= need - BOUNDARY_TOL:
        n -= 1
    while (target - mean) * math.sqrt(n) < need - BOUNDARY_TOL:
        n += 1
    return n if n <= max_runs else None


# ----------------------------------------------------------------------------- pairwise rule


def pairwise_stat(
    mean_a: float,
    n_a: int,
    steps_a: int,
    mean_b: float,
    n_b: int,
    steps_b: int,
    rule: str | Rule | None = None,
) -> float:
    """How much better B is than A, in the single-result statistic's units.

    ((mean_a - mean_b) + (steps_a - steps_b) * loss_per_100_steps/100) / sqrt(1/n_a + 1/n_b).
    Positive when B reaches a lower loss and/or needs fewer steps.
    """
    r = get_rule(rule)
    if n_a < 1 or n_b < 1:
        raise OptbenchError(f"n: need at least 1 run on each side, got n_a={n_a}, n_b={n_b}")
    loss_diff = mean_a - mean_b
    step_equiv = (steps_a - steps_b) * r.loss_per_100_steps / 100.0
    return (loss_diff + step_equiv) / math.sqrt(1.0 / n_a + 1.0 / n_b)


def pairwise_better(
    mean_a: float,
    n_a: int,
    steps_a: int,
    mean_b: float,
    n_b: int,
    steps_b: int,
    rule: str | Rule | None = None,
) -> bool:
    """True iff run set B is significantly better than run set A under the pairwise rule."""
    r = get_rule(rule)
    s = pairwise_stat(mean_a, n_a, steps_a, mean_b, n_b, steps_b, r)
    return math.isfinite(s) and s >= r.margin - BOUNDARY_TOL


# ----------------------------------------------------------------------------- run sets


def _point(p: Any) -> tuple[int, float]:
    if isinstance(p, Mapping):
        step, loss = p["step"], p["val_loss"]
    elif hasattr(p, "step") and hasattr(p, "val_loss"):
        step, loss = p.step, p.val_loss
    else:
        step, loss = p
    return int(step), (math.nan if loss is None else float(loss))


def curve_map(run: Any) -> dict[int, float]:
    """{eval step: val loss} from a run: a RunRecord (.curve), a {step: loss} mapping, or (step, loss) pairs.

    A None loss (diverged, stored as JSON null) becomes NaN.
    """
    if hasattr(run, "curve"):
        run = run.curve
    if isinstance(run, Mapping):
        return {int(k): (math.nan if v is None else float(v)) for k, v in run.items()}
    return dict(_point(p) for p in run)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0.0 for a single value). NaN in, NaN out."""
    n = len(values)
    if n == 0:
        raise OptbenchError("runs: no values to average")
    m = math.fsum(values) / n
    if n == 1:
        return m, 0.0
    return m, math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


@dataclass(frozen=True)
class StepStats:
    """The run set at one eval step common to all runs."""

    step: int
    mean: float
    std: float
    n: int
    z: float
    passes: bool


@dataclass(frozen=True)
class Verdict:
    """Everything the rule says about a run set (see evaluate_runs)."""

    rule: Rule
    target: float
    n: int
    common_steps: tuple[int, ...]
    per_step: tuple[StepStats, ...]
    claimed_step: int | None  # earliest common step where the mean passes the rule
    first_below_target: int | None  # earliest common step where the mean is < target (may not pass)
    required_mean: float
    final: StepStats | None  # the last common eval step
    losses_at: dict[int, tuple[float, ...]] = field(repr=False, default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.claimed_step is not None

    @property
    def reported_step(self) -> int | None:
        """The step a results record reports as steps_to_<target>: claimed step if the set passes the rule,
        else the first common step where the mean is below target (reported with a fail mark), else None."""
        return self.claimed_step if self.claimed_step is not None else self.first_below_target

    @property
    def reported(self) -> StepStats | None:
        """StepStats at reported_step, or at the final common step when the target was never reached."""
        s = self.reported_step
        if s is None:
            return self.final
        return next(p for p in self.per_step if p.step == s)

    def runs_needed(self, confidence: float = 0.5) -> int | None:
        """Runs this setting needs to pass, judged from the reported (or final) step's mean and std."""
        at = self.reported
        if at is None:
            return None
        std = at.std if at.n > 1 else None
        return runs_needed(at.mean, self.rule, target=self.target, std=std, confidence=confidence)


def evaluate_runs(runs: Sequence[Any], rule: str | Rule | None = None, *, target: float) -> Verdict:
    """Judge a run set: per common eval step, the mean/std over ALL runs and whether it passes.

    `runs`: RunRecords, {step: loss} mappings or sequences of (step, loss). Only steps every run evaluated
    are considered; a run with a NaN/None loss at a step makes that step's mean NaN (fails) — every run
    of the set counts, none is dropped.
    """
    r = get_rule(rule)
    if not runs:
        raise OptbenchError("runs: a run set needs at least one run")
    curves = [curve_map(x) for x in runs]
    common = sorted(set.intersection(*(set(c) for c in curves)))
    n = len(curves)
    per_step = []
    losses_at = {}
    claimed = below = None
    for s in common:
        vals = tuple(c[s] for c in curves)
        losses_at[s] = vals
        m, sd = mean_std(vals)
        z = z_stat(m, n, target)
        ok = passes(m, n, r, target=target)
        per_step.append(StepStats(s, m, sd, n, z, ok))
        if ok and claimed is None:
            claimed = s
        if below is None and below_target(m, target):
            below = s
    return Verdict(
        rule=r,
        target=target,
        n=n,
        common_steps=tuple(common),
        per_step=tuple(per_step),
        claimed_step=claimed,
        first_below_target=below,
        required_mean=required_mean(n, r, target=target),
        final=per_step[-1] if per_step else None,
        losses_at=losses_at,
    )


def compare(baseline: Verdict, candidate: Verdict) -> tuple[float, bool] | None:
    """Pairwise rule between two judged run sets (each at its reported step and mean): (statistic, better?).

    None when either set has no reported step (never reached the target)."""
    a, b = baseline.reported, candidate.reported
    if baseline.reported_step is None or candidate.reported_step is None or a is None or b is None:
        return None
    s = pairwise_stat(a.mean, a.n, a.step, b.mean, b.n, b.step, candidate.rule)
    return s, math.isfinite(s) and s >= candidate.rule.margin - BOUNDARY_TOL


def claimed_step(runs: Sequence[Any], rule: str | Rule | None = None, *, target: float) -> int | None:
    """The earliest eval step common to all runs at which the set's mean passes the rule, else None."""
    return evaluate_runs(runs, rule, target=target).claimed_step


def first_step_below(run: Any, target: float) -> int | None:
    """First eval step of ONE run with val loss < target (descriptive only; never a claim)."""
    for s, v in sorted(curve_map(run).items()):
        if below_target(v, target):
            return s
    return None


def steps_field(target: float) -> str:
    """The results.json field for a target: 3.28 -> 'steps_to_3_28', 2.92 -> 'steps_to_2_92'."""
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        raise OptbenchError(f"target: must be a positive number, got {target!r}")
    text = f"{float(target):.6f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return "steps_to_" + text.replace(".", "_")


def format_verdict(v: Verdict) -> str:
    """One line: PASS/FAIL, the step, mean, n, the statistic and the bar."""
    at = v.reported
    if at is None:
        return f"FAIL: no eval step common to all {v.n} runs"
    mark = "PASS" if v.passed else "FAIL"
    where = f"step {at.step}" if v.reported_step is not None else f"final step {at.step} (target not reached)"
    return (
        f"{mark} [{v.rule.name}] {where}: mean {at.mean:.5f} over n={v.n} "
        f"(std {at.std:.5f}); z = {at.z:.5f} vs margin {v.rule.margin:g}; "
        f"need mean < {v.required_mean:.5f}"
    )


def iter_rules() -> Iterable[Rule]:
    return (RULES[k] for k in rule_names())
