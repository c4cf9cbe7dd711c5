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
    # the override group (MLP wd) keeps the main lr: split_params gives lr to every main group without one
    assert "split_params(model, lr=0.025, overrides=[('mlp', dict(weight_decay=0.1))]," in init
    assert "optimizer2 = Muon(groups, weight_decay=0.05, momentum=0.95)" in init
    assert "embed_lr=0.05, head_lr=0.01, scalar_lr=0.01)" in init
    assert "betas=(0.8, 0.95), eps=1e-10, weight_decay=0.001, fused=on_cuda" in init
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


TORCHRUN_2 = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _script_val_losses(script: Path, nano_data: Path, cwd: Path, steps: int = EQ_STEPS,
                       launcher: tuple[str, ...] = (sys.executable,)) -> tuple[dict[int, float], str]:
    env = sub_env(OPTBENCH_TEST_TRACK="nano", OPTBENCH_TEST_DATA=str(nano_data), OPTBENCH_TEST_STEPS=str(steps))
    p = subprocess.run([*launcher, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_exported_muon_script_matches_optbench_run(exported, nano_data, tmp_path):
    """The same equality for Muon with an override group (MLP weight decay): inlined zoo code, bf16
    Newton-Schulz, group construction order (8 steps: evals at 0 and 8)."""
    want = _run_val_losses(optbench_run(str(FIXTURES / "nano-muon.toml"), tmp_path / "run", steps=8))
    got, _ = _script_val_losses(exported["muon"], nano_data, tmp_path, steps=8)
    assert sorted(got) == sorted(want) == [0, 8]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run (muon): {diff:.3g}")
    assert diff <= 1e-6, (got, want)


@pytest.mark.slow
def test_exported_script_matches_optbench_run_on_two_ranks(exported, nano_data, tmp_path):
    """Under torchrun (2 gloo ranks) the script wraps the model in DDP and sums gradients over ranks with the
    loop's own functions: the same val losses as `optbench run` on 2 ranks (Muon sharded across ranks)."""
    out = tmp_path / "run"
    cmd = [*TORCHRUN_2, "-m", "optbench", "run", "--track", "nano", "--recipe", str(FIXTURES / "nano-muon.toml"),
           "--seed", "0", "--set", "train_steps=8", "--out", str(out), "--quiet"]
    p = subprocess.run(cmd, env=sub_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    want = _run_val_losses(out)
    got, stdout = _script_val_losses(exported["muon"], nano_data, tmp_path, steps=8, launcher=tuple(TORCHRUN_2))
    assert sorted(got) == sorted(want) == [0, 8]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run, 2 ranks (muon): {diff:.3g}")
    assert diff <= 1e-6, (got, want)
    [log] = (tmp_path / "logs").glob("*.txt")
    assert "with world_size 2" in log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("recipe,extra", [("nano-sophia-gnb", 2), ("nano-schedulefree", 0)])
def test_exported_protocol_matches_optbench_run(recipe, extra, nano_data, tmp_path):
    """The optimizer protocol in the script is the loop's: Sophia's extra Hessian passes (steps 4 and 9) and the
    schedule-free eval swap give the same val losses as `optbench run` (exported for nano: Sophia's batch_size
    is the track's tokens per step)."""
    script = tmp_path / "train_gpt_simple.py"
    export_recipe(str(FIXTURES / f"{recipe}.toml"), "nano", script)
    run = optbench_run(str(FIXTURES / f"{recipe}.toml"), tmp_path / "run", steps=12)
    want = _run_val_losses(run)
    assert json.loads((run / "results.json").read_text())["runs"][0]["extra_passes"] == extra
    got, _ = _script_val_losses(script, nano_data, tmp_path, steps=12)
    assert sorted(got) == sorted(want) == [0, 12]
    diff = max(abs(got[s] - want[s]) for s in want)
    print(f"max |val loss difference| export vs run ({recipe}): {diff:.3g}")
    assert diff <= 1e-6, (got, want)


def test_torch_default_init_is_exported():
    from optbench.optim.recipe import load_recipe

    text = export_script(load_recipe("track3-2-adamw"), "small")
    init = text[text.index("Init & Optim Hyperparams"):text.index("Training and Validation")]
    assert "def init_weights_torch_default(model" in init and "    init_weights_torch_default(model)\n" in init
    assert "train_steps = 5625" in init and "warmup_steps=250" in init
    assert "def init_weights(" not in text  # only the recipe's scheme
    assert static_check(text, "x.py").ok


@pytest.mark.slow
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


# ----------------------------------------------------------------------------- one source: sections and template


def _section_texts(text: str) -> dict[str, str]:
    """Each section's text: from the line after its banner to the line before the next banner (or the end)."""
    lines = text.splitlines(keepends=True)
    starts = _section_lines(text)
    order = sorted(starts.items(), key=lambda kv: kv[1])
    out = {}
    for (name, i), nxt in zip(order, [s for _, s in order[1:]] + [len(lines) + 1]):
        out[name] = "".join(lines[i + 2:nxt - 1])
    return out


@pytest.mark.parametrize("key", ["adamw", "muon", "soap"])
def test_sections_hold_the_import_free_modules_verbatim(exported, key):
    """Each section holds exactly the source of the modules optbench's loop imports (optbench/standalone/*), in
    order, and the module-level sections nothing else."""
    from optbench.submission.export import IN_TRIAL, SECTION_MODULES
    from optbench.submission.inline import inline_function, inline_module

    sec = _section_texts(exported[key].read_text())
    blocks = {k: [inline_module(m) for m in mods] for k, mods in SECTION_MODULES.items()}

    def joined(mods, ind=""):
        return "\n\n".join(m.block(ind).rstrip("\n") for m in mods)

    assert sec["Dataloader"].strip("\n") == joined(blocks["dataloader"])
    gpt = inline_module("optbench.model.gpt", drop=("init_weights", "init_weights_torch_default", "count_params"))
    assert sec["Architecture"].strip("\n") == joined([gpt])
    assert sec["Setup"].lstrip("\n").startswith(joined(blocks["setup"]) + "\n\n\nTRACK = ")
    init = [inline_function("optbench.model.gpt", "init_weights")] + blocks["init_modules"]
    assert sec["Init & Optim Hyperparams"].lstrip("\n").startswith(joined(init, IN_TRIAL) + "\n\n    # we want")
    assert sec["Training and Validation"].lstrip("\n").startswith(
        joined(blocks["training_modules"], IN_TRIAL) + "\n\n    train_model = data_parallel(model, device)")
    # the glue after the modules defines no function and no class: the step's code is the modules'
    glue = sec["Training and Validation"][len(joined(blocks["training_modules"], IN_TRIAL)) + 1:]
    assert "def " not in glue and "class " not in glue


def test_inlined_module_body_is_its_source_without_imports():
    import inspect

    from optbench.standalone import training
    from optbench.submission.inline import inline_module

    m = inline_module("optbench.standalone.training")
    src = inspect.getsource(training)
    kept = [ln for ln in src.splitlines() if not ln.startswith(("import ", "from "))]
    assert [ln for ln in m.body.splitlines() if ln.strip()] == [ln for ln in kept if ln.strip()]
    assert {"forward_backward", "evaluate", "extra_pass", "TrainClock"} <= m.defined
    assert "import torch.distributed as dist" in m.imports and not m.deps


def test_exporter_modules_hold_no_training_code_in_strings():
    """The script's code is the template file's and the inlined modules': no string in the exporter is code that
    trains."""
    import optbench.submission.export as export_mod
    import optbench.submission.inline as inline_mod
    import optbench.submission.render as render_mod

    for mod in (export_mod, inline_mod, render_mod):
        tree = ast.parse(Path(mod.__file__).read_text())
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        for s in strings:
            for code in ("backward(", ".step(", "zero_grad", "no_grad", "for step in", "def ", "model("):
                assert code not in s, f"{mod.__name__}: string holds {code!r}: {s[:80]!r}"


def test_template_is_package_data_with_upstream_banners_in_order():
    from optbench.submission.export import template_text

    text = template_text()
    found = _section_lines(text)
    assert list(found) == list(SECTIONS) and sorted(found.values()) == list(found.values())
    assert text.count("${dataloader}") == 1 and text.count("${training_modules}") == 1


def test_optimizer_module_is_found_from_the_class_not_the_registry_family():
    import dataclasses

    from optbench import optim
    from optbench.submission.export import optimizer_binding

    muon = optim.info("muon")
    assert optimizer_binding(dataclasses.replace(muon, family="no-such-module")) == ("optbench.optim.muon", "Muon")
    assert optimizer_binding(optim.info("soap")) == ("optbench.optim.soap", "SOAP")
    assert optimizer_binding(optim.info("adamw")) == (None, "torch.optim.AdamW")  # torch's own: named, not inlined
