"""Fixtures for the submission tests: the bundled nano shards, exported scripts, one short `optbench run`.

Subprocesses run with OMP_NUM_THREADS=1 so the run and the exported script do their float reductions alike
(and the suite stays light on a shared 2-core machine)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EQ_STEPS = 21  # nano evals at 0, 20 and 21: three val losses to compare


def sub_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_TEST_")}
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="session", autouse=True)
def _one_thread_children():
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # the checker's harness subprocess inherits it
    yield
    if old is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = old


@pytest.fixture(scope="session")
def nano_data() -> Path:
    from optbench.data.corpus import default_data_dir

    from optbench.tracks import get_track

    return default_data_dir(get_track("nano").vocab_size)  # the nano track's vocabulary (2,048 ids)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    """train_gpt_simple.py exported (track small) for nano-adamw, a Muon recipe and a SOAP recipe."""
    from optbench.submission.export import export_recipe

    d = tmp_path_factory.mktemp("exported")
    out = {}
    for key, recipe in (("adamw", "nano-adamw"), ("muon", str(FIXTURES / "nano-muon.toml")),
                        ("soap", str(FIXTURES / "nano-soap.toml"))):
        out[key] = d / f"{key}_train_gpt_simple.py"
        export_recipe(recipe, "small", out[key])
    return out


def optbench_run(recipe: str, out: Path, steps: int = EQ_STEPS, settings: tuple[str, ...] | list[str] = ()) -> Path:
    """`optbench run --track nano --recipe RECIPE --seed 0 --set train_steps=STEPS [--set S ...]` (one seed, CPU)."""
    sets = [a for s in (f"train_steps={steps}", *settings) for a in ("--set", s)]
    cmd = [sys.executable, "-m", "optbench", "run", "--track", "nano", "--recipe", recipe, "--seed", "0", *sets,
           "--out", str(out), "--quiet"]
    p = subprocess.run(cmd, env=sub_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def nano_run(tmp_path_factory, nano_data) -> Path:
    """The nano-adamw run the export is compared with (and packed)."""
    return optbench_run("nano-adamw", tmp_path_factory.mktemp("run") / "run")
