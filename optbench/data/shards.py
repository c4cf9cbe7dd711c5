"""The upstream shard format: 256 x int32 header (magic 20240520, version 1, token count), then uint16 tokens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


def write_shard(path: str | os.PathLike, tokens: np.ndarray | list[int]) -> Path:
    """Write tokens (all < 65536) as one shard, atomically."""
    toks = np.asarray(tokens)
    if toks.size and (toks.min() < 0 or toks.max() >= 2**16):
        raise OptbenchError(f"{path}: tokens must be in [0, 65535] to fit uint16")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[0], header[1], header[2] = MAGIC, VERSION, toks.size
    data = toks.astype("<u2", copy=False)
    return atomic_write(path, lambda f: (f.write(header.astype("<i4").tobytes()), f.write(data.tobytes())), "wb")


def read_token_count(path: str | os.PathLike) -> int:
    """Validate a shard's header and size; return its token count. OptbenchError names the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise OptbenchError(f"{path}: shard file not found") from None
    if size < HEADER_BYTES:
        raise OptbenchError(f"{path}: truncated shard ({size} bytes, header alone is {HEADER_BYTES})")
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header[0] != MAGIC:
        raise OptbenchError(f"{path}: wrong magic number {int(header[0])} (expected {MAGIC}); not a token shard")
    if header[1] != VERSION:
        raise OptbenchError(f"{path}: unsupported shard version {int(header[1])} (expected {VERSION})")
    n = int(header[2])
    expected = HEADER_BYTES + 2 * n
    if size != expected:
        raise OptbenchError(
            f"{path}: corrupt shard: header says {n} tokens ({expected} bytes) but the file has {size} bytes"
        )
    return n


def load_shard(path: str | os.PathLike) -> torch.Tensor:
    """All tokens of a validated shard as a uint16 tensor."""
    n = read_token_count(path)
    arr = np.fromfile(path, dtype="<u2", count=n, offset=HEADER_BYTES)
    return torch.from_numpy(arr.astype(np.uint16, copy=False))


def list_shards(data_dir: str | os.PathLike, split: str) -> list[Path]:
    """Upstream names, sorted: fineweb_train_*.bin or fineweb_val_*.bin in data_dir."""
    d = Path(data_dir)
    if not d.is_dir():
        raise OptbenchError(f"--data: {d} is not a directory")
    files = sorted(d.glob(f"fineweb_{split}_*.bin"))
    if not files:
        raise OptbenchError(f"--data: no fineweb_{split}_*.bin shards in {d}")
    return files
