"""The benchmark's rules and guidelines as `optbench check` applies them: ONE table, each entry upstream's statement.

A *rule* (kind "rule") is what upstream enforces: breaking it is a violation (exit 1). A *guideline* (kind
"guideline") is what upstream prefers (hard-coded hyperparameters, README "Changes should live in ...;
hardcoded hparams preferred over CLI flags"): breaking it is a warning, reported but not failing the check.
Source: records/track_3_optimization/README.md (spec/track3.md sections 1, 5-8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RULE, GUIDELINE = "rule", "guideline"


@dataclass(frozen=True)
class Rule:
    id: str
    kind: Literal["rule", "guideline"]
    text: str  # upstream's statement the check enforces


RULES: dict[str, Rule] = {r.id: r for r in (
    # the single file
    Rule("import-allowlist", RULE, "All code must be inside the single train script: it imports only torch, numpy "
                                   "and the standard library."),
    Rule("third-party-optimizer", RULE, "Third-party optimizer libraries must be copied into the script, not "
                                        "imported."),
    Rule("dynamic-import", RULE, "All code must be visible in the script (no exec/eval, no code loaded at run "
                                 "time)."),
    Rule("cli-required", RULE, "The log reproduces the run: its code section runs as it is, so the script needs no "
                               "command-line value (required or positional argument, input())."),
    Rule("environment", RULE, "The log reproduces the run: the script needs no environment variable beyond "
                              "torchrun's RANK, WORLD_SIZE, LOCAL_RANK (reads with a default are a guideline)."),
    # what is fixed
    # one rule ("the dataset, the batch size and the architecture are fixed") seen twice: fixed-fields reads the
    # script's constants (static), architecture/batch-size/data-order watch what actually runs (dynamic)
    Rule("fixed-fields", RULE, "Fixed: the dataset, the batch size (524,288 tokens per step) and the "
                               "architecture, as the script's constants state them."),
    Rule("architecture", RULE, "Fixed: the architecture (parameter names, shapes and count) of the model that runs."),
    Rule("batch-size", RULE, "Fixed: the batch size (tokens per optimizer step) that goes through the model."),
    Rule("passes", RULE, "At most one forward-backward pass per step."),
    Rule("data-order", RULE, "Fixed: the dataset and its order (the same token windows every step, any world "
                             "size)."),
    Rule("validation", RULE, "Fixed: the validation set (the first 10,485,760 val tokens)."),
    # the claim
    Rule("fixed-eval-steps", RULE, "The claimed step is a fixed eval step shared by all trials: per-trial early "
                                   "stopping on val loss is forbidden (a stopping step shared by every trial is "
                                   "allowed)."),
    Rule("log-code", RULE, "The log comes from the script: its code section is the script."),
    Rule("dynamic", RULE, "The script runs (checked at nano size on CPU)."),
    # guidelines
    Rule("cli-hyperparameters", GUIDELINE, "Hard-coded hyperparameters are preferred over command-line flags."),
    Rule("environment-defaults", GUIDELINE, "Hard-coded hyperparameters are preferred over environment variables "
                                            "(a read with a default reproduces the default run)."),
)}


def rule(rule_id: str) -> Rule:
    """The rule or guideline named `rule_id` (KeyError for an unknown id: every finding names a listed rule)."""
    return RULES[rule_id]


def is_guideline(rule_id: str) -> bool:
    return RULES[rule_id].kind == GUIDELINE
