"""Shared fixtures: the ../shared folder (skipped with a reason when absent, as in a user's clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# fixtures that run `optbench run` in a subprocess: a test that uses one is slow
SLOW_FIXTURES = frozenset({"nano_run"})

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPTBENCH_SHARED", REPO.parent / "shared"))


NO_SHARED = f"../shared not found at {SHARED} (a user's clone has none; set OPTBENCH_SHARED)"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(NO_SHARED)
    return SHARED


@pytest.fixture(scope="session")
def trajectories_dir(shared_dir: Path) -> Path:
    d = shared_dir / "reference_trajectories"
    if not d.is_dir():
        pytest.skip(f"reference trajectories not found at {d}")
    return d


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Build the bundled corpus shards into a per-session cache (subprocesses inherit it)."""
    if "OPTBENCH_CACHE" not in os.environ:
        os.environ["OPTBENCH_CACHE"] = str(tmp_path_factory.mktemp("optbench-cache"))
    yield


@pytest.fixture(scope="session")
def nano_data() -> Path:
    from optbench.data.corpus import default_data_dir

    from optbench.tracks import get_track

    return default_data_dir(get_track("nano").vocab_size)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The optimizer registry as a copy for one test: what the test registers is gone after it."""
    from optbench.optim import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    return registry


@pytest.fixture
def one_thread():
    """Tiny tensors: intra-op threads only add OpenMP overhead (on a shared 2-core machine, up to 100x for small
    matmuls such as Muon's Newton-Schulz)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """One line right above the final counts naming what the skips without ../shared left unchecked."""
    yield
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if NO_SHARED in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} skipped: {NO_SHARED}; not run: conformance against the official implementations' "
            "reference trajectories and the tests on the shared corpora", yellow=True)
