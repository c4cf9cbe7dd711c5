"""`optbench export`: the script's layout, its imports, and the key property: at nano size it gives the same
val losses as `optbench run` (same seed, same operation order)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.results.logparse import parse_log
from optbench.submission.check import static_check
from optbench.submission.export import TEST_BEGIN, TEST_END, TEST_VAL_PREFIX, export_recipe, export_script

from .conftest import EQ_STEPS, FIXTURES, optbench_run, sub_env

SECTIONS = ("Dataloader", "Architecture", "Optimizer", "Setup", "Init & Optim Hyperparams", "Training and Validation")


def _section_lines(text: str) -> dict[str, int]:
    lines = text.splitlines()
    out = {}
    for i, ln in enumerate(lines):
        for s in SECTIONS:
            if ln.strip() == "#" + s.center(38) + "#":
                out[s] = i
    return out


@pytest.mark.parametrize("key", ["adamw", "muon", "soap"])
def test_layout_sections_in_upstream_order(exported, key):
    text = exported[key].read_text()
    found = _section_lines(text)
    assert list(found) == list(SECTIONS), found
    assert sorted(found.values()) == list(found.values())


@pytest.mark.parametrize("key", ["adamw", "muon", "soap"])
def test_imports_only_torch_numpy_stdlib(exported, key):
    text = exported[key].read_text()
    tops = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            tops.add(node.module.split(".")[0])
    assert "optbench" not in tops and "register(" not in text
    assert tops <= set(sys.stdlib_module_names) | {"torch", "numpy", "__future__"}, tops
    assert static_check(text, str(exported[key])).ok


def test_optimizer_section_inlines_helpers_in_dependency_order(exported):
    muon = exported["muon"].read_text()
    a, m = muon.index("inlined from optbench/optim/_args.py"), muon.index("inlined from optbench/optim/muon.py")
    assert a < m and "def check_nonneg" in muon and "class Muon(ShardedMatrixOptimizer)" in muon
    soap = exported["soap"].read_text()
    assert soap.index("inlined from optbench/optim/_fp32state.py") < soap.index("inlined from optbench/optim/soap.py")
    assert "def load_state_dict_keep_dtype" in soap and "class SOAP(torch.optim.Optimizer)" in soap


def test_hyperparameters_hard_coded(exported):
    muon = exported["muon"].read_text()
    init = muon[muon.index("Init & Optim Hyperparams"):muon.index("Training and Validation")]
    assert "train_steps = 3250" in init  # the recipe sets none: the track's
    assert "override0 = [n for n in matrices if 'mlp' in n]" in init
    assert "weight_decay=0.1, lr=0.025" in init  # the override group (MLP wd) keeps the main lr
    assert "optimizer2 = Muon(groups, weight_decay=0.05, momentum=0.95)" in init
    assert "lr=0.05)" in init and "betas=(0.8, 0.95), eps=1e-10, weight_decay=0.001, fused=on_cuda or None" in init
    assert "cooldown_frac=0.7, warmup_steps=0" in init
    soap = exported["soap"].read_text()
    assert "warmup_steps=5" in soap and "SOAP(groups, betas=(0.95, 0.95), weight_decay=0.0, precondition_frequency=10)" in soap
    setup = muon[muon.index("#                Setup                 #"):]
    assert "batch_tokens = 524288" in setup and "val_tokens = 10485760" in setup and "mbs = 64" in setup
    assert "GPTConfig(vocab_size=50304, num_layers=12, model_dim=768, head_dim=128" in setup


def test_test_switch_is_one_marked_block(exported):
    text = exported["adamw"].read_text()
    assert text.count(TEST_BEGIN) == 1 and text.count(TEST_END) == 1
    block = text[text.index(TEST_BEGIN):text.index(TEST_END)]
    assert 'if os.environ.get("OPTBENCH_TEST_TRACK"):' in block
    outside = text.replace(block, "")
    assert "OPTBENCH_TEST_" not in outside


def test_export_refuses_other_models_and_existing_files(tmp_path):
    from optbench.optim.recipe import load_recipe

    with pytest.raises(OptbenchError, match="medium"):
        export_script(load_recipe("nano-adamw"), "medium")
    out = tmp_path / "s.py"
    out.write_text("keep")
    with pytest.raises(OptbenchError, match="exists"):
        export_recipe("nano-adamw", "small", out)
    assert out.read_text() == "keep"


def _script_val_losses(script: Path, nano_data: Path, cwd: Path, steps: int = EQ_STEPS) -> tuple[dict[int, float], str]:
    env = sub_env(OPTBENCH_TEST_TRACK="nano", OPTBENCH_TEST_DATA=str(nano_data), OPTBENCH_TEST_STEPS=str(steps))
    p = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    got = {}
    for ln in p.stdout.splitlines():
        if ln.startswith(TEST_VAL_PREFIX):
            s, v = ln[len(TEST_VAL_PREFIX):].split(":")
            got[int(s)] = float(v)
    return got, p.stdout


def _run_val_losses(run_dir: Path) -> dict[int, float]:
    res = json.loads((run_dir / "results.json").read_text())
    return {pt["step"]: pt["val_loss"] for pt in res["runs"][0]["curve"]}


def test_exported_script_matches_optbench_run(exported, nano_run, nano_data, tmp_path):
    """The key property: same val losses as `optbench run --track nano --recipe nano-adamw --seed 0
    --set train_steps=21`, at every eval, to 1e-6 (in practice bitwise)."""
    got, stdout = _script_val_losses(exported["adamw"], nano_data, tmp_path)
    want = _run_val_losses(nano_run)
    assert sorted(got) == sorted(want) == [0, 20, EQ_STEPS]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run: {diff:.3g}")
    assert diff <= 1e-6, (got, want)

    # the upstream log: its own source, 100 '=', version line, 100 '=', one line per eval
    logs = list((tmp_path / "logs").glob("*.txt"))
    assert len(logs) == 1 and stdout.splitlines()[0] == f"logs/{logs[0].name}"
    log = parse_log(logs[0])
    assert log.code == exported["adamw"].read_text()
    assert log.version_line.startswith("Running PyTorch ") and log.world_size == 1
    assert [e.step for e in log.trials[0].evals] == [0, 20, EQ_STEPS]
    assert all(abs(e.val_loss - want[e.step]) < 6e-6 for e in log.trials[0].evals)
    text = logs[0].read_text()
    assert "\n" + "=" * 100 + "\nRunning PyTorch" in text
    assert not any(ln.startswith(TEST_VAL_PREFIX) for ln in text.splitlines())  # console only


def test_exported_muon_script_matches_optbench_run(exported, nano_data, tmp_path):
    """The same equality for Muon with an override group (MLP weight decay): inlined zoo code, bf16
    Newton-Schulz, group construction order (8 steps: evals at 0 and 8)."""
    want = _run_val_losses(optbench_run(str(FIXTURES / "nano-muon.toml"), tmp_path / "run", steps=8))
    got, _ = _script_val_losses(exported["muon"], nano_data, tmp_path, steps=8)
    assert sorted(got) == sorted(want) == [0, 8]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run (muon): {diff:.3g}")
    assert diff <= 1e-6, (got, want)


def test_torch_default_init_is_exported():
    from optbench.optim.recipe import load_recipe

    text = export_script(load_recipe("track3-2-adamw"), "small")
    init = text[text.index("Init & Optim Hyperparams"):text.index("Training and Validation")]
    assert "def init_weights_torch_default(model" in init and "    init_weights_torch_default(model)\n" in init
    assert "train_steps = 5625" in init and "warmup_steps=250" in init
    assert "def init_weights(" not in text  # only the recipe's scheme
    assert static_check(text, "x.py").ok


def test_trials_argument_appends_trials_to_one_log(exported, nano_data, tmp_path):
    """`train_gpt_simple.py 2`: two trials (seeds 0 and 1) in one upstream log, which the checker accepts."""
    from optbench.submission.check import log_check

    env = sub_env(OPTBENCH_TEST_TRACK="nano", OPTBENCH_TEST_DATA=str(nano_data), OPTBENCH_TEST_STEPS="2")
    p = subprocess.run([sys.executable, str(exported["adamw"]), "2"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    [logfile] = (tmp_path / "logs").glob("*.txt")
    log = parse_log(logfile)
    assert [[e.step for e in t.evals] for t in log.trials] == [[0, 2], [0, 2]]
    assert log.trials[0].evals[0].val_loss == log.trials[1].evals[0].val_loss  # ln(V): zero-init head
    assert log.trials[0].evals[1].val_loss != log.trials[1].evals[1].val_loss  # a new init per trial
    rep = log_check(logfile, script_text=exported["adamw"].read_text(), track="nano")
    assert rep.ok, [str(v) for v in rep.violations]
