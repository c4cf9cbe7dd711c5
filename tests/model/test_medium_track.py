"""The medium track validates and reduces its loss as the 04/22/25 record (records/track_2_medium/2025-04-22_Record8):
262,144-token validation rows (`val_seq_len = 4*64*1024`), mean CE per GPU and gradients averaged over GPUs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from optbench.tracks import get_track, with_overrides

from .test_medium import make_model, tiny_cfg, tokens


def test_medium_track_fields_follow_the_record():
    t = get_track("medium")
    assert t.val_row_tokens == 262_144 and t.seq_len == 65_536 and t.loss_reduction == "mean"
    # the record asserts val_tokens % (world_size * val_seq_len) == 0 on 8 GPUs: 5 val steps of 8 rows
    assert t.val_tokens % (8 * t.val_row_tokens) == 0 and t.val_tokens // (8 * t.val_row_tokens) == 5
    assert t.backward_scale(8) == 8 / 524_288 == 2.0**-16
    assert t.fixed_fields()["val_seq_len"] == 262_144 and t.fixed_fields()["loss_reduction"] == "mean"
    small = get_track("small")
    assert small.val_row_tokens == 1024 and small.loss_reduction == "sum" and small.backward_scale(4) == 4.0


def test_mean_reduction_gradient_is_the_records_bit_for_bit():
    """Per step on one rank with 2 microbatches: our summed loss x backward_scale gives exactly the gradient of the
    record's mean CE per microbatch, averaged over the microbatches (all scales are powers of two)."""
    T, accum = 128, 2
    track = with_overrides(get_track("medium"), {"seq_len": T, "batch_tokens": accum * T, "val_seq_len": 2 * T})
    model = make_model(tiny_cfg())  # zero-init tensors randomized, so every gradient is non-trivial
    x = torch.cat([tokens(1, T, bos_at=(0, 40)), tokens(1, T, bos_at=(0, 90), seed=3)])
    y = torch.cat([tokens(1, T, bos_at=(), seed=5), tokens(1, T, bos_at=(), seed=6)])
    for i in range(accum):
        (model(x[i:i + 1], y[i:i + 1]) * track.backward_scale(1)).backward()
    ours = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    for i in range(accum):
        logits = model(x[i:i + 1])
        (F.cross_entropy(logits.view(-1, logits.size(-1)), y[i].view(-1)) / accum).backward()
    for k, p in model.named_parameters():
        assert torch.equal(ours[k], p.grad), k


def test_unknown_reduction_is_an_error():
    from optbench.errors import OptbenchError
    from dataclasses import replace

    with pytest.raises(OptbenchError, match="loss_reduction must be 'sum' or 'mean'"):
        replace(get_track("small"), loss_reduction="median").backward_scale(1)


def test_loop_cuts_validation_into_the_tracks_val_rows(monkeypatch, tmp_path):
    """The loop loads the val set in val_row_tokens rows (a spy on load_val stops the run there)."""
    from optbench.optim.recipe import load_recipe
    from optbench.train import loop
    from optbench.train.distributed import DistEnv

    seen = {}

    class Stop(Exception):
        pass

    def spy(files, val_tokens, seq_len, rank=0, world_size=1):
        seen.update(val_tokens=val_tokens, seq_len=seq_len, world_size=world_size)
        raise Stop

    monkeypatch.setattr(loop, "check_data", lambda track, d: ([tmp_path / "train.bin"], [tmp_path / "val.bin"]))
    monkeypatch.setattr(loop, "load_val", spy)
    cfg = loop.RunConfig(track=get_track("medium"), recipe=load_recipe("medium-muon"), recipe_text="", seeds=[0],
                         out_dir=tmp_path / "run", data_dir=tmp_path)
    with pytest.raises(Stop):
        loop.run(cfg, DistEnv(rank=0, world_size=8, local_rank=0, device=torch.device("cpu")))
    assert seen == {"val_tokens": 10_485_760, "seq_len": 262_144, "world_size": 8}


@pytest.mark.slow
def test_tiny_medium_run_through_the_loop(tmp_path, nano_data, monkeypatch):
    """A 4-step medium run (unofficial tiny sizes) on the bundled corpus: validation in val_seq_len rows, the mean
    reduction, and the final evaluation with the last step's attention window (progress T/T, as the record)."""
    import dataclasses
    import math

    from optbench.model.medium import MediumConfig, MediumGPT
    from optbench.optim.recipe import load_recipe
    from optbench.train import loop
    from optbench.train.distributed import DistEnv

    eot = 2048 - 2  # the reduced vocabularies put <|endoftext|> at size - 2 (optbench.data.vocab)
    cfg_m = MediumConfig(vocab_size=2048, num_layers=4, model_dim=64, head_dim=32, value_embed_layers=(0, 1, None, 0),
                         skip_map=((3, 1),), no_attn_layers=(2,), long_window_layers=(0, 3), bos_id=eot,
                         block_size=32, max_window=128)
    small_model = dataclasses.replace(get_track("medium"), model_config=cfg_m)
    track = with_overrides(small_model, {"seq_len": 256, "batch_tokens": 2 * 256, "val_tokens": 4 * 512,
                                         "val_seq_len": 512})
    recipe = load_recipe("medium-muon").model_copy(update={"train_steps": 4})
    progress = []
    original = MediumGPT.set_progress
    monkeypatch.setattr(MediumGPT, "set_progress", lambda self, f: (progress.append(f), original(self, f))[1])
    rows = []
    real_load_val = loop.load_val
    monkeypatch.setattr(loop, "load_val", lambda *a, **k: (lambda v: (rows.append(v[0].shape), v)[1])(real_load_val(*a, **k)))
    cfg = loop.RunConfig(track=track, recipe=recipe, recipe_text="", seeds=[0], out_dir=tmp_path / "run",
                         data_dir=nano_data, progress=False)
    results, diverged = loop.run(cfg, DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))
    assert not diverged and rows == [torch.Size([4, 512])]
    curve = results.runs[0].curve
    assert [p.step for p in curve] == [0, 4]
    assert curve[0].val_loss == pytest.approx(math.log(2048), abs=1e-4)  # zero-init head: uniform logits
    assert curve[-1].val_loss < curve[0].val_loss
    assert progress[-1] == 1.0  # the final evaluation runs with step T's window
