"""Upstream-format logs: code + '=' lines + version line + eval lines, several trials per log."""

from __future__ import annotations

from pathlib import Path

import pytest

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.logparse import SEPARATOR, parse_log, parse_log_text

from .upstream_logs import LONG, SHORT, curve, log_text

FIXTURE = Path(__file__).parent / "fixtures" / "upstream_two_trials.txt"


def test_multi_trial_log():
    log = parse_log(FIXTURE)
    assert log.code.startswith("import os\n") and "def muon_update" in log.code
    assert log.code.endswith('print0("="*100)\n')
    assert "Running PyTorch" not in log.code.splitlines()[-1]
    assert log.version_line.startswith("Running PyTorch 2.10.0+cu128")
    assert log.torch_version == "2.10.0+cu128" and log.cuda_version == "12.8"
    assert log.device == "NVIDIA H100 80GB HBM3" and log.world_size == 8
    assert len(log.trials) == 2
    for t in log.trials:
        assert t.train_steps == 3250 and t.complete
        steps = [e.step for e in t.evals]
        # the track-3 cadence: every 125 while s/T < 0.9, then every 25, plus T: 38 evaluations
        assert len(steps) == 38 and steps[:3] == [0, 125, 250] and steps[-3:] == [3200, 3225, 3250]
        assert t.evals[0].val_loss == 10.82584
    assert log.trials[0].final_val_loss == 3.27841 and log.trials[1].final_val_loss == 3.27903
    assert log.trials[0].evals[1].train_time_s == pytest.approx(18.777)
    assert log.trials[0].evals[1].step_avg_ms == pytest.approx(150.22)


def test_log_runs_feed_stats_like_optbench_runs():
    log = parse_log(FIXTURE)
    runs = log.run_records(3.28)
    assert [r.trial for r in runs] == [0, 1] and all(r.log_path == str(FIXTURE) for r in runs)
    assert runs[0].steps_to_target == 3225 and runs[1].steps_to_target == 3225  # 3.28013 at 3200 is not < 3.28
    v = stats.evaluate_runs(runs, "upstream-2026-04-30", target=3.28)
    # mean at 3250 = (3.27841 + 3.27903)/2 = 3.27872; n=2 needs < 3.28 - 0.004/sqrt(2) = 3.277172 -> fail
    assert v.final.mean == pytest.approx(3.27872)
    assert not v.passed and v.first_below_target == 3225
    r = log.to_results(optimizer="Muon", target=3.28, rule="upstream-2026-04-30")
    assert r.num_runs == 2 and r.steps_to_target == 3225 and r.passes_rule is False
    assert r.train_steps == 3250 and r.provenance.world_size == 8
    assert r.wallclock_s == pytest.approx(484.866)


def test_older_ms_train_time_and_training_lines():
    text = "\n".join(
        [
            "print('hi')",
            SEPARATOR,
            "Running PyTorch 2.7.0.dev20250208+cu126 compiled for CUDA 12.6 on NVIDIA H100 80GB HBM3 with world_size 8",
            SEPARATOR,
            "Sat Jun 14 12:00:00 2025",
            "+-----------------------------------------------------------------------------+",
            "step:0/500 val_loss:10.8258 train_time:0ms step_avg:nanms",
            "step:1/500 train_time:145ms step_avg:nanms",
            "step:250/500 val_loss:4.1000 train_time:36750ms step_avg:147.00ms",
            "step:500/500 val_loss:3.9000 train_time:73500ms step_avg:147.00ms",
            "peak memory allocated: 30000 MiB reserved: 31000 MiB",
        ]
    )
    log = parse_log_text(text, "old.txt")
    assert len(log.trials) == 1
    t = log.trials[0]
    assert [e.step for e in t.evals] == [0, 250, 500]
    assert t.evals[1].train_time_s == pytest.approx(36.75)
    assert log.torch_version == "2.7.0.dev20250208+cu126"


def test_code_containing_a_separator_line_is_kept_as_code():
    text = "\n".join(
        [
            'BANNER = """',
            SEPARATOR,
            '"""',
            SEPARATOR,
            "Running PyTorch 2.11.0+cu128 compiled for CUDA 12.8 on NVIDIA A100 with world_size 1",
            SEPARATOR,
            "step:0/100 val_loss:10.82584 train_time:0.000s step_avg:0.00ms",
            "step:100/100 val_loss:3.50000 train_time:10.000s step_avg:100.00ms",
        ]
    )
    log = parse_log_text(text, "x.txt")
    assert log.code.count(SEPARATOR) == 1 and log.world_size == 1
    assert len(log.trials) == 1


def test_trial_split_without_step_zero_line():
    # a new block is recognised when the step goes backwards, even if step 0 was not logged
    body = [
        "step:0/200 val_loss:10.82584 train_time:0.000s step_avg:0.00ms",
        "step:200/200 val_loss:3.9 train_time:1.000s step_avg:5.00ms",
        "step:100/200 val_loss:4.5 train_time:0.500s step_avg:5.00ms",
        "step:200/200 val_loss:3.8 train_time:1.000s step_avg:5.00ms",
    ]
    log = parse_log_text("\n".join(["x=1", SEPARATOR] + body), "y.txt")
    assert [len(t.evals) for t in log.trials] == [2, 2]
    assert log.version_line is None


def test_nan_loss_is_a_diverged_run():
    body = [
        "step:0/200 val_loss:10.82584 train_time:0.000s step_avg:0.00ms",
        "step:100/200 val_loss:nan train_time:0.500s step_avg:5.00ms",
    ]
    log = parse_log_text("\n".join(["x=1", SEPARATOR] + body), "z.txt")
    run = log.run_records(3.28)[0]
    assert run.diverged and run.final_val_loss is None


@pytest.mark.parametrize(
    "lines,where,what",
    [
        (["x=1", "no separator here"], "bad.txt:", "no line of 100 '='"),
        (["x=1", SEPARATOR, "Running PyTorch on a toaster", SEPARATOR], "bad.txt:3", "version line"),
        (["x=1", SEPARATOR, "step:0/100 val_loss:10.8 train_time:0.000s step_avg:0.00ms", "step:100/100 val_loss:abc"],
         "bad.txt:4", "malformed eval line"),
        (["x=1", SEPARATOR, "step:0/100 val_loss:10.8", "step:zz/100 garbage"], "bad.txt:4", "malformed step line"),
        (["x=1", SEPARATOR, "step:200/100 val_loss:3.2"], "bad.txt:3", "beyond the run length"),
        (["x=1", SEPARATOR, "nothing"], "bad.txt", "no eval lines"),
    ],
)
def test_malformed_input_names_file_and_line(lines, where, what):
    with pytest.raises(OptbenchError) as e:
        parse_log_text("\n".join(lines), "bad.txt")
    assert where in str(e.value) and what in str(e.value)


def test_missing_file():
    with pytest.raises(OptbenchError, match="no such file"):
        parse_log("/nonexistent/log.txt")


def test_optbench_cpu_log_header():
    # the version line optbench's own loop writes on a CPU build of torch
    text = "\n".join(
        [
            "code = 1",
            SEPARATOR,
            "Running PyTorch 2.13.0+cpu compiled for CUDA None on CPU (x86_64, 2 threads) with world_size 1",
            SEPARATOR,
            "step:0/60 val_loss:10.82584 train_time:0.000s step_avg:nanms",
            "step:60/60 val_loss:6.12345 train_time:12.345s step_avg:205.75ms",
            "step:0/60 val_loss:10.82584 train_time:0.000s step_avg:nanms",
            "step:60/60 val_loss:6.20000 train_time:12.000s step_avg:200.00ms",
        ]
    )
    log = parse_log_text(text, "train_log.txt")
    assert log.torch_version == "2.13.0+cpu" and log.cuda_version is None
    assert log.device == "CPU (x86_64, 2 threads)" and log.world_size == 1
    assert [t.final_val_loss for t in log.trials] == [6.12345, 6.2]
    assert log.trials[0].evals[0].step_avg_ms != log.trials[0].evals[0].step_avg_ms  # nan


# ----------------------------------------------------------------------------- every era of upstream logs

@pytest.mark.parametrize(
    "version,torch,cuda,device,ws",
    [
        ("long", "2.10.0+cu128", "12.8", "NVIDIA H100 80GB HBM3", 8),
        ("short", "2.10.0+cu128", "12.8", None, None),  # most logs since June 2026 (#44, #45, #46)
        ("Running PyTorch 2.9.0+cu128 compiled for CUDA 12.8 on NVIDIA H800           with world_size 8",
         "2.9.0+cu128", "12.8", "NVIDIA H800", 8),
        (None, None, None, None, None),  # no version line at all (#19's logs)
    ],
)
def test_version_line_forms(version, torch, cuda, device, ws):
    log = parse_log_text(log_text([(500, curve(500, 3.9))], version=version), "v.txt")
    assert (log.torch_version, log.cuda_version, log.device, log.world_size) == (torch, cuda, device, ws)
    assert [e.step for e in log.trials[0].evals][:2] == [0, 125] and log.trials[0].final_val_loss == 3.9
    assert log.code.startswith("import torch\n") and "print0('=' * 100)" in log.code


def test_device_line_fills_a_short_version_line():
    text = log_text([(500, curve(500, 3.9))], version="short",
                    pre=["Running on device_name=NVIDIA GH200 120GB with world_size=4"])
    log = parse_log_text(text, "d.txt")
    assert log.device == "NVIDIA GH200 120GB" and log.world_size == 4


def test_extra_eval_fields_are_kept_and_any_numeric_one_can_be_the_metric():
    fields = {"val_avg_loss": lambda s, v: f"{v + 0.001:.5f}", "val_ema_loss": lambda s, v: f"{v - 0.002:.5f}",
              "ema_beta": "0", "extrap_count": "0", "extrap_rel": "0.000e+00", "handoff": "none"}
    text = log_text([(500, curve(500, 3.9)), (500, curve(500, 3.8))], version="short", fields=fields)
    log = parse_log_text(text, "x.txt")
    e = log.trials[0].evals[-1]
    assert e.val_loss == 3.9 and e.train_time_s == pytest.approx(75.0) and e.step_avg_ms == 150.0
    assert e.fields == {"val_avg_loss": 3.901, "val_ema_loss": 3.898, "ema_beta": 0.0, "extrap_count": 0.0,
                        "extrap_rel": 0.0, "handoff": "none"}
    assert log.metrics == ["val_loss", "val_avg_loss", "val_ema_loss", "ema_beta", "extrap_count", "extrap_rel"]
    ema = log.run_records(3.95, "val_ema_loss")
    assert [r.final_val_loss for r in ema] == [3.898, 3.798] and ema[0].metric == "val_ema_loss"
    assert [r.final_val_loss for r in log.run_records(3.95)] == [3.9, 3.8]
    with pytest.raises(OptbenchError, match=r"no eval field 'val_swa_loss'; its eval lines have val_loss, val_avg_loss"):
        log.run_records(3.95, "val_swa_loss")


def test_a_field_on_some_lines_only_gives_a_curve_at_those_steps():
    # #42 logs ref_gamma only from step 2850 on
    text = log_text([(500, curve(500, 3.9))], fields={"ref_gamma": lambda s, v: "-0.075" if s >= 450 else None})
    text = text.replace(" ref_gamma:None", "")
    run = parse_log_text(text, "r.txt").run_records(5.0, "ref_gamma")[0]
    assert [p.step for p in run.curve] == [450, 475, 500] and run.final_val_loss == -0.075


@pytest.mark.parametrize(
    "pre,per_trial,seeds",
    [
        (["Using seed=7"], None, [7, None]),  # a seed line applies to the next trial that starts
        ([], lambda i: [f"trial:{i + 1}/2 seed:{10 + i}"], [10, 11]),  # #28's multi-trial form
        ([], lambda i: [f"Using seed_env={i}"], [0, 1]),
        (["config data_dir=/x train_steps=500 seed=4 num_trials=1"], None, [4, None]),
        (["Using checkpoint_prefix=seed3_run", "Using seed_policy=fixed"], None, [None, None]),  # not seed lines
    ],
)
def test_seeds_come_from_the_log(pre, per_trial, seeds):
    text = log_text([(500, curve(500, 3.9)), (500, curve(500, 3.8))], version=None, pre=pre, per_trial=per_trial,
                    train_lines=True)
    log = parse_log_text(text, "s.txt")
    assert [t.seed for t in log.trials] == seeds
    assert [r.seed for r in log.run_records(3.95)] == seeds


def test_ms_timings_and_training_lines_in_a_short_version_log():
    log = parse_log_text(log_text([(500, curve(500, 3.9))], version="short", unit="ms", train_lines=True), "m.txt")
    assert log.trials[0].evals[1].train_time_s == pytest.approx(18.75) and len(log.trials[0].evals) == 7


def test_optbench_header_names_track_and_seeds():
    code = "# optbench run: track=nano recipe=nano-muon seeds=[3, 5] train_steps=100\nx = 1\n"
    log = parse_log_text(log_text([(100, {0: 7.6, 100: 5.1}), (100, {0: 7.6, 100: 5.2})], code=code), "o.txt")
    assert log.track == "nano" and [t.seed for t in log.trials] == [3, 5]


def test_console_transcript_without_code():
    text = "step:125/500 val_loss:4.5 train_time:67.200s step_avg:537.60ms\nstep:500/500 val_loss:3.9 train_time:1s step_avg:1ms\n"
    with pytest.raises(OptbenchError, match="no line of 100 '='"):
        parse_log_text(text, "stdout.txt")
    log = parse_log_text(text, "stdout.txt", transcript=True)
    assert log.code == "" and [e.step for e in log.trials[0].evals] == [125, 500]


@pytest.mark.parametrize(
    "line,what",
    [
        ("step:100/100 val_loss:3.5 garbage", "'garbage' is not key:value"),
        ("step:100/100 val_loss:abc train_time:1s", "expected 'step:S/T val_loss:X"),
        ("step:100/100 val_loss:3.5 train_time:fast", "malformed train_time 'fast'"),
    ],
)
def test_malformed_eval_lines_name_the_line(line, what):
    with pytest.raises(OptbenchError) as e:
        parse_log_text("\n".join(["x=1", SEPARATOR, "step:0/100 val_loss:10.8", line]), "bad.txt")
    assert "bad.txt:4" in str(e.value) and what in str(e.value)


def test_the_short_and_long_version_constants_are_what_logs_print():
    assert LONG.startswith(SHORT + " on ")


def test_speedrun_era_logs_python_line_nvidia_smi_and_second_separator():
    # 2025 speedrun logs (the medium record's era): Running Python, Running PyTorch, nvidia-smi, then '=' again
    text = "\n".join(["import torch", SEPARATOR, "Running Python 3.12.9 (main, Feb  5 2025) [Clang 19.1.6 ]",
                      "Running PyTorch 2.7.0.dev20250208+cu126 compiled for CUDA 12.6", "Thu Apr 24 21:53:41 2025",
                      "+------------------------------------------+", "| NVIDIA-SMI 550.54.15   Driver Version |",
                      "|==========================================|", "", SEPARATOR,
                      "step:0/5960 val_loss:10.825846 train_time:0ms step_avg:0.03ms",
                      "step:1/5960 train_time:1000ms step_avg:1000.00ms",
                      "step:5960/5960 val_loss:2.919750 train_time:1470000ms step_avg:246.64ms"])
    log = parse_log_text(text, "record8.txt")
    assert log.code == "import torch\n" and log.torch_version == "2.7.0.dev20250208+cu126" and log.cuda_version == "12.6"
    assert log.trials[0].curve == [(0, 10.825846), (5960, 2.91975)] and log.trials[0].evals[1].train_time_s == 1470.0


def test_2024_logs_open_with_a_separator_and_say_pytorch_in_lower_case():
    text = "\n".join([SEPARATOR, "import torch", SEPARATOR, "Running pytorch 2.4.1+cu121 compiled for CUDA 12.1",
                      "nvidia-smi:", SEPARATOR, "step:0/6000 val_loss:11.0149 train_time:305ms step_avg:nanms",
                      "step:1/6000 train_loss:11.0091 train_time:24179ms step_avg:nanms",
                      "step:6000/6000 val_loss:3.2800 train_time:1800000ms step_avg:300.00ms"])
    log = parse_log_text(text, "soap.txt")
    assert log.code == "import torch\n" and log.torch_version == "2.4.1+cu121"
    assert [e.step for e in log.trials[0].evals] == [0, 6000]
