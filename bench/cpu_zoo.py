"""Steps to target on the cpu track for each zoo optimizer's recipe: runs them and prints one table.

    python bench/cpu_zoo.py [--recipes cpu-adamw,cpu-muon,...] [--parallel 2] [--runs 1] [--out-dir runs/zoo]
                            [--table FILE.md]

Each recipe runs as `optbench run --track cpu --recipe R --runs N` in its own process (OMP_NUM_THREADS=1 when
several run at once); finished runs in --out-dir are reused, so an interrupted sweep continues. The table lists
AdamW first, then by steps to target.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from optbench.optim.recipe import recipe_names
from optbench.results.schema import load_results

DEFAULT = [n for n in recipe_names() if n.startswith("cpu-")]


def run_one(recipe: str, out_dir: Path, runs: int, threads: int) -> Path:
    out = out_dir / recipe
    if (out / "results.json").is_file():
        return out
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    log = out_dir / f"{recipe}.log"
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "-m", "optbench", "run", "--track", "cpu", "--recipe", recipe,
                            "--runs", str(runs), "--out", str(out), "--quiet"], stdout=f, stderr=subprocess.STDOUT,
                           env=env)
    if r.returncode not in (0, 3):  # 3 = diverged, still has results.json
        print(f"{recipe}: exit {r.returncode}, see {log}", file=sys.stderr)
    return out


def row(recipe: str, out: Path) -> dict:
    try:
        res = load_results(out / "results.json")
    except Exception as e:  # a failed run: say so in the table
        return {"recipe": recipe, "optimizer": "?", "steps": None, "note": f"no results ({e})"}
    finals = [r.final_val_loss for r in res.runs]
    wall = res.runs[0].curve[-1].train_time_s if res.runs and res.runs[0].curve else None
    first = res.runs[0].steps_to_target if res.runs else None
    return {"recipe": recipe, "optimizer": res.optimizer, "steps": res.steps_to_target, "first": first,
            "n": res.num_runs, "final": finals, "passes": res.passes_rule, "train_s": wall,
            "diverged": any(r.diverged for r in res.runs), "note": "", "compliant": res.compliant}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", default=",".join(DEFAULT))
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out-dir", default="runs/zoo")
    ap.add_argument("--table", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    recipes = args.recipes.split(",")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = 1 if args.parallel > 1 else (os.cpu_count() or 1)
    with ThreadPoolExecutor(args.parallel) as pool:
        outs = list(pool.map(lambda r: run_one(r, out_dir, args.runs, threads), recipes))
    rows = [row(r, o) for r, o in zip(recipes, outs)]
    rows.sort(key=lambda x: (x["optimizer"] != "adamw", x["steps"] is None, x["steps"] or 0))
    lines = ["| optimizer | recipe | steps to target | final val loss | runs | train time (s) | notes |",
             "|---|---|---:|---:|---:|---:|---|"]
    for x in rows:
        if x["note"]:
            lines.append(f"| {x['optimizer']} | {x['recipe']} | | | | | {x['note']} |")
            continue
        notes = []
        if x["diverged"]:
            notes.append("diverged")
        if not x["compliant"]:
            notes.append("not compliant")
        if x["steps"] is not None and not x["passes"]:
            notes.append("below target, fails the rule")
        steps = "not reached" if x["steps"] is None else str(x["steps"])
        final = ", ".join("nan" if f is None else f"{f:.4f}" for f in x["final"])
        t = f"{x['train_s']:.0f}" if x["train_s"] is not None else ""
        lines.append(f"| {x['optimizer']} | {x['recipe']} | {steps} | {final} | {x['n']} | {t} | {'; '.join(notes)} |")
    text = "\n".join(lines)
    print(text)
    if args.table:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(args.table, text + "\n")


if __name__ == "__main__":
    main()
