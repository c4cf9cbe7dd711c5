"""Numbers are checked where they enter a run: hyperparameter ranges at the recipe, --set keys, shard token ids,
checkpoint files, a finished run folder; and the run-folder bookkeeping (metrics on resume, retention, wall time)."""

import hashlib
import inspect
import json

import numpy as np
import pytest
import torch

from optbench import optim
from optbench.data.shards import check_vocab, write_shard
from optbench.errors import OptbenchError
from optbench.optim.recipe import apply_settings, load_recipe, parse_recipe
from optbench.optim.registry import COUNT, POSITIVE, UNIT, Range, betas
from optbench.train import checkpoint as ckpt
from optbench.train.loop import RunWall, check_resumable
from optbench.train.runlog import RunLog

NANO_ADAMW = load_recipe("nano-adamw")


def _recipe_text(hparams: str) -> str:
    return (f'name = "t"\noptimizer = "adamw"\nscope = "all"\n[hparams]\n{hparams}\n')


@pytest.mark.parametrize("value,ok", [(0.1, True), (1, True), (0, False), (-1, False), (float("inf"), False),
                                      (float("nan"), False), ("fast", False), (True, False), (None, False)])
def test_positive_range(value, ok):
    assert POSITIVE.allows(value) is ok


def test_range_text_and_kinds():
    assert str(POSITIVE) == "a finite number in (0, inf)"
    assert str(UNIT) == "a finite number in [0, 1)"
    assert str(COUNT) == "an integer >= 1"
    assert str(betas(3)) == "3 numbers, each finite number in [0, 1)"
    assert COUNT.allows(3) and not COUNT.allows(2.5) and not COUNT.allows(0)
    assert betas(2).allows([0.9, 0.95]) and not betas(2).allows([0.9]) and not betas(2).allows([0.9, 1.0])
    assert Range(0.0, 1.0, length=2).allows((0.9, 1.0))  # Shampoo's beta2 = 1 (no EMA) is allowed


@pytest.mark.parametrize("line,message", [
    ('lr = "fast"', "hparams.lr = 'fast' is not allowed for adamw; allowed: a finite number in (0, inf)"),
    ("lr = -0.001", "hparams.lr = -0.001 is not allowed for adamw; allowed: a finite number in (0, inf)"),
    ("lr = 0", "hparams.lr = 0 is not allowed"),
    ("lr = inf", "hparams.lr = inf is not allowed"),
    ("lr = nan", "hparams.lr = nan is not allowed"),
    ("weight_decay = -0.1", "weight_decay = -0.1 is not allowed for adamw; allowed: a finite number in [0, inf)"),
    ("betas = [0.9, 1.0]", "allowed: 2 numbers, each finite number in [0, 1)"),
    ("eps = 0", "eps = 0 is not allowed"),
    ("amsgrad = 1", "amsgrad = 1: adamw wants true or false"),
    ("speed = 3", "hparams.speed: adamw has no such hyperparameter; it takes amsgrad, betas"),
])
def test_recipe_hparams_are_checked_with_the_range_in_the_message(line, message):
    with pytest.raises(OptbenchError) as e:
        parse_recipe(_recipe_text(line), "t.toml")
    assert message in str(e.value) and "Value error" not in str(e.value)


def test_set_values_are_checked_like_the_recipe_and_aux_too():
    for s, msg in [("lr=abc", "'abc' is not allowed"), ("aux.eps=-1", "aux.eps = -1 is not allowed for adamw"),
                   ("aux.embed_lr=nan", "aux.embed_lr: Input should be a finite number"),
                   ("cooldown_frac=inf", "cooldown_frac"), ("warmup_steps=-2", "warmup_steps")]:
        with pytest.raises(OptbenchError, match="--set"):
            apply_settings(NANO_ADAMW, [s])
        try:
            apply_settings(NANO_ADAMW, [s])
        except OptbenchError as e:
            assert msg in str(e)
    assert apply_settings(NANO_ADAMW, ["lr=0.01"])[0].hparams["lr"] == 0.01


def test_muon_momentum_range_is_the_optimizers_own():
    with pytest.raises(OptbenchError, match=r"momentum = 1 is not allowed for muon; allowed: a finite number in \[0, 1\)"):
        apply_settings(load_recipe("nano-muon"), ["momentum=1"])


@pytest.mark.parametrize("name", optim.names())
def test_every_declared_range_names_a_real_hyperparameter_and_admits_its_default(name):
    info = optim.info(name)
    params = inspect.signature(info.cls.__init__).parameters
    assert info.ranges["lr"] == POSITIVE or "lr" in info.ranges
    for key, rng in info.ranges.items():
        assert key in params, f"{name}: range for unknown hyperparameter {key}"
        default = info.defaults().get(key)
        if default is not None and key != "lr":
            assert rng.allows(list(default) if isinstance(default, tuple) else default), (name, key, default)


def test_every_bundled_recipe_passes_the_range_checks():
    from optbench.optim.recipe import recipe_names

    for n in recipe_names():
        load_recipe(n)


def test_set_without_a_key_is_an_error():
    with pytest.raises(OptbenchError, match="'=5' has no KEY before '='"):
        apply_settings(NANO_ADAMW, ["=5"])
    with pytest.raises(OptbenchError, match="has no KEY"):
        apply_settings(NANO_ADAMW, ["  =5"])


def test_out_of_vocabulary_token_ids_are_refused(tmp_path):
    write_shard(tmp_path / "a.bin", [1, 2, 2047])
    check_vocab(tmp_path / "a.bin", 2048)
    write_shard(tmp_path / "b.bin", [1, 2048, 3])
    with pytest.raises(OptbenchError, match=r"holds token id 2048, outside the model's 2048-id vocabulary"):
        check_vocab(tmp_path / "b.bin", 2048)


# ------------------------------------------------------------------ checkpoints


def _save(d, payload=None):
    return ckpt.save_checkpoint(d, 0, payload or {"step": 5, "w": torch.arange(4.0)})


def test_checkpoint_round_trip_with_checksum(tmp_path):
    f = _save(tmp_path / "c")
    assert f.with_suffix(".sha256").read_text().strip() == hashlib.sha256(f.read_bytes()).hexdigest()
    assert torch.equal(ckpt.load_checkpoint(tmp_path / "c", 0)["w"], torch.arange(4.0))


def test_zero_byte_checkpoint_has_a_message(tmp_path):
    f = _save(tmp_path / "c")
    f.write_bytes(b"")
    with pytest.raises(OptbenchError, match=r"rank0.pt is empty \(0 bytes\)"):
        ckpt.load_checkpoint(tmp_path / "c", 0)


def test_a_checkpoint_that_would_load_but_is_wrong_is_refused(tmp_path):
    f = _save(tmp_path / "c")
    other = tmp_path / "other"
    ckpt.save_checkpoint(other, 0, {"step": 5, "w": torch.arange(4.0) + 1})  # a valid file, different state
    f.write_bytes((other / "rank0.pt").read_bytes())
    with pytest.raises(OptbenchError, match="does not match its checksum"):
        ckpt.load_checkpoint(tmp_path / "c", 0)


def test_truncated_checkpoint_without_checksum_names_the_error(tmp_path):
    f = _save(tmp_path / "c")
    f.with_suffix(".sha256").unlink()
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(OptbenchError, match=r"cannot load .*rank0.pt: \w+"):
        ckpt.load_checkpoint(tmp_path / "c", 0)


def test_prune_keeps_the_latest_n(tmp_path):
    for step in (10, 20, 30):
        d = ckpt.checkpoint_dir(tmp_path, 0, step)
        _save(d, {"step": step})
        ckpt.mark_complete(d)
    ckpt.checkpoint_dir(tmp_path, 0, 5).mkdir(parents=True)  # an incomplete leftover
    ckpt.prune(tmp_path, 0, 2)
    assert [ckpt.checkpoint_step(d) for d in sorted((tmp_path / "checkpoints" / "seed0").iterdir())] == [20, 30]
    ckpt.prune(tmp_path, 0, 0)
    assert list((tmp_path / "checkpoints" / "seed0").iterdir()) == []


# ------------------------------------------------------------------ run folder bookkeeping


def test_resume_refuses_a_finished_or_diverged_run(tmp_path):
    check_resumable(tmp_path)  # no results.json yet: resumable
    (tmp_path / "results.json").write_text(json.dumps({"runs": [{"diverged": True}]}))
    with pytest.raises(OptbenchError, match="already diverged"):
        check_resumable(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"runs": [{"diverged": False}]}))
    with pytest.raises(OptbenchError, match="already finished"):
        check_resumable(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"runs": [], "interrupted": True}))
    check_resumable(tmp_path)
    (tmp_path / "results.json").write_bytes(b"\xff\xfe")
    with pytest.raises(OptbenchError, match="not valid JSON"):
        check_resumable(tmp_path)


def test_forget_after_drops_what_a_resume_redoes(tmp_path):
    log = RunLog(tmp_path, "code", "version")
    for r in [dict(event="eval", seed=0, step=0), dict(event="train", seed=0, step=10),
              dict(event="eval", seed=0, step=10), dict(event="train", seed=0, step=20),
              dict(event="diverged", seed=0, step=21), dict(event="eval", seed=1, step=10),
              dict(event="resume", seed=0, step=0)]:
        log.metric(**r)
    with open(log.jsonl_path, "a") as f:
        f.write('{"event": "tr')  # a line cut short by kill -9
    log.forget_after(0, 10)
    kept = [json.loads(x) for x in log.jsonl_path.read_text().splitlines()]
    assert kept == [dict(event="eval", seed=0, step=0), dict(event="train", seed=0, step=10),
                    dict(event="eval", seed=1, step=10), dict(event="resume", seed=0, step=0)]


def test_run_wall_adds_up_across_resumes(tmp_path):
    w = RunWall(tmp_path, True, resume=False)
    w.before = 12.5
    w.save()
    again = RunWall(tmp_path, True, resume=True)
    assert 12.5 <= again.total() < 20
    assert RunWall(tmp_path, True, resume=False).total() < 5
    (tmp_path / RunWall.FILE).write_text('{"wallclock_s": NaN}')
    assert RunWall(tmp_path, True, resume=True).before == 0.0


def test_login_name_is_the_default_agent_id(monkeypatch):
    from optbench.workspace.identity import resolve_agent_id

    monkeypatch.delenv("OPTBENCH_AGENT_ID", raising=False)
    monkeypatch.delenv("AGENT_ID", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "jo.doe")
    assert resolve_agent_id(None) == "jo.doe"
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "agent-01")
    assert resolve_agent_id(None) == "agent-01"


def test_vocab_scan_reads_all_tokens(tmp_path):
    toks = np.zeros(100_000, dtype=np.int64)
    toks[-1] = 9000
    write_shard(tmp_path / "s.bin", toks)
    with pytest.raises(OptbenchError, match="token id 9000"):
        check_vocab(tmp_path / "s.bin", 8192)


def test_a_binary_recipe_file_is_an_error_not_a_traceback(tmp_path):
    f = tmp_path / "bin.toml"
    f.write_bytes(bytes(range(256)))
    with pytest.raises(OptbenchError, match=r"recipe .*bin.toml: not a UTF-8 text file \(byte 128\)"):
        load_recipe(str(f))


def test_an_interrupted_record_never_ranks_even_if_its_curve_passed():
    from optbench.results.eligibility import marker_refusal, may_rank
    from optbench.results.judging import judge_record
    from optbench.results.schema import parse_results

    good = {"agent_id": "a", "experiment": "e", "optimizer": "muon", "target": 3.28, "steps_to_3_28": 3000,
            "final_val_loss": 3.2, "rule": "workspace", "runs": [
                {"seed": 0, "final_val_loss": 3.2, "curve": [{"step": 0, "val_loss": 10.8},
                                                             {"step": 3000, "val_loss": 3.2}]}]}
    res = parse_results(good)
    assert may_rank(res, judge_record(res, "workspace")) and marker_refusal(res, rule="workspace") is None
    stopped = parse_results({**good, "interrupted": True})
    assert not may_rank(stopped, judge_record(stopped, "workspace"))
    assert "interrupted" in marker_refusal(stopped, rule="workspace")
