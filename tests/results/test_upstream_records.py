"""bench/upstream_records.py: the track-3 README's evidence column recomputed from its logs.

A synthetic clone (README table + logs written here in the upstream formats) checks each mapping and verdict;
with OPTBENCH_UPSTREAM_CLONE pointing to a real clone of KellerJordan/modded-nanogpt the real table is checked.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from .upstream_logs import curve, log_text

BENCH = Path(__file__).resolve().parents[2] / "bench" / "upstream_records.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("upstream_records", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


RULES = "**The precise condition we require is `(3.28 - avg_loss) * num_runs**0.5 >= 0.004`**, where ...\n"


def _row(num, steps, evidence, link, date="2026/05/03"):
    return f"| {num} | {steps} | {evidence} | description | {date} | [log]({link}) | @someone |"


def _clone(tmp_path: Path) -> Path:
    t3 = tmp_path / "clone" / "records" / "track_3_optimization"
    res = t3 / "results"
    (res / "20260510_seeds" / "sweep").mkdir(parents=True)
    (res / "20260512_ema").mkdir()
    (res / "20260514_partial").mkdir()
    # row 1: one multi-trial log at the top of results/ (n=2, 3.27865 and 3.27875 at 3250 -> mean 3.2787: fails n=2)
    (res / "multi.txt").write_text(log_text([(3250, curve(3250, 3.27865)), (3250, curve(3250, 3.27875))]))
    # row 2: per-seed logs in a folder and a subfolder (3 runs, short version lines, seeds printed) plus an earlier
    # submission with another run length, which the row does not count
    for s, final in enumerate((3.2770, 3.2772, 3.2774)):
        where = res / "20260510_seeds" / ("sweep" if s == 2 else "")
        (where / f"seed{s}.txt").write_text(log_text([(3200, curve(3200, final))], version="short",
                                                     pre=[f"Using seed={s}"]))
    (res / "20260510_seeds" / "old.txt").write_text(log_text([(3500, curve(3500, 3.2700))]))
    # row 46: a claim on val_ema_loss (the bench's CLAIM_METRIC), linked through the folder's README.md
    ema = {"val_ema_loss": lambda s, v: f"{v - 0.0020:.5f}"}
    for s in range(2):
        (res / "20260512_ema" / f"s{s}.txt").write_text(log_text([(2900, curve(2900, 3.2790 + s * 1e-4))],
                                                                  version="short", fields=ema))
    (res / "20260512_ema" / "README.md").write_text("# ema record\n")
    # row 4: the README says n=5, the folder holds 1 log
    (res / "20260514_partial" / "only.txt").write_text(log_text([(3000, curve(3000, 3.2770))]))
    (res / "20260514_partial" / "README.md").write_text("# partial\n")
    readme = "\n".join([
        "# Modded-NanoGPT Optimization Benchmark", "",
        "| # | Steps to 3.28 | Evidence | Description | Date | Log | Contributors |",
        "| - | - | - | - | - | - | - |",
        _row(1, "3250", "3.2787 (n=2)Ⓧ", "results/multi.txt", "2026/04/26"),
        _row(2, "3200(!)", "3.2772 (n=3)✓", "results/20260510_seeds/seed0.txt"),
        _row(3, "3200", "3.2790 (n=3)✓", "results/20260510_seeds/seed0.txt"),  # a README slip: mean is 3.2772
        _row(46, "2900(!)", "3.2771 (n=2)✓", "results/20260512_ema/README.md"),
        _row(4, "3000", "3.2770 (n=5)✓", "results/20260514_partial/README.md"),
        _row(5, "3000", "3.2770 (n=1)✓", "results/gone.txt"),
        "", "## Rules", "", RULES])
    (t3 / "README.md").write_text(readme)
    return tmp_path / "clone"


def test_synthetic_clone_rows(bench, tmp_path, capsys):
    clone = _clone(tmp_path)
    assert bench.main([str(clone), "--out", str(tmp_path / "table.md")]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "table.md").read_text() == out
    rows = {int(ln.split("|")[1]): [c.strip() for c in ln.split("|")[1:-1]]
            for ln in out.splitlines() if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()}
    # columns: #, README steps, README evidence, logs, n, mean @ steps, verdict, earliest pass, match
    assert rows[1][3:] == ["1", "2", "3.278700", "Ⓧ", "-", "yes"]
    assert rows[2][3:] == ["3", "3", "3.277200", "✓", "3105", "yes"]  # old.txt (T=3500) is not counted
    assert "- #2: the set already passes at step 3105; the README claims 3200" in out
    assert rows[3][8] == "no: mean 3.277200"
    assert rows[46][3:] == ["2", "2", "3.277050", "✓", "2875", "yes"]  # on val_ema_loss; 3.27705 prints 3.2771
    assert rows[4][8] == "logs missing upstream (1 of 5 runs)"
    assert rows[5][8].startswith("logs missing upstream (results/gone.txt: linked file not in the clone)")
    assert "rows matched: 3 / rows with logs: 4 (README rows: 6; logs missing upstream: 2)" in out
    assert "named by the README: `(3.28 - avg_loss) * num_runs**0.5 >= 0.004`" in out
    assert "- #46: claim on val_ema_loss" in out


def test_printed_as_rounds_half_up_directly_or_via_five_decimals(bench):
    assert bench.printed_as(3.27765, "3.2777") and not bench.printed_as(3.27765, "3.2776")
    assert bench.printed_as(3.278845, "3.2789")  # 3.27885 -> 3.2789 (#17)
    assert bench.printed_as(3.278845, "3.2788")
    assert not bench.printed_as(3.277977, "3.2778")  # #8's README slip


def test_readme_errors(bench, tmp_path, capsys):
    assert bench.main([str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    t3 = tmp_path / "records" / "track_3_optimization"
    t3.mkdir(parents=True)
    (t3 / "README.md").write_text("# nothing here\n")
    assert bench.main([str(tmp_path)]) == 2
    assert "no results-table rows" in capsys.readouterr().err


def test_real_clone(bench, capsys):
    """The real README (set OPTBENCH_UPSTREAM_CLONE to a work tree of KellerJordan/modded-nanogpt)."""
    clone = os.environ.get("OPTBENCH_UPSTREAM_CLONE")
    if not clone:
        pytest.skip("OPTBENCH_UPSTREAM_CLONE is not set (a clone of KellerJordan/modded-nanogpt to check against)")
    assert bench.main([clone]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and ln.split("|")[1].strip().isdigit()]
    assert len(rows) >= 46
    bad = {int(r.split("|")[1]) for r in rows if r.split("|")[-2].strip() not in ("yes",)
           and not r.split("|")[-2].strip().startswith("logs missing")}
    # the two README values that differ from their own logs (bench README_SLIPS), nothing else
    assert bad == set(bench.README_SLIPS)
    assert "#46: claim on val_ema_loss" in out
