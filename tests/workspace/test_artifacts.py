"""Artifacts: push validates, stays in its own folder, never overwrites, regenerates LEADERBOARD.md; pull; list."""

from __future__ import annotations

import json

import pytest

from optbench.errors import OptbenchError
from optbench.workspace.artifacts import list_artifacts, pull, push
from optbench.workspace.storage import init_workspace

from .cli_helpers import run_cli
from .conftest import make_results, write_artifact_dir


@pytest.fixture(params=["local", "memory"])
def ws(request, tmp_path, mem_url):
    url = str(tmp_path / "ws") if request.param == "local" else mem_url
    return init_workspace(url)[0]


@pytest.fixture
def muon_dir(tmp_path):
    r = make_results("agent-01", "Muon", tau=905, floor=3.259, seeds=(0, 1, 2, 3))
    return write_artifact_dir(tmp_path / "muon", r, extra={"train_gpt_simple.py": "print('hi')\n"}), r


def test_push_writes_own_folder_and_regenerates_leaderboard(ws, muon_dir):
    src, r = muon_dir
    before = ws.read_text("LEADERBOARD.md")
    assert "Muon" not in before.split("## Best known")[0]
    rep = push(ws, "agent-01", src, "muon-wd")
    assert rep.folder == "artifacts/muon-wd_agent-01"
    assert rep.files[-1] == "results.json"  # written last: a visible results.json means a complete folder
    assert sorted(rep.files) == ["README.md", "results.json", "train_gpt_simple.py", "train_log.txt"]
    assert json.loads(ws.read_text("artifacts/muon-wd_agent-01/results.json"))["agent_id"] == "agent-01"
    lb = ws.read_text("LEADERBOARD.md")
    assert lb == rep.leaderboard
    overall = lb.split("## Best known")[0]
    assert f"| 1 | {r.steps_to_target:,} |" in overall and "Muon" in overall
    assert "artifacts/muon-wd_agent-01/train_log.txt" in overall
    # a second agent's result is added and ranked by steps
    adam = make_results("agent-02", "AdamW", tau=1500, floor=3.262, last=6500, key_hparams={"lr": 0.0015})
    push(ws, "agent-02", write_artifact_dir(src.parent / "adam", adam), "adamw")
    overall = ws.read_text("LEADERBOARD.md").split("## Best known")[0]
    rows = [line for line in overall.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert "Muon" in rows[0] and "AdamW" in rows[1]
    arts = list_artifacts(ws)
    assert [a.name for a in arts] == ["adamw_agent-02", "muon-wd_agent-01"]
    assert all(a.results is not None and a.warning is None for a in arts)


def test_push_refuses_existing_files(ws, muon_dir):
    src, _ = muon_dir
    push(ws, "agent-01", src, "muon-wd")
    with pytest.raises(OptbenchError, match="never overwritten"):
        push(ws, "agent-01", src, "muon-wd")
    # adding a new file to one's own folder is fine only when no pushed file collides
    (src / "notes.md").write_text("extra")
    with pytest.raises(OptbenchError, match="already has README.md"):
        push(ws, "agent-01", src, "muon-wd")
    assert not ws.exists("artifacts/muon-wd_agent-01/notes.md")  # refused before writing anything


def test_push_refuses_foreign_folders_and_foreign_results(ws, muon_dir, tmp_path):
    src, _ = muon_dir
    # a folder with my name but holding another agent's results (hand-made by someone else): not mine
    other = make_results("agent-02", "Muon", tau=905, floor=3.259, seeds=(0,))
    ws.create("artifacts/muon-wd_agent-01/results.json", other.to_json())
    with pytest.raises(OptbenchError, match="not your folder"):
        push(ws, "agent-01", src, "muon-wd")
    # --name cannot point into another agent's folder or outside artifacts/
    for name in ("muon_agent-02", "../message_board", "a/b", "", "x" * 65, ".."):
        with pytest.raises(OptbenchError, match="--name"):
            push(ws, "agent-01", src, name)
    # results.json of another agent cannot be pushed as mine
    theirs = write_artifact_dir(tmp_path / "theirs", other)
    with pytest.raises(OptbenchError, match="push only your own"):
        push(ws, "agent-01", theirs, "stolen")
    # an invalid results.json is refused by the results schema before anything is written
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text('{"agent_id": "agent-01", "optimizer": "Muon"}')
    with pytest.raises(OptbenchError, match="required field is missing"):
        push(ws, "agent-01", tmp_path / "broken", "broken")
    with pytest.raises(OptbenchError, match="does not exist"):
        push(ws, "agent-01", tmp_path / "nothing-here", "x")
    (tmp_path / "no-results").mkdir()
    (tmp_path / "no-results" / "README.md").write_text("x")
    with pytest.raises(OptbenchError, match="results.json: missing"):
        push(ws, "agent-01", tmp_path / "no-results", "x")
    assert [a.name for a in list_artifacts(ws)] == ["muon-wd_agent-01"]


def test_pull_copies_and_never_overwrites(ws, muon_dir, tmp_path):
    src, _ = muon_dir
    push(ws, "agent-01", src, "muon-wd")
    out = tmp_path / "pulled"
    files = pull(ws, "muon-wd_agent-01", out)
    assert sorted(p.name for p in files) == ["README.md", "results.json", "train_gpt_simple.py", "train_log.txt"]
    assert (out / "results.json").read_bytes() == (src / "results.json").read_bytes()
    with pytest.raises(OptbenchError, match="not overwritten"):
        pull(ws, "muon-wd_agent-01", out)
    with pytest.raises(OptbenchError, match="no artifact"):
        pull(ws, "nope_agent-01", tmp_path / "x")
    with pytest.raises(OptbenchError, match="folder name"):
        pull(ws, "../message_board", tmp_path / "y")


def test_cli_artifacts(tmp_path, capsys, monkeypatch, muon_dir):
    src, _ = muon_dir
    url = str(tmp_path / "ws")
    init_workspace(url)
    monkeypatch.setenv("OPTBENCH_WORKSPACE", url)
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "agent-01")
    code, out, err = run_cli(["artifacts", "push", str(src), "--name", "muon-wd"], capsys)
    assert code == 0, err
    assert "regenerated" in out and "muon-wd_agent-01/results.json" in out
    code, out, err = run_cli(["artifacts", "push", str(src), "--name", "muon-wd"], capsys)
    assert code == 2 and "never overwritten" in err and "Traceback" not in err
    code, out, err = run_cli(["artifacts", "list"], capsys)
    assert code == 0 and "muon-wd_agent-01" in out and "Muon" in out
    code, out, err = run_cli(["artifacts", "pull", "muon-wd_agent-01", "--out", str(tmp_path / "p")], capsys)
    assert code == 0 and (tmp_path / "p" / "train_gpt_simple.py").exists()
