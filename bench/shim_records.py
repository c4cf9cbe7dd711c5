"""Which upstream track-3 training scripts the shim runs on CPU, with the nano-size losses they print.

    python bench/shim_records.py PATH_TO_A_CLONE_OF_KellerJordan/modded-nanogpt [--steps 3] [--track nano]

Every `train*.py` under records/track_3_optimization/ (the official train_gpt_simple.py and each result's
script) runs through `python -m optbench.submission.shim.runner` for a few steps, one at a time, in a temporary
folder; the table gives the first and last val loss the script's log printed, or the reason it could not run
(the last line of its error). Nothing of the clone is copied into optbench.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T3 = Path("records/track_3_optimization")
EVAL = re.compile(r"^step:(\d+)/(\d+) val_loss:([0-9.naninf]+)")


def scripts(clone: Path) -> list[Path]:
    root = clone / T3
    if not root.is_dir():
        sys.exit(f"{clone}: no {T3} folder (give a work tree of KellerJordan/modded-nanogpt)")
    return sorted(p for p in root.rglob("train*.py") if "distributed_shampoo" not in p.parts)


def run_one(script: Path, track: str, steps: int, timeout: float) -> tuple[str, str]:
    """(outcome, detail): ("runs", "step 0 7.62462 -> step 3 6.9") or ("fails", reason)."""
    with tempfile.TemporaryDirectory(prefix="optbench-shim-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_TEST_")}
        env["OMP_NUM_THREADS"] = "1"
        cmd = [sys.executable, "-m", "optbench.submission.shim.runner", str(script), "--track", track,
               "--steps", str(steps), "--seed", "0", "--workdir", tmp]
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "fails", f"no result within {timeout:.0f} s"
        evals = [m.groups() for m in map(EVAL.match, p.stdout.splitlines()) if m]
        if p.returncode != 0:
            lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
            return "fails", (lines[-1] if lines else f"exit {p.returncode}")[:160]
        if not evals:
            return "fails", "ran, but printed no `step:S/T val_loss:` line"
        (s0, _, v0), (s1, _, v1) = evals[0], evals[-1]
        return "runs", f"step {s0} {v0} -> step {s1} {v1}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clone", type=Path, help="a local clone (work tree) of KellerJordan/modded-nanogpt")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--track", default="nano", choices=["nano", "cpu"])
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    rows = []
    found = scripts(a.clone)
    print(f"{len(found)} training scripts; {a.steps} steps each at {a.track} size", flush=True)
    for i, s in enumerate(found, 1):
        t0 = time.perf_counter()
        outcome, detail = run_one(s.resolve(), a.track, a.steps, a.timeout)
        rel = s.relative_to(a.clone / T3)
        rows.append((str(rel), outcome, detail, time.perf_counter() - t0))
        print(f"[{i}/{len(found)}] {rel}: {outcome} ({detail})", flush=True)
    print()
    print("| script | shim | val loss (nano) or reason | s |")
    print("|---|---|---|---|")
    for rel, outcome, detail, secs in rows:
        print(f"| {rel} | {outcome} | {detail.replace('|', '/')} | {secs:.0f} |")
    n = sum(r[1] == "runs" for r in rows)
    print(f"\nruns: {n} of {len(rows)}")


if __name__ == "__main__":
    main()
