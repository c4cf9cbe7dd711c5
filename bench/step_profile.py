"""Where a training step's time goes: torch.profiler self time of each op, put in buckets by op and input shape.

Used by bench/throughput.py (Clock times a step's phases) and its --profile. In a profiled step the clock leaves a
zero-length `phase:<name>` record when a phase ends, so every op is assigned to the forward, backward or optimizer
phase it ran in. Forward and backward ops are bucketed:

- head matmuls: mm/addmm/linear with the vocabulary as a dimension of an input;
- logits (soft-cap, CE): any other op on a tensor with the vocabulary as a dimension that is not a weight
  ([V, D], [D, V], [V]) or an embedding lookup;
- attention: scaled-dot-product attention kernels (and bmm/baddbmm/softmax of a math fallback);
- block matmuls: the other matmuls;
- copies and fills: copy_, cat, clone, contiguous, _to_copy, fill_, zero_;
- other elementwise: everything else (norms, RoPE, activations, residual adds, autograd accumulation);
- unattributed: the phase's wall time not spent in any op (Python, autograd engine, dispatch).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile, record_function

PHASES = ("forward", "backward", "optimizer")

BUCKETS = ("head matmuls", "logits (soft-cap, CE)", "attention", "block matmuls", "copies and fills",
           "other elementwise", "unattributed", "optimizer")
MATMULS = {"aten::mm", "aten::addmm", "aten::linear", "aten::matmul", "aten::bmm", "aten::baddbmm"}
COPIES = {"aten::copy_", "aten::cat", "aten::clone", "aten::contiguous", "aten::_to_copy", "aten::fill_",
          "aten::zero_", "aten::zeros_like", "aten::new_zeros"}
EMBEDDING = {"aten::embedding", "aten::index_select", "aten::embedding_dense_backward",
             "aten::embedding_backward", "aten::index_add_"}


class Clock:
    """Adds the time since the last call to a phase's total: call clock(phase) when a phase ends."""

    def __init__(self):
        self.totals = dict.fromkeys(PHASES, 0.0)
        self.t = time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.totals[phase] += now - self.t
        self.t = now


class MarkingClock(Clock):
    """The bench's clock, also leaving a `phase:<name>` mark in the profile when a phase ends."""

    def __call__(self, phase: str) -> None:
        with record_function(f"phase:{phase}"):
            pass
        super().__call__(phase)


def bucket(name: str, shapes, vocab: int, dim: int) -> str:
    shapes = [tuple(s) for s in shapes or [] if isinstance(s, (list, tuple))]
    has_vocab = any(vocab in s for s in shapes)
    if name in MATMULS and has_vocab:
        return "head matmuls"
    weights = {(vocab, dim), (dim, vocab), (vocab,)}
    if has_vocab and name not in EMBEDDING and any(vocab in s and s not in weights for s in shapes):
        return "logits (soft-cap, CE)"
    if "scaled_dot_product" in name or "flash_attention" in name or name in {"aten::bmm", "aten::baddbmm"}:
        return "attention"
    if name in MATMULS:
        return "block matmuls"
    if name in COPIES:
        return "copies and fills"
    return "other elementwise"


def profile_step(setup, x, y, vocab: int, dim: int) -> dict[str, float]:
    """ms in each bucket of one profiled step of the setup."""
    torch.set_num_threads(setup.threads)
    clock = MarkingClock()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        setup.step(x, y, clock)
    events = [e for e in prof.events() if e.device_type.name == "CPU"]
    marks = sorted((e.time_range.start, e.name[len("phase:"):]) for e in events if e.name.startswith("phase:"))
    out = dict.fromkeys(BUCKETS, 0.0)
    attributed = dict.fromkeys(PHASES, 0.0)
    for e in events:
        if e.name.startswith("phase:") or e.self_cpu_time_total <= 0:
            continue
        phase = next((p for t, p in marks if t >= e.time_range.end), None)
        if phase is None or phase == "optimizer":
            continue
        attributed[phase] += e.self_cpu_time_total / 1000
        out[bucket(e.name, e.input_shapes, vocab, dim)] += e.self_cpu_time_total / 1000
    wall = {p: 1000 * clock.totals[p] for p in PHASES}
    out["unattributed"] = sum(wall[p] - attributed[p] for p in ("forward", "backward"))
    out["optimizer"] = wall["optimizer"]
    return out


def profile_table(setups, tracks, batch, rounds: int = 3) -> list[str]:
    """A markdown table, buckets as rows and setups as columns: the median over `rounds` interleaved profiled
    steps (ms per step)."""
    samples = {s.name: [] for s in setups}
    for _ in range(rounds):
        for s in setups:
            track = tracks[s.name]
            samples[s.name].append(profile_step(s, *batch[track.name], track.vocab_size,
                                                track.model_config.model_dim))
    cols = [{b: statistics.median(r[b] for r in samples[s.name]) for b in BUCKETS} for s in setups]
    lines = ["| ms per step | " + " | ".join(s.name for s in setups) + " |",
             "|---|" + "---:|" * len(setups)]
    for b in BUCKETS:
        lines.append(f"| {b} | " + " | ".join(f"{c[b]:.1f}" for c in cols) + " |")
    lines.append("| **sum** | " + " | ".join(f"{sum(c.values()):.1f}" for c in cols) + " |")
    return lines
