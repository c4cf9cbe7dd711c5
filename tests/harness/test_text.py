"""Text -> shards: GPT-2 BPE with <|endoftext|> before each document, jsonl, reduced vocabularies, errors."""

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest

from optbench.data.shards import load_shard
from optbench.data.text import text_to_shards
from optbench.data.tokenizer import EOT, gpt2_encoding
from optbench.data.vocab import ReducedVocab
from optbench.errors import OptbenchError


def test_gpt2_encoding_is_the_real_bpe():
    assert gpt2_encoding().encode("Hello world") == [15496, 995]


def test_documents_prefixed_with_eot_and_first_tokens_are_val(tmp_path):
    (tmp_path / "a.txt").write_text("Hello world")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write("Hello")
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "world"}) + "\n\n" + json.dumps({"text": "Hello"}) + "\n")
    meta = text_to_shards([tmp_path], tmp_path / "out", val_tokens=3)
    val = load_shard(tmp_path / "out" / "fineweb_val_000000.bin").tolist()
    train = load_shard(tmp_path / "out" / "fineweb_train_000001.bin").tolist()
    assert val + train == [EOT, 15496, 995, EOT, 15496, EOT, 6894, EOT, 15496]  # "world" without a space is 6894
    assert val == [EOT, 15496, 995] and meta["train_tokens"] == 6 and meta["vocab_size"] == 50257


def test_shard_size_and_explicit_val_files(tmp_path):
    (tmp_path / "t.txt").write_text("one two three four five six seven eight nine ten")
    (tmp_path / "v.txt").write_text("Hello world")
    text_to_shards([tmp_path / "t.txt"], tmp_path / "o", val_paths=[tmp_path / "v.txt"], shard_tokens=4)
    names = sorted(p.name for p in (tmp_path / "o").glob("*.bin"))
    assert names == ["fineweb_train_000001.bin", "fineweb_train_000002.bin", "fineweb_train_000003.bin",
                     "fineweb_val_000000.bin"]
    assert load_shard(tmp_path / "o" / "fineweb_val_000000.bin").tolist() == [EOT, 15496, 995]


def test_reduced_vocab_keeps_most_frequent_and_maps_rest_to_unk(tmp_path):
    (tmp_path / "t.txt").write_text("the the the cat cat dog")
    meta = text_to_shards([tmp_path / "t.txt"], tmp_path / "o", val_paths=[tmp_path / "t.txt"], vocab_size=4)
    v = ReducedVocab.load(tmp_path / "o" / "vocab.json")
    enc = gpt2_encoding()
    the, cat = enc.encode("the")[0], enc.encode(" the")[0]
    assert v.size == 4 and v.eot == 2 and v.unk == 3
    assert v.gpt2_ids[0] == cat  # " the" appears twice, "the" once ... " the" is the most frequent
    toks = load_shard(tmp_path / "o" / "fineweb_train_000001.bin").tolist()
    assert toks[0] == v.eot and 3 in toks and max(toks) == 3
    assert meta["reduced_vocab"] and meta["unk_fraction_train"] > 0
    assert the in v.gpt2_ids or v.lookup_table()[the] == v.unk


def test_bad_inputs(tmp_path):
    with pytest.raises(OptbenchError, match="no such file"):
        text_to_shards([tmp_path / "nope.txt"], tmp_path / "o")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"oops": 1}\n')
    with pytest.raises(OptbenchError, match=r"bad\.jsonl:2: not a JSON object"):
        text_to_shards([tmp_path / "bad.jsonl"], tmp_path / "o")
    assert not (tmp_path / "o").exists()
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("x")
    (tmp_path / "t.txt").write_text("Hello world again")
    with pytest.raises(OptbenchError, match="exists and is not empty"):
        text_to_shards([tmp_path / "t.txt"], tmp_path / "o")


@pytest.mark.slow
def test_cli_with_shared_bpe_file(tmp_path, shared_dir):
    bpe = shared_dir / "data" / "gpt2" / "gpt2.tiktoken"
    src = shared_dir / "data" / "sotu" / "texts"
    files = sorted(src.glob("17*.txt"))[:3]
    r = subprocess.run([sys.executable, "-m", "optbench", "data", "text", *map(str, files), "--out",
                        str(tmp_path / "o"), "--bpe", str(bpe), "--vocab-size", "512"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "o" / "meta.json").read_text())
    assert meta["vocab_size"] == 512 and meta["train_tokens"] > 1000
    toks = load_shard(tmp_path / "o" / "fineweb_train_000001.bin").numpy()
    assert toks.max() < 512 and np.count_nonzero(toks == 510) == 2  # EOT before each of the 2 train documents
    r = subprocess.run([sys.executable, "-m", "optbench", "data", "text", str(files[0]), "--out",
                        str(tmp_path / "o2"), "--bpe", str(files[0])], capture_output=True, text=True)
    assert r.returncode == 2 and "not the GPT-2 rank file" in r.stderr
