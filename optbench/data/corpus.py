"""The offline default corpus of the CPU tracks: `books19c-mini`, bundled in the package.

20 public-domain novels (train) and the openings of 5 held-out novels by other authors (val); see
optbench/assets/corpus/README.md. Shards are built once into a cache folder (OPTBENCH_CACHE, default
~/.cache/optbench) with the bundled GPT-2 BPE and the reduced vocabulary of the track. `books19c-mini` streams the
novels one after another; `books19c-mini-mixed` (the proxy track's) has the same tokens with the train stream in
fixed-order shuffled blocks of MIXED_BLOCK tokens, so that its distribution does not change along a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from optbench.data.text import text_to_shards
from optbench.errors import OptbenchError

CORPUS_DIR = Path(__file__).resolve().parents[1] / "assets" / "corpus"
CORPUS_NAME = "books19c-mini"
MIXED_NAME = "books19c-mini-mixed"
MIXED_BLOCK = 1024
SHARD_TOKENS = 1_000_000


def cache_root() -> Path:
    return Path(os.environ.get("OPTBENCH_CACHE", Path.home() / ".cache" / "optbench"))


def default_data_dir(vocab_size: int, corpus: str = CORPUS_NAME) -> Path:
    """The shard folder of the bundled corpus (`books19c-mini` or `books19c-mini-mixed`) at this vocabulary size,
    built on first use."""
    if corpus not in (CORPUS_NAME, MIXED_NAME):
        raise OptbenchError(f"corpus {corpus!r} is not bundled (bundled: {CORPUS_NAME}, {MIXED_NAME})")
    out = cache_root() / "data" / f"{corpus}-v{vocab_size}"
    if not (out / "meta.json").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            text_to_shards(sorted(CORPUS_DIR.glob("train_*.txt.gz")), out,
                           val_paths=sorted(CORPUS_DIR.glob("val_*.txt.gz")), vocab_size=vocab_size,
                           shard_tokens=SHARD_TOKENS, block_shuffle=MIXED_BLOCK if corpus == MIXED_NAME else None)
        except OSError:
            # another process (e.g. the other torchrun rank) finished the same build first
            if not (out / "meta.json").is_file():
                raise
    return out
