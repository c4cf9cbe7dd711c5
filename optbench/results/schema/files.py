"""Reading and writing results.json: parse and validate (every problem named with its field, in words a person
reads), the checks across fields, and the atomic write."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optbench.clock import parse_timestamp
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.results import stats
from optbench.results.schema.models import Results

#: The target of a results.json that has no `target` field: the workspace format (spec/workspace.md) predates the
#: field and its files are track-3 results (`steps_to_3_28`). The ONLY place optbench assumes a target; everything
#: else is given the track's or the record's.
LEGACY_TARGET = 3.28


def _loc_name(loc: tuple, target_field: str) -> str:
    parts = []
    for p in loc:
        if p == "steps_to_target" and not parts:
            p = target_field
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts) or "(record)"


def _describe(err: dict) -> str:
    msg = err["msg"]
    typ = err["type"]
    if typ == "missing":
        return "required field is missing"
    if typ.startswith("int") or typ == "int_type":
        msg = "value is not an integer"
    elif typ.startswith("float"):
        msg = "value is not a number"
    elif typ.startswith("string"):
        msg = "value is not a string"
    elif typ.startswith("bool"):
        msg = "value is not true/false"
    else:
        msg = msg[0].lower() + msg[1:] if msg else msg
    if typ != "missing" and "input" in err:
        msg += f" (got {json.dumps(err['input'], default=str)[:60]})"
    return msg


def consistency_problems(r: Results) -> list[str]:
    """Checks across fields (a record that parses but contradicts itself). Each problem names its field."""
    out: list[str] = []
    f = r.steps_field
    for k in ("final_val_loss", "mean_val_loss"):
        v = getattr(r, k)
        if v is not None and not (0 < v < 100):
            out.append(f"{k}: {v} is not a plausible val loss (expected 0 < loss < 100)")
    if r.timestamp is not None and parse_timestamp(r.timestamp) is None:
        out.append(f"timestamp: {r.timestamp!r} is not an ISO 8601 time (e.g. 2026-04-30T14:30:00Z)")
    if r.rule is not None and r.rule not in stats.RULES:
        out.append(f"rule: unknown stats rule {r.rule!r}; known: {', '.join(stats.rule_names())}")
    if r.runs:
        if r.num_runs is not None and r.num_runs != len(r.runs):
            out.append(f"num_runs: {r.num_runs} but runs lists {len(r.runs)} run(s)")
        if r.seeds and r.seeds != [x.seed for x in r.runs]:
            out.append(f"seeds: {r.seeds} does not match runs[].seed {[x.seed for x in r.runs]}")
        for i, run in enumerate(r.runs):
            steps = [p.step for p in run.curve]
            if steps != sorted(set(steps)):
                out.append(f"runs[{i}].curve: eval steps must be strictly increasing")
        if all(run.curve for run in r.runs):
            v = stats.evaluate_runs(r.runs, r.rule or stats.DEFAULT_RULE, target=r.target)
            if r.steps_to_target != v.reported_step:
                out.append(
                    f"{f}: {r.steps_to_target} does not match the runs (rule {v.rule.name}: "
                    f"{v.reported_step} — claimed step if the set passes, else first common step with mean < {r.target})"
                )
            if r.claimed_step is not None and r.claimed_step != v.claimed_step:
                out.append(f"claimed_step: {r.claimed_step} does not match the runs' claimed step {v.claimed_step}")
    if r.seeds and r.num_runs is not None and len(r.seeds) != r.num_runs:
        out.append(f"seeds: {len(r.seeds)} seed(s) but num_runs is {r.num_runs}")
    if r.claimed_step is not None and r.steps_to_target is not None and r.claimed_step != r.steps_to_target:
        out.append(f"claimed_step: {r.claimed_step} differs from {f} {r.steps_to_target}")
    if r.train_steps is not None and r.steps_to_target is not None and r.steps_to_target > r.train_steps:
        out.append(f"{f}: {r.steps_to_target} is beyond train_steps {r.train_steps}")
    return out


def parse_results(data: Any, source: str = "results") -> Results:
    """Validate a decoded JSON object; OptbenchError listing every problem, each with its field."""
    if not isinstance(data, dict):
        raise OptbenchError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if "target" not in data:
        data = {**data, "target": LEGACY_TARGET}  # an old workspace file: see LEGACY_TARGET
    try:
        target_field = stats.steps_field(data["target"])
    except (OptbenchError, TypeError):
        target_field = stats.steps_field(LEGACY_TARGET)  # the target itself is invalid (reported): name the usual field
    try:
        r = Results.model_validate(data)
    except ValidationError as e:
        problems = [f"{_loc_name(err['loc'], target_field)}: {_describe(err)}" for err in e.errors()]
        raise OptbenchError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems)) from None
    problems = consistency_problems(r)
    if problems:
        raise OptbenchError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return r


def load_results(path_or_str: str | os.PathLike) -> Results:
    """Read a results.json (a path, or the JSON text itself) and validate it.

    Raises OptbenchError naming the file and every problem with its field, e.g.
    `steps_to_3_28: value is not an integer (got "3400")`.
    """
    text: str
    source: str
    if isinstance(path_or_str, str) and path_or_str.lstrip().startswith("{"):
        text, source = path_or_str, "results"
    else:
        p = Path(path_or_str)
        if p.is_dir():
            p = p / "results.json"
        source = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise OptbenchError(f"{source}: no such file") from None
        except OSError as e:
            raise OptbenchError(f"{source}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OptbenchError(f"{source}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    return parse_results(data, source)


def save_results(results: Results, path: str | os.PathLike) -> Path:
    """Write results as indented JSON atomically (temp file + rename).

    A folder, or any path not ending in .json (a run dir that may not exist yet), gets <path>/results.json.
    """
    p = Path(path)
    if p.is_dir() or p.suffix.lower() != ".json":
        p = p / "results.json"
    return atomic_write_text(p, results.to_json())
