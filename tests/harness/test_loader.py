"""World-size-invariant token windows and upstream shard transitions (190 steps per 10^8-token shard)."""

import numpy as np
import pytest
import torch

from optbench.data.loader import TokenStream, load_val
from optbench.data.shards import HEADER_BYTES, MAGIC, write_shard
from optbench.errors import OptbenchError


def _shards(tmp_path, sizes):
    rng = np.random.default_rng(0)
    files = []
    for i, n in enumerate(sizes):
        files.append(write_shard(tmp_path / f"fineweb_train_{i + 1:06d}.bin", rng.integers(0, 50257, n)))
    return files


@pytest.mark.parametrize("ws", [2, 4, 8])
def test_windows_identical_for_any_world_size(tmp_path, ws):
    files = _shards(tmp_path, [5000, 5000])
    B, T = 8 * 64, 64
    one = TokenStream(files, B, T)
    many = [TokenStream(files, B, T, rank=r, world_size=ws) for r in range(ws)]
    for _ in range(15):  # crosses the shard boundary (9 steps per 5000-token shard)
        x1, y1 = one.next_batch()
        parts = [s.next_batch() for s in many]
        assert torch.equal(torch.cat([p[0] for p in parts]), x1)
        assert torch.equal(torch.cat([p[1] for p in parts]), y1)
        assert torch.equal(x1.view(-1)[1:], y1.view(-1)[:-1])


def test_shard_abandoned_as_upstream(tmp_path):
    files = _shards(tmp_path, [1000, 1000])
    s = TokenStream(files, 100, 10)
    counts = []
    for _ in range(12):
        s.next_batch()
        counts.append(s.position.shard)
    # pos + B + 1 >= 1000 abandons the shard: pos 0..800 usable (9 steps), then shard 1
    assert counts == [0] * 9 + [1] * 3


def test_full_size_shard_gives_190_steps(tmp_path):
    # a sparse 10^8-token shard (real size on disk is tiny): the upstream arithmetic, 190 steps per shard
    for i in (1, 2):
        p = tmp_path / f"fineweb_train_{i:06d}.bin"
        header = np.zeros(256, dtype="<i4")
        header[:3] = [MAGIC, 1, 10**8]
        with open(p, "wb") as f:
            f.write(header.tobytes())
            f.truncate(HEADER_BYTES + 2 * 10**8)
    s = TokenStream(sorted(tmp_path.glob("*.bin")), 524288, 1024, rank=3, world_size=8)
    steps = 0
    while s.position.shard == 0:
        s.next_batch()
        steps += 1
    assert steps == 191 and s.position.pos == 524288  # the 191st batch came from the second shard


def test_runs_out_with_clear_error_and_resumes_from_state(tmp_path):
    files = _shards(tmp_path, [300])
    s = TokenStream(files, 100, 10)
    s.next_batch()
    state = s.state_dict()
    x_next = s.next_batch()[0]
    s2 = TokenStream(files, 100, 10)
    s2.load_state_dict(state)
    assert torch.equal(s2.next_batch()[0], x_next)
    with pytest.raises(OptbenchError, match="ran out of training data"):
        for _ in range(5):
            s.next_batch()


def test_val_is_the_first_tokens_split_across_ranks(tmp_path):
    f = write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(1000))
    x, y = load_val([f], 512, 64)
    assert x.shape == (8, 64) and x[0, 0] == 0 and y[-1, -1] == 512
    parts = [load_val([f], 512, 64, rank=r, world_size=4) for r in range(4)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    with pytest.raises(OptbenchError, match="val shard has 1000 tokens"):
        load_val([f], 1024, 64)


def test_bad_world_size_split(tmp_path):
    with pytest.raises(OptbenchError, match="does not split"):
        TokenStream(_shards(tmp_path, [500]), 100, 30)
