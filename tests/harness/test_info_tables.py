"""`optbench recipes`, `tracks`, `optimizers` are readable anywhere: in an 80-column terminal (a real pseudo-terminal)
and in a pipe with COLUMNS=80, no name, number or path is cut or split across lines."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from optbench import optim
from optbench.optim.recipe import load_recipe, recipe_names

pytestmark = pytest.mark.slow  # subprocesses

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_terminal(args: list[str], cols: int = 80) -> str:
    """The command's output in a pseudo-terminal `cols` wide (rich sees a real terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"}
    p = subprocess.Popen([sys.executable, "-m", "optbench", *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert p.wait(timeout=120) == 0, out.decode(errors="replace")[-2000:]
    os.close(master)
    return ANSI.sub("", out.decode()).replace("\r\n", "\n")


def in_pipe(args: list[str]) -> str:
    env = os.environ | {"COLUMNS": "80"}
    p = subprocess.run([sys.executable, "-m", "optbench", *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _lines_with(out: str, text: str) -> list[str]:
    return [ln for ln in out.splitlines() if text in ln]


@pytest.mark.parametrize("where", [in_terminal, in_pipe])
def test_recipes(where):
    out = where(["recipes"])
    assert "…" not in out
    for name in recipe_names():
        r = load_recipe(name)
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", out, re.M), name
        assert r.source in out, f"{name}: source cut or split"  # whole, on one line
        if r.published and r.published.steps:
            assert f"{r.published.steps:,}" in out
    if where is in_pipe:  # one line per recipe: its name, optimizer, track and source together
        for name in recipe_names():
            r = load_recipe(name)
            assert any(r.source in ln and r.optimizer in ln for ln in _lines_with(out, name + " ")), name


@pytest.mark.parametrize("where", [in_terminal, in_pipe])
def test_tracks(where):
    out = where(["tracks"])
    assert "…" not in out
    for number in ("162,354,816", "454,496,336", "2,897,664", "364,032", "10,485,760", "262,144", "524,288"):
        assert number in out, number
    for name in ("small", "medium", "cpu", "nano", "books19c-mini", "fineweb"):
        assert re.search(rf"(^|\s){name}(\s|$)", out, re.M), name
    if where is in_terminal:
        assert max(len(ln) for ln in out.splitlines()) <= 80


@pytest.mark.parametrize("where", [in_terminal, in_pipe])
def test_optimizers(where):
    out = where(["optimizers"])
    assert "…" not in out
    for name in optim.names():
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", out, re.M), name
        assert optim.info(name).reference in out, f"{name}: reference cut or split"
