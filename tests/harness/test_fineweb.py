"""FineWeb download: the real huggingface_hub call cannot run here, so a fake downloader writes shards in the
same format and everything after the download is exercised."""

import numpy as np
import pytest

from optbench.data.fineweb import REPO_ID, download_fineweb, shard_names
from optbench.data.shards import write_shard
from optbench.errors import OptbenchError


def test_names_match_upstream():
    assert shard_names(2) == ["fineweb_val_000000.bin", "fineweb_train_000001.bin", "fineweb_train_000002.bin"]
    with pytest.raises(OptbenchError, match="--train-shards: 104"):
        shard_names(104)


def test_download_skips_valid_and_replaces_corrupt(tmp_path):
    calls = []

    def fake(repo_id, filename, repo_type, local_dir):
        assert repo_id == REPO_ID and repo_type == "dataset"
        calls.append(filename)
        return str(write_shard(f"{local_dir}/{filename}", np.arange(50)))

    write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(10))  # valid: kept
    (tmp_path / "fineweb_train_000001.bin").write_bytes(b"garbage")  # corrupt: fetched again
    paths = download_fineweb(2, tmp_path, downloader=fake, progress=lambda s: None)
    assert calls == ["fineweb_train_000001.bin", "fineweb_train_000002.bin"]
    assert [p.name for p in paths] == shard_names(2)


def test_download_errors_are_one_clear_line(tmp_path):
    def offline(**kw):
        raise ConnectionError("no network")

    with pytest.raises(OptbenchError, match="download of fineweb_val_000000.bin from kjj0/fineweb10B-gpt2 failed"):
        download_fineweb(1, tmp_path, downloader=offline, progress=lambda s: None)

    def bad(repo_id, filename, repo_type, local_dir):
        p = f"{local_dir}/{filename}"
        open(p, "wb").write(b"\x00" * 2000)
        return p

    with pytest.raises(OptbenchError, match="wrong magic"):
        download_fineweb(1, tmp_path, downloader=bad, progress=lambda s: None)
