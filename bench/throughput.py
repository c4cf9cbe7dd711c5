"""Training throughput of the CPU tracks against a plain PyTorch GPT of the same shape, and where the time goes.

    python bench/throughput.py [--tracks nano,cpu] [--steps 6] [--rounds 3] [--threads N] [--variants LIST]
                               [--model-file OLD_GPT.py] [--profile] [--out FILE.md]

Rows, timed interleaved (round-robin, --steps steps of each per round, after warm-up steps) on the same batches:

- `optbench <track>`: a real optimizer step as `optbench run` takes it (the track's microbatching, the model as
  it runs on CPU, the track's default AdamW recipe).
- `plain GPT, mb R`: bench/plain_gpt.py at the track's shape (layers, width, heads, seq_len, vocab), the
  comparator: nanoGPT-style model and loop, R rows per microbatch (the whole step's 8 rows, or the track's 4).
  `vs plain GPT` divides a row's tokens/s by the 8-row plain GPT's (nanoGPT's way), `vs plain, same mb` by the
  plain GPT's with the row's own microbatch (the same gradient accumulation).
- `--variants` (comma-separated) add optbench rows: `upstream-loss` (the loss as upstream writes it: soft-capped
  logits, then F.cross_entropy, through autograd: the path CUDA takes), `mb8` (8 rows per microbatch),
  `threads1` (one thread), `compile` (torch.compile of the model; its compile time is not in the step).
- `--model-file F`: one more optbench row whose GPT comes from another version of optbench/model/gpt.py (e.g.
  `git show main:optbench/model/gpt.py > /tmp/gpt_main.py`), for before/after tables from one run.

Model FLOPs per token use the PaLM convention: 6 x (parameters in matmuls: every Linear weight, the LM head
included; the embedding lookups and vectors excluded) + 12 x layers x width x seq_len for attention; both models
have the same matmuls, so the same FLOPs per token. The peak is the best fp32 GEMM rate measured in the same run
with the same thread count (square matmuls, several sizes, before and after the rows). `eval` is one evaluation
of the track's val tokens (`optbench.standalone.training.evaluate`); est. run = the first step + T - 1 steps + the track's evals. `--profile`
adds a torch.profiler attribution of the forward and backward (bench/step_profile.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from optbench.data.corpus import default_data_dir
from optbench.data.loader import TokenStream, load_val
from optbench.data.shards import list_shards
from optbench.optim.groups import build_optimizers
from optbench.optim.recipe import default_recipe
from optbench.tracks import Track, get_track
from optbench.standalone.training import evaluate, optimizer_step
from plain_gpt import PlainGPT, plain_optimizer, plain_step
from step_profile import PHASES, Clock, profile_table

VARIANTS = ("upstream-loss", "mb8", "threads1", "compile")


def matmul_peak_gflops(sizes=(512, 1024, 2048), repeats=5) -> float:
    """Best fp32 GEMM rate (GFLOP/s) over a few square sizes."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def model_flops_per_token(model, layers: int, dim: int, seq_len: int) -> float:
    weights = {id(m.weight): m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)}
    return 6 * sum(weights.values()) + 12 * layers * dim * seq_len


@dataclass
class Setup:
    """One row: a model with its optimizer and a step function step(x, y, clock)."""

    name: str
    model: torch.nn.Module
    step: Callable
    threads: int
    evaluate: Callable | None = None
    flops_per_token: float = 0.0
    micro_rows: int = 0  # rows per microbatch
    steps: list = field(default_factory=list)  # one dict of phase seconds per timed step
    first_step_s: float = float("nan")  # the first (warm-up) step: with `compile`, the compilation

    def run(self, x, y, timed: bool) -> None:
        torch.set_num_threads(self.threads)
        clock = Clock()
        self.step(x, y, clock)
        if timed:
            self.steps.append(clock.totals)


def load_model_module(path: str):
    """A gpt.py from a file, as a module of its own (it imports only torch)."""
    spec = importlib.util.spec_from_file_location(f"gpt_from_{Path(path).stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def optbench_setup(track: Track, threads: int, variant: str = "", model_file: str | None = None) -> Setup:
    """optbench's model and step as `optbench run` does them, optionally changed by one variant or with the GPT
    of another gpt.py."""
    if variant == "mb8":
        track = replace(track, micro_batch_rows=track.batch_rows)
    if variant == "threads1":
        threads = 1
    torch.manual_seed(0)
    if model_file:
        mod = load_model_module(model_file)
        model = mod.GPT(track.model_config)
        mod.init_weights(model)
        variant = f"model of {model_file}"
    else:
        model = track.build_model()
        track.init_model(model)
    opts = build_optimizers(model, default_recipe("adamw", track.name))
    if variant == "compile":
        model.compile(dynamic=False)
    mbs, accum, V = track.micro_batch_rows, track.accumulation_steps(1), track.vocab_size
    scale = track.backward_scale(1)

    def loss_fn(xb, yb):
        if variant == "upstream-loss":
            return F.cross_entropy(model.logits(xb).view(-1, V), yb.reshape(-1), reduction="sum")
        return model(xb, yb)

    def step(x, y, clock):
        for j in range(accum):
            loss = loss_fn(x[j * mbs:(j + 1) * mbs], y[j * mbs:(j + 1) * mbs])
            clock("forward")
            (loss * scale).backward()
            clock("backward")
        optimizer_step(opts)
        clock("optimizer")

    val = load_val(list_shards(default_data_dir(track.vocab_size), "val"), track.val_tokens, track.val_row_tokens)
    name = f"optbench {track.name}" + (f", {variant}" if variant else "")
    cfg = track.model_config
    return Setup(name, model, step, threads, lambda: evaluate(model, *val, mbs, track.val_tokens, opts),
                 model_flops_per_token(model, cfg.num_layers, cfg.model_dim, track.seq_len), mbs)


def plain_setup(track: Track, threads: int, micro_rows: int) -> Setup:
    cfg = track.model_config
    torch.manual_seed(0)
    model = PlainGPT(cfg.vocab_size, cfg.num_layers, cfg.model_dim, cfg.num_heads, track.seq_len)
    opt = plain_optimizer(model)
    return Setup(f"plain GPT ({track.name} shape), mb {micro_rows}", model,
                 lambda x, y, clock: plain_step(model, opt, x, y, micro_rows, clock), threads,
                 flops_per_token=model_flops_per_token(model, cfg.num_layers, cfg.model_dim, track.seq_len),
                 micro_rows=micro_rows)


def time_eval(setup: Setup, repeats: int = 1) -> float:
    if setup.evaluate is None:
        return float("nan")
    progress(f"eval {setup.name}")
    torch.set_num_threads(setup.threads)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        setup.evaluate()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(setups: list[Setup], batches: list, rounds: int, warmup: int = 2) -> None:
    """Round-robin: each round every setup takes a step on each batch (the first `warmup` untimed once)."""
    for s in setups:
        t = time.perf_counter()
        s.run(*batches[0], timed=False)
        s.first_step_s = time.perf_counter() - t
        for x, y in batches[1:warmup]:
            s.run(x, y, timed=False)
        progress(f"warm-up {s.name}: first step {s.first_step_s:.1f} s")
    for r in range(rounds):
        for s in setups:
            for x, y in batches:
                s.run(x, y, timed=True)
        progress(f"round {r + 1}/{rounds}: " + ", ".join(
            f"{s.name} {1000 * statistics.median(sum(st.values()) for st in s.steps):.0f} ms" for s in setups))


def progress(line: str) -> None:
    """A progress line on stderr (the table goes to stdout at the end)."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def step_s(setup: Setup) -> float:
    """The median step time (s) of a setup."""
    return statistics.median(sum(st.values()) for st in setup.steps)


def table(setups: list[Setup], tracks: dict[str, Track], peak: float, comparator: dict[str, list[Setup]]) -> list[str]:
    """`vs plain GPT`: tokens/s over the plain GPT's with the whole step as one batch (nanoGPT's way); `vs plain,
    same mb`: over the plain GPT's with the row's own rows per microbatch (the same accumulation)."""
    lines = ["| row | step (ms) | forward | backward | optimizer | tokens/s | model GFLOP/s | MFU | vs plain GPT "
             "| vs plain, same mb | first step (s) | eval (ms) | est. run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in setups:
        track = tracks[s.name]
        med = {p: 1000 * statistics.median(st[p] for st in s.steps) for p in PHASES}
        step_ms = 1000 * step_s(s)
        tok_s = track.batch_tokens / (step_ms / 1000)
        plain = comparator[track.name]
        ref_tok_s = track.batch_tokens / step_s(plain[0])
        same = next((p for p in plain if p.micro_rows == s.micro_rows), None)
        same_ratio = f"{tok_s * step_s(same) / track.batch_tokens:.2f}x" if same else ""
        eval_ms = 1000 * time_eval(s)
        run_s = s.first_step_s + step_ms / 1000 * (track.train_steps - 1) + len(track.eval_steps()) * eval_ms / 1000
        gflops = s.flops_per_token * tok_s / 1e9
        lines.append(f"| {s.name} | {step_ms:.1f} | {med['forward']:.1f} | {med['backward']:.1f} | "
                     f"{med['optimizer']:.1f} | {tok_s:,.0f} | {gflops:.1f} | {gflops / peak:.1%} | "
                     f"{tok_s / ref_tok_s:.2f}x | {same_ratio} | {s.first_step_s:.1f} | "
                     + ("" if eval_ms != eval_ms else f"{eval_ms:.0f}") + " | "
                     + ("" if run_s != run_s else f"{run_s / 60:.1f} min") + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", default="cpu")
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each row per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="default: torch's default")
    ap.add_argument("--variants", default="upstream-loss", help=f"extra optbench rows: {', '.join(VARIANTS)}")
    ap.add_argument("--model-file", default=None, help="an optbench row with the GPT of this gpt.py")
    ap.add_argument("--profile", action="store_true", help="also attribute the step's time with torch.profiler")
    ap.add_argument("--out", default=None, help="also write the tables to this markdown file")
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    variants = [v for v in args.variants.split(",") if v]
    bad = sorted(set(variants) - set(VARIANTS))
    if bad:
        ap.error(f"--variants: unknown {', '.join(bad)}; choose from {', '.join(VARIANTS)}")

    peak = matmul_peak_gflops()
    setups, tracks, comparator, batches = [], {}, {}, {}
    for name in args.tracks.split(","):
        track = get_track(name)
        rows = [optbench_setup(track, threads, v) for v in [""] + variants]
        if args.model_file:
            rows.insert(1, optbench_setup(track, threads, model_file=args.model_file))
        plain = [plain_setup(track, threads, track.batch_rows), plain_setup(track, threads, track.micro_batch_rows)]
        comparator[track.name] = plain
        for s in rows + plain:
            tracks[s.name] = track
        loader = TokenStream(list_shards(default_data_dir(track.vocab_size), "train"), track.batch_tokens,
                             track.seq_len)
        batches[track.name] = [loader.next_batch() for _ in range(args.steps)]
        measure(rows + plain, batches[track.name], args.rounds)
        setups += rows + plain
    torch.set_num_threads(threads)
    peak = max(peak, matmul_peak_gflops())
    lines = [f"threads: {threads}; measured fp32 matmul peak: {peak:.1f} GFLOP/s; {args.rounds} interleaved rounds "
             f"of {args.steps} steps per row; medians", ""] + table(setups, tracks, peak, comparator)
    if args.profile:
        progress("profiling")
        lines += ["", "Where the time of a step goes (torch.profiler self time of forward and backward ops, bucketed as in "
                  "bench/step_profile.py; optimizer: wall time; medians of interleaved profiled steps, ms per step):",
                  ""] + profile_table([s for s in setups if "compile" not in s.name], tracks,
                                      {t: b[0] for t, b in batches.items()}, args.rounds)
    text = "\n".join(lines)
    print(text)
    if args.out:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
