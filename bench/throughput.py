"""Training throughput of the CPU tracks: tokens/s and model-FLOPs utilisation against a measured matmul peak.

    python bench/throughput.py [--tracks nano,cpu] [--steps 8] [--threads N] [--out FILE.md]

Model FLOPs per token use the PaLM convention: 6 x (parameters in matmuls: every Linear weight, LM head
included; the embedding lookup and vectors excluded) + 12 x layers x width x seq_len for attention. The peak is
the best fp32 GEMM rate measured on this machine with the same thread count (square matmuls, several sizes).
Each step is a real optimizer step of the track (its data loader, the track's default AdamW recipe, the same
microbatching as `optbench run`), timed after warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from optbench.data.corpus import default_data_dir
from optbench.data.loader import TokenStream
from optbench.data.shards import list_shards
from optbench.optim.groups import build_optimizers
from optbench.optim.recipe import default_recipe
from optbench.tracks import get_track


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


def model_flops_per_token(model, track) -> float:
    cfg = track.model_config
    matmul_params = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 6 * matmul_params + 12 * cfg.num_layers * cfg.model_dim * track.seq_len


def measure(track_name: str, steps: int, warmup: int = 2) -> dict:
    track = get_track(track_name)
    torch.manual_seed(0)
    model = track.build_model()
    track.init_model(model)
    opts = build_optimizers(model, default_recipe("adamw", track.name))
    loader = TokenStream(list_shards(default_data_dir(track.vocab_size), "train"), track.batch_tokens,
                         track.seq_len)
    accum, mbs = track.accumulation_steps(1), track.micro_batch_rows
    times = []
    for i in range(warmup + steps):
        x, y = loader.next_batch()
        t = time.perf_counter()
        for j in range(accum):
            model(x[j * mbs:(j + 1) * mbs], y[j * mbs:(j + 1) * mbs]).backward()
        for o in opts:
            o.step()
        model.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    tok_s = track.batch_tokens / step_s
    fpt = model_flops_per_token(model, track)
    return {"track": track.name, "params": sum(p.numel() for p in model.parameters()),
            "tokens_per_step": track.batch_tokens, "step_ms": 1000 * step_s, "tokens_per_s": tok_s,
            "model_gflops": fpt * tok_s / 1e9, "flops_per_token": fpt,
            "est_run_s": step_s * track.train_steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", default="nano,cpu")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    rows = [measure(t, args.steps) for t in args.tracks.split(",")]
    lines = [f"threads: {torch.get_num_threads()}; measured fp32 matmul peak: {peak:.1f} GFLOP/s", "",
             "| track | params | tokens/step | step (ms) | tokens/s | model GFLOP/s | MFU | est. train time |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['track']} | {r['params']:,} | {r['tokens_per_step']:,} | {r['step_ms']:.1f} | "
                     f"{r['tokens_per_s']:,.0f} | {r['model_gflops']:.1f} | {r['model_gflops'] / peak:.1%} | "
                     f"{r['est_run_s'] / 60:.1f} min |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        from optbench.fsutil import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
