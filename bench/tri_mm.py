"""Triangular products (optbench.optim._triangular.tri_mm) against one dense torch.mm, interleaved, one table.

    python bench/tri_mm.py [--sizes 768,3072] [--blocks 128,256,512,1024] [--reps 5] [--threads 1]

For each size n and each product Kron makes (upper x upper: a factor step; upper x full and full x upper: a
factor applied to a 768-wide gradient slice), the dense product and tri_mm at each minimum block are timed in
interleaved order (the machine is shared and noisy); the table keeps each one's fastest repetition, its ratio to
dense, and the largest error relative to the largest entry of a float64 product. MIN_BLOCK is the default.
"""

from __future__ import annotations

import argparse
import time

import torch

from optbench.optim import _triangular
from optbench.optim._triangular import tri_mm

WIDTH = 768  # the other dim of the full operand (the small track's model width)


def cases(n: int, gen: torch.Generator):
    """(label, A, B, a_kind, b_kind) for the products Kron makes with an n x n factor."""
    U = torch.randn(n, n, generator=gen).triu_()
    T = torch.randn(n, n, generator=gen).triu_()
    G = torch.randn(n, WIDTH, generator=gen)
    yield f"U x U, {n}", T, U, "U", "U"
    yield f"U x F, {n} x {n}·{n} x {WIDTH}", U, G, "U", "F"
    yield f"F x U, {WIDTH} x {n}·{n} x {n}", G.T.contiguous(), U, "F", "U"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="768,3072")
    ap.add_argument("--blocks", default="128,256,512,1024")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    blocks = [int(b) for b in a.blocks.split(",")]
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), float32, {a.reps} interleaved "
          f"repetitions (fastest kept); MIN_BLOCK = {_triangular.MIN_BLOCK}", flush=True)
    print()
    print("| product | dense (ms) | " + " | ".join(f"block {b} (ms)" for b in blocks) + " | best x dense | max rel. error |")
    print("|---|---|" + "---|" * len(blocks) + "---|---|")
    for n in (int(s) for s in a.sizes.split(",")):
        for label, A, B, ka, kb in cases(n, gen):
            runs = {"dense": lambda: torch.mm(A, B)}
            for b in blocks:
                runs[b] = lambda b=b: tri_mm(A, B, ka, kb, min_block=b)
            best = {k: float("inf") for k in runs}
            for _ in range(a.reps):
                for k, f in runs.items():
                    t = time.perf_counter()
                    f()
                    best[k] = min(best[k], time.perf_counter() - t)
            ref = A.double() @ B.double()
            err = max((tri_mm(A, B, ka, kb, min_block=b).double() - ref).abs().max().item() for b in blocks)
            fastest = min(best[b] for b in blocks)
            cells = " | ".join(f"{best[b] * 1e3:.1f}" for b in blocks)
            print(f"| {label} | {best['dense'] * 1e3:.1f} | {cells} | {fastest / best['dense']:.2f}x | "
                  f"{err / ref.abs().max().item():.1e} |", flush=True)


if __name__ == "__main__":
    main()
