"""`optbench check`: exported Muon and SOAP scripts are clean; each rule catches its mutation, with a message
naming the rule and where; logs: code section, fixed eval steps, verdict; exit codes 0 / 1 / 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.submission.check import THIRD_PARTY_OPTIMIZERS, check, static_check

INIT_SECTION = "    train_steps = 3250\n"
TRAIN_BACKWARD = "                (loss * scale).backward()\n"  # in forward_backward (optbench/standalone/training.py)


def mutate(path: Path, tmp_path: Path, old: str, new: str, name: str = "mutant.py") -> Path:
    text = path.read_text()
    assert text.count(old) == 1, f"mutation anchor not unique: {old!r}"
    out = tmp_path / name
    out.write_text(text.replace(old, new))
    return out


def line_of(path: Path, needle: str) -> int:
    return next(i + 1 for i, ln in enumerate(path.read_text().splitlines()) if needle in ln)


# ----------------------------------------------------------------------------- clean exports


@pytest.mark.slow
@pytest.mark.parametrize("key", ["muon", "soap"])
def test_exported_scripts_pass(exported, nano_data, key):
    rep = check(exported[key], steps=1, data_dir=nano_data)
    assert rep.ok, [str(v) for v in rep.violations]
    dyn = next(n for n in rep.notes if n.startswith("dynamic: ran"))
    assert "2 fwd/2 bwd/1024 tok (expected 2 fwd/2 bwd/1024 tok)" in dyn


# ----------------------------------------------------------------------------- dynamic rules


@pytest.mark.slow
def test_extra_layer_fails_architecture(exported, nano_data, tmp_path):
    s = mutate(exported["muon"], tmp_path,
               "self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])",
               "self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers + 1)])")
    rep = check(s, steps=1, data_dir=nano_data)
    msgs = [v.message for v in rep.violations if v.rule == "architecture"]
    assert any("at nano size" in m and "extra parameters ['blocks.2." in m for m in msgs), msgs
    assert any("at small size" in m and "blocks.12." in m and "expected 162,354,816" in m for m in msgs), msgs


@pytest.mark.slow
def test_second_backward_per_step_fails_passes(exported, nano_data, tmp_path):
    s = mutate(exported["muon"], tmp_path, TRAIN_BACKWARD,
               "                (loss * scale).backward(retain_graph=True)\n"
               "                (loss * scale).backward()  # a second backward\n")
    rep = check(s, steps=1, data_dir=nano_data)
    msgs = [str(v) for v in rep.violations]
    assert msgs == [f"{s}: [passes] step 0: 4 backward passes for 2 forward passes (at most one "
                    "forward-backward pass per step)"], msgs


def _step(fwd: int, bwd: int, tokens: int) -> dict:
    return {"forwards": fwd, "backwards": bwd, "tokens": tokens, "inputs": None, "targets": None}


def test_judge_steps_rules():
    from optbench.submission.check import Report, judge_steps

    rep = Report("s.py")
    judge_steps([_step(2, 2, 1024)], 1024, None, rep, "s.py")
    assert rep.ok
    judge_steps([_step(3, 3, 1536)], 1024, None, rep, "s.py")  # an extra forward-backward on part of the batch
    assert [v.rule for v in rep.violations] == ["passes"] and "1536 tokens" in rep.violations[0].message
    rep = Report("s.py")
    judge_steps([_step(1, 1, 512)], 1024, None, rep, "s.py")
    assert [v.rule for v in rep.violations] == ["batch-size"]
    rep = Report("s.py")
    judge_steps([_step(2, 0, 1024)], 1024, None, rep, "s.py")
    assert [v.rule for v in rep.violations] == ["passes"] and "no backward" in rep.violations[0].message


def test_data_order_compares_stream_windows(nano_data):
    import torch

    from optbench.data.loader import TokenStream
    from optbench.data.shards import list_shards
    from optbench.submission.check import Report, judge_steps

    files = list_shards(nano_data, "train")
    x0, y0 = TokenStream(files, 1024, 128).next_batch()
    ok = dict(_step(2, 2, 1024), inputs=x0, targets=y0)
    rep = Report("s.py")
    judge_steps([ok], 1024, TokenStream(files, 1024, 128), rep, "s.py")
    assert rep.ok
    shuffled = dict(ok, inputs=x0[torch.randperm(len(x0), generator=torch.Generator().manual_seed(0))])
    judge_steps([shuffled], 1024, TokenStream(files, 1024, 128), rep, "s.py")
    assert [v.rule for v in rep.violations] == ["data-order"]


def test_script_without_test_switch_gets_static_checks_only(tmp_path):
    s = tmp_path / "upstream_layout.py"
    s.write_text("import os\nimport sys\nimport torch\n"
                 "device = torch.device('cuda', int(os.environ['LOCAL_RANK']))\n"
                 "batch_size = 8 * 64 * 1024\nval_tokens = 20 * 524288\n"
                 "num_trials = int(sys.argv[-1]) if len(sys.argv) > 1 else 1\n")
    rep = check(s)
    assert rep.ok and any(n.startswith("dynamic: skipped") for n in rep.notes)
    s.write_text(s.read_text().replace("8 * 64 * 1024", "4 * 64 * 1024"))
    rep = check(s)
    assert [v.rule for v in rep.violations] == ["fixed-fields"] and rep.violations[0].where == f"{s}:5"


@pytest.mark.slow
def test_changed_batch_in_training_code_fails_dynamic(exported, nano_data, tmp_path):
    s = mutate(exported["muon"], tmp_path, "        for i in range(accum_steps):\n",
               "        for i in range(accum_steps // 2):\n")
    rep = check(s, steps=1, data_dir=nano_data)
    msgs = [str(v) for v in rep.violations]
    assert any("[batch-size] step 0: 512 tokens" in m and "fixes 1024 per step" in m for m in msgs), msgs
    assert "fixed-fields" not in rep.rules()  # the constants are untouched: the dynamic check found it


# ----------------------------------------------------------------------------- static rules


def test_changed_batch_constant_fails_static(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, "batch_tokens = 524288  #", "batch_tokens = 262144  #")
    rep = static_check(s.read_text(), str(s))
    [v] = [v for v in rep.violations if v.rule == "fixed-fields"]
    assert "batch_tokens = 262144" in v.message and "524288" in v.message
    assert v.where == f"{s}:{line_of(s, 'batch_tokens = 262144')}"


def test_changed_architecture_constant_fails_static(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, "model_config = GPTConfig(vocab_size=50304, num_layers=12,",
               "model_config = GPTConfig(vocab_size=50304, num_layers=13,")
    rep = static_check(s.read_text(), str(s))
    assert any(v.rule == "fixed-fields" and "num_layers=13" in v.message for v in rep.violations)


def test_import_heavyball_fails(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, "import numpy as np\n", "import numpy as np\nimport heavyball\n")
    rep = static_check(s.read_text(), str(s))
    [v] = rep.violations
    assert v.rule == "third-party-optimizer" and "'heavyball'" in v.message
    assert v.where == f"{s}:{line_of(s, 'import heavyball')}"
    assert "heavyball" in THIRD_PARTY_OPTIMIZERS


def test_other_third_party_import_fails_allowlist(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, "import numpy as np\n", "import numpy as np\nfrom scipy import linalg\n")
    rep = static_check(s.read_text(), str(s))
    assert [v.rule for v in rep.violations] == ["import-allowlist"] and "'scipy'" in rep.violations[0].message


def test_hyperparameters_from_argparse_fail(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, INIT_SECTION,
               "    import argparse\n"
               "    parser = argparse.ArgumentParser()\n"
               "    parser.add_argument('--lr', type=float, default=0.025)\n"
               "    args = parser.parse_args()\n" + INIT_SECTION)
    rep = static_check(s.read_text(), str(s))
    [v] = rep.violations
    assert v.rule == "cli-hyperparameters" and "'argparse'" in v.message
    assert v.where == f"{s}:{line_of(s, 'import argparse')}"


def test_hyperparameters_from_sys_argv_and_environment_fail(exported, tmp_path):
    s = mutate(exported["muon"], tmp_path, INIT_SECTION,
               "    lr = float(sys.argv[1])\n"
               "    wd = float(os.environ.get('WD', '0.05'))\n"
               "    steps = int(os.environ['OPTBENCH_TEST_STEPS'])\n" + INIT_SECTION)
    rep = static_check(s.read_text(), str(s))
    got = {(v.rule, v.where) for v in rep.violations}
    STEPS_READ = "os.environ['OPTBENCH_TEST_STEPS']"
    assert got == {("cli-hyperparameters", f"{s}:{line_of(s, 'sys.argv[1]')}"),
                   ("environment", f"{s}:{line_of(s, 'WD')}"),
                   ("environment", f"{s}:{line_of(s, STEPS_READ)}")}, got
    assert any("outside the marked test-only block" in v.message for v in rep.violations)


def test_allowed_reads_are_clean():
    src = ("import os, sys\nwith open(sys.argv[0]) as f:\n    code = f.read()\n"
           "rank = int(os.environ.get('RANK', '0'))\nws = int(os.environ['WORLD_SIZE'])\n"
           "os.environ['PYTORCH_CUDA_ALLOC_CONF'] = 'expandable_segments:True'\n"
           "n = int(sys.argv[-1]) if len(sys.argv) > 1 else 1\n")
    assert static_check(src, "ok.py").ok


def test_dynamic_import_fails():
    rep = static_check("import importlib\nopt = importlib.import_module('heavy' + 'ball')\n", "d.py")
    assert [(v.rule, v.where) for v in rep.violations] == [("dynamic-import", "d.py:2")]
    src = ("import importlib.util\nspec = importlib.util.spec_from_file_location('o', 'opt.py')\n"
           "exec(open('opt.py').read())\n")
    rep = static_check(src, "d.py")
    assert [(v.rule, v.where) for v in rep.violations] == [("dynamic-import", "d.py:2"), ("dynamic-import", "d.py:3")]


# ----------------------------------------------------------------------------- logs


def _log(code: str, trials: list[list[str]]) -> str:
    head = code.rstrip("\n") + "\n" + "=" * 100 + "\n" + \
        "Running PyTorch 2.11.0+cu128 compiled for CUDA 12.8 on NVIDIA H100 80GB HBM3 with world_size 8\n" + \
        "=" * 100 + "\n"
    return head + "".join(ln + "\n" for t in trials for ln in t)


def _trial(T: int, steps: list[int], final: float) -> list[str]:
    out = []
    for s in steps:
        loss = 10.82584 if s == 0 else final + (T - s) * 1e-4
        out.append(f"step:{s}/{T} val_loss:{loss:.5f} train_time:{s * 0.15:.3f}s step_avg:150.00ms")
    return out


def test_log_trials_ending_at_different_steps_fail(exported, tmp_path):
    code = exported["muon"].read_text()
    log = tmp_path / "early.txt"
    log.write_text(_log(code, [_trial(3250, [0, 3000, 3250], 3.2770),
                               _trial(3250, [0, 3000, 3225], 3.2790)]))  # the second trial stopped early
    rep = check(log)
    msgs = [str(v) for v in rep.violations]
    assert any("[fixed-eval-steps] trial 1 ends at step 3225 of 3250" in m for m in msgs), msgs
    line = log.read_text().splitlines().index(_trial(3250, [3225], 3.2790)[0]) + 1
    assert any(v.where == f"{log}:{line}" for v in rep.violations)
    assert any(n.startswith("log: 2 trial(s)") and "verdict:" in n for n in rep.notes)


def test_log_trials_of_different_lengths_fail(exported, tmp_path):
    code = exported["muon"].read_text()
    log = tmp_path / "lengths.txt"
    log.write_text(_log(code, [_trial(3250, [0, 3250], 3.2770), _trial(3200, [0, 3200], 3.2775)]))
    rep = check(log)
    assert any(v.rule == "fixed-eval-steps" and "different run lengths [3200, 3250]" in v.message
               for v in rep.violations)


def test_clean_log_gives_verdict_and_checks_code(exported, tmp_path):
    code = exported["muon"].read_text()
    trials = [_trial(3250, [0, 3000, 3250], 3.2770 + 0.0002 * i) for i in range(4)]
    log = tmp_path / "clean.txt"
    log.write_text(_log(code, trials))
    rep = check(log)
    assert rep.ok, [str(v) for v in rep.violations]
    verdict = next(n for n in rep.notes if n.startswith("log:"))
    assert "PASS [upstream-2026-04-30] step 3250" in verdict and "n=4" in verdict
    # the log's code section gets the static checks
    bad = tmp_path / "bad.txt"
    bad.write_text(_log(code.replace("import numpy as np\n", "import numpy as np\nimport heavyball\n"), trials))
    rep = check(bad)
    assert [v.rule for v in rep.violations] == ["third-party-optimizer"]
    assert rep.violations[0].where.startswith(f"{bad} (code section):")


def test_log_code_must_equal_script(exported, tmp_path):
    trials = [_trial(3250, [0, 3250], 3.2770)]
    log = tmp_path / "other.txt"
    log.write_text(_log(exported["soap"].read_text(), trials))
    from optbench.submission.check import log_check

    rep = log_check(log, script_text=exported["muon"].read_text(), script_name="muon.py")
    assert [v.rule for v in rep.violations] == ["log-code"] and "differs from muon.py" in rep.violations[0].message
    same = tmp_path / "same.txt"
    same.write_text(_log(exported["muon"].read_text(), trials))
    assert log_check(same, script_text=exported["muon"].read_text()).ok


# ----------------------------------------------------------------------------- CLI


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process (optbench.cli.main): exit code, stdout, stderr."""
    from optbench.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_exit_codes(exported, tmp_path, capsys):
    code, out, err = _cli(capsys, "check", str(exported["muon"]), "--no-dynamic")
    assert code == 0 and "clean" in out, out + err
    s = mutate(exported["muon"], tmp_path, "import numpy as np\n", "import numpy as np\nimport heavyball\n")
    code, out, err = _cli(capsys, "check", str(s), "--no-dynamic")
    assert code == 1 and "VIOLATION" in out and "[third-party-optimizer]" in out
    code, out, err = _cli(capsys, "check", str(tmp_path / "missing.py"))
    assert code == 2 and "no such file" in err
    (tmp_path / "notpy.py").write_text("this is not python (\n")
    code, out, err = _cli(capsys, "check", str(tmp_path / "notpy.py"))
    assert code == 2 and "not a Python script" in err and "Traceback" not in err


def test_cli_export(tmp_path, capsys):
    out_file = tmp_path / "train_gpt_simple.py"
    code, out, err = _cli(capsys, "export", "--recipe", "nano-adamw", "--out", str(out_file),
                          "--set", "train_steps=500")
    assert code == 0 and out_file.is_file(), err
    assert "    train_steps = 500\n" in out_file.read_text()
    code, out, err = _cli(capsys, "export", "--recipe", "nano-adamw", "--out", str(out_file))
    assert code == 2 and "exists" in err


def test_check_missing_file_raises():
    with pytest.raises(OptbenchError, match="no such file"):
        check("/nonexistent/train_gpt_simple.py")


def test_optbench_run_log_is_recognised(nano_run):
    rep = check(nano_run / "train_log.txt")
    assert rep.ok, [str(v) for v in rep.violations]
    assert any("is an `optbench run` log" in n for n in rep.notes)
    verdict = next(n for n in rep.notes if n.startswith("log: 1 trial(s)"))
    # the log's header names track nano: judged against its target 5 and rule, not small's 3.28
    assert "[workspace]" in verdict and "track nano's default; target 5)" in verdict


@pytest.mark.slow
def test_bundled_recipe_with_a_dtype_hparam_exports_and_passes(tmp_path):
    """The package's nano-muon recipe sets ns_dtype = "float32" (TOML has no dtypes): the script must say torch.float32."""
    import subprocess
    import sys

    script = tmp_path / "train_gpt_simple.py"
    r = subprocess.run([sys.executable, "-m", "optbench", "export", "--recipe", "nano-muon", "--track", "nano",
                        "--out", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "ns_dtype=torch.float32" in script.read_text()
    r = subprocess.run([sys.executable, "-m", "optbench", "check", str(script), "--track", "nano"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
