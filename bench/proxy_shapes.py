"""Step time of candidate proxy-track shapes: the real training loop, interleaved, one table.

    python bench/proxy_shapes.py --shapes "4,48,1024,5,128,24;2,64,768,5,128,32" --optimizers muon,adamw,studies/proxy/recipes/soap.toml \
        --steps 100 --reps 2 [--out FILE.md]

A shape is `layers,width,vocab,rows,seq_len,head_dim` (one microbatch per step). Each (shape, optimizer) runs
`--steps` steps of `optbench.train.loop.run` with one evaluation at the end, on the bundled corpus at that
vocabulary, repeated `--reps` times in interleaved order (the machine is shared and noisy); the table keeps the
fastest repetition. Alongside: total parameters, the share in hidden matrices, batch tokens as a share of the
parameters, tokens per parameter at T = 3,250 steps, and the estimated wall time of a 3,250-step run (train
steps plus 39 evaluations of `--val-tokens`), the quantities docs/proxy.md derives the proxy from.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

import torch

from optbench.data.corpus import default_data_dir
from optbench.model.gpt import GPTConfig
from optbench.optim.recipe import UPSTREAM_AUX, Recipe, load_recipe
from optbench.tracks import SMALL
from optbench.train.distributed import setup
from optbench.train.loop import RunConfig, run

RUN_STEPS = 3250  # the full track's length, which the proxy keeps
EVALS = 39  # evaluations of a 3,250-step run on the full track's grid (125, then 25 over the last 10 %)


def shape_track(layers: int, width: int, vocab: int, rows: int, seq: int, head_dim: int, val_tokens: int):
    cfg = GPTConfig(vocab_size=vocab, num_layers=layers, model_dim=width, head_dim=head_dim)
    return dataclasses.replace(
        SMALL, name=f"{layers}x{width} v{vocab} {rows}x{seq}", model_config=cfg, batch_tokens=rows * seq,
        seq_len=seq, micro_batch_rows=rows, val_tokens=val_tokens, data="books19c-mini-mixed", eval_every=10**9,
        eval_every_late=10**9, late_frac=1.0)


def params(track) -> tuple[int, int]:
    """(total parameters, parameters in hidden matrices)."""
    model = track.build_model()
    total = sum(p.numel() for p in model.parameters())
    hidden = sum(p.numel() for n, p in model.named_parameters() if p.ndim >= 2 and n.startswith("blocks."))
    return total, hidden


def timing_recipe(what: str, steps: int) -> Recipe:
    """A recipe file (.toml) as written, or an optimizer name with its defaults and the upstream aux AdamW;
    either at `steps` steps with no warmup."""
    if what.endswith(".toml"):
        return load_recipe(what).model_copy(update={"train_steps": steps, "warmup_steps": 0})
    hparams = {"ns_dtype": "float32"} if what in ("muon", "normuon") else {}  # as every CPU recipe
    return Recipe(name=f"{what}-timing", optimizer=what, hparams=hparams, aux=UPSTREAM_AUX, train_steps=steps)


def timed_run(track, what: str, steps: int, env) -> tuple[float, float]:
    """(ms per train step, ms per evaluation) of one short run."""
    recipe = timing_recipe(what, steps)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(track=track, recipe=recipe, recipe_text="", seeds=[0], out_dir=Path(tmp),
                        data_dir=default_data_dir(track.vocab_size, track.data), progress=False)
        t = time.perf_counter()
        results, _ = run(cfg, env)
        wall = time.perf_counter() - t
    train_s = results.runs[0].curve[-1].train_time_s
    eval_s = max(wall - train_s, 0.0) / 2  # the run evaluates at step 0 and at the end (setup time included)
    return 1000 * train_s / steps, 1000 * eval_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="4,48,1024,5,128,24")
    ap.add_argument("--optimizers", default="muon,adamw", help="optimizer names (defaults) or recipe .toml files")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--val-tokens", type=int, default=25600)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    env = setup("cpu")
    shapes = [tuple(int(x) for x in s.split(",")) for s in a.shapes.split(";")]
    opts = a.optimizers.split(",")
    best: dict = {}
    for rep in range(a.reps):
        for shape, opt in itertools.product(shapes, opts):
            track = shape_track(*shape, val_tokens=a.val_tokens)
            ms, ev = timed_run(track, opt, a.steps, env)
            key = (shape, opt)
            old = best.get(key)
            best[key] = (min(ms, old[0]), min(ev, old[1])) if old else (ms, ev)
            print(f"rep {rep} {track.name} {opt}: {ms:.1f} ms/step, eval {ev:.0f} ms", flush=True)
    lines = [f"threads {a.threads}; {a.steps} steps x {a.reps} interleaved repetitions, fastest kept; "
             f"evaluation of {a.val_tokens:,} tokens",
             "",
             "| shape (L x d, vocab, rows x seq) | optimizer or recipe | params | hidden share | batch / params "
             "| tokens/param at 3,250 | ms/step | ms/eval | est. 3,250-step run |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (shape, opt), (ms, ev) in best.items():
        L, d, V, rows, seq, _ = shape
        track = shape_track(*shape, val_tokens=a.val_tokens)
        n, hidden = params(track)
        est = (RUN_STEPS * ms + EVALS * ev) / 1000
        lines.append(f"| {L} x {d}, {V}, {rows} x {seq} | {Path(opt).stem} | {n:,} | {hidden / n:.0%} | "
                     f"{rows * seq / n:.3%} | {RUN_STEPS * rows * seq / n:.1f} | {ms:.1f} | {ev:.0f} | "
                     f"{est / 60:.1f} min |")
    text = "\n".join(lines)
    print("\n" + text)
    if a.out:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(a.out, text + "\n")


if __name__ == "__main__":
    main()
