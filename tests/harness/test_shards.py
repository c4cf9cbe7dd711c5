"""The upstream shard format: round trip, and clear errors that name the file."""

import numpy as np
import pytest

from optbench.data.shards import HEADER_BYTES, MAGIC, list_shards, load_shard, read_token_count, write_shard
from optbench.errors import OptbenchError


def test_round_trip_and_header_layout(tmp_path):
    toks = np.array([50256, 1, 2, 65535, 0], dtype=np.uint16)
    p = write_shard(tmp_path / "fineweb_val_000000.bin", toks)
    raw = p.read_bytes()
    assert len(raw) == HEADER_BYTES + 2 * len(toks)
    header = np.frombuffer(raw[:HEADER_BYTES], dtype="<i4")
    assert header[0] == MAGIC and header[1] == 1 and header[2] == 5 and not header[3:].any()
    assert read_token_count(p) == 5
    assert load_shard(p).numpy().tolist() == toks.tolist()


def test_truncated_shard_names_file(tmp_path):
    p = write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(100))
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(OptbenchError, match=r"fineweb_train_000001\.bin: corrupt shard: header says 100 tokens"):
        load_shard(p)
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(OptbenchError, match=r"fineweb_train_000001\.bin: truncated shard"):
        read_token_count(p)


def test_wrong_magic_and_version(tmp_path):
    p = write_shard(tmp_path / "a.bin", np.arange(10))
    raw = bytearray(p.read_bytes())
    raw[0:4] = np.int32(12345).tobytes()
    p.write_bytes(bytes(raw))
    with pytest.raises(OptbenchError, match=r"a\.bin: wrong magic number 12345"):
        read_token_count(p)
    raw[0:4] = np.int32(MAGIC).tobytes()
    raw[4:8] = np.int32(7).tobytes()
    p.write_bytes(bytes(raw))
    with pytest.raises(OptbenchError, match=r"a\.bin: unsupported shard version 7"):
        read_token_count(p)


def test_out_of_range_tokens_and_missing(tmp_path):
    with pytest.raises(OptbenchError, match="uint16"):
        write_shard(tmp_path / "x.bin", [70000])
    assert not (tmp_path / "x.bin").exists()
    with pytest.raises(OptbenchError, match="not found"):
        read_token_count(tmp_path / "missing.bin")
    with pytest.raises(OptbenchError, match="no fineweb_train_"):
        list_shards(tmp_path, "train")
