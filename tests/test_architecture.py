"""The layering drawn in docs/architecture.md holds: every import in optbench/**.py (lazy ones inside functions
too) goes from a package to one its row allows. The table in the doc is the one source of the rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "optbench"
DOC = REPO / "docs" / "architecture.md"


def allowed_imports() -> dict[str, set[str]]:
    """{package: packages it may import} from the doc's table (`| \\`name\\` | job | \\`a\\`, \\`b\\` |`)."""
    rules: dict[str, set[str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[\w.]+`", cells[0]):
            rules[cells[0].strip("`")] = set(re.findall(r"`([\w.]+)`", cells[2]))
    return rules


def unit(module: str) -> str:
    """optbench.results.stats -> results; optbench.tracks -> tracks; optbench -> optbench (the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_of(path: Path, root: Path) -> str:
    """optbench/results/stats.py -> optbench.results.stats; optbench/__init__.py -> optbench."""
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def actual_imports(pkg: Path = PKG) -> dict[str, dict[str, list[str]]]:
    """{package: {imported package: [file:line, ...]}} over every module under the optbench folder `pkg`."""
    edges: dict[str, dict[str, list[str]]] = {}
    for path in sorted(pkg.rglob("*.py")):
        rel = path.relative_to(pkg.parent)
        src = unit(module_of(path, pkg.parent))
        for node in ast.walk(ast.parse(path.read_text(), filename=str(rel))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] if node.module != "optbench" else [f"optbench.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] != "optbench":
                    continue
                dst = unit(t)
                if dst not in (src, "optbench"):
                    edges.setdefault(src, {}).setdefault(dst, []).append(f"{rel}:{node.lineno}")
    return edges


def test_every_package_has_a_row():
    rules = allowed_imports()
    units = {unit(module_of(p, REPO)) for p in PKG.rglob("*.py")} - {"optbench"}
    missing = sorted(units - set(rules))
    assert not missing, f"add a row for {missing} to the table in docs/architecture.md (its job, what it may import)"
    assert {"cli", "results", "train", "optim", "tracks"} <= set(rules)


def test_imports_follow_the_layers():
    rules = allowed_imports()
    bad = [f"{src} -> {dst} ({', '.join(where[:3])})" for src, dsts in actual_imports().items()
           for dst, where in dsts.items() if dst not in rules.get(src, set())]
    assert not bad, "imports the layering in docs/architecture.md does not allow:\n" + "\n".join(bad)


def test_the_layers_have_no_cycle():
    rules = allowed_imports()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise AssertionError(f"cycle in the table: {' -> '.join(path + [node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(rules.get(node, ())):
            visit(nxt, path + [node])
        state[node] = 2

    for n in sorted(rules):
        visit(n, [])


def test_the_checker_sees_a_violation(tmp_path):
    """The rule can fail: an upward import (results -> train), even a lazy one, is found with its place."""
    pkg = tmp_path / "optbench"
    (pkg / "results").mkdir(parents=True)
    (pkg / "results" / "bad.py").write_text("import math\n\n\ndef f():\n    from optbench.train.loop import run\n")
    (pkg / "results" / "ok.py").write_text("from optbench.results import stats\nfrom optbench import optim\n")
    edges = actual_imports(pkg)
    assert edges == {"results": {"train": ["optbench/results/bad.py:5"], "optim": ["optbench/results/ok.py:2"]}}
    assert "train" not in allowed_imports()["results"] and "optim" in allowed_imports()["results"]
