"""A track's exchange rate r (val loss per step): how much the final val loss drops per extra training step.

    python bench/exchange_rate.py --track nano --recipe nano-adamw --steps 80,90,100,110,120 --seeds 0,1,2
    python bench/exchange_rate.py --track cpu --recipe cpu-adamw --steps 350,400,450 --seeds 0

Runs the recipe at each run length T (the schedule scales with T, as in the benchmark's own tuning), takes the
seed-mean final val loss L(T), and fits L(T) = a - r*T by least squares around the track's default length.
The sweep objective `steps` uses r to turn a loss gap into steps. Prints one table. Each (T, seed) is its own run
folder under --out-dir and a finished one is reused, so the measurement can be made in several calls (one length
or seed at a time) and the last call fits them all; with one length it prints the seeds' mean and std only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from optbench.data.corpus import default_data_dir
from optbench.optim.recipe import apply_settings, load_recipe, recipe_source_text
from optbench.results.schema import load_results
from optbench.tracks import get_track
from optbench.train.distributed import setup
from optbench.train.loop import RunConfig, run


def run_one(track, base, text: str, recipe_name: str, T: int, seed: int, out_dir: Path, env) -> tuple[float, float]:
    """(final val loss, wall seconds) of the recipe at length T and one seed; a finished folder is reused."""
    out = out_dir / f"{track.name}-{recipe_name}-T{T}-seed{seed}"
    if (out / "results.json").is_file():
        res = load_results(out / "results.json")
        return res.runs[0].final_val_loss, float(res.wallclock_s or 0.0)
    recipe, set_text = apply_settings(base, [f"train_steps={T}"])
    cfg = RunConfig(track=track, recipe=recipe, recipe_text=text + set_text, seeds=[seed], out_dir=out,
                    data_dir=default_data_dir(track.vocab_size, track.data), progress=False)
    t0 = time.perf_counter()
    results, _ = run(cfg, env)
    return results.runs[0].final_val_loss, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--track", default="nano")
    ap.add_argument("--recipe", default="nano-adamw", help="bundled recipe name or a .toml file")
    ap.add_argument("--steps", default="80,90,100,110,120")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out-dir", default="runs/exchange-rate")
    a = ap.parse_args()
    track, env = get_track(a.track), setup("cpu")
    seeds = [int(s) for s in a.seeds.split(",")]
    lengths = [int(s) for s in a.steps.split(",")]
    base, text = load_recipe(a.recipe), recipe_source_text(a.recipe)
    name = Path(a.recipe).stem
    rows = []
    for T in lengths:
        finals, wall = [], 0.0
        for seed in seeds:
            loss, secs = run_one(track, base, text, name, T, seed, Path(a.out_dir), env)
            finals.append(loss)
            wall += secs
            print(f"T={T} seed {seed}: final val loss {loss:.5f} ({secs:.0f}s)", flush=True)
        rows.append((T, float(np.mean(finals)), float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0, wall))
    fit = np.polyfit([r[0] for r in rows], [r[1] for r in rows], 1) if len(rows) > 1 else None
    print(f"\n{a.track} track, recipe {a.recipe}, seeds {seeds}: seed-mean final val loss by run length T\n")
    print("| T | mean final val loss | std (ddof 1) | wall (s) | fit |")
    print("|---:|---:|---:|---:|---:|")
    for t, m, s, w in rows:
        print(f"| {t} | {m:.5f} | {s:.5f} | {w:.0f} | " + (f"{fit[1] + fit[0] * t:.5f} |" if fit is not None else "|"))
    if fit is not None:
        print(f"\nr = {-fit[0]:.3e} val loss per step ({-fit[0] * 100:.4f} per 100 steps); "
              f"benchmark (small track): 4.5e-05 (0.0045 per 100 steps)")


if __name__ == "__main__":
    main()
