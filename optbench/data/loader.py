"""World-size-invariant token streams, as upstream: every step consumes the same global token window.

The global batch of B tokens for a step is the contiguous slice [pos, pos + B + 1) of the current shard; rank r
takes the sub-slice [pos + r*B/ws, pos + (r+1)*B/ws + 1). A shard is abandoned when pos + B + 1 >= len(shard)
(so a 10^8-token shard gives 190 steps of 524,288 tokens). Shards are read in name order, never shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from optbench.data.shards import load_shard
from optbench.errors import OptbenchError


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
            raise OptbenchError(
                f"world size {world_size}: batch of {batch_tokens} tokens does not split into rows of {seq_len}"
            )
        self.files, self.B, self.T = list(files), batch_tokens, seq_len
        self.rank, self.ws = rank, world_size
        self.position = position or StreamPosition()
        self._tokens: torch.Tensor | None = None
        self._loaded = -1

    def _shard(self, i: int) -> torch.Tensor:
        if i >= len(self.files):
            raise OptbenchError(
                f"ran out of training data: all {len(self.files)} train shards used up "
                f"(download or build more shards)"
            )
        if self._loaded != i:
            self._tokens, self._loaded = load_shard(self.files[i]), i
            if len(self._tokens) < self.B + 2:
                raise OptbenchError(
                    f"{self.files[i]}: shard has {len(self._tokens)} tokens, fewer than one batch ({self.B} + 1)"
                )
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
    tokens = load_shard(files[0])
    if len(tokens) < val_tokens + 1:
        raise OptbenchError(f"{files[0]}: val shard has {len(tokens)} tokens; the track needs {val_tokens} + 1")
    local = val_tokens // world_size
    buf = tokens[rank * local:][: local + 1].to(torch.int64)
    return buf[:-1].view(-1, seq_len), buf[1:].view(-1, seq_len)
