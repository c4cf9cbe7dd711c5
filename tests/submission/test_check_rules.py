"""Rules vs guidelines in `optbench check`: small synthetic scripts per rule and guideline, the one rules table,
and the upstream scripts (the official baseline, #36, #44, #45, #46: no violations) when the mirror is there."""

from __future__ import annotations

import ast
import inspect

import pytest

from optbench.submission.check import RULES, check, log_check, static_check
from optbench.submission.check import dynamic, logs, static
from optbench.submission.check.report import Report
from tests.submission.upstream import upstream_file

HEAD = "import os, sys\nimport torch\n"


def findings(src: str) -> tuple[set, set]:
    rep = static_check(HEAD + src, "s.py")
    return {(v.rule, v.where) for v in rep.violations}, {(v.rule, v.where) for v in rep.warnings}


def test_every_finding_names_a_listed_rule():
    """The checker's rule ids all come from the one table, and each table entry is a rule or a guideline."""
    used = set()
    for mod in (static, logs, dynamic):
        for node in ast.walk(ast.parse(inspect.getsource(mod))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                used.add(node.args[0].value)
    assert used and used <= set(RULES), used - set(RULES)
    assert {r.kind for r in RULES.values()} == {"rule", "guideline"}
    assert {r for r, v in RULES.items() if v.kind == "guideline"} == {"cli-hyperparameters", "environment-defaults"}
    with pytest.raises(KeyError):
        Report("x").add("no-such-rule", "m", "w")


def test_seed_only_argparse_is_a_warning():
    src = ("import argparse\nparser = argparse.ArgumentParser()\n"
           "parser.add_argument('--seed', type=int, default=0)\nargs = parser.parse_args()\n")
    bad, warn = findings(src)
    assert bad == set() and warn == {("cli-hyperparameters", "s.py:3")}
    [w] = static_check(HEAD + src, "s.py").warnings
    assert "argparse reads only --seed" in w.message


@pytest.mark.parametrize("arg, line", [("'--lr', type=float, required=True", 6), ("'lr', type=float", 6)])
def test_required_argparse_arguments_are_violations(arg, line):
    src = ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--seed', default=0)\n"
           f"p.add_argument({arg})\n")
    bad, warn = findings(src)
    assert bad == {("cli-required", f"s.py:{line}")}
    assert warn == {("cli-hyperparameters", "s.py:3")}


def test_optional_positional_and_other_parsers_are_warnings():
    bad, warn = findings("import argparse\np = argparse.ArgumentParser()\np.add_argument('n', nargs='?', default=1)\n")
    assert bad == set() and warn == {("cli-hyperparameters", "s.py:3")}
    bad, warn = findings("import click\n")
    assert bad == set() and warn == {("cli-hyperparameters", "s.py:3")}


def test_input_is_a_violation():
    assert findings("lr = float(input('lr? '))\n") == ({("cli-required", "s.py:3")}, set())


def test_environment_reads_with_defaults_are_warnings():
    src = ("lr = float(os.environ.get('MUON_LR', '0.025'))\n"
           "stop = int(os.environ.get('TARGET_STEP', os.environ.get('STOP_STEP', '2720')))\n"
           "path = os.getenv('SAVE_PATH')\n")
    bad, warn = findings(src)
    assert bad == set()
    assert warn == {("environment-defaults", "s.py:3"), ("environment-defaults", "s.py:4"),
                    ("environment-defaults", "s.py:5")}
    assert len(static_check(HEAD + src, "s.py").warnings) == 4  # both reads on line 4


def test_required_environment_reads_are_violations():
    src = ("lr = float(os.environ['MUON_LR'])\nwd = os.environ.pop('WD')\nenv = dict(os.environ)\n"
           "k = 'X'\nx = os.environ.get(k, '1')\n")
    bad, warn = findings(src)
    assert bad == {("environment", "s.py:3"), ("environment", "s.py:4"), ("environment", "s.py:5"),
                   ("environment", "s.py:7")} and warn == set()


def test_torchrun_variables_and_environment_writes_are_clean():
    src = ("rank = int(os.environ['RANK'])\nlr = int(os.environ.get('LOCAL_RANK', '0'))\n"
           "os.environ['PYTORCH_CUDA_ALLOC_CONF'] = 'expandable_segments:True'\n"
           "os.environ.setdefault('NCCL_DEBUG', 'WARN')\n")
    rep = static_check(HEAD + src, "s.py")
    assert rep.ok and not rep.warnings


def _log(tmp_path, trials: list[tuple[int, list[int]]]):
    code = "import torch\nprint('train')\n"
    lines = [code.rstrip("\n"), "=" * 100, "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8", "=" * 100]
    for T, steps in trials:
        lines += [f"step:{s}/{T} val_loss:{10.82584 if s == 0 else 3.2770:.5f} train_time:{s * 0.15:.3f}s "
                  f"step_avg:150.00ms" for s in steps]
    p = tmp_path / "log.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_shared_stopping_step_is_allowed(tmp_path):
    log = _log(tmp_path, [(2900, [0, 2700, 2720])] * 3)
    rep = log_check(log)
    assert rep.ok and not rep.warnings, [str(v) for v in rep.violations]
    assert any("every trial stops at step 2720 of 2900 (a shared stopping step: allowed)" in n for n in rep.notes)


def test_trials_stopping_at_different_steps_are_a_violation(tmp_path):
    log = _log(tmp_path, [(2900, [0, 2700, 2720]), (2900, [0, 2700, 2720, 2900])])
    rep = log_check(log)
    [v] = rep.violations
    assert v.rule == "fixed-eval-steps" and "trial 0 ends at step 2720 of 2900" in v.message
    assert v.where == f"{log}:8"


# ------------------------------------------------------------------ upstream's own scripts (when the mirror is there)


@pytest.mark.parametrize("key", ["baseline", "36-log", "44", "44-log", "45", "45-log", "46", "46-log"])
def test_upstream_scripts_have_no_violations(key, tmp_path):
    f = upstream_file(key, tmp_path)
    rep = check(f, dynamic=False)
    assert rep.ok, [str(v) for v in rep.violations]
    if key in ("baseline", "36-log"):
        assert not rep.warnings  # hard-coded throughout
    else:  # the --seed-only argparse and environment reads with defaults (STOP_STEP, ...) are guidelines
        assert "cli-hyperparameters" in rep.guidelines()
        assert any("argparse reads only --seed" in w.message for w in rep.warnings)
        assert any(w.rule == "environment-defaults" and "STOP_STEP" in w.message for w in rep.warnings)
    if key == "45-log":
        assert any("stops at step 2720 of 2900" in n for n in rep.notes)
