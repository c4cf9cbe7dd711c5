"""optbench's token stream and val split: optbench.standalone.data's (the submission script's own), with its
DataError reported as OptbenchError. The window arithmetic is documented there."""

from __future__ import annotations

from optbench.errors import user_errors
from optbench.standalone import data
from optbench.standalone.data import DataError, StreamPosition

__all__ = ["TokenStream", "StreamPosition", "load_val"]


class TokenStream(data.TokenStream):
    """Yields (inputs, targets) int64 tensors of shape (B/ws/seq_len, seq_len) for this rank (checkpointable)."""

    def __init__(self, *args, **kwargs):
        with user_errors(DataError):
            super().__init__(*args, **kwargs)

    def next_batch(self):
        with user_errors(DataError):
            return super().next_batch()


def load_val(*args, **kwargs):
    """This rank's share of the first val_tokens tokens of the first val shard, as (inputs, targets)."""
    with user_errors(DataError):
        return data.load_val(*args, **kwargs)
