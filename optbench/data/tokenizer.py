"""The GPT-2 BPE through tiktoken, loaded from a local rank file (bundled) so no network is needed."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import tiktoken
import tiktoken.load

from optbench.errors import OptbenchError

EOT = 50256  # <|endoftext|>, the document separator (each document is prefixed by it, as upstream)
GPT2_VOCAB = 50257
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
BUNDLED_BPE = Path(__file__).resolve().parents[1] / "assets" / "gpt2.tiktoken"


@lru_cache(maxsize=4)
def gpt2_encoding(bpe_file: str | os.PathLike | None = None) -> tiktoken.Encoding:
    """GPT-2 encoding from a .tiktoken rank file (default: the bundled copy, checked against its sha256)."""
    path = Path(bpe_file) if bpe_file else BUNDLED_BPE
    if not path.is_file():
        raise OptbenchError(f"--bpe: {path} not found (a GPT-2 .tiktoken rank file is expected)")
    try:
        ranks = tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=GPT2_RANKS_SHA256)
    except ValueError as e:
        raise OptbenchError(f"--bpe: {path} is not the GPT-2 rank file ({e})") from None
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": EOT})
