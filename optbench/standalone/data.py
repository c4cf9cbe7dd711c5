"""The benchmark's token stream: upstream .bin shards, the same global window per step for any world size.

A shard is 256 little-endian int32 (magic 20240520, version 1, token count) followed by uint16 tokens. The global
batch of B tokens for a step is the contiguous slice [pos, pos + B + 1) of the current shard; rank r takes the
sub-slice [pos + r*B/ws, pos + (r+1)*B/ws + 1). A shard is abandoned when pos + B + 1 >= len(shard) (so a
10^8-token shard gives 190 steps of 524,288 tokens). Shards are read in name order, never shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class DataError(ValueError):
    """A shard or a stream that cannot serve the run; the message names the file or the numbers."""


def shard_token_count(file) -> int:
    """Validate a shard's header and size; return its token count."""
    file = Path(file)
    try:
        size = file.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{file}: shard file not found") from None
    if size < HEADER_BYTES:
        raise DataError(f"{file}: truncated shard ({size} bytes, header alone is {HEADER_BYTES})")
    header = np.fromfile(file, dtype="<i4", count=HEADER_INTS)
    if header[0] != MAGIC:
        raise DataError(f"{file}: wrong magic number {int(header[0])} (expected {MAGIC}); not a token shard")
    if header[1] != VERSION:
        raise DataError(f"{file}: unsupported shard version {int(header[1])} (expected {VERSION})")
    n = int(header[2])
    expected = HEADER_BYTES + 2 * n
    if size != expected:
        raise DataError(f"{file}: corrupt shard: header says {n} tokens ({expected} bytes) but the file has "
                        f"{size} bytes")
    return n


def read_shard(file) -> torch.Tensor:
    """All tokens of a validated shard as a uint16 tensor."""
    n = shard_token_count(file)
    return torch.from_numpy(np.fromfile(file, dtype="<u2", count=n, offset=HEADER_BYTES).astype(np.uint16, copy=False))


@dataclass
class StreamPosition:
    """Where the stream is: index of the current shard and the token offset in it (checkpointable)."""

    shard: int = 0
    pos: int = 0


class TokenStream:
    """Yields (inputs, targets) int64 tensors of shape (B/ws/seq_len, seq_len) for this rank."""

    def __init__(self, files: list[Path], batch_tokens: int, seq_len: int, rank: int = 0, world_size: int = 1,
                 position: StreamPosition | None = None):
        if batch_tokens % world_size or (batch_tokens // world_size) % seq_len:
            raise DataError(f"world size {world_size}: batch of {batch_tokens} tokens does not split into rows "
                            f"of {seq_len}")
        self.files, self.B, self.T = list(files), batch_tokens, seq_len
        self.rank, self.ws = rank, world_size
        self.position = position or StreamPosition()
        self._tokens: torch.Tensor | None = None
        self._loaded = -1

    def _shard(self, i: int) -> torch.Tensor:
        if i >= len(self.files):
            raise DataError(f"ran out of training data: all {len(self.files)} train shards used up "
                            f"(download or build more shards)")
        if self._loaded != i:
            self._tokens, self._loaded = read_shard(self.files[i]), i
            if len(self._tokens) < self.B + 2:
                raise DataError(f"{self.files[i]}: shard has {len(self._tokens)} tokens, fewer than one batch "
                                f"({self.B} + 1)")
        return self._tokens

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.position
        tokens = self._shard(p.shard)
        if p.pos + self.B + 1 >= len(tokens):
            p.shard, p.pos = p.shard + 1, 0
            tokens = self._shard(p.shard)
        local = self.B // self.ws
        buf = tokens[p.pos + self.rank * local:][: local + 1].to(torch.int64)
        p.pos += self.B
        return buf[:-1].view(-1, self.T), buf[1:].view(-1, self.T)

    def state_dict(self) -> dict:
        return {"shard": self.position.shard, "pos": self.position.pos}

    def load_state_dict(self, state: dict) -> None:
        self.position = StreamPosition(int(state["shard"]), int(state["pos"]))


def load_val(files: list[Path], val_tokens: int, seq_len: int, rank: int = 0, world_size: int = 1):
    """This rank's share of the first val_tokens tokens of the first val shard, as (inputs, targets)."""
    tokens = read_shard(files[0])
    if len(tokens) < val_tokens + 1:
        raise DataError(f"{files[0]}: val shard has {len(tokens)} tokens; the track needs {val_tokens} + 1")
    local = val_tokens // world_size
    buf = tokens[rank * local:][: local + 1].to(torch.int64)
    return buf[:-1].view(-1, seq_len), buf[1:].view(-1, seq_len)
