"""Text or jsonl files -> upstream-format shards with the GPT-2 BPE, each document prefixed by <|endoftext|>.

A .txt (or .txt.gz) file is one document; each line of a .jsonl (or .jsonl.gz) file is one document (its "text"
field). Output: fineweb_val_000000.bin, fineweb_train_000001.bin, ... plus meta.json (and vocab.json when a
reduced vocabulary is asked for). The output folder appears whole or not at all.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from optbench.data.shards import write_shard
from optbench.data.tokenizer import EOT, GPT2_VOCAB, gpt2_encoding
from optbench.data.vocab import ReducedVocab
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text

TEXT_SUFFIXES = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".md")


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(TEXT_SUFFIXES)))
        elif p.is_file():
            out.append(p)
        else:
            raise OptbenchError(f"input {p}: no such file or directory")
    if not out:
        raise OptbenchError("no input text files (expected .txt, .txt.gz, .jsonl, .jsonl.gz or .md)")
    return out


def read_documents(paths: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Yield documents from text and jsonl files (and folders of them), in sorted path order."""
    for path in _expand(paths):
        opener = gzip.open if path.name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                if ".jsonl" in path.name:
                    for lineno, line in enumerate(f, 1):
                        if not line.strip():
                            continue
                        try:
                            yield json.loads(line)["text"]
                        except (ValueError, KeyError, TypeError):
                            raise OptbenchError(f"{path}:{lineno}: not a JSON object with a \"text\" field") from None
                else:
                    yield f.read()
        except UnicodeDecodeError as e:
            raise OptbenchError(f"{path}: not UTF-8 text ({e})") from None


def tokenize_documents(docs: Iterable[str], bpe: str | os.PathLike | None = None) -> np.ndarray:
    """GPT-2 tokens of all documents, each prefixed by EOT, concatenated (uint16)."""
    enc = gpt2_encoding(bpe)
    parts = []
    docs = list(docs)
    for toks in enc.encode_ordinary_batch(docs, num_threads=2):
        parts.append(np.asarray([EOT] + toks, dtype=np.uint16))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


BLOCK_SHUFFLE_SEED = 0


def shuffle_blocks(tokens: np.ndarray, block: int, seed: int = BLOCK_SHUFFLE_SEED) -> np.ndarray:
    """The stream cut into `block`-token blocks in a fixed pseudo-random order (numpy's PCG64 at `seed`); a last
    partial block stays at the end. A stream of concatenated books becomes one whose every stretch of a few blocks
    mixes all of them, as a web crawl does."""
    if block < 1:
        raise OptbenchError(f"block shuffle: the block must be at least 1 token, got {block}")
    n = len(tokens) // block * block
    order = np.random.default_rng(seed).permutation(n // block)
    return np.concatenate([tokens[:n].reshape(-1, block)[order].ravel(), tokens[n:]])


def text_to_shards(
    train_paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    val_paths: Iterable[str | os.PathLike] | None = None,
    val_tokens: int | None = None,
    bpe: str | os.PathLike | None = None,
    vocab_size: int | None = None,
    shard_tokens: int = 10**8,
    block_shuffle: int | None = None,
) -> dict:
    """Tokenize and write shards. Without val_paths the first val_tokens tokens of the stream become the val shard
    (upstream: shard 0 is val); the default is 10% of the stream. With `block_shuffle` B the train stream is cut
    into B-token blocks put in a fixed pseudo-random order (`shuffle_blocks`). Returns the meta dict written to
    meta.json."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise OptbenchError(f"--out: {out} exists and is not empty; choose a new folder")
    if shard_tokens < 2:
        raise OptbenchError(f"--shard-tokens: {shard_tokens} is too small")
    train_paths = list(train_paths)
    train = tokenize_documents(read_documents(train_paths), bpe)
    if val_paths:
        val_paths = list(val_paths)
        val = tokenize_documents(read_documents(val_paths), bpe)
    else:
        n_val = val_tokens if val_tokens is not None else len(train) // 10
        if not 0 < n_val < len(train):
            raise OptbenchError(f"--val-tokens: {n_val} must be between 1 and the stream length {len(train) - 1}")
        val, train = train[:n_val], train[n_val:]
    meta = {"format": "fineweb-bin-v1", "tokenizer": "gpt2", "vocab_size": GPT2_VOCAB, "reduced_vocab": False,
            "train_tokens": int(len(train)), "val_tokens": int(len(val)), "shard_tokens": shard_tokens,
            "train_sources": [str(p) for p in train_paths], "val_sources": [str(p) for p in (val_paths or [])]}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent if out.parent.exists() else None))
    try:
        if vocab_size:
            vocab = ReducedVocab.from_counts(np.bincount(train, minlength=GPT2_VOCAB), vocab_size)
            table = vocab.lookup_table()
            train, val = table[train], table[val]
            vocab.save(tmp / "vocab.json")
            unk_frac = float((train == vocab.unk).mean()) if len(train) else 0.0
            meta.update(vocab_size=vocab.size, reduced_vocab=True, unk_fraction_train=round(unk_frac, 6))
        if block_shuffle:
            train = shuffle_blocks(train, block_shuffle)
            meta.update(block_shuffle=block_shuffle, block_shuffle_seed=BLOCK_SHUFFLE_SEED)
        for i in range(0, max(len(val), 1), shard_tokens):
            write_shard(tmp / f"fineweb_val_{i // shard_tokens:06d}.bin", val[i:i + shard_tokens])
        for j, i in enumerate(range(0, len(train), shard_tokens)):
            write_shard(tmp / f"fineweb_train_{j + 1:06d}.bin", train[i:i + shard_tokens])
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2) + "\n")
        os.chmod(tmp, 0o755)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta
