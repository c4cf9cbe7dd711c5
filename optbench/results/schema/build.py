"""The results record of a run set: the statistics by stats.evaluate_runs, the compliance notes, the fields.

What steps_to_<target> means (decided here):
  * the run set's claimed step (stats.evaluate_runs) when the mean over ALL runs passes the rule at some
    common eval step: `passes_rule: true`, `claimed_step` = the same number;
  * else the earliest common eval step at which the mean is below the target (the upstream README lists
    such results with a cross: "5625 steps, 3.2790 n=1 ✗"): `passes_rule: false`, `claimed_step: null`;
  * else null, with `reached_target: false` (the workspace format wants an integer; null is the honest
    value for a run set that never got below the target, and optbench's readers accept it).
num_runs / mean_val_loss / std_val_loss / final_val_loss describe the runs at that step (the last common
eval step when the target was never reached); std is the sample std (ddof=1, 0.0 for one run).
final_val_loss equals mean_val_loss: the mean val loss of the set at the reported step.
Per-seed `runs[i].final_val_loss` is that run's last eval.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from optbench.clock import iso_stamp
from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.schema.models import Provenance, RecipeRecord, Results, RunRecord


def results_from_runs(
    runs: Sequence[RunRecord],
    *,
    agent_id: str,
    experiment: str,
    optimizer: str,
    target: float,
    rule: str = stats.DEFAULT_RULE,
    track: str | None = None,
    key_hparams: dict[str, Any] | None = None,
    notes: str | None = None,
    recipe: RecipeRecord | dict[str, Any] | None = None,
    provenance: Provenance | dict[str, Any] | None = None,
    train_steps: int | None = None,
    wallclock_s: float | None = None,
    compliant: bool = True,
    compliance_notes: Sequence[str] = (),
    unofficial: bool = False,
    timestamp: str | None = None,
    **extra: Any,
) -> Results:
    """The results record of a run set, with the statistics computed by stats.evaluate_runs.

    steps_to_<target>: claimed step if the set passes `rule`, else the first common eval step with mean
    below target, else None (see the module docstring). compliant is False when `compliant` is False, when
    any run made extra forward/backward passes, or when the run is unofficial; the reasons go to
    compliance_notes.
    """
    if not runs:
        raise OptbenchError("runs: results need at least one run")
    runs = [r if isinstance(r, RunRecord) else RunRecord.model_validate(r) for r in runs]
    v = stats.evaluate_runs(runs, rule, target=target)
    at = v.reported
    if at is None:
        raise OptbenchError("runs: the runs share no eval step; cannot compute a result")
    notes_out = list(compliance_notes)
    for r in runs:
        if r.extra_passes:
            notes_out.append(
                f"seed {r.seed}: {r.extra_passes} extra forward/backward pass(es) (the rule allows one per step)"
            )
    if unofficial:
        notes_out.append("unofficial: fixed benchmark fields were changed")
    is_compliant = bool(compliant) and not unofficial and not any(r.extra_passes for r in runs)

    def clean(x: float) -> float | None:
        return x if math.isfinite(x) else None

    if isinstance(recipe, dict):
        recipe = RecipeRecord.model_validate(recipe)
    if isinstance(provenance, dict):
        provenance = Provenance.model_validate(provenance)
    return Results(
        agent_id=agent_id,
        timestamp=timestamp or iso_stamp(),
        experiment=experiment,
        optimizer=optimizer,
        steps_to_target=v.reported_step,
        final_val_loss=clean(at.mean),
        num_runs=len(runs),
        mean_val_loss=clean(at.mean),
        std_val_loss=clean(at.std),
        key_hparams=dict(key_hparams or {}),
        notes=notes,
        track=track,
        target=target,
        rule=v.rule.name,
        reached_target=v.first_below_target is not None,
        passes_rule=v.passed,
        claimed_step=v.claimed_step,
        seeds=[r.seed for r in runs],
        runs=list(runs),
        compliant=is_compliant,
        compliance_notes=notes_out,
        unofficial=unofficial,
        recipe=recipe,
        provenance=provenance,
        train_steps=train_steps,
        wallclock_s=wallclock_s,
        **extra,
    )
