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


def test_block_shuffle_permutes_whole_blocks_in_a_fixed_order():
    from optbench.data.text import shuffle_blocks

    tokens = np.arange(10)
    out = shuffle_blocks(tokens, 3)  # blocks [0 1 2] [3 4 5] [6 7 8], then the partial [9] stays last
    order = np.random.default_rng(0).permutation(3)
    assert out.tolist() == np.concatenate([tokens[:9].reshape(3, 3)[order].ravel(), [9]]).tolist()
    assert sorted(out.tolist()) == list(range(10)) and out[-1] == 9
    assert np.array_equal(shuffle_blocks(tokens, 3), out)  # fixed seed: the same every build
    assert not np.array_equal(shuffle_blocks(np.arange(4000), 100), np.arange(4000))
    with pytest.raises(OptbenchError, match="at least 1 token"):
        shuffle_blocks(tokens, 0)


def test_shards_with_block_shuffle_hold_the_same_tokens_and_say_so(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("one two three four five six seven eight nine ten. " * 40)
    plain = text_to_shards([src], tmp_path / "plain", val_tokens=10, shard_tokens=10**6)
    mixed = text_to_shards([src], tmp_path / "mixed", val_tokens=10, shard_tokens=10**6, block_shuffle=16)
    a = load_shard(tmp_path / "plain" / "fineweb_train_000001.bin")
    b = load_shard(tmp_path / "mixed" / "fineweb_train_000001.bin")
    assert sorted(a.tolist()) == sorted(b.tolist()) and a.tolist() != b.tolist()
    assert mixed["block_shuffle"] == 16 and "block_shuffle" not in plain
    assert np.array_equal(load_shard(tmp_path / "plain" / "fineweb_val_000000.bin"),
                          load_shard(tmp_path / "mixed" / "fineweb_val_000000.bin"))  # val is never shuffled


def test_an_unknown_bundled_corpus_is_a_one_line_error():
    from optbench.data.corpus import default_data_dir

    with pytest.raises(OptbenchError, match="not bundled"):
        default_data_dir(768, "books20c")
