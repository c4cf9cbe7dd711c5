"""Fuzz every reader of outside input on the run side (issue 15 item 2): recipes (TOML), `--set` values, shards,
checkpoints and a run folder's run.json.

Property: a clear OptbenchError (exit 2 at the CLI) or a correct result, never another exception, and no file
written by a reader. Each test names its reader and sets max_examples; `python -m pytest
tests/fuzz/test_fuzz_run_inputs.py --hypothesis-show-statistics` prints the inputs tried per reader.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optbench import optim
from optbench.assignments import parse_value
from optbench.data.shards import HEADER_BYTES, MAGIC, VERSION, check_vocab, load_shard, read_token_count
from optbench.errors import OptbenchError
from optbench.optim.recipe import Recipe, apply_settings, load_recipe, parse_recipe
from optbench.train import checkpoint as ckpt
from optbench.train.config import RunConfig

pytestmark = pytest.mark.slow  # a minute of generated inputs: the full suite runs it, the fast lane does not


def fuzz(max_examples: int) -> settings:
    """An explicit number of inputs per reader, no per-input deadline (a shared machine)."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


def files_in(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


# ---- strategies ---------------------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 0.0, -0.0, 1, 1.0, 0.999999, 1e-300, 1e300]))
toml_scalars = st.one_of(st.booleans(), numbers, st.text(max_size=12))
plausible = st.one_of(st.floats(1e-6, 0.99), st.lists(st.floats(0.0, 0.99), min_size=2, max_size=3),
                      st.integers(1, 20), st.booleans())
toml_values = st.one_of(plausible, toml_scalars, st.lists(toml_scalars, max_size=4))
OPTIMIZERS = optim.names()
HPARAM_KEYS = sorted({k for n in OPTIMIZERS for k in optim.info(n).defaults()} | {"lr", "speed", ""})


@st.composite
def recipe_dicts(draw):
    """A recipe as data: mostly well-formed, with fuzzed optimizer, scope, hparams, aux, schedule and overrides."""
    opt = draw(st.one_of(st.sampled_from(OPTIMIZERS), st.sampled_from(OPTIMIZERS), st.text(max_size=8)))
    d = {"name": draw(st.text(min_size=1, max_size=10)), "optimizer": opt,
         "scope": draw(st.sampled_from(["matrices", "all", "matrices", "all", "some"])),
         "hparams": draw(st.dictionaries(st.sampled_from(HPARAM_KEYS), toml_values, max_size=4))}
    if d["scope"] != "all" or draw(st.booleans()):
        d["aux"] = {"optimizer": draw(st.sampled_from(["adamw", "adam", "lion", "nope"])),
                    **{k: draw(st.one_of(st.floats(1e-4, 1.0), st.floats(1e-4, 1.0), numbers))
                       for k in ("embed_lr", "head_lr", "scalar_lr")},
                    "hparams": draw(st.dictionaries(st.sampled_from(["betas", "eps", "weight_decay", "x"]),
                                                    toml_values, max_size=3))}
    for key in draw(st.lists(st.sampled_from(["train_steps", "warmup_steps", "cooldown_frac", "init"]),
                             max_size=3, unique=True)):
        d[key] = draw(toml_values)
    if draw(st.booleans()):
        d["overrides"] = [{"match": "mlp", "hparams": draw(st.dictionaries(st.sampled_from(HPARAM_KEYS), toml_values,
                                                                             max_size=2))}]
    return d


def _check_recipe(r: Recipe) -> None:
    """A recipe that was accepted is correct: every hparam in its declared range, and it round-trips."""
    info = optim.info(r.optimizer)
    for k, v in r.hparams.items():
        if k in info.ranges and v is not None:
            assert info.ranges[k].allows(v), (k, v)
    if r.train_steps is not None:
        assert r.train_steps > 0
    assert 0 <= r.cooldown_frac <= 1 and r.warmup_steps >= 0
    if r.aux is not None:
        assert all(math.isfinite(x) and x > 0 for x in (r.aux.embed_lr, r.aux.head_lr, r.aux.scalar_lr))
    assert Recipe.model_validate(r.model_dump()) == r


# ---- readers ------------------------------------------------------------------------------------------------------


@fuzz(400)
@given(recipe_dicts())
def test_reader_recipe_toml(data):
    """parse_recipe (a .toml recipe): OptbenchError or a recipe within every declared range."""
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):
        return  # not expressible in TOML
    try:
        r = parse_recipe(text, "fuzz.toml")
    except OptbenchError as e:
        event("refused: OptbenchError")
        assert str(e).startswith("recipe fuzz.toml: ") or "optimizer" in str(e)
        return
    event("accepted")
    _check_recipe(r)


@fuzz(200)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_reader_recipe_text(text):
    """parse_recipe on arbitrary text (not TOML, or TOML of any shape)."""
    try:
        r = parse_recipe(text, "fuzz.toml")
    except OptbenchError:
        event("refused: OptbenchError")
        return
    event("accepted")
    _check_recipe(r)


@fuzz(200)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_reader_recipe_file(data):
    """load_recipe on a .toml file of any bytes (`--recipe FILE`): OptbenchError or a recipe; nothing written."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "r.toml"
        f.write_bytes(data)
        try:
            r = load_recipe(str(f))
        except OptbenchError as e:
            event("refused: OptbenchError")
            assert str(e).startswith(f"recipe {f}") or "optimizer" in str(e)
        else:
            event("accepted")
            _check_recipe(r)
        assert files_in(Path(d)) == {"r.toml"}


SET_KEYS = ["lr", "momentum", "betas", "weight_decay", "eps", "train_steps", "warmup_steps", "cooldown_frac",
            "aux.embed_lr", "aux.head_lr", "aux.optimizer", "aux.betas", "aux.eps", "ns_steps", "nesterov", "", " ",
            "aux.", "x", "name"]
BASE = {n: load_recipe(n) for n in ("nano-adamw", "nano-muon")}


SET_VALUES = st.one_of(st.text(max_size=16), st.sampled_from(["0.01", "0.9", "[0.9, 0.95]", "true", "5", "1e-8", "0",
                                                            "-1", "nan", "inf", "adamw", '"x"', "1.5"]))


@fuzz(400)
@given(st.sampled_from(sorted(BASE)), st.lists(st.tuples(st.sampled_from(SET_KEYS), SET_VALUES), min_size=1,
                                               max_size=3))
def test_reader_set_values(base, pairs):
    """apply_settings (`--set KEY=VALUE`): OptbenchError or a recipe in range holding exactly the values set."""
    settings_ = [f"{k}={v}" for k, v in pairs]
    try:
        r, text = apply_settings(BASE[base], settings_)
    except OptbenchError as e:
        event("refused: OptbenchError")
        assert str(e).startswith("--set") or "optimizer" in str(e)
        return
    event("accepted")
    _check_recipe(r)
    k, v = pairs[-1][0].strip(), parse_value(pairs[-1][1].strip())
    got = (getattr(r, k) if k in ("train_steps", "warmup_steps", "cooldown_frac") else
           getattr(r.aux, k[4:]) if k in ("aux.embed_lr", "aux.head_lr", "aux.optimizer") else
           r.aux.hparams[k[4:]] if k.startswith("aux.") else r.hparams[k])
    assert got == v
    assert text.count("# --set ") == len(settings_)


@st.composite
def shard_bytes(draw):
    """A shard: a header (right or wrong magic, version, count) and a body of some length, or any bytes."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=1200))
    n = draw(st.integers(0, 300))
    header = np.zeros(256, dtype="<i4")
    header[0] = draw(st.sampled_from([MAGIC] * 6 + [0, 20240521, -1]))
    header[1] = draw(st.sampled_from([VERSION] * 6 + [2, 0]))
    header[2] = draw(st.sampled_from([n] * 8 + [n + 1, max(n - 1, 0), -5, 2**31 - 1]))
    body = np.array(draw(st.lists(st.integers(0, 65535), min_size=n, max_size=n)), dtype="<u2").tobytes()
    cut = draw(st.sampled_from([None] * 6 + [1, 3]))
    data = header.tobytes() + body
    return data[:-cut] if cut and len(data) > cut else data


@fuzz(300)
@given(shard_bytes(), st.sampled_from([2048, 8192, 50304]))
def test_reader_shards(data, vocab):
    """read_token_count, load_shard and check_vocab: OptbenchError, or the right count and tokens, and an
    out-of-vocabulary id is always refused."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "fineweb_train_000001.bin"
        f.write_bytes(data)
        try:
            n = read_token_count(f)
        except OptbenchError:
            event("refused: OptbenchError (header/size)")
            return
        assert len(data) == HEADER_BYTES + 2 * n
        toks = np.frombuffer(data[HEADER_BYTES:], dtype="<u2")
        assert load_shard(f).numpy().tolist() == toks.tolist()
        try:
            check_vocab(f, vocab)
        except OptbenchError as e:
            event("refused: OptbenchError (token id outside the vocabulary)")
            assert toks.size and int(toks.max()) >= vocab and "outside the model's" in str(e)
        else:
            event("accepted")
            assert not toks.size or int(toks.max()) < vocab
        assert files_in(Path(d)) == {f.name}


GOOD_STATE = {"step": 7, "model": {"w": torch.arange(6.0)}, "curve": [{"step": 0, "val_loss": 7.6}]}
_buf = io.BytesIO()
torch.save(GOOD_STATE, _buf)
GOOD_CKPT = _buf.getvalue()


@st.composite
def checkpoint_files(draw):
    """A checkpoint folder's rank0.pt (the real bytes cut, flipped, padded, replaced, or emptied) and whether its
    checksum file is there (as written with the good bytes)."""
    kind = draw(st.sampled_from(["good", "cut", "flip", "pad", "random", "empty", "other"]))
    data = GOOD_CKPT
    if kind == "cut":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif kind == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    elif kind == "pad":
        data = data + draw(st.binary(min_size=1, max_size=50))
    elif kind == "random":
        data = draw(st.binary(max_size=500))
    elif kind == "empty":
        data = b""
    elif kind == "other":  # a valid torch file with other content
        b = io.BytesIO()
        torch.save(draw(st.sampled_from([{"step": 8, "model": {}}, [1, 2], {"x": 1}])), b)
        data = b.getvalue()
    return data, draw(st.booleans())


@fuzz(150)
@given(checkpoint_files())
def test_reader_checkpoints(case):
    """load_checkpoint: OptbenchError, or the state; with its checksum file present, only the very bytes saved."""
    data, with_sum = case
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "rank0.pt"
        f.write_bytes(data)
        if with_sum:
            f.with_suffix(".sha256").write_text(hashlib.sha256(GOOD_CKPT).hexdigest() + "\n")
        before = files_in(Path(d))
        try:
            state = ckpt.load_checkpoint(Path(d), 0)
        except OptbenchError as e:
            event("refused: OptbenchError")
            assert str(e).startswith("--resume: ") and str(e).strip() != "--resume:"
            return
        finally:
            assert files_in(Path(d)) == before
        event("accepted")
        assert isinstance(state, dict) and "step" in state
        if with_sum:
            assert data == GOOD_CKPT and torch.equal(state["model"]["w"], GOOD_STATE["model"]["w"])


def _good_run_json() -> dict:
    from optbench.tracks import get_track

    r = load_recipe("nano-adamw")
    cfg = RunConfig(track=get_track("nano"), recipe=r, recipe_text="x", seeds=[0, 1], out_dir=Path("o"),
                    data_dir=Path("d"))
    return cfg.to_json()


GOOD_RUN = _good_run_json()
json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10))
json_values = st.recursive(json_scalars, lambda k: st.one_of(st.lists(k, max_size=3),
                                                             st.dictionaries(st.text(max_size=6), k, max_size=3)),
                           max_leaves=8)


@fuzz(300)
@given(st.lists(st.tuples(st.sampled_from(sorted(GOOD_RUN) + ["recipe.hparams.lr", "recipe.optimizer"]),
                          st.one_of(json_values, st.just(KeyError))), max_size=3),
       st.one_of(st.none(), st.binary(max_size=200)))
def test_reader_run_json(edits, raw):
    """RunConfig.load (the run.json `--resume` reads): OptbenchError or a config that writes the same JSON back."""
    data = copy.deepcopy(GOOD_RUN)
    for key, value in edits:
        path = key.split(".")  # "recipe.hparams.lr": a value inside the recipe
        parent = data
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if value is KeyError:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "run.json"
        try:
            f.write_bytes(raw if raw is not None else json.dumps(data).encode())
        except (TypeError, ValueError):
            return
        before = files_in(Path(d))
        try:
            cfg = RunConfig.load(d)
        except OptbenchError as e:
            event("refused: OptbenchError")
            assert str(e)
            return
        finally:
            assert files_in(Path(d)) == before
        event("accepted")
        again = cfg.to_json()
        assert again["seeds"] == cfg.seeds and again["track"] == cfg.track.name
        _check_recipe(cfg.recipe)
