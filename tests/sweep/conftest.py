"""Sweep test helpers: a tiny nano sweep (20-step trials), SQLite and PostgreSQL storage URLs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PG_ENV = "OPTBENCH_TEST_POSTGRES_URL"
SPACE = 'lr = { log = [1e-3, 3e-2] }\nweight_decay = { log = [1e-3, 0.3] }\n'


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sweeps.db'}"


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {PG_ENV} (.ci/run starts one with .ci/start-postgres)")
    return url


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def tiny_sweep(name: str, url: str, tmp_path: Path, *, space: str | dict = SPACE, steps: int = 20, **kw):
    from optbench.sweep import create_sweep

    if isinstance(space, str):
        f = tmp_path / f"{name}-space.toml"
        f.write_text(space)
        space = f
    kw.setdefault("recipe", "nano-adamw")
    return create_sweep(name, track="nano", space=space, storage=url, settings=[f"train_steps={steps}"],
                        runs_dir=tmp_path / name, **kw)


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "optbench", *args], capture_output=True, text=True, env=env, **kw)


def popen_worker(name: str, url: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "optbench", "sweep", "worker", name, "--storage", url,
                             "--threads", "1", *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
