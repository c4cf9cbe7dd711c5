"""SLURM launch through submitit (its local executor), and a worker's presence in a workspace: claim, renewal,
status snapshots, the one results message, and the dashboard's sweeps table."""

from __future__ import annotations

import json

import pytest

from optbench.errors import OptbenchError
from optbench.sweep import open_sweep, run_worker, sweep_status
from optbench.sweep.slurm import launch_workers, parse_slurm_args
from optbench.workspace.board import Board
from optbench.workspace.claims import list_claims
from optbench.workspace.dashboard import collect
from optbench.workspace.storage import Workspace, init_workspace
from tests.sweep.conftest import tiny_sweep


def test_slurm_args():
    assert parse_slurm_args(["partition=gpu", "timeout_min=60", "gpus_per_node=1", "slurm_account=x"]) == {
        "slurm_partition": "gpu", "timeout_min": 60, "gpus_per_node": 1, "slurm_account": "x"}
    with pytest.raises(OptbenchError, match="--slurm: 'gpu' is not KEY=VALUE"):
        parse_slurm_args(["gpu"])


def test_slurm_refuses_a_sqlite_storage(tmp_path):
    with pytest.raises(OptbenchError, match="cannot share a SQLite file"):
        launch_workers("x", f"sqlite:///{tmp_path}/db", 2, ["partition=gpu"], folder=tmp_path)


@pytest.mark.slow
def test_workers_launched_with_submitit_local_executor(sqlite_url, tmp_path):
    tiny_sweep("slurm", sqlite_url, tmp_path, max_trials=4)
    jobs = launch_workers("slurm", sqlite_url, 2, ["timeout_min=10", "cpus_per_task=1"], folder=tmp_path / "jobs",
                          cluster="local", threads=1)
    results = [j.result() for j in jobs]  # waits; raises if a job failed
    assert sum(len(r["trials"]) for r in results) == 4
    assert all(r["stopped"].startswith("trial budget spent") for r in results)
    assert sweep_status(open_sweep("slurm", sqlite_url)).counts == {"complete": 4}


@pytest.mark.slow
def test_worker_presence_in_a_workspace(sqlite_url, tmp_path):
    ws_url = str(tmp_path / "ws")
    init_workspace(ws_url)
    tiny_sweep("ws-sweep", sqlite_url, tmp_path, max_trials=2)
    run_worker("ws-sweep", sqlite_url, threads=1, workspace=ws_url, agent_id="agent-07", log=lambda line: None)
    ws = Workspace(ws_url)
    claims, _ = list_claims(ws)
    assert len(claims) == 1 and claims[0].owner == "agent-07"
    assert claims[0].direction.startswith("sweep ws-sweep: adamw on track nano, tuning lr, weight_decay")
    assert len(claims[0].updates) == 2 and claims[0].progress.startswith("2/2 trials done, 0 running, best ")
    snaps = [n for n in ws.listdir("sweeps/ws-sweep", dirs=False)]
    assert "finished.json" in snaps and len(snaps) == 1 + 3 + 1  # finished marker, start + 2 trials, final
    msgs = Board(ws).messages()
    assert len(msgs) == 1 and msgs[0].agent == "agent-07" and "Sweep `ws-sweep` finished" in msgs[0].body
    assert msgs[0].steps is None  # no leaderboard marker on a sweep's message
    # a second worker arriving later posts nothing again
    run_worker("ws-sweep", sqlite_url, threads=1, workspace=ws_url, agent_id="agent-07", log=lambda line: None)
    assert len(Board(ws).messages()) == 1 and len(list_claims(ws)[0]) == 1
    d = collect(ws)
    (sw,) = d["sweeps"]
    best = sweep_status(open_sweep("ws-sweep", sqlite_url)).best
    assert (sw["sweep"], sw["state"], sw["agents"], sw["finished_trials"], sw["max_trials"]) == \
        ("ws-sweep", "finished", ["agent-07"], 2, 2)
    assert sw["best_value"] == pytest.approx(best.value) and sw["best_trial"] == best.number
    body_html = d["messages"][0]["body_html"]
    assert "<code>ws-sweep</code>" in body_html and "<li>" in body_html
    json.dumps(d, allow_nan=False)
    # the page: the sweeps table and the rendered (sanitised) message body, in a real browser
    from optbench.workspace.dashboard import build_dashboard
    from tests.workspace.test_dashboard import run_chromium

    index = build_dashboard(ws, tmp_path / "dash")
    r = run_chromium(["--dump-dom", index.as_uri()], tmp_path)
    assert 'data-dashboard="ready"' in r.stdout, r.stdout[:2000]
    assert r.stdout.count('<tr class="sweep-row" data-state="finished">') == 1 and "<td>ws-sweep</td>" in r.stdout
    assert '<div class="body md"><p>Sweep <code>ws-sweep</code> finished' in r.stdout


def test_message_bodies_are_sanitised_markdown(tmp_path):
    ws = init_workspace(str(tmp_path / "ws"))[0]
    Board(ws).post("agent-01", "**bold** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.org)"
                               "\n\n<img src=x onerror=alert(1)>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    html = collect(ws)["messages"][0]["body_html"]
    assert "<strong>bold</strong>" in html and "<table>" in html and "<td>1</td>" in html
    assert "<script" not in html and "<img" not in html and "javascript:" not in html.replace("(javascript:", "")
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">ok</a>' in html
