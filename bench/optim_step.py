"""Optimizer step time and state memory: every zoo optimizer raced against its peers, side by side.

For each zoo optimizer (at the cpu-track recipe's settings; see bench/optim_peers.py for every row and peer) this
builds the same parameters for every implementation -- the zoo's, optionally an older checkout's (``--before``),
``torch.optim`` foreach / fused, pytorch_optimizer, HeavyBall eager and compiled -- and then, step after step,
draws fresh random gradients (untimed), gives each implementation its own copy and times its ``step()``,
rotating the order every step so that no implementation always runs first (interleaved on a noisy machine).

- untimed warm-up steps first (``--warmup``), reported apart as "first steps": state allocation, SOAP's first
  eigendecompositions, and for compiled HeavyBall the compilation;
- "median" is the median timed step; "amortised" is the mean step time over a window covering whole
  preconditioner cycles of every implementation in the row (SOAP / Shampoo refresh every 10 steps, Sophia's
  Hessian EMA every 10), each position of the window taken as its median over >= 3 windows, so a refresh is
  paid once per cycle and a stray slow step (another process) not at all;
- "x fastest peer" compares amortised times with the fastest peer (zoo and --before rows excluded), by default
  taking each window position's minimum (``--stat min``: on a shared machine most steps are disturbed by other
  processes; ``--stat median`` for a quiet one);
- state = bytes of all distinct tensor storages reachable from ``opt.state`` after the timed steps.

Shape sets (``--shapes``): ``cpu`` = the cpu track's 24 hidden matrices, ``mid`` = a slice of the small track
(6 x 768x768 + 6 x 3072x768), ``small`` = all 72 hidden matrices of the small track (slow on a CPU).

Usage::

    python bench/optim_step.py                                   # all rows, cpu and mid shapes
    python bench/optim_step.py --optimizers muon,kron --shapes cpu --steps 30
    git archive <commit> optbench | tar -x -C /tmp/before        # then, before vs after in one run:
    python bench/optim_step.py --before /tmp/before --out bench.md
    python bench/optim_step.py --device cuda                     # on a GPU (times synchronised)

The peers are optional bench extras: ``pip install 'optbench[bench]'`` (HeavyBall: ``--no-deps`` keeps a CPU torch).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optim_peers import Contest, contests, heavyball_compile, window  # noqa: E402

SHAPE_SETS = ("cpu", "mid", "small")


def hidden_matrices(track_name: str) -> list[tuple[int, ...]]:
    """Shapes of a track's hidden matrices (role "matrix"), model built on the meta device."""
    from optbench.model.gpt import GPT
    from optbench.tracks import get_track

    with torch.device("meta"):
        model = GPT(get_track(track_name).model_config)
    roles = model.param_roles()
    return [tuple(p.shape) for n, p in model.named_parameters() if roles[n] == "matrix"]


def shape_set(name: str) -> list[tuple[int, ...]]:
    if name == "cpu":
        return hidden_matrices("cpu")
    small = hidden_matrices("small")
    if name == "small":
        return small
    square = [s for s in small if s == (768, 768)][:6]
    tall = [s for s in small if s == (3072, 768)][:6]
    return square + tall


def state_bytes(state) -> int:
    """Bytes of all distinct tensor storages reachable from an optimizer's state (shared storage counted once),
    also through the attributes of objects kept in it (pytorch_optimizer's ScalableShampoo keeps its statistics
    in preconditioner objects)."""
    seen_storage: set[tuple[int, int]] = set()
    seen_obj: set[int] = set()
    total = 0

    def walk(x):
        nonlocal total
        if isinstance(x, torch.Tensor):
            st = x.untyped_storage()
            key = (st.data_ptr(), st.nbytes())
            if key not in seen_storage:
                seen_storage.add(key)
                total += st.nbytes()
        elif id(x) in seen_obj or isinstance(x, (str, bytes, int, float, bool, type(None), torch.dtype)):
            return
        else:
            seen_obj.add(id(x))
            if isinstance(x, dict):
                items = x.values()
            elif isinstance(x, (list, tuple, set)):
                items = x
            else:
                items = getattr(x, "__dict__", {}).values()
            for v in items:
                walk(v)

    walk(dict(state))
    return total


@dataclass
class Timing:
    label: str
    kind: str
    compiled: bool
    first: float = 0.0
    steps: list[float] = field(default_factory=list)
    state: int | None = None
    error: str = ""

    def median(self) -> float:
        return statistics.median(self.steps)

    def amortised(self, w: int, stat=statistics.median) -> float:
        """Mean step time over a window of w steps (one preconditioner cycle), each position in the window taken
        as its median (or ``stat``: min = the least disturbed) over all windows: a refresh step counts once per
        cycle, a stray slow step not at all."""
        n = len(self.steps) // w * w
        if n == 0:
            return float("nan")
        return statistics.fmean(stat(self.steps[k:n:w]) for k in range(w))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def race(contest: Contest, shapes, device: torch.device, steps: int, warmup: int, seed: int = 0) -> list[Timing]:
    """Run every implementation of a contest interleaved on the same parameters and fresh gradients."""
    from optbench.optim.protocol import set_train_mode

    gen = torch.Generator(device=device).manual_seed(seed)
    init = [torch.randn(s, generator=gen, device=device) * 0.02 for s in shapes]
    runners = []
    for impl in contest.impls:
        t = Timing(impl.label, impl.kind, impl.compiled)
        try:
            params = [torch.nn.Parameter(x.clone()) for x in init]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = impl.make(params)
            set_train_mode([opt])
            runners.append((impl, t, params, opt))
        except Exception as e:  # a peer that cannot run these shapes / settings is reported, not fatal
            t.error = f"{type(e).__name__}: {e}"[:160]
            runners.append((impl, t, None, None))
    w = window(contest.impls)
    total = warmup + max(math.ceil(steps / w), 3 if w > 1 else 1) * w  # >= 3 cycles: a median per position
    for i in range(total):
        grads = [torch.randn(s, generator=gen, device=device) * 1e-2 for s in shapes]
        k = i % len(runners)
        for impl, t, params, opt in runners[k:] + runners[:k]:
            if opt is None or t.error:
                continue
            for p, g in zip(params, grads):
                p.grad = g.clone()
            try:
                with warnings.catch_warnings(), _compile_mode(impl):
                    warnings.simplefilter("ignore")
                    _sync(device)
                    t0 = time.perf_counter()
                    opt.step()
                    _sync(device)
                    dt = time.perf_counter() - t0
            except Exception as e:
                t.error = f"{type(e).__name__}: {e}"[:160]
                continue
            if i < warmup:
                t.first += dt
            else:
                t.steps.append(dt)
    for _, t, _, opt in runners:
        if opt is not None and not t.error:
            t.state = state_bytes(opt.state)
    return [t for _, t, _, _ in runners]


def _compile_mode(impl):
    import contextlib

    if impl.label.startswith("heavyball"):
        return heavyball_compile(impl.compiled)
    return contextlib.nullcontext()


STATS = {"median": statistics.median, "min": min}
JUDGE = {"stat": min}  # which per-position statistic the "x fastest peer" columns use (--stat)


def ratio_to_fastest_peer(timings: list[Timing], w: int, who: str = "zoo") -> tuple[float | None, float | None]:
    """(amortised time / fastest peer's, state / smallest peer state) for the zoo (or 'before') implementation,
    amortised times by the --stat statistic."""
    peers = [t for t in timings if t.kind == "peer" and t.steps and not t.error]
    mine = [t for t in timings if t.kind == who and t.steps and not t.error]
    if not peers or not mine:
        return None, None
    best = min(t.amortised(w, JUDGE["stat"]) for t in peers)
    mem = min(t.state for t in peers if t.state is not None)
    return mine[0].amortised(w, JUDGE["stat"]) / best, (mine[0].state / mem if mem else None)


def _ms(x: float) -> str:
    return f"{x * 1e3:.2f}" if x < 1 else f"{x * 1e3:.0f}"


def detail_table(results: list[tuple[Contest, list[Timing]]]) -> str:
    lines = ["| optimizer (settings) | implementation | median step (ms) | amortised, median (ms) "
             "| amortised, min (ms) | x fastest peer | state (MB) | first steps (s) |", "|---|---|---|---|---|---|---|---|"]
    for c, timings in results:
        w = window(c.impls)
        stat = JUDGE["stat"]
        peers = [t.amortised(w, stat) for t in timings if t.kind == "peer" and t.steps and not t.error]
        best = min(peers) if peers else None
        for j, t in enumerate(timings):
            title = c.title if j == 0 else ""
            if t.error or not t.steps:
                lines.append(f"| {title} | {t.label} | **failed**: {t.error or 'no timed step'} | | | | | |")
                continue
            rel = f"{t.amortised(w, stat) / best:.2f}" if best else "-"
            state = f"{t.state / 2**20:.1f}" if t.state is not None else "n/a"
            first = f"{t.first:.2f}" + (" (incl. compile)" if t.compiled else "")
            lines.append(f"| {title} | {t.label} | {_ms(t.median())} | {_ms(t.amortised(w))} | {_ms(t.amortised(w, min))} | {rel} | {state} | "
                         f"{first} |")
    return "\n".join(lines)


def summary_table(by_set: dict[str, list[tuple[Contest, list[Timing]]]], before: bool) -> str:
    """One row per contest: the zoo's (and the older checkout's) time and state relative to the fastest peer."""
    sets = list(by_set)
    head = ["optimizer (settings)"]
    for s in sets:
        head += ([f"before, x peer ({s})"] if before else []) + [f"x fastest peer ({s})", f"state x peer ({s})"]
    head.append("fastest peer / note")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    first = by_set[sets[0]]
    for k, (c, _) in enumerate(first):
        cells = [c.title + ("" if c.verdict else " *")]
        fastest = ""
        for s in sets:
            if k >= len(by_set[s]):  # an interrupted run: this set did not get to the row
                cells += ["-"] * (3 if before else 2)
                continue
            cs, timings = by_set[s][k]
            w = window(cs.impls)
            r, m = ratio_to_fastest_peer(timings, w)
            if before:
                rb, _ = ratio_to_fastest_peer(timings, w, "before")
                cells.append(f"{rb:.2f}x" if rb is not None else "-")
            cells += [f"{r:.2f}x" if r is not None else "-", f"{m:.2f}x" if m is not None else "-"]
            peers = [t for t in timings if t.kind == "peer" and t.steps and not t.error]
            if peers and not fastest:
                fastest = min(peers, key=lambda t: t.amortised(w, JUDGE["stat"])).label
        cells.append("; ".join(x for x in (fastest, c.note) if x) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--optimizers", default="", help="comma-separated registry names (default: every row)")
    ap.add_argument("--shapes", default="cpu,mid", help=f"comma-separated shape sets from {SHAPE_SETS} (default cpu,mid)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (rounded up to whole windows; default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps, reported apart (default 3)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on a shared machine a "
                    "2-thread kernel stalls whenever another process takes one core, which swamps the differences)")
    ap.add_argument("--stat", default="min", choices=sorted(STATS), help="per-position statistic of the "
                    "amortised times that the ratios use (default min: on a shared machine the median step is "
                    "often a disturbed one; both are printed)")
    ap.add_argument("--before", default=None, help="folder holding an older checkout's optbench/ package: its zoo "
                    "runs in the same race as 'optbench (before)'")
    ap.add_argument("--skip", default="", help="comma-separated implementation labels to leave out, e.g. "
                    "'heavyball SOAP (compiled)' (its max-autotune compile of the mid shapes takes over 7 minutes); "
                    "named in the environment line")
    ap.add_argument("--out", default=None, help="also write the tables (with the command) to FILE.md")
    args = ap.parse_args(argv)
    sets = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if args.steps < 1 or args.warmup < 1 or not sets or any(s not in SHAPE_SETS for s in sets):
        ap.error(f"--steps and --warmup must be >= 1; --shapes from {', '.join(SHAPE_SETS)}")
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    torch.set_num_threads(args.threads)
    JUDGE["stat"] = STATS[args.stat]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here")

    import optbench.optim as zoo

    before = None
    if args.before:
        from tree_import import import_tree

        before = import_tree(args.before, "optim")
    wanted = [zoo.info(n.strip()).name for n in args.optimizers.split(",") if n.strip()]
    rows = [c for c in contests(zoo, before) if not wanted or c.zoo in wanted]
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    unknown = skip - {i.label for c in rows for i in c.impls}
    if unknown:
        ap.error(f"--skip: no implementation labelled {', '.join(sorted(unknown))} in the chosen rows")
    for c in rows:
        c.impls = [i for i in c.impls if i.label not in skip]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    env = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
           f"{os.cpu_count()} CPUs, load average {load:.1f} at the start, "
           + ("CUDA available" if torch.cuda.is_available() else "no GPU here (CPU rows only)")
           + (f"; left out: {', '.join(sorted(skip))}" if skip else ""))
    print(env, flush=True)
    by_set: dict[str, list[tuple[Contest, list[Timing]]]] = {}
    stopped = ""
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` / `timeout` stop it like Ctrl-C (a background job ignores SIGINT)
    try:
        for s in sets:
            shapes = shape_set(s)
            print(f"\n== shapes {s}: {len(shapes)} matrices, {sum(math.prod(x) for x in shapes):,} parameters",
                  flush=True)
            by_set[s] = []
            for c in rows:
                t0 = time.perf_counter()
                timings = race(c, shapes, device, args.steps, args.warmup)
                by_set[s].append((c, timings))
                r, _ = ratio_to_fastest_peer(timings, window(c.impls))
                print(f"  {c.title}: {len(c.impls)} implementations, {time.perf_counter() - t0:.0f} s"
                      + (f", optbench {r:.2f}x the fastest peer" if r is not None else ""), flush=True)
    except KeyboardInterrupt:  # Ctrl-C, `kill` or `timeout`: the rows measured so far are still printed
        stopped = "**Interrupted**: only the rows below were measured."
        by_set = {s: done for s, done in by_set.items() if done}
        if not by_set:
            print("interrupted before any row was measured", file=sys.stderr)
            return 130
    parts = [f"Environment: {env}; {args.steps} timed steps (whole windows), {args.warmup} warm-up steps.", ""]
    parts += [stopped, ""] if stopped else []
    parts += [f"## Summary (amortised step time, per-position {args.stat}, and state memory relative to the "
              "fastest / smallest peer; "
              "* = peers cannot run the same settings, not judged)", "", summary_table(by_set, before is not None)]
    for s in by_set:
        parts += ["", f"## Shapes: {s}", "", detail_table(by_set[s])]
    text = "\n".join(parts)
    print("\n" + text)
    if args.out:
        cmd = "python bench/optim_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
        Path(args.out).write_text(f"# Optimizer step benchmark\n\nCommand: `{cmd}`\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
