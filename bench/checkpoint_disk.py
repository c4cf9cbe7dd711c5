"""Disk used by a run's checkpoints, peak while running and left at the end, for source trees side by side.

    python bench/checkpoint_disk.py --tree main=/work/main --tree branch=. --steps 40 --every 10 [--keep 2]

Each tree runs `optbench run --track cpu --recipe cpu-muon` with --set train_steps=STEPS and --checkpoint-every
EVERY in a fresh folder, polling the size of RUN/checkpoints. Prints one markdown table. Heavy: run it under
`flock /tmp/optbench-heavy.lock`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def size(d: Path) -> int:
    total = 0
    for root, _, files in os.walk(d):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass  # deleted while we walked (pruned)
    return total


def measure(root: Path, steps: int, every: int, keep: int | None) -> tuple[int, int, int, float]:
    """(peak bytes, bytes at the end, checkpoints at the end, seconds) of one cpu-track run from `root`."""
    env = dict(os.environ, PYTHONPATH=str(root.resolve()))
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "run"
        args = [sys.executable, "-m", "optbench", "run", "--track", "cpu", "--recipe", "cpu-muon", "--quiet",
                "--set", f"train_steps={steps}", "--checkpoint-every", str(every), "--out", str(out)]
        if keep is not None:
            args += ["--keep-checkpoints", str(keep)]
        t0 = time.perf_counter()
        # cwd: the temp folder, so that `python -m optbench` imports the tree on PYTHONPATH, not the current folder's
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=d)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, size(out / "checkpoints"))
            time.sleep(0.1)
        err = proc.stderr.read()
        if proc.returncode != 0:
            raise SystemExit(f"{root}: exit {proc.returncode}: {err[-500:]}")
        end = size(out / "checkpoints")
        n = len(list((out / "checkpoints").glob("seed*/step_*"))) if (out / "checkpoints").exists() else 0
        return max(peak, end), end, n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", required=True, help="NAME=PATH of a source tree (repeatable)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--keep", type=int, default=None, help="--keep-checkpoints for trees that have it")
    a = ap.parse_args()
    print(f"cpu track, cpu-muon, train_steps={a.steps}, --checkpoint-every {a.every}"
          + (f", --keep-checkpoints {a.keep}" if a.keep is not None else ""))
    print("| tree | peak while running (MB) | left after the run (MB) | checkpoints left | run s |")
    print("|---|---:|---:|---:|---:|")
    for spec in a.tree:
        name, path = spec.split("=", 1)
        peak, end, n, secs = measure(Path(path), a.steps, a.every, a.keep if name != "main" else None)
        print(f"| {name} | {peak / 1e6:.1f} | {end / 1e6:.1f} | {n} | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
