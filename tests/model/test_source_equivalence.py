"""The remix A/M and 10/18/24-record models against numbers recorded from their sources' own code.

tests/model/reference/*.json were produced by running the upstream model code (the model sections of
flukeskywalker/modded-nanogpt-remixed train_gpt_A.py / train_gpt_M.py and of the records/102924_Optimizers logs)
on CPU in fp32; each file's `source` says how. No upstream code is in this repository: the files hold numbers
(parameter counts, init statistics at full size, init checksums, loss and per-parameter gradient norms, probe
projections and sampled entries at a small size). The protocol (seeds, tokens, perturbation, probes) is rebuilt
here exactly as it was there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from optbench.model.remix import RemixConfig, RemixGPT
from optbench.model.speedrun101824 import Speedrun101824Config, Speedrun101824GPT

REF = Path(__file__).resolve().parent / "reference"
REL = 1e-5  # loss and gradients: relative tolerance (fp32, different attention kernels)


def load(name: str) -> dict:
    return json.loads((REF / f"{name}.json").read_text())


def probe(shape, i: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(1000 + i))


def tokens(vocab: int, n: int, seed: int, bos: int | None = None, bos_at=()) -> torch.Tensor:
    x = torch.randint(1, vocab, (n,), generator=torch.Generator().manual_seed(seed))
    for j in bos_at:
        x[j] = bos
    return x


def perturb(model, seed: int, std: float) -> None:
    """Every parameter + N(0, std^2) (zero-init tensors would make most gradients vanish)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


def remix_small(ref: dict, variant: str) -> RemixGPT:
    s = ref["small"]
    c = s["config"]
    cfg = RemixConfig(vocab_size=c["vocab_size"], num_layers=c["num_layers"], model_dim=c["model_dim"],
                      head_dim=c["model_dim"] // c["num_heads"], tied=variant == "a",
                      softcap=30.0 if variant == "m" else None, window=s["window"], bos_id=s["bos"])
    torch.manual_seed(s["init_seed"])
    return RemixGPT(cfg)


def speedrun_small(ref: dict) -> Speedrun101824GPT:
    s = ref["small"]
    c = s["config"]
    cfg = Speedrun101824Config(vocab_size=c["vocab_size"], num_layers=c["n_layer"], model_dim=c["n_embd"],
                               head_dim=c["n_embd"] // c["n_head"], max_seq_len=c["seq_len"])
    torch.manual_seed(s["init_seed"])
    return Speedrun101824GPT(cfg)


def check_init(model, ref_init: dict) -> None:
    """Same seed, same tensors: sums, sums of squares and probe projections equal to fp64 round-off."""
    names = [n for n, _ in model.named_parameters()]
    assert names == list(ref_init)
    for i, (n, p) in enumerate(model.named_parameters()):
        r, t = ref_init[n], p.detach().double()
        assert list(p.shape) == r["shape"], n
        assert t.sum().item() == pytest.approx(r["sum"], rel=1e-9, abs=1e-9), n
        assert t.square().sum().item() == pytest.approx(r["sumsq"], rel=1e-9), n
        assert (t * probe(p.shape, i).double()).sum().item() == pytest.approx(r["probe"], rel=1e-9, abs=1e-9), n


def check_grads(model, ref_grads: dict, scale: float) -> float:
    """Every gradient (ours / scale) against the source's: norm, probe projection and 16 sampled entries, each
    within REL of the gradient's own size. Returns the worst relative deviation seen."""
    worst = 0.0
    for i, (n, p) in enumerate(model.named_parameters()):
        r = ref_grads[n]
        g = p.grad.detach().double() / scale
        size = r["norm"]
        assert size > 0, n
        dev = [abs(g.norm().item() - size) / size,
               abs((g * probe(p.shape, i).double()).sum().item() - r["probe"]) / (size * math.sqrt(p.numel()))]
        flat = g.flatten()
        scale_entry = size / math.sqrt(p.numel())  # the RMS entry
        dev += [abs(flat[j].item() - v) / scale_entry for j, v in zip(r["sample_index"], r["sample"])]
        worst = max(worst, max(dev))
        assert max(dev) <= REL, f"{n}: relative deviation {max(dev):.2e}"
    return worst


@pytest.mark.parametrize("variant", ["a", "m"])
def test_remix_matches_source(variant):
    ref = load(f"remix_{variant}")
    model = remix_small(ref, variant)
    check_init(model, ref["small"]["init"])
    s = ref["small"]
    perturb(model, s["perturb_seed"], s["perturb_std"])
    x = tokens(s["config"]["vocab_size"], s["config"]["seq_len"] + 1, s["tokens_seed"], s["bos"], s["bos_at"])
    T = s["config"]["seq_len"]
    loss = model(x[None, :-1], x[None, 1:])
    assert (loss / T).item() == pytest.approx(s["loss_mean"], rel=REL)
    assert s["loss_flex"] == pytest.approx(s["loss_mean"], rel=1e-6)  # upstream's own FlexAttention forward agrees
    loss.backward()
    check_grads(model, s["grads"], T)


def test_speedrun101824_matches_source():
    ref = load("speedrun101824")
    model = speedrun_small(ref)
    check_init(model, ref["small"]["init"])
    s = ref["small"]
    perturb(model, s["perturb_seed"], s["perturb_std"])
    B, T = s["config"]["rows"], s["config"]["seq_len"]
    x = tokens(s["config"]["vocab_size"], B * T + 1, s["tokens_seed"])
    loss = model(x[:-1].view(B, T), x[1:].view(B, T))
    assert (loss / (B * T)).item() == pytest.approx(s["loss_mean"], rel=REL)
    loss.backward()
    check_grads(model, s["grads"], B * T)


@pytest.mark.parametrize("name, expected", [("remix_a", 123_568_128), ("remix_m", 162_165_504),
                                            ("speedrun101824", 123_568_128)])
def test_full_size_parameter_counts(name, expected):
    from optbench.tracks import get_track

    track = {"remix_a": "remix-a", "remix_m": "remix-m", "speedrun101824": "speedrun-101824"}[name]
    with torch.device("meta"):
        model = get_track(track).build_model()
    n = sum(p.numel() for p in model.parameters())
    assert n == load(name)["full_size"]["params"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("name", ["remix_a", "remix_m", "speedrun101824"])
def test_full_size_init_distributions(name):
    """At full size and the source's seed, every parameter's mean, std, min and max equal the source's."""
    from optbench.tracks import get_track

    ref = load(name)["full_size"]
    track = get_track({"remix_a": "remix-a", "remix_m": "remix-m", "speedrun101824": "speedrun-101824"}[name])
    torch.manual_seed(ref["init_seed"])
    model = track.build_model()
    track.init_model(model)
    stats = ref["init_stats"]
    assert [n for n, _ in model.named_parameters()] == list(stats)
    for n, p in model.named_parameters():
        t, r = p.detach().double(), stats[n]
        assert list(p.shape) == r["shape"]
        for key, value in (("mean", t.mean()), ("std", t.std()), ("min", t.min()), ("max", t.max())):
            assert value.item() == pytest.approx(r[key], rel=1e-9, abs=1e-12), f"{n} {key}"
