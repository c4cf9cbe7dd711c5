"""Bad results at the workspace's doors (issue 15): `artifacts push`, `board post --result`, `workspace info PATH`
refuse NaN/Infinity and binary files with a one-line error and exit 2, never a traceback, never a pushed file."""

from __future__ import annotations

import json

import pytest

from tests.workspace.cli_helpers import run_cli

NAN_RESULTS = """{
  "agent_id": "agent-01", "experiment": "nan test", "optimizer": "Muon", "steps_to_3_28": 3000,
  "final_val_loss": NaN, "num_runs": 1, "mean_val_loss": NaN, "target": 3.28,
  "runs": [{"seed": 0, "final_val_loss": NaN, "steps_to_target": 3000,
            "curve": [{"step": 0, "val_loss": 10.8}, {"step": 3000, "val_loss": 3.27}, {"step": 3125, "val_loss": NaN}]}]
}
"""


@pytest.fixture
def ws(tmp_path, capsys):
    code, _, err = run_cli(["workspace", "init", str(tmp_path / "ws")], capsys)
    assert code == 0, err
    return tmp_path / "ws"


def _folder(tmp_path, name: str, data: bytes) -> str:
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_bytes(data)
    return str(d)


@pytest.mark.parametrize("content,why", [(NAN_RESULTS.encode(), "final_val_loss: NaN is not allowed"),
                                         (bytes(range(256)) * 4, "not UTF-8 text")], ids=["nan", "binary"])
def test_push_refuses_bad_results_and_pushes_nothing(ws, tmp_path, capsys, content, why):
    src = _folder(tmp_path, "art", content)
    code, out, err = run_cli(["artifacts", "push", src, "--name", "bad", "-w", str(ws), "--agent-id", "agent-01"], capsys)
    assert code == 2 and why in err and "Traceback" not in err
    assert not (ws / "artifacts" / "bad_agent-01").exists()
    assert "nan test" not in (ws / "LEADERBOARD.md").read_text()


@pytest.mark.parametrize("content,why", [(NAN_RESULTS.encode(), "final_val_loss: NaN is not allowed"),
                                         (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text")], ids=["nan", "png"])
def test_validate_refuses_bad_results(tmp_path, capsys, content, why):
    src = _folder(tmp_path, "r", content)
    code, out, err = run_cli(["results", "validate", src], capsys)
    assert code == 2 and why in err and "Traceback" not in err


def test_post_result_with_nan_is_an_error_not_a_crash(ws, tmp_path, capsys):
    src = _folder(tmp_path, "r", NAN_RESULTS.encode())
    code, out, err = run_cli(["board", "post", "--result", src, "-w", str(ws), "--agent-id", "agent-01"], capsys)
    assert code == 2 and "NaN is not allowed" in err
    assert list((ws / "message_board").iterdir()) == []


def test_post_result_with_null_top_level_loss_reports_the_judged_loss(ws, tmp_path, capsys):
    d = json.loads(NAN_RESULTS.replace("NaN", "null"))
    d["runs"][0]["curve"].pop()  # passing curves; the top-level losses are null
    d["runs"][0]["final_val_loss"] = 3.27
    src = _folder(tmp_path, "r", json.dumps(d).encode())
    code, out, err = run_cli(["board", "post", "--result", src, "-w", str(ws), "--agent-id", "agent-01"], capsys)
    assert code == 0, err
    text = (ws / "message_board" / out.strip()).read_text()
    assert "**Leaderboard result:** 3,000 steps · val_loss 3.2700 · 1 run · Muon" in text


def test_workspace_info_takes_a_path_like_init(ws, capsys):
    code, out, err = run_cli(["workspace", "info", str(ws)], capsys)
    assert code == 0, err
    assert f"workspace: {ws}" in out and "messages:  0" in out
    code, out2, _ = run_cli(["workspace", "info", "-w", str(ws)], capsys)
    assert code == 0 and out2 == out


def test_workspace_info_of_no_workspace_is_an_error(tmp_path, capsys):
    code, out, err = run_cli(["workspace", "info", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no workspace at" in err and "optbench workspace init" in err
    code, out, err = run_cli(["workspace", "info", str(tmp_path), "-w", str(tmp_path / "other")], capsys)
    assert code == 2 and "two workspaces given" in err
