"""CLI: `results validate`, `stats`, `leaderboard`, `plot` through `python -m optbench` (exit codes) and typer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import pytest

from optbench.cli import app, main

HERE = Path(__file__).parent
FX = HERE / "fixtures"
WS = FX / "workspace"
LOG = FX / "upstream_two_trials.txt"
REPO = HERE.parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    """The real entry point in a fresh interpreter (exit codes as a shell sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "optbench", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """optbench.cli.main in-process (same OptbenchError -> exit 2 mapping, no interpreter start-up)."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


@pytest.mark.slow
def test_validate_exit_codes():
    good = _run("results", "validate", str(WS / "artifacts" / "muon_wd_agent-02" / "results.json"), str(WS / "artifacts" / "kron_agent-04"))
    assert good.returncode == 0, good.stderr
    assert "steps_to_3_28 3400" in good.stdout and "steps_to_3_28 3375" in good.stdout
    bad = _run("results", "validate", str(WS / "artifacts" / "muon_wd_agent-02" / "results.json"), str(WS / "artifacts" / "broken_agent-07" / "results.json"))
    assert bad.returncode == 2
    assert "steps_to_3_28: value is not an integer" in bad.stderr and "1 of 2 file(s) invalid" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_stats_on_upstream_log_and_user_errors(tmp_path, capsys):
    rc, out, err = _main(capsys, "stats", str(LOG), "--rule", "upstream-2026-04-30")
    assert rc == 0, err
    assert "FAIL [upstream-2026-04-30] step 3225: mean 3.27933 over n=2" in out
    assert "3.27841" in out and "3.27903" in out  # per-trial final losses
    assert _main(capsys, "stats", str(LOG), "--check")[0] == 1
    rc, _, err = _main(capsys, "stats", str(LOG), "--rule", "lenient")
    assert rc == 2 and "unknown stats rule 'lenient'" in err
    (tmp_path / "junk.txt").write_text("hello\n")
    rc, _, err = _main(capsys, "stats", str(tmp_path / "junk.txt"))
    assert rc == 2 and "junk.txt" in err and "100 '='" in err


@pytest.mark.slow
def test_stats_user_error_through_the_real_entry_point(tmp_path):
    missing = _run("stats", str(tmp_path / "nope"))  # through the real entry point once
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr and "Traceback" not in missing.stderr


def test_stats_run_dirs_combine_into_one_set(tmp_path):
    from optbench.results import RunRecord, results_from_runs, save_results

    # two run dirs, one seed each; each alone fails n=1 (needs < 3.275), together they pass n=2 (< 3.27646)
    for seed, end in ((0, 3.2760), (1, 3.2762)):
        run = RunRecord.from_curve([(0, 10.8), (3000, 3.29), (3250, end)], seed=seed, target=3.28)
        save_results(results_from_runs([run], agent_id="a", experiment="e", optimizer="Muon", target=3.28), tmp_path / f"s{seed}")
    r = CliRunner().invoke(app, ["stats", str(tmp_path / "s0"), str(tmp_path / "s1"), "--check"])
    assert r.exit_code == 0, r.output
    assert "PASS [workspace] step 3250: mean 3.27610 over n=2" in r.output
    r1 = CliRunner().invoke(app, ["stats", str(tmp_path / "s0"), "--check"])
    assert r1.exit_code == 1 and "FAIL" in r1.output


def test_leaderboard_command(tmp_path, capsys):
    out = tmp_path / "LEADERBOARD.md"
    rc, _, err = _main(capsys, "leaderboard", str(WS), "--out", str(out))
    assert rc == 0, err
    text = out.read_text()
    assert text.startswith("# Leaderboard") and "| 1 | 3,250 | 3.27810 n=10 ✓ | Muon |" in text
    r = CliRunner().invoke(app, ["leaderboard", str(WS)])
    assert r.exit_code == 0 and r.output == text


def test_plot_command(tmp_path, capsys):
    out = tmp_path / "c.png"
    r = CliRunner().invoke(app, ["plot", str(LOG), str(WS / "artifacts" / "kron_agent-04"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"
    # a plain workspace record has no curves to plot: a user error
    rc, _, err = _main(capsys, "plot", str(WS / "artifacts" / "muon_wd_agent-02"), "--out", str(tmp_path / "x.png"))
    assert rc == 2 and "no per-seed curves" in err


def test_validate_names_fields_for_a_written_file(tmp_path, capsys):
    f = tmp_path / "results.json"
    f.write_text(json.dumps({"agent_id": "a", "experiment": "e", "optimizer": "m", "final_val_loss": "x"}))
    rc, _, err = _main(capsys, "results", "validate", str(f))
    assert rc == 2
    assert "steps_to_3_28: required field is missing" in err
    assert "final_val_loss: value is not a number" in err


def test_stats_and_plot_on_a_cut_short_trial(tmp_path, capsys):
    # the second trial of this log stops at step 3000: every run counts, so only common steps are judged
    lines = LOG.read_text().splitlines()
    cut = [ln for ln in lines]
    last_block = max(i for i, ln in enumerate(cut) if ln.startswith("step:0/3250"))
    keep = [ln for i, ln in enumerate(cut) if i <= last_block or not ln.startswith("step:") or int(ln[5:ln.index("/")]) <= 2875]
    f = tmp_path / "cut.txt"
    f.write_text("\n".join(keep) + "\n")
    rc, out, err = _main(capsys, "stats", str(f))
    assert rc == 0, err
    assert "cut short: last eval 2875 of 3250" in out
    # an upstream log names no rule: judged by track small's default, and the output says so
    assert "FAIL [upstream-2026-04-30] final step 2875 (target not reached)" in out
    assert out.startswith("rule upstream-2026-04-30 (sigma 0.0013, p < 0.001, margin 0.004): track small's default")
    rc, _, err = _main(capsys, "plot", str(f), "--out", str(tmp_path / "cut.png"))
    assert rc == 0 and (tmp_path / "cut.png").stat().st_size > 10_000


def test_stats_baseline_pairwise(capsys):
    rc, out, err = _main(capsys, "stats", str(WS / "artifacts" / "kron_agent-04"), "--baseline", str(LOG))
    assert rc == 0, err
    # A = the log (3225 steps, mean 3.27933, n=2), B = Kron (3375 steps, mean 3.27700, n=4):
    # (0.00233 + (3225-3375)*0.000045) / sqrt(1/2+1/4) = (0.00233 - 0.00675)/0.866 = -0.00510
    assert "statistic -0.00510" in out and "not significantly better" in out
