"""Sources: folders of logs (subfolders too), the file each run came from, seeds from the logs, `--metric`."""

from __future__ import annotations

from pathlib import Path

import pytest

from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.results import RunRecord, results_from_runs, save_results
from optbench.results.sources import load_source

from .upstream_logs import curve, log_text

EMA = {"val_avg_loss": lambda s, v: f"{v:.5f}", "val_ema_loss": lambda s, v: f"{v - 0.003:.5f}"}


def _record(tmp_path: Path) -> Path:
    """A record folder as upstream lays them out: per-seed logs at the top and in a variant subfolder."""
    rec = tmp_path / "20260619_record"
    (rec / "variant").mkdir(parents=True)
    for seed in range(3):
        where = rec if seed < 2 else rec / "variant"
        (where / f"A40_seed{seed}_run.txt").write_text(
            log_text([(500, curve(500, 3.2790 + 0.0002 * seed))], version="short", fields=EMA,
                     pre=[f"Using seed={seed}"]))
    (rec / "README.md").write_text("# a record\n")
    (rec / "notes.txt").write_text("not a log\n")
    return rec


def test_folder_finds_logs_in_subfolders_and_names_each_file(tmp_path):
    src = load_source(_record(tmp_path))
    assert src.kind == "log" and len(src.runs) == 3
    assert src.run_labels == ["A40_seed0_run.txt", "A40_seed1_run.txt", "variant/A40_seed2_run.txt"]
    assert [r.seed for r in src.runs] == [0, 1, 2]
    assert src.choice.rule.name == "upstream-2026-04-30" and src.target == 3.28


def test_multi_trial_log_labels_each_trial(tmp_path):
    f = tmp_path / "multi.txt"
    f.write_text(log_text([(500, curve(500, 3.279)), (500, curve(500, 3.278))]))
    src = load_source(f)
    assert src.path == str(f) and src.run_labels == ["multi.txt #0", "multi.txt #1"]


def test_metric_chooses_the_claim_column(tmp_path):
    rec = _record(tmp_path)
    raw = load_source(rec)
    ema = load_source(rec, metric="val_ema_loss")
    assert [r.final_val_loss for r in raw.runs] == [3.279, 3.2792, 3.2794]
    assert [r.final_val_loss for r in ema.runs] == [3.276, 3.2762, 3.2764]
    with pytest.raises(OptbenchError, match="no eval field 'val_swa_loss'"):
        load_source(rec, metric="val_swa_loss")


def test_results_json_metric_reads_curve_point_fields(tmp_path):
    run = RunRecord.from_curve([{"step": 0, "val_loss": 10.8, "val_ema_loss": 10.8},
                                {"step": 500, "val_loss": 3.279, "val_ema_loss": 3.274}], target=3.28, seed=4)
    save_results(results_from_runs([run], agent_id="a", experiment="e", optimizer="Muon", target=3.28,
                                   rule="upstream-2026-04-30", track="small"), tmp_path / "r")
    src = load_source(tmp_path / "r", metric="val_ema_loss")
    assert src.runs[0].final_val_loss == 3.274 and src.runs[0].seed == 4 and src.choice.reason == "named by the record"
    with pytest.raises(OptbenchError, match="no field 'val_avg_loss'"):
        load_source(tmp_path / "r", metric="val_avg_loss")


def _stats(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(["stats", *map(str, args)])
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


def test_stats_metric_names_rule_files_and_seeds(tmp_path, capsys):
    rec = _record(tmp_path)
    # on val_loss the 3 runs first average below 3.28 at 450 (3.2799) and end at 3.2792: fail (n=3 needs < 3.27769)
    rc, out, _ = _stats(capsys, rec, "--check")
    assert rc == 1 and "FAIL [upstream-2026-04-30] step 450: mean 3.27990 over n=3" in out
    # the claim on val_ema_loss: at 450 the mean 3.2769 passes: (3.28 - 3.2769) * sqrt(3) = 0.00537 >= 0.004
    rc, out, err = _stats(capsys, rec, "--metric", "val_ema_loss", "--check")
    assert rc == 0, err
    assert out.splitlines()[0] == ("rule upstream-2026-04-30 (sigma 0.0013, p < 0.001, margin 0.004): track small's "
                                   "default; target 3.28; claims on val_ema_loss")
    assert "PASS [upstream-2026-04-30] step 450: mean 3.27690 over n=3" in out and "last val_ema_loss" in out
    for name in ("A40_seed0_run.txt", "A40_seed1_run.txt", "variant/A40_seed2_run.txt"):
        assert name in out  # the source column shows the file, whole
    rows = [ln for ln in out.splitlines() if "A40_seed" in ln]
    assert [ln.split("│")[2].strip() for ln in rows] == ["0", "1", "2"]  # seeds from `Using seed=`


def test_stats_refuses_sources_judged_by_different_rules(tmp_path, capsys):
    rec = _record(tmp_path)
    code = "# optbench run: track=nano recipe=nano-muon seeds=[0] train_steps=100\n"
    nano = tmp_path / "nano.txt"
    nano.write_text(log_text([(100, {0: 7.6, 100: 4.9})], code=code))
    rc, _, err = _stats(capsys, rec, nano)
    assert rc == 2 and "different rules (upstream-2026-04-30, workspace); pass --rule" in err
    rc, out, err = _stats(capsys, nano)
    assert rc == 0, err
    assert "track nano's default; target 5" in out and "PASS [workspace] step 100: mean 4.90000 over n=1" in out
