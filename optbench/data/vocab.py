"""Reduced vocabularies for the CPU tracks: the K-2 most frequent GPT-2 tokens, plus <|endoftext|> and <unk>.

Why: at CPU scale the 50,304-row embedding and LM head dominate the compute of a small model (a 4 x 128 model is
~5x slower with the full vocabulary). Text is still tokenized with the real GPT-2 BPE; ids are then remapped:
reduced id i < K-2 is the i-th most frequent GPT-2 token of the training text (ties by id), K-2 is
<|endoftext|> and K-1 is <unk> for every other token.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optbench.data.tokenizer import EOT, GPT2_VOCAB
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text


@dataclass(frozen=True)
class ReducedVocab:
    gpt2_ids: tuple[int, ...]  # the kept GPT-2 ids, most frequent first

    @property
    def size(self) -> int:
        return len(self.gpt2_ids) + 2

    @property
    def eot(self) -> int:
        return self.size - 2

    @property
    def unk(self) -> int:
        return self.size - 1

    @classmethod
    def from_counts(cls, counts: np.ndarray, size: int) -> "ReducedVocab":
        if not 3 <= size <= GPT2_VOCAB + 1:
            raise OptbenchError(f"--vocab-size: {size} is out of range (3..{GPT2_VOCAB + 1})")
        counts = counts.astype(np.int64).copy()
        counts[EOT] = -1  # EOT has its own slot
        order = np.lexsort((np.arange(len(counts)), -counts))  # by count desc, then id
        kept = [int(i) for i in order if i != EOT][: size - 2]
        return cls(tuple(kept))

    def lookup_table(self) -> np.ndarray:
        """GPT-2 id -> reduced id, as a uint16 array of length 50257."""
        table = np.full(GPT2_VOCAB, self.unk, dtype=np.uint16)
        table[list(self.gpt2_ids)] = np.arange(len(self.gpt2_ids), dtype=np.uint16)
        table[EOT] = self.eot
        return table

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps({"base": "gpt2", "size": self.size, "eot": self.eot, "unk": self.unk,
                                            "gpt2_ids": list(self.gpt2_ids)}))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReducedVocab":
        try:
            d = json.loads(Path(path).read_text())
            return cls(tuple(int(i) for i in d["gpt2_ids"]))
        except (OSError, ValueError, KeyError) as e:
            raise OptbenchError(f"{path}: not a reduced-vocabulary file ({e})") from None
