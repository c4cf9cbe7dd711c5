"""--tracker wandb|tensorboard|trackio: every train/eval metric of the run's metrics.jsonl, read back from what
each tracker wrote in its offline mode (skipped when the optional package is absent)."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import struct
import subprocess
import sys

import pytest

from optbench.errors import OptbenchError
from optbench.trackers import make_tracker, metrics_of
from tests.sweep.conftest import REPO, cli

pytestmark = pytest.mark.slow


def _needs(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install 'optbench[{package}]')")


def _run(tmp_path, tracker: str, env: dict | None = None) -> tuple:
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "optbench", "run", "--track", "nano", "--optimizer", "adamw", "--set",
                        "train_steps=20", "--runs", "2", "--out", str(out), "--quiet", "--tracker", tracker],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    assert r.returncode == 0, r.stderr[-3000:]
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    want = {}
    for rec in recs:
        got = metrics_of(rec, 0.01)  # nano adamw default recipe: lr 0.01
        if got:
            for k, v in got[1].items():
                want[(rec["seed"], k, got[0])] = v
    assert {k[1] for k in want} == {"train/loss", "train/lr", "train/lr_mult", "train/tokens_per_s", "val/loss"}
    return out, want


def test_tensorboard_event_files(tmp_path):
    _needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, want = _run(tmp_path, "tensorboard")
    got = {}
    for seed in (0, 1):
        ea = EventAccumulator(str(out / "tensorboard" / f"seed{seed}"))
        ea.Reload()
        for tag in ea.Tags()["scalars"]:
            for ev in ea.Scalars(tag):
                got[(seed, tag, ev.step)] = ev.value
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)


def _wandb_history(path) -> tuple[str, list[dict]]:
    """(run name, history records) of an offline .wandb file (LevelDB-log framing of wandb Record protobufs)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, out, buf, name = open(path, "rb").read(), 7, 32768, [], b"", None
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf + chunk if kind == 4 else chunk)
            buf = b""
            if rec.WhichOneof("record_type") == "history":
                items = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item}
                out.append({**items, "_step": rec.history.step.num})
            elif rec.WhichOneof("record_type") == "run":
                name = rec.run.display_name
        elif kind in (2, 3):
            buf = chunk if kind == 2 else buf + chunk
    return name, out


def test_wandb_offline_run_files(tmp_path):
    _needs("wandb")
    out, want = _run(tmp_path, "wandb", {"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    files = sorted(glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert len(files) == 2  # one wandb run per seed
    got = {}
    names = []
    for path in files:
        name, history = _wandb_history(path)
        names.append(name)
        seed = int(name[-1])
        for h in history:
            for k, v in h.items():
                if not k.startswith("_"):
                    got[(seed, k, h["_step"])] = v
    assert sorted(names) == ["run-seed0", "run-seed1"]
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)


def test_trackio_local_database(tmp_path):
    _needs("trackio")
    env = {"TRACKIO_DIR": str(tmp_path / "trackio")}
    out, want = _run(tmp_path, "trackio", env)
    read = ("import json, trackio.sqlite_storage as s\n"
            "print(json.dumps({r: s.SQLiteStorage.get_logs('optbench', r) for r in s.SQLiteStorage.get_runs('optbench')}))")
    r = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    logs = json.loads(r.stdout.strip().splitlines()[-1])
    assert sorted(logs) == ["run-seed0", "run-seed1"]
    got = {}
    for name, rows in logs.items():
        for row in rows:
            for k, v in row.items():
                if "/" in k:
                    got[(int(name[-1]), k, row["step"])] = v
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)


def test_unknown_tracker_is_a_one_line_error(tmp_path):
    with pytest.raises(OptbenchError, match="--tracker: unknown tracker 'mlflow'; choose from wandb, tensorboard"):
        make_tracker("mlflow", run_name="r", config={}, out_dir=tmp_path)
    r = cli("run", "--track", "nano", "--optimizer", "adamw", "--tracker", "mlflow", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown tracker 'mlflow'" in r.stderr and "Traceback" not in r.stderr
