"""`optbench compare`: the four-way comparison's figures (val loss by tokens and by wall clock) from runs."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from optbench.cli import main
from optbench.errors import OptbenchError
from optbench.results.comparison import (FILES, _legend_labels, compare_sources, comparison_line, named_source,
                                         plot_comparison)
from optbench.results.schema import RunRecord, results_from_runs, save_results


def run(points, seed=0):
    """points: (step, val_loss, train_time_s)."""
    return RunRecord.from_curve([{"step": s, "val_loss": v, "train_time_s": t} for s, v, t in points], target=3.28,
                                seed=seed)


def test_line_is_the_mean_over_seeds_at_common_steps():
    a = run([(0, 10.8, 0.0), (125, 4.0, 18.0), (250, 3.6, 36.0)])
    b = run([(0, 10.8, 0.0), (125, 4.2, 20.0), (200, 3.9, 30.0), (250, 3.4, 40.0)], seed=1)
    ln = comparison_line("Muon", [a, b])
    assert ln.steps == [0, 125, 250] and ln.n == 2
    assert ln.val_loss == pytest.approx([10.8, 4.1, 3.5])
    assert ln.minutes == pytest.approx([0.0, 19 / 60, 38 / 60])
    assert ln.ms_per_step == pytest.approx(38_000 / 250)


def test_a_diverged_seed_ends_the_line_and_missing_times_are_none():
    a = run([(0, 10.8, 0.0), (125, 4.0, 18.0), (250, float("nan"), 36.0)])
    ln = comparison_line("SOAP", [a])
    assert ln.steps == [0, 125]
    untimed = RunRecord.from_curve([(0, 10.8), (125, 4.0)], target=3.28)
    assert comparison_line("x", [untimed]).ms_per_step is None
    with pytest.raises(OptbenchError, match="no runs"):
        comparison_line("y", [])


def test_an_upstream_log_gives_its_own_step_avg(tmp_path):
    """Upstream's clock starts after the first steps: its log's step_avg (705525 ms / 5090 steps = 138.61), not
    train_time / step (138.3), is the README legend's 139ms/step."""
    from optbench.results.logparse import parse_log

    log = tmp_path / "adam.txt"
    log.write_text("import torch\n" + "=" * 100 + "\n"
                   "step:0/5100 val_loss:10.8258 train_time:0ms step_avg:nanms\n"
                   "step:5100/5100 val_loss:3.3406 train_time:705525ms step_avg:138.61ms\n")
    rec = parse_log(log).trials[0].run_record(target=3.28)
    ln = comparison_line("Adam", [rec, rec])
    assert ln.ms_per_step == pytest.approx(138.61)
    assert _legend_labels([ln]) == ["Adam (n=2)   139ms/step"]
    assert comparison_line("x", [run([(0, 11, 0), (100, 4, 13.9)])]).ms_per_step == pytest.approx(139)


def test_legend_right_aligns_the_speeds():
    lines = [comparison_line("Adam", [run([(0, 11, 0), (100, 4, 13.9)])]),
             comparison_line("DistributedShampoo", [run([(0, 11, 0), (100, 4, 17.9)])])]
    labels = _legend_labels(lines)
    assert labels == ["Adam                 139ms/step", "DistributedShampoo   179ms/step"]
    assert len({len(x) for x in labels}) == 1


def test_two_figures_by_tokens_and_by_time(tmp_path):
    lines = [comparison_line(n, [run([(0, 10.8, 0), (125, 4.0 + d, 18), (250, 3.3 + d, 36)])])
             for n, d in (("Adam", 0.06), ("Muon", 0.0))]
    paths = plot_comparison(lines, tmp_path / "figs", tokens_per_step=524288, hardware="8xH100", subject="test")
    assert [p.name for p in paths] == [FILES["tokens"], FILES["time"]]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert mpimg.imread(p).shape[:2] == (970, 1400)  # the README's figure size
    steps_only = plot_comparison(lines, tmp_path / "s")
    assert [p.name for p in steps_only] == [FILES["steps"], FILES["time"]]
    with pytest.raises(OptbenchError, match="share a label"):
        plot_comparison(lines + lines[:1], tmp_path / "x")


def _results_dir(root, name, recipe, optimizer, final, track="speedrun-101824"):
    runs = [run([(0, 10.8, 0.0), (125, 4.0, 17.5), (250, final, 35.0)])]
    res = results_from_runs(runs, agent_id="me", experiment=name, optimizer=optimizer, target=3.28, track=track,
                            recipe={"name": recipe, "config": {}}, provenance={"device": "NVIDIA H100", "world_size": 8})
    save_results(res, root / name / "results.json")
    return root / name


def test_sources_label_by_recipe_and_take_tokens_and_hardware_from_the_runs(tmp_path):
    a = _results_dir(tmp_path, "a", "speedrun-101824-adam", "adamw", 3.34)
    m = _results_dir(tmp_path, "m", "speedrun-101824-muon", "muon", 3.28)
    paths = compare_sources([(None, str(a)), ("Muon", str(m))], tmp_path / "out")
    assert [p.name for p in paths] == [FILES["tokens"], FILES["time"]]  # tokens per step from the runs' track


def test_cli_compare(tmp_path, capsys):
    a = _results_dir(tmp_path, "a", "speedrun-101824-adam", "adamw", 3.34)
    m = _results_dir(tmp_path, "m", "speedrun-101824-muon", "muon", 3.28)
    with pytest.raises(SystemExit) as e:
        main(["compare", f"Adam={a}", f"Muon={m}", "--out", str(tmp_path / "figs"), "--subject", "NanoGPT speedrun"])
    assert e.value.code == 0
    assert (tmp_path / "figs" / FILES["tokens"]).is_file() and (tmp_path / "figs" / FILES["time"]).is_file()
    with pytest.raises(SystemExit) as e:
        main(["compare", str(tmp_path / "nope"), "--out", str(tmp_path / "f2")])
    assert e.value.code == 2 and "no such file" in capsys.readouterr().err


def test_named_source_splits_where_the_path_exists(tmp_path):
    f = tmp_path / "log.txt"
    f.write_text("x")
    assert named_source(f"DistributedShampoo (UpdateFreq=10)={f}") == ("DistributedShampoo (UpdateFreq=10)", str(f))
    assert named_source(str(f)) == (None, str(f))
    assert named_source("Adam=/no/such/file") == (None, "Adam=/no/such/file")
