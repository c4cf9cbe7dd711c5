"""The NanoGPT-Medium Optimizer Leaderboard's form, from medium-track results.json files.

The fixture records carry the leaderboard README's published entries (steps to 2.92, dates, contributors) as runs
of the bundled medium recipes; the expected tables are that README's tables, row for row.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from optbench.optim.recipe import load_recipe
from optbench.results.leaderboard import entries_from
from optbench.results.medium_board import hparam_summary, is_medium_board, render_medium_leaderboard
from optbench.results.schema import RunRecord, results_from_runs, save_results

MUON = "[Muon](https://kellerjordan.github.io/posts/muon/)"
SHAMPOO = "[DistributedShampoo](https://github.com/facebookresearch/optimizers/tree/main/distributed_shampoo)"
ADAMW = "[AdamW](https://arxiv.org/abs/1711.05101)"
KRON = "[PSGD Kron](https://github.com/evanatyourservice/kron_torch)"
LISTED = ["muon", "adamw", "kron", "DistributedShampoo", "Sophia", "Lion"]

# (folder, recipe, optimizer, steps to 2.92, final losses per seed, date, contributor, wallclock s)
PUBLISHED = [
    ("muon-record", "medium-muon", "muon", 5960, [2.91975], "2025-04-22", "@jadenj3o", 1470.0),
    ("muon-plain", "medium-muon-plain", "muon", 6125, [2.9195], "2025-06-19", "@kellerjordan0", 1510.0),
    ("adamw-bf16", "medium-adamw", "adamw", 10500, [2.919], "2025-06-15", "@kellerjordan0", 2590.0),
    ("adamw-fp32", "medium-adamw", "adamw", 9500, [2.912, 2.914, 2.913], "2025-06-19", "@kellerjordan0", 2400.0),
    ("kron-bf16", "medium-kron", "kron", 9000, [2.9192], "2025-06-19T10:00:00", "@kellerjordan0", 3100.0),
    ("kron-fp32", "medium-kron", "kron", 9000, [2.9191], "2025-06-19T12:00:00", "@kellerjordan0", 3200.0),
]


def _write(root, folder, recipe, optimizer, steps, losses, date, who, wall):
    r = load_recipe(recipe)
    runs = [RunRecord.from_curve([(0, 10.83), (steps - 125, 2.9215 + i * 1e-4), (steps, loss)], target=2.92, seed=i)
            for i, loss in enumerate(losses)]
    ts = date if "T" in date else f"{date}T09:00:00"
    res = results_from_runs(runs, agent_id=who, experiment=folder, optimizer=optimizer, target=2.92, track="medium",
                            recipe={"name": r.name, "config": r.model_dump()}, wallclock_s=wall,
                            timestamp=f"{ts}Z", key_hparams=dict(r.hparams))
    save_results(res, root / folder / "results.json")
    (root / folder / "train_log.txt").write_text("log\n")


@pytest.fixture
def medium_results(tmp_path):
    for row in PUBLISHED:
        _write(tmp_path, *row)
    return tmp_path


def test_overall_table_in_the_readmes_form(medium_results):
    entries, skipped = entries_from(medium_results)
    assert is_medium_board(entries) and not skipped
    text = render_medium_leaderboard(entries, skipped, listed=LISTED)
    lines = text.splitlines()
    i = lines.index("## Overall optimizer leaderboard")
    assert lines[i + 2] == "| Optimizer | Steps to 2.92 | Wallclock | Hparam summary | Log | Contributors |"
    assert lines[i + 4:i + 10] == [
        f"| {MUON} | 5960 ✗ | 24.5 min | lr=0.025, wd=0.01, wd=0.02 for mlp | [log](muon-record/train_log.txt) "
        "| @jadenj3o |",  # the README's spellings, with its links
        f"| {KRON} | 9000 ✗ | 51.7 min | lr=0.0005, wd=0.625 | [log](kron-bf16/train_log.txt) | @kellerjordan0 |",
        f"| {ADAMW} | 9500 ✓ | 40.0 min | lr=0.0015, wd=0.125, warmup_steps=500 | [log](adamw-fp32/train_log.txt) "
        "| @kellerjordan0 |",
        f"| {SHAMPOO} | ? | ? | ? | ? | ? |",  # optimizers without a result: in the listed order
        "| Sophia | ? | ? | ? | ? | ? |",
        "| Lion | ? | ? | ? | ? | ? |",
    ]


def test_record_histories(medium_results):
    entries, _ = entries_from(medium_results)
    lines = render_medium_leaderboard(entries, listed=LISTED).splitlines()
    hist = lines[lines.index("## Per-optimizer record histories"):]
    adamw, kron, muon = (f"### {n}" for n in (ADAMW, KRON, MUON))
    assert adamw in hist and kron in hist and muon in hist  # the README's spellings and links
    a = hist.index(adamw)
    assert hist[a + 2] == "| # | Steps to 2.92 | Hparam summary | Date | Log | Contributors |"
    assert [ln.split(" | ")[:4] for ln in hist[a + 4:a + 6]] == [
        ["| 1", "10500 ✗", "lr=0.0015, wd=0.125, warmup_steps=500", "06/15/25"],
        ["| 2", "9500 ✓", "lr=0.0015, wd=0.125, warmup_steps=500", "06/19/25"],
    ]
    k = hist.index(kron)
    assert [ln.split(" | ")[:2] for ln in hist[k + 4:k + 6]] == [["| 1", "9000 ✗"], ["| 2", "9000 ✗"]]  # a tie counts
    m = hist.index(muon)
    assert hist[m + 4].startswith("| 1 | 5960 ✗ | lr=0.025, wd=0.01, wd=0.02 for mlp | 04/22/25 |")
    assert hist[m + 5:] == []  # 6125 (06/19) did not beat 5960: not a record


def test_hparam_summary_falls_back_to_key_hparams(medium_results):
    entries, _ = entries_from(medium_results)
    e = next(x for x in entries if x.path.startswith("kron-fp32"))
    e.results.recipe = None
    assert hparam_summary(e).startswith("lr 0.0005")


def test_leaderboard_command_picks_the_medium_form(medium_results, tmp_path):
    out = tmp_path / "LB.md"
    r = subprocess.run([sys.executable, "-m", "optbench", "leaderboard", str(medium_results), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert text.startswith("# NanoGPT-Medium Optimizer Leaderboard")
    assert f"| {MUON} | 5960 ✗ |" in text


def test_mixed_tracks_keep_the_general_form(medium_results):
    r = load_recipe("nano-adamw")
    res = results_from_runs([RunRecord.from_curve([(0, 7.6), (100, 4.9)], target=5.0)], agent_id="x",
                            experiment="nano", optimizer="adamw", target=5.0, track="nano",
                            recipe={"name": r.name, "config": r.model_dump()})
    save_results(res, medium_results / "nano" / "results.json")
    entries, _ = entries_from(medium_results)
    assert not is_medium_board(entries)
