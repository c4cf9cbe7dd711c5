"""Storage: create-only writes on a local folder and on memory://, atomic local writes, init never clobbers."""

from __future__ import annotations

import os

import pytest

from optbench.errors import OptbenchError
from optbench.workspace.storage import LEADERBOARD, README, Workspace, init_workspace


@pytest.fixture(params=["local", "memory"])
def ws(request, tmp_path, mem_url) -> Workspace:
    url = str(tmp_path / "ws") if request.param == "local" else mem_url
    return init_workspace(url)[0]


def test_create_is_create_only(ws):
    ws.create("message_board/a.md", "first")
    with pytest.raises(FileExistsError):
        ws.create("message_board/a.md", "second")
    assert ws.read_text("message_board/a.md") == "first"
    assert ws.listdir("message_board") == ["a.md"]


def test_create_unique_takes_the_next_free_name(ws):
    ws.create("x/n1", b"one")
    got = ws.create_unique(["x/n1", "x/n2", "x/n3"], b"two")
    assert got == "x/n2"
    assert ws.read_bytes("x/n1") == b"one" and ws.read_bytes("x/n2") == b"two"
    ws.create("x/n3", b"three")
    with pytest.raises(OptbenchError, match="no free file name"):
        ws.create_unique(["x/n1", "x/n2", "x/n3"], b"four")


def test_write_derived_replaces_only_the_derived_file(ws):
    before = ws.read_text(LEADERBOARD)
    ws.write_derived(LEADERBOARD, "# new board\n")
    assert ws.read_text(LEADERBOARD) == "# new board\n" != before


@pytest.mark.parametrize("bad", ["../escape", "/abs/path", "a/../b", "a//b", "./a", "a\\b", "nul\x00x", ""])
def test_paths_cannot_escape_the_workspace(ws, bad):
    with pytest.raises(OptbenchError):
        ws.create(bad, b"x")


def test_local_writes_are_atomic_and_leave_no_temp_files(tmp_path):
    ws = init_workspace(str(tmp_path / "ws"))[0]
    ws.create("message_board/m.md", "x" * 100_000)
    files = os.listdir(tmp_path / "ws" / "message_board")
    assert files == ["m.md"], files  # the temp file was linked into place and removed
    assert (tmp_path / "ws" / "message_board" / "m.md").stat().st_size == 100_000
    assert oct((tmp_path / "ws" / "message_board" / "m.md").stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(FileExistsError):
        ws.create("message_board/m.md", "y")
    assert os.listdir(tmp_path / "ws" / "message_board") == ["m.md"]  # failed create cleaned its temp file


def test_init_creates_layout_and_never_clobbers(tmp_path, mem_url):
    for url in (str(tmp_path / "ws"), mem_url):
        ws, created, kept = init_workspace(url)
        assert set(created) == {"message_board/", "artifacts/", "claims/", README, LEADERBOARD}
        assert kept == []
        assert "agent_id" in ws.read_text(README) and ws.read_text(LEADERBOARD).startswith("# Leaderboard")
        ws.write_derived(README, "my own rules\n")  # simulate a hand-written README
        ws.create("message_board/keep.md", "keep me")
        ws2, created2, kept2 = init_workspace(url)
        assert created2 == []
        assert set(kept2) == {"message_board/", "artifacts/", "claims/", README, LEADERBOARD}
        assert ws2.read_text(README) == "my own rules\n"
        assert ws2.read_text("message_board/keep.md") == "keep me"


def test_workspace_url_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("OPTBENCH_WORKSPACE", str(tmp_path / "envws"))
    ws = Workspace(None)
    assert ws.url == str(tmp_path / "envws")
    assert Workspace("memory://elsewhere").url == "memory://elsewhere"


def test_hf_buckets_url_resolves_to_huggingface_filesystem():
    """hf://buckets/... is handled by huggingface_hub's HfFileSystem (no network: only the class is checked)."""
    import fsspec

    cls = fsspec.get_filesystem_class("hf")
    assert cls.__module__.startswith("huggingface_hub")
