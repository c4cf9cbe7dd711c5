"""Packaging promises: Python >= 3.11 (tomllib), the torch version check, the README's test command is CI's."""

import importlib.metadata
import tomllib
from pathlib import Path
from unittest import mock

import optbench

REPO = Path(__file__).resolve().parents[2]


def test_python_floor_and_the_slow_marker_are_declared():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["requires-python"] == ">=3.11"
    assert any(m.startswith("slow:") for m in meta["tool"]["pytest"]["ini_options"]["markers"])
    assert "pytest-xdist>=3.5" in meta["project"]["optional-dependencies"]["test"]


def test_torch_check_names_the_problem():
    assert optbench.torch_problem() is None  # this environment's torch is new enough
    with mock.patch("importlib.metadata.version", return_value="2.3.1"):
        assert optbench.torch_problem() == "optbench needs torch >= 2.4, found torch 2.3.1: upgrade torch (see the README)"
    with mock.patch("importlib.metadata.version", return_value="2.4.0+cu121"):
        assert optbench.torch_problem() is None

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    with mock.patch("importlib.metadata.version", side_effect=missing), \
            mock.patch("importlib.util.find_spec", return_value=None):
        assert "torch is not installed: install it first" in optbench.torch_problem()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    cmd = 'pip install torch==2.13.0 && pip install -e ".[test]" && python -m pytest -q -n auto'
    assert cmd in readme and cmd in ci
