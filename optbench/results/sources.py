"""Runs from whatever a user points at: a run dir (folder with results.json), a results.json, an upstream log.

    src = load_source("runs/muon_s0")           # RunSource(label, runs, results, path)
    src = load_source("logs/0a1b.txt", target=3.28)   # a log states no target: the caller gives it

A folder without results.json is read as its upstream-format logs (*.txt with the '=' separator line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.results.logparse import looks_like_log, parse_log
from optbench.results.schema import Results, RunRecord, load_results


@dataclass
class RunSource:
    path: str
    label: str
    kind: str  # "results" | "log"
    runs: list[RunRecord] = field(default_factory=list)
    results: Results | None = None  # when read from a results.json
    target: float | None = None  # the source's own target when it declares one


def load_source(path: str | os.PathLike, target: float | None = None) -> RunSource:
    """Read one RUN argument. OptbenchError (naming the path) when it is none of the accepted kinds.
    `target` judges upstream-format logs (they state none); a results.json carries its own."""
    p = Path(path)
    if p.is_dir():
        if (p / "results.json").is_file():
            return _from_results(p / "results.json", label=p.name)
        logs = sorted(x for x in p.glob("*.txt") if x.is_file() and _is_log(x))
        if not logs:
            raise OptbenchError(f"{p}: a run dir needs a results.json (or upstream-format .txt logs); found neither")
        runs: list[RunRecord] = []
        for lg in logs:
            runs += parse_log(lg).run_records(_log_target(target, p))
        return RunSource(str(p), p.name, "log", runs)
    if not p.exists():
        raise OptbenchError(f"{p}: no such file or folder")
    if p.suffix == ".json":
        return _from_results(p, label=p.parent.name if p.name == "results.json" else p.stem)
    log = parse_log(p)
    return RunSource(str(p), p.stem, "log", log.run_records(_log_target(target, p)))


def _log_target(target: float | None, p: Path) -> float:
    if target is None:
        raise OptbenchError(f"{p}: an upstream-format log states no target; pass one (--target, or the track's)")
    return target


def _is_log(p: Path) -> bool:
    try:
        return looks_like_log(p.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False


def _from_results(p: Path, label: str) -> RunSource:
    r = load_results(p)
    runs = [x for x in r.runs if x.curve]
    return RunSource(str(p), label or r.optimizer, "results", runs, r, r.target)
