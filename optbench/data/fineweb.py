"""Download the benchmark's FineWeb shards (GPT-2 tokens) from the Hugging Face dataset kjj0/fineweb10B-gpt2.

Same files and names as upstream data/cached_fineweb10B.py: the val shard fineweb_val_000000.bin plus train shards
fineweb_train_000001.bin ... (each 10^8 tokens, about 200 MB; 20 shards suffice for 3,800 steps). Every file is
validated after download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from optbench.data.shards import read_token_count
from optbench.errors import OptbenchError

REPO_ID = "kjj0/fineweb10B-gpt2"
MAX_TRAIN_SHARDS = 103


def shard_names(train_shards: int) -> list[str]:
    if not 1 <= train_shards <= MAX_TRAIN_SHARDS:
        raise OptbenchError(f"--train-shards: {train_shards} is out of range (1..{MAX_TRAIN_SHARDS})")
    return ["fineweb_val_000000.bin"] + [f"fineweb_train_{i:06d}.bin" for i in range(1, train_shards + 1)]


def download_fineweb(train_shards: int, out_dir: str | Path, *, progress: Callable[[str], None] = print,
                     downloader: Callable | None = None) -> list[Path]:
    """Fetch the val shard and train shards 1..N into out_dir (skipping valid files already there)."""
    if downloader is None:
        from huggingface_hub import hf_hub_download as downloader
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in shard_names(train_shards):
        path = out / name
        if path.is_file():
            try:
                read_token_count(path)
                paths.append(path)
                continue
            except OptbenchError:
                path.unlink()  # a partial or corrupt earlier download
        progress(f"downloading {name} from {REPO_ID}")
        try:
            got = downloader(repo_id=REPO_ID, filename=name, repo_type="dataset", local_dir=str(out))
        except Exception as e:  # network, auth or hub errors: one clear line
            raise OptbenchError(f"download of {name} from {REPO_ID} failed: {type(e).__name__}: {e}") from None
        read_token_count(got)
        paths.append(Path(got))
    return paths
