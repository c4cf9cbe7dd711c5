"""Bad inputs on the read side of issue 15, through the real CLI, before (main) and after (this branch).

    python bench/bad_inputs_read.py [--before /work/main] [--after .] [--markdown]

Each case writes its input into a fresh temp folder and runs `python -m optbench ...` with PYTHONPATH set to each
checkout (so the two run side by side); the table lists the exit code and what happened: a traceback (its exception),
the first line of the error, or what the case checks (a rank on LEADERBOARD.md, the verdict, a warning).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SEP = "=" * 100
NAN_RESULTS = """{
  "agent_id": "agent-01", "experiment": "nan test", "optimizer": "Muon", "steps_to_3_28": 3000,
  "final_val_loss": NaN, "num_runs": 1, "mean_val_loss": NaN, "target": 3.28,
  "runs": [{"seed": 0, "final_val_loss": NaN, "steps_to_target": 3000,
            "curve": [{"step": 0, "val_loss": 10.8}, {"step": 3000, "val_loss": 3.27}, {"step": 3125, "val_loss": NaN}]}]
}
"""
NULL_MEAN = json.dumps({"agent_id": "agent-01", "experiment": "null mean", "optimizer": "Muon", "steps_to_3_28": 3000,
                        "final_val_loss": None, "num_runs": 1, "target": 3.28,
                        "runs": [{"seed": 0, "curve": [{"step": 0, "val_loss": 10.8}, {"step": 3000, "val_loss": 3.27}]}]})
DIVERGED_AT_FIRST_EVAL = json.dumps({
    "agent_id": "agent-01", "experiment": "div", "optimizer": "adamw", "steps_to_3_28": None, "final_val_loss": None,
    "num_runs": 1, "target": 3.28, "reached_target": False, "passes_rule": False,
    "runs": [{"seed": 0, "final_val_loss": None, "curve": [{"step": 0, "val_loss": 10.83}], "diverged": True}]})
GOOD = json.dumps({"agent_id": "agent-01", "experiment": "good", "optimizer": "Muon", "steps_to_3_28": 3000,
                   "final_val_loss": 3.27, "mean_val_loss": 3.27, "num_runs": 1, "target": 3.28,
                   "runs": [{"seed": 0, "final_val_loss": 3.25, "curve": [{"step": 3000, "val_loss": 3.27},
                                                                          {"step": 3125, "val_loss": 3.25}]}]})


def _log(*losses: str) -> str:
    lines = [f"step:{i * 1000}/4000 val_loss:{v} train_time:{i * 10}s step_avg:10ms" for i, v in enumerate(losses)]
    return "\n".join(["print('code')", SEP, "Running PyTorch 2.10.0 compiled for CUDA 12.8 on NVIDIA H100 with world_size 8",
                      SEP, *lines]) + "\n"


HAND_MESSAGE = "--- \r\nagent: agent-01\r\ntimestamp: '2026-04-30 14:30 UTC'\r\nrefs: [20260430-142000_agent-02]\r\n---\r\n\r\nHello"


@dataclass
class Case:
    name: str
    files: dict[str, bytes | str]  # relative path -> content
    argv: list[str]  # {d} = the temp folder
    check: Callable[[Path, subprocess.CompletedProcess], str] | None = None
    setup: list[list[str]] | None = None


def _ranked(d: Path, _p) -> str:
    lb = d / "ws" / "LEADERBOARD.md"
    if not lb.exists():
        return "no LEADERBOARD.md"
    m = re.search(r"^\| (\d+) \| [\d,]+ \| .*nan_agent-01", lb.read_text(), re.M)
    return f"ranked #{m.group(1)} on LEADERBOARD.md" if m else "not ranked"


def _pushed(d: Path, _p) -> str:
    return "files pushed" if any((d / "ws" / "artifacts").glob("*_agent-01/*")) else "nothing pushed"


def _verdict(_d, p) -> str:
    row = next((ln for ln in p.stdout.splitlines() if "log.txt" in ln and "│" in ln), "")
    cells = [c.strip() for c in row.split("│")[1:-1]]
    first = cells[5] if len(cells) > 6 else "?"
    verdict = next((ln.split(" ")[0] for ln in p.stdout.splitlines() if ln.startswith(("PASS", "FAIL"))), "?")
    return f"first step < 3.28: {first}; {verdict}"


def _warned(_d, p) -> str:
    w = p.stderr.count("UserWarning")
    return f"{w} matplotlib warning(s)" if w else "no warning"


def _board_warnings(_d, p) -> str:
    return f"{p.stderr.count('warning:')} warning(s) on read"


def _posted(d: Path, p) -> str:
    msgs = list((d / "ws" / "message_board").glob("*.md"))
    marker = next((ln for m in msgs for ln in m.read_text().splitlines() if ln.startswith("**Leaderboard")), None)
    return f"posted `{marker}`" if marker else "nothing posted"


def _first_out(_d, p) -> str:
    return " / ".join(ln.strip() for ln in p.stdout.splitlines()[1:3])


def _loss_hint(_d, p) -> str:
    return "names final_val_loss" if "final_val_loss" in p.stdout else "no hint"


CASES = [
    Case("NaN results.json: validate", {"r/results.json": NAN_RESULTS}, ["results", "validate", "{d}/r"]),
    Case("Infinity (1e999) results.json: validate", {"r/results.json": GOOD.replace("3.27,", "1e999,", 1)},
         ["results", "validate", "{d}/r"]),
    Case("NaN results.json: artifacts push", {"r/results.json": NAN_RESULTS},
         ["artifacts", "push", "{d}/r", "--name", "nan", "-w", "{d}/ws", "--agent-id", "agent-01"], _ranked,
         setup=[["workspace", "init", "{d}/ws"]]),
    Case("NaN results.json: leaderboard", {"a/nan_agent-01/results.json": NAN_RESULTS},
         ["leaderboard", "{d}/a", "--out", "{d}/ws/LEADERBOARD.md"], _ranked, setup=[["workspace", "init", "{d}/ws"]]),
    Case("NaN results.json: board post --result", {"r/results.json": NAN_RESULTS},
         ["board", "post", "--result", "{d}/r", "-w", "{d}/ws", "--agent-id", "agent-01"],
         setup=[["workspace", "init", "{d}/ws"]]),
    Case("null top-level loss, passing curve: board post --result", {"r/results.json": NULL_MEAN},
         ["board", "post", "--result", "{d}/r", "-w", "{d}/ws", "--agent-id", "agent-01"], _posted,
         setup=[["workspace", "init", "{d}/ws"]]),
    Case("binary results.json: validate", {"r/results.json": bytes(range(256))}, ["results", "validate", "{d}/r"]),
    Case("binary results.json: artifacts push", {"r/results.json": bytes(range(256))},
         ["artifacts", "push", "{d}/r", "--name", "bin", "-w", "{d}/ws", "--agent-id", "agent-01"], _pushed,
         setup=[["workspace", "init", "{d}/ws"]]),
    Case("binary search space: sweep create --space", {"space.toml": b"\x80\x81lr"},
         ["sweep", "create", "s", "--track", "nano", "--optimizer", "adamw", "--space", "{d}/space.toml",
          "--storage", "sqlite:///{d}/s.db"]),
    Case("log NaN then recovers: stats --check", {"log.txt": _log("10.8", "4.0", "nan", "3.25", "3.20")},
         ["stats", "{d}/log.txt", "--check"], _verdict),
    Case("diverged after its first eval: plot", {"r/results.json": DIVERGED_AT_FIRST_EVAL},
         ["plot", "{d}/r", "--out", "{d}/p.png"], _warned),
    Case("log all NaN: plot", {"log.txt": _log("nan", "nan")}, ["plot", "{d}/log.txt", "--out", "{d}/p.png"]),
    Case("final_val_loss vs last eval: validate", {"r/results.json": GOOD}, ["results", "validate", "{d}/r"],
         _loss_hint),
    Case("workspace info PATH", {}, ["workspace", "info", "{d}/ws"], _first_out, setup=[["workspace", "init", "{d}/ws"]]),
    Case("workspace info PATH (no workspace there)", {}, ["workspace", "info", "{d}/nope"]),
    Case("hand-written message (CRLF, no type, refs list): board read", {"ws/message_board/20260430-143000_agent-01.md": HAND_MESSAGE},
         ["board", "read", "-a", "-w", "{d}/ws"], _board_warnings, setup=[["workspace", "init", "{d}/ws"]]),
]


def _outcome(p: subprocess.CompletedProcess) -> str:
    if "Traceback (most recent call last)" in p.stderr:
        exc = [ln for ln in p.stderr.strip().splitlines() if re.match(r"^\w+(\.\w+)*(Error|Exception)\b", ln)]
        return f"traceback ({exc[-1].split(':')[0] if exc else '?'})"
    lines = [ln.strip() for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("warning")]
    err = " ".join(lines[:2]) if lines and lines[0].endswith("problem(s):") else (lines[0] if lines else "")
    err = re.sub(r"/tmp/\S+?/", "", err).replace("|", "\\|")
    return (err[:110] + "…") if len(err) > 110 else err


def run_case(case: Case, repo: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(repo), PYTHONWARNINGS="default", COLUMNS="200")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for argv in case.setup or []:
            subprocess.run([sys.executable, "-m", "optbench", *[a.format(d=d) for a in argv]], env=env, cwd=d,
                           capture_output=True, timeout=120)
        for rel, content in case.files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content.encode() if isinstance(content, str) else content)
        p = subprocess.run([sys.executable, "-m", "optbench", *[a.format(d=d) for a in case.argv]], env=env, cwd=d,
                           capture_output=True, text=True, timeout=300)
        what = _outcome(p)
        if case.check is not None and "traceback" not in what:
            what = case.check(d, p) + (f"; {what}" if what else "")
        return p.returncode, what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="/work/main", help="checkout before the fixes (default /work/main)")
    ap.add_argument("--after", default=str(Path(__file__).resolve().parents[1]), help="checkout with the fixes")
    args = ap.parse_args()
    before, after = Path(args.before).resolve(), Path(args.after).resolve()
    print(f"before: {before}   after: {after}\n")
    print("| bad input | before: exit | before: what happened | after: exit | after: what happened |")
    print("|---|---:|---|---:|---|")
    for case in CASES:
        b = run_case(case, before)
        a = run_case(case, after)
        print(f"| {case.name} | {b[0]} | {b[1]} | {a[0]} | {a[1]} |", flush=True)


if __name__ == "__main__":
    main()
