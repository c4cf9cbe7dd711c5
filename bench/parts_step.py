"""Step time of a composed optimizer (optbench.optim.parts) vs the same update written as one class (CPU).

Two stacks, each built twice: from parts (``Chain`` + the outer/readout objects a recipe adds) and as one
hand-written class below that does the same operations in one ``step``:

    normuonh   momentum -> orthogonalize -> aspect_scale -> normuon -> hyperball          (track-3 #8)
    record     momentum -> soap (trust gate on attn.proj, blend on q/k/v) -> orthogonalize (Gram norm) ->
               aspect_scale -> radial_brake -> row_floor -> cautious_wd -> radius_pin, + EMA-Nesterov look-ahead
               + tail-EMA readout                                                          (track-3 #46)

on the hidden matrices of ``--layers`` blocks of the small track's GPT (q, k, v, attn.proj d x d; mlp.fc 4d x d;
mlp.proj d x 4d) with d = 768 * ``--scale``. Both get the same gradients; before timing, the bench checks that
they produce bit-identical parameters (so the one-class version is the same update). Steps are timed
interleaved (A B B A ...), ``--rounds`` per implementation after ``--warmup`` untimed ones; the table gives the
medians and the composed/one-class ratio. Newton-Schulz runs in float32 (CPU; bf16 matmuls are slow there).

    python bench/parts_step.py                      # d = 192 (scale 0.25), 2 layers
    python bench/parts_step.py --scale 0.5 --layers 1 --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optbench.optim.muon import newton_schulz, resolve_ns_schedule  # noqa: E402
from optbench.optim.parts import catalog  # noqa: E402
from optbench.optim.parts.chain import Chain  # noqa: E402
from optbench.optim.parts.ema_nesterov import EMANesterov  # noqa: E402
from optbench.optim.parts.tail_ema import TailEMA  # noqa: E402

NS = resolve_ns_schedule("track3", None)


def shapes(scale: float, layers: int) -> list[tuple[str, tuple[int, int]]]:
    d = max(8, round(768 * scale))
    out = []
    for i in range(layers):
        b = f"blocks.{i}."
        out += [(b + f"attn.{n}.weight", (d, d)) for n in ("q", "k", "v", "proj")]
        out += [(b + "mlp.fc.weight", (4 * d, d)), (b + "mlp.proj.weight", (d, 4 * d))]
    return out


# ----------------------------------------------------------------------------------------- one-class versions


class NorMuonHOneClass(torch.optim.Optimizer):
    """NorMuonH written as one class: momentum, NS, aspect scale, variance normalisation, hyperball."""

    def __init__(self, params, lr=0.018, mu=0.95, beta2=0.95, eps=1e-10):
        super().__init__(params, dict(lr=lr, mu=mu, beta2=beta2, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mu = group["lr"], group["mu"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st["m"] = torch.zeros_like(p)
                g = p.grad
                st["m"].lerp_(g, 1 - mu)
                u = newton_schulz(torch.lerp(g, st["m"], mu), NS, torch.float32, 1e-7)
                u *= max(1, u.size(-2) / u.size(-1)) ** 0.5
                v_new = (u * u).mean(dim=-1 if u.size(-2) >= u.size(-1) else -2, keepdim=True)
                if "v" not in st:
                    st["v"] = torch.zeros_like(v_new)
                st["v"].lerp_(v_new, 1 - group["beta2"])
                u = u * st["v"].clamp_min(group["eps"]).rsqrt()
                p_norm = p.norm()
                new = p - lr * u * p_norm / torch.clamp(u.norm(), min=1e-10)
                p.copy_(new / torch.clamp(new.norm(), min=1e-10) * p_norm)


def _gram(X, eps):
    X = X.float()
    return (X.mT @ X if X.size(-2) > X.size(-1) else X @ X.mT).norm(dim=(-2, -1)).sqrt().clamp_min(eps)


def _cos(a, b):
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-8)


class RecordOneClass(torch.optim.Optimizer):
    """Record #46's hidden-matrix step, EMA-Nesterov look-ahead and tail-EMA update written as one class."""

    def __init__(self, named, lr=0.0375, mu=0.95, beta2=0.9, target=0.3825, cwd=0.025, lookahead=0.3, ema=0.99,
                 la_start=0, la_stop=10**9, tail_start=0, tau=150.0):
        self.gate = {id(p): ("trust" if "attn.proj" in n else "blend" if ".attn." in n else "none") for n, p in named}
        super().__init__([p for _, p in named], dict(lr=lr, mu=mu, beta2=beta2, target=target, cwd=cwd))
        self.la = dict(lookahead=lookahead, ema=ema, start=la_start, stop=la_stop, tail_start=tail_start, tau=tau)
        self.t = 0
        for p in self.param_groups[0]["params"]:
            self.state[p]["prev"] = p.detach().clone()
            self.state[p]["buf"] = torch.zeros_like(p)

    @torch.no_grad()
    def before_forward(self):
        if self.la["start"] <= self.t < self.la["stop"]:
            for p in self.param_groups[0]["params"]:
                p.add_(self.state[p]["buf"], alpha=self.la["lookahead"])

    def _soap(self, u, st, beta2):
        if "q_row" not in st:
            return u
        projected = st["q_row"].T @ u @ st["q_col"]
        st["v"].mul_(beta2).add_(projected.square(), alpha=1 - beta2)
        s = st["q_row"] @ (projected / st["v"].clamp_min(1e-16).pow(0.5)) @ st["q_col"].T
        s.mul_(_gram(u, 1e-8) / _gram(s, 1e-8))
        return s

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        lr, mu, beta2 = group["lr"], group["mu"], group["beta2"]
        for p in group["params"]:
            st, g = self.state[p], p.grad
            if "m" not in st:
                st["m"] = torch.zeros_like(p)
                st["v"] = torch.zeros_like(p)
                st["row_gg"] = torch.zeros(p.size(0), p.size(0))
                st["col_gg"] = torch.zeros(p.size(1), p.size(1))
            st["m"].lerp_(g, 1 - mu)
            raw = torch.lerp(g, st["m"], mu)
            s = self._soap(raw, st, beta2)
            kind = self.gate[id(p)]
            if kind == "none":
                u = s
            else:
                w = torch.ones(())
                if kind == "trust":
                    agree = ((_cos(s, raw) - 0.2) / 0.8).clamp(0, 1)
                    w = (agree * (_cos(s, g) / _cos(raw, g).clamp_min(1e-8)).clamp(0, 1)).clamp(0, 1)
                    w = w.clamp(min=0.45 if self.t < 1375 else 0.0, max=0.85 if self.t < 1625 else 1.0)
                blended = raw + (s - raw) * w
                u = blended * (_gram(raw, 1e-8) / _gram(blended, 1e-8))
            u = newton_schulz(u, NS, torch.float32, 1e-7, norm="gram")
            u *= max(1, u.size(-2) / u.size(-1)) ** 0.5
            coeff = (u * p).sum() / (p * p).sum().clamp_min(1e-12)
            u = u - coeff * p + torch.where(coeff < 0, torch.tensor(0.5), torch.tensor(1.0)) * (coeff * p)
            f = torch.clamp(group["target"] * p.norm(dim=1, keepdim=True).clamp_min(1e-8)
                            / u.norm(dim=1, keepdim=True).clamp_min(1e-8), min=1.0)
            u = u * f
            mask = (u * p > 0).to(p.dtype)
            before = p.norm().clamp_min(1e-8)
            target = (before + (-lr * (u * p).sum() / before)).clamp_min(1e-8)
            p.add_(u, alpha=-lr)
            p.mul_(target / p.norm().clamp_min(1e-8))
            p.mul_(1.0 - (lr * group["cwd"]) * mask)
            st["row_gg"].lerp_(g @ g.T, 1 - beta2)
            st["col_gg"].lerp_(g.T @ g, 1 - beta2)
            if "q_row" not in st:
                for side in ("row", "col"):
                    _, q = torch.linalg.eigh(st[f"{side}_gg"] + 1e-30 * torch.eye(st[f"{side}_gg"].size(0)))
                    st[f"q_{side}"] = torch.flip(q, [1])
            else:
                for side, dim in (("row", 0), ("col", 1)):
                    gg, q = st[f"{side}_gg"], st[f"q_{side}"]
                    order = torch.argsort(torch.diag(q.T @ gg @ q), descending=True)
                    st["v"] = st["v"].index_select(dim, order)
                    st[f"q_{side}"], _ = torch.linalg.qr(gg @ q[:, order])
        for p in group["params"]:  # EMA-Nesterov accumulation, then the tail EMA
            st = self.state[p]
            st["buf"].lerp_(p.add(st["prev"], alpha=-1), 1 - self.la["ema"])
            st["prev"].copy_(p)
        if self.t + 1 >= self.la["tail_start"]:
            for p in group["params"]:
                st = self.state[p]
                if "tail" not in st:
                    st["tail"] = p.detach().float().clone()
                else:
                    st["tail"].add_(p.detach().float() - st["tail"], alpha=1.0 / self.la["tau"])
        self.t += 1


# ------------------------------------------------------------------------------------------- composed versions


class Stack:
    """The composed side: optimizers stepped in order, ``before_forward`` on those that have it."""

    def __init__(self, opts):
        self.opts = opts

    def before_forward(self):
        for o in self.opts:
            if hasattr(o, "before_forward"):
                o.before_forward()

    def step(self):
        for o in self.opts:
            o.step()


def normuonh_pair(named):
    a = [torch.nn.Parameter(p.clone()) for _, p in named]
    b = [torch.nn.Parameter(p.clone()) for _, p in named]
    parts = catalog.chain_parts({"momentum": {}, "orthogonalize": {"ns_dtype": "float32"}, "aspect_scale": {},
                                 "normuon": {}, "hyperball": {}})
    return a, Stack([Chain(a, parts, lr=0.018)]), b, Stack([NorMuonHOneClass(b)])


def record_pair(named):
    a = [torch.nn.Parameter(p.clone()) for _, p in named]
    b = [torch.nn.Parameter(p.clone()) for _, p in named]
    parts = catalog.chain_parts({"momentum": {}, "soap": {}, "orthogonalize": {"ns_dtype": "float32", "norm": "gram"},
                                 "aspect_scale": {}, "radial_brake": {}, "row_floor": {}, "cautious_wd": {},
                                 "radius_pin": {}})
    names = [n for n, _ in named]
    groups = [{"params": [p for n, p in zip(names, a) if "attn.proj" in n], "soap.gate": "trust"},
              {"params": [p for n, p in zip(names, a) if ".attn." in n and "attn.proj" not in n], "soap.gate": "blend"},
              {"params": [p for n, p in zip(names, a) if ".attn." not in n]}]
    chain = Chain(groups, parts, lr=0.0375)
    composed = Stack([chain, EMANesterov(a, None, lookahead=0.3, ema=0.99), TailEMA(a, start=0, tau=150.0)])
    one = RecordOneClass(list(zip(names, b)))
    return a, composed, b, Stack([one])


def run(stack_name: str, scale: float, layers: int, warmup: int, rounds: int) -> dict:
    torch.manual_seed(0)
    named = [(n, 0.02 * torch.randn(s)) for n, s in shapes(scale, layers)]
    grads = [[torch.randn(s) for _, s in shapes(scale, layers)] for _ in range(2)]
    pa, composed, pb, one = {"normuonh": normuonh_pair, "record": record_pair}[stack_name](named)

    def step(params, impl, k):
        impl.before_forward()
        for p, g in zip(params, grads[k % 2]):
            p.grad = g
        impl.step()

    times = {"composed": [], "one class": []}
    order = [("composed", pa, composed), ("one class", pb, one)]
    for k in range(warmup + rounds):
        for label, params, impl in (order if k % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            step(params, impl, k)
            if k >= warmup:
                times[label].append(time.perf_counter() - t0)
        if k == warmup - 1 or k == warmup + rounds - 1:
            same = all(torch.equal(x, y) for x, y in zip(pa, pb))
            if not same:
                worst = max((x - y).abs().max().item() for x, y in zip(pa, pb))
                raise SystemExit(f"{stack_name}: composed and one-class differ after {k + 1} steps (max {worst:.2e})")
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"stack": stack_name, "composed_ms": 1e3 * med["composed"], "one_class_ms": 1e3 * med["one class"],
            "ratio": med["composed"] / med["one class"], "n": rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.25, help="width = 768 * scale (default 0.25: d = 192)")
    ap.add_argument("--layers", type=int, default=2, help="blocks of hidden matrices (6 matrices each)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--stacks", default="normuonh,record")
    a = ap.parse_args()
    d = max(8, round(768 * a.scale))
    print(f"parts step time: {a.layers} block(s) of hidden matrices, d = {d} (mlp {4 * d}), "
          f"{torch.get_num_threads()} threads, median of {a.rounds} interleaved steps after {a.warmup} warm-up; "
          f"composed and one-class parameters are bit-identical", file=sys.stderr)
    rows = [run(s, a.scale, a.layers, a.warmup, a.rounds) for s in a.stacks.split(",")]
    print("| stack | composed (ms/step) | one class (ms/step) | composed / one class |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['stack']} | {r['composed_ms']:.2f} | {r['one_class_ms']:.2f} | {r['ratio']:.3f} |")


if __name__ == "__main__":
    main()
