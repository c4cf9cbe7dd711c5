"""Plots are written as real PNGs; bad input is a user error."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest

from optbench.errors import OptbenchError
from optbench.results import RunRecord, load_results
from optbench.results.logparse import parse_log
from optbench.results.plots import plot_best_over_time, plot_curves

HERE = Path(__file__).parent
LOG = HERE / "fixtures" / "upstream_two_trials.txt"
WS = HERE / "fixtures" / "workspace"


def _runs(offset: float, n: int = 3):
    return [
        RunRecord.from_curve([(0, 10.8), (1000, 3.6 + offset), (2000, 3.30 + offset), (2500, 3.276 + offset + i * 1e-3)], target=3.28)
        for i in range(n)
    ]


def _is_png(p: Path) -> tuple[int, int]:
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(p)
    return img.shape[1], img.shape[0]


def test_plot_curves_writes_png(tmp_path):
    out = plot_curves(
        {"Muon": _runs(0.0), "AdamW": _runs(0.01), "upstream": parse_log(LOG).run_records(3.28)},
        3.28,
        tmp_path / "curves.png",
    )
    w, h = _is_png(out)
    assert w > 1000 and h > 500
    out2 = plot_curves({"Muon": _runs(0.0)}, 3.28, tmp_path / "std.png", band="std", rule="upstream-2026-04-30")
    _is_png(out2)


def test_plot_curves_other_target_and_single_run(tmp_path):
    runs = [RunRecord.from_curve([(0, 10.8), (4000, 3.0), (5960, 2.9140)], target=2.92)]
    _is_png(plot_curves({"medium": runs}, 2.92, tmp_path / "m.png"))


def test_plot_errors(tmp_path):
    with pytest.raises(OptbenchError, match="png"):
        plot_curves({"x": _runs(0)}, 3.28, tmp_path / "x.jpg")
    with pytest.raises(OptbenchError, match="no runs"):
        plot_curves({}, 3.28, tmp_path / "x.png")
    with pytest.raises(OptbenchError, match="band"):
        plot_curves({"x": _runs(0)}, 3.28, tmp_path / "x.png", band="iqr")
    assert not (tmp_path / "x.png").exists()


def test_plot_best_over_time(tmp_path):
    results = [load_results(p) for p in sorted(WS.rglob("results.json")) if "broken" not in str(p)]
    _is_png(plot_best_over_time([r for r in results if r.target == 3.28], tmp_path / "best.png"))
    with pytest.raises(OptbenchError, match="timestamp"):
        plot_best_over_time([], tmp_path / "none.png")
