"""Fixtures for the workspace tests: a populated workspace (messages, claims, artifacts with curves)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from optbench.results.schema import RunRecord, results_from_runs
from optbench.workspace.artifacts import push
from optbench.workspace.board import Board
from optbench.workspace.claims import make_claim, update_claim
from optbench.workspace.storage import Workspace, init_workspace

T0 = datetime(2026, 4, 30, 9, 0, 0, tzinfo=timezone.utc)


def synthetic_curve(tau: float, floor: float, seed: int, every: int = 125, last: int = 4500) -> list[tuple[int, float]]:
    """A plausible val-loss curve: a fast initial drop, then exponential approach to `floor`."""
    out = []
    for s in range(0, last + 1, every):
        noise = 0.0008 * math.sin(0.7 * s / every + seed)
        out.append((s, round(floor + 7.2 * math.exp(-s / 70) + 0.6 * math.exp(-s / tau) + noise, 5)))
    return out


def make_results(agent_id: str, optimizer: str, tau: float, floor: float, seeds=(0,), last: int = 4500, **kw):
    runs = [RunRecord.from_curve(synthetic_curve(tau, floor, sd, last=last), seed=sd, target=3.28) for sd in seeds]
    return results_from_runs(
        runs,
        agent_id=agent_id,
        experiment=kw.pop("experiment", f"{optimizer} baseline"),
        optimizer=optimizer,
        key_hparams=kw.pop("key_hparams", {"lr": 0.025, "wd": 0.0125}),
        timestamp=kw.pop("timestamp", "2026-04-30T10:00:00Z"),
        target=kw.pop("target", 3.28),
        **kw,
    )


def upstream_log(curve: list[tuple[int, float]]) -> str:
    """An upstream-format log: script source, separator, version line, separator, one line per eval."""
    sep = "=" * 100
    last = curve[-1][0]
    lines = ["import torch", "# ... training script ...", sep,
             "Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8 on NVIDIA H100 80GB HBM3 with world_size 8", sep]
    for s, loss in curve:
        lines.append(f"step:{s}/{last} val_loss:{loss:.5f} train_time:{s * 0.148:.3f}s step_avg:148.00ms")
    return "\n".join(lines) + "\n"


def write_artifact_dir(root: Path, results, extra: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "results.json").write_text(results.to_json())
    (root / "README.md").write_text(f"# {results.experiment}\n")
    (root / "train_log.txt").write_text("step:0/4500 val_loss:10.8\n")
    for k, v in (extra or {}).items():
        (root / k).write_text(v)
    return root


@pytest.fixture
def mem_url() -> str:
    return f"memory://optbench-test-{uuid.uuid4().hex}"


@pytest.fixture
def local_ws(tmp_path) -> Workspace:
    ws, _, _ = init_workspace(str(tmp_path / "ws"))
    return ws


def populate(ws: Workspace, tmp_path: Path) -> dict:
    """Messages over a day with marked results (3 NEW BESTs), a malformed message, claims, two artifacts."""
    board = Board(ws)
    names = {}
    names["intro"] = board.post("agent-01", "Hi, agent-01 here: I will tune Muon.", now=T0)
    names["adam"] = board.post(
        "agent-02",
        "AdamW reproduction done.\n\n**Leaderboard result:** 5,625 steps · val_loss 3.2741 · 1 run · AdamW",
        now=T0 + timedelta(hours=1),
    )
    names["muon1"] = board.post(
        "agent-01",
        "Muon lr .02\n\n**Leaderboard result:** 3,600 steps · val_loss 3.2745 · 1 run · Muon",
        now=T0 + timedelta(hours=2),
    )
    names["worse"] = board.post(
        "agent-03",
        "Lion attempt\n\n**Leaderboard result:** 4,100 steps · val_loss 3.2740 · 1 run · Lion",
        now=T0 + timedelta(hours=3),
    )
    names["muon2"] = board.post(
        "agent-01",
        "Muon lr .025 wd .0125\n\n**Leaderboard result:** 3,500 steps · val_loss 3.2738 · 4 runs · Muon",
        now=T0 + timedelta(hours=4),
        refs=[names["muon1"]],
    )
    names["system"] = board.post("admin", "Deadline moved to Friday.", type="system", now=T0 + timedelta(hours=4, minutes=30))
    bad = "20260430-140000_agent-04.md"
    ws.create(f"message_board/{bad}", "no front matter here\n**Leaderboard result:** 100 steps\n**Leaderboard result:** 90 steps\n")
    names["bad"] = bad
    make_claim(ws, "agent-03", "PSGD Kron lr sweep", now=T0 + timedelta(hours=3))
    cid = make_claim(ws, "agent-01", "Muon weight decay schedule", now=T0 + timedelta(hours=1))
    update_claim(ws, "agent-01", cid, "wd warmup looks good, 4 seeds running", now=T0 + timedelta(hours=4))
    make_claim(ws, "agent-02", "AdamW betas (old)", now=T0)
    muon = make_results("agent-01", "Muon", tau=905, floor=3.259, seeds=(0, 1, 2, 3), timestamp="2026-04-30T13:00:00Z")
    adam = make_results(
        "agent-02", "AdamW", tau=1500, floor=3.262, seeds=(0,), last=6500, timestamp="2026-04-30T10:00:00Z",
        key_hparams={"lr": 0.0015, "wd": 0.1},
    )
    push(ws, "agent-01", write_artifact_dir(tmp_path / "art-muon", muon), "muon-wd")
    push(ws, "agent-02", write_artifact_dir(tmp_path / "art-adam", adam), "adamw")
    # a workspace-format results.json without curves, next to an upstream-format log (curves come from the log)
    lion = tmp_path / "art-lion"
    lion.mkdir()
    (lion / "results.json").write_text(json.dumps({
        "agent_id": "agent-03", "timestamp": "2026-04-30T12:00:00Z", "experiment": "Lion lr sweep best",
        "optimizer": "Lion", "steps_to_3_28": 4125, "final_val_loss": 3.2745, "num_runs": 1,
        "mean_val_loss": 3.2745, "key_hparams": {"lr": 0.0001},
    }))
    (lion / "train_log.txt").write_text(upstream_log(synthetic_curve(1100, 3.2705, 7, last=4500)))
    push(ws, "agent-03", lion, "lion")
    return {"names": names, "claim": cid, "now": T0 + timedelta(hours=5), "muon": muon, "adam": adam}


@pytest.fixture
def populated(tmp_path) -> tuple[Workspace, dict]:
    ws, _, _ = init_workspace(str(tmp_path / "ws"))
    return ws, populate(ws, tmp_path)


def read_json(p: Path):
    return json.loads(Path(p).read_text())
