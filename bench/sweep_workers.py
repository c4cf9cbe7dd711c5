"""A nano-track AdamW sweep (lr x wd) run by 1 worker and by 2 workers: trials per hour, Optuna's overhead per trial
against the trial's time, and the best configuration against the bundled recipe over several seeds.

    python bench/sweep_workers.py [--trials 24] [--seeds 5] [--out-dir runs/sweep-bench] [--report docs/sweep-example]

The 1-worker sweep uses both cores (torch threads 2); the 2-worker sweep runs two worker processes of one thread
each, as `optbench sweep worker NAME --threads 1` twice. Both use the same space, sampler (TPE) and budget, on
one SQLite file. Prints one table; --report writes the 2-worker sweep's report there.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from optbench.results.schema import load_results
from optbench.sweep import create_sweep, export_recipe, open_sweep, write_report
from optbench.sweep.status import sweep_status

SPACE = "lr = { log = [3e-4, 1e-1] }\nweight_decay = { log = [1e-4, 1.0] }\n"


def _workers(name: str, url: str, n: int, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "optbench", "sweep", "worker", name, "--storage", url,
                               "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed:\n{err[-3000:]}")
    return time.perf_counter() - t0


def _timings(runs_dir: Path) -> tuple[float, float, float]:
    recs = [json.loads(x) for f in (runs_dir / "workers").glob("*.jsonl") for x in f.read_text().splitlines()]
    return (statistics.mean(r["run_s"] for r in recs), statistics.mean(r["overhead_s"] for r in recs),
            statistics.mean(r["optbench_s"] for r in recs))


def _confirm(recipe: str, seeds: int, out: Path) -> tuple[float, float, int | None, bool]:
    if not (out / "results.json").is_file():
        subprocess.run([sys.executable, "-m", "optbench", "run", "--track", "nano", "--recipe", recipe, "--runs",
                        str(seeds), "--out", str(out), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    r = load_results(out / "results.json")
    finals = [x.final_val_loss for x in r.runs]
    return statistics.mean(finals), statistics.stdev(finals), r.steps_to_target, bool(r.passes_rule)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out-dir", default="runs/sweep-bench")
    ap.add_argument("--report", default=None)
    ap.add_argument("--configs", default="1:2,2:1", help="WORKERS:THREADS_EACH,... (default 1:2,2:1)")
    ap.add_argument("--tag", default="", help="suffix of the sweep names (a rerun next to an earlier one)")
    a = ap.parse_args()
    root = Path(a.out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / 'sweeps.db'}"
    (root / "space.toml").write_text(SPACE)
    rows = []
    for n, threads in (tuple(int(x) for x in c.split(":")) for c in a.configs.split(",")):
        name = f"nano-adamw-lrwd-{n}w{a.tag}"
        create_sweep(name, track="nano", recipe="nano-adamw", space=root / "space.toml", storage=url,
                     max_trials=a.trials, runs_dir=root / name, resume=True)
        wall = _workers(name, url, n, threads)
        st = sweep_status(open_sweep(name, url))
        run_s, over_s, book_s = _timings(root / name)
        rec = export_recipe(name, root / f"{name}.toml", url)
        rows.append({"name": name, "workers": n, "threads": threads, "wall": wall, "trials": st.finished,
                     "per_hour": 3600 * st.finished / wall, "run_s": run_s, "over_s": over_s, "book_s": book_s,
                     "best": st.best, "recipe": rec, "device_h": st.device_hours})
        print(f"{name}: {st.finished} trials in {wall:.0f} s", flush=True)
    print(f"\nnano track, AdamW, lr x weight_decay (log), TPE, {a.trials} trials of 1 seed, objective: final val loss\n")
    print("| workers | threads each | wall (s) | trials | trials/hour | mean trial run (s) | overhead/trial (s) "
          "| of which optbench (s) | overhead % | device-h | best loss | best lr | best wd |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        b = r["best"]
        print(f"| {r['workers']} | {r['threads']} | {r['wall']:.0f} | {r['trials']} | {r['per_hour']:.0f} | "
              f"{r['run_s']:.2f} | {r['over_s']:.3f} | {r['book_s']:.3f} | {100 * r['over_s'] / r['run_s']:.2f} | "
              f"{r['device_h']:.4f} | {b.value:.4f} | {b.params['lr']:.4g} | {b.params['weight_decay']:.4g} |")
    print(f"\nconfirmation: {a.seeds} seeds each (seeds 0..{a.seeds - 1}), T = 100, target 5.00\n")
    print("| recipe | lr | wd | mean final val loss | std | steps to 5.00 (reported) | passes rule |")
    print("|---|---:|---:|---:|---:|---:|---|")
    from optbench.optim.recipe import load_recipe

    for label, recipe in [("nano-adamw (bundled)", "nano-adamw")] + [(f"best of {r['name']}", str(r["recipe"]))
                                                                    for r in rows]:
        out = root / "confirm" / Path(recipe).stem
        mean, std, steps, ok = _confirm(recipe, a.seeds, out)
        rc = load_recipe(recipe)
        print(f"| {label} | {rc.hparams['lr']:.4g} | {rc.hparams['weight_decay']:.4g} | {mean:.4f} | {std:.4f} | "
              f"{steps if steps is not None else '—'} | {'yes' if ok else 'no'} |")
    if a.report:
        print(f"\nreport: {write_report(rows[-1]['name'], a.report, url)}")


if __name__ == "__main__":
    main()
