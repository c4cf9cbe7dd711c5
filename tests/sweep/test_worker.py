"""Workers: trials are normal runs; faults (divergence, SIGKILL, Ctrl-C) lose nothing; pruning; the budget."""

from __future__ import annotations

import json
import signal
import time

import pytest

from optbench.errors import OptbenchError
from optbench.results.leaderboard import entries_from
from optbench.results.schema import load_results
from optbench.sweep import open_sweep, run_worker, sweep_status
from optbench.sweep.status import trial_kind
from optbench.sweep.worker import _surplus
from tests.sweep.conftest import popen_worker, tiny_sweep, unique

pytestmark = pytest.mark.slow


def _quiet(line: str) -> None:
    pass


def _wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_trials_are_normal_runs(sqlite_url, tmp_path):
    s = tiny_sweep("normal", sqlite_url, tmp_path, max_trials=3)
    rep = run_worker("normal", sqlite_url, threads=1, log=_quiet)
    assert [t.state for t in rep.trials] == ["complete"] * 3 and rep.stopped == "trial budget spent (3/3 trials)"
    st = sweep_status(open_sweep("normal", sqlite_url))
    assert st.counts == {"complete": 3} and st.used == 3 and st.best.value == min(t.value for t in s.study.trials)
    for t in open_sweep("normal", sqlite_url).study.trials:
        d = s.trial_dir(t.number)
        assert d == tmp_path / "normal" / f"trial-{t.number:04d}"  # predictable
        r = load_results(d / "results.json")  # the run's own record, as any run writes it
        assert r.experiment == f"sweep normal trial {t.number}" and r.train_steps == 20
        assert r.key_hparams["lr"] == pytest.approx(t.params["lr"])
        assert t.value == pytest.approx(sum(x.final_val_loss for x in r.runs) / len(r.runs))
        log = (d / "train_log.txt").read_text()
        assert f"# --set lr={t.params['lr']!r}" in log and "step:20/20 val_loss:" in log
        rec = json.loads((d / "trial.json").read_text())
        assert rec["state"] == "complete" and rec["value"] == t.value and rec["device_seconds"] > 0
    timing = [json.loads(x) for f in (tmp_path / "normal" / "workers").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(timing) == 3 and all(0 < x["overhead_s"] < x["run_s"] for x in timing)


def test_diverging_trial_is_failed_with_its_reason_and_the_worker_goes_on(sqlite_url, tmp_path):
    s = tiny_sweep("div", sqlite_url, tmp_path, space={"lr": {"log": [1e-4, 1e7]}}, max_trials=2)
    s.study.enqueue_trial({"lr": 1e6})
    s.study.enqueue_trial({"lr": 3e-3})
    rep = run_worker("div", sqlite_url, threads=1, log=_quiet)
    assert [t.state for t in rep.trials] == ["failed", "complete"]
    bad = open_sweep("div", sqlite_url).study.trials[0]
    assert bad.user_attrs["fail_kind"] == "diverged"
    assert bad.user_attrs["fail_reason"].startswith("run diverged at step ") and "is not finite" in bad.user_attrs["fail_reason"]
    assert json.loads((s.trial_dir(0) / "trial.json").read_text())["state"] == "failed"


def test_sigkilled_worker_trial_fails_after_the_heartbeat_and_is_retried(sqlite_url, tmp_path):
    s = tiny_sweep("kill", sqlite_url, tmp_path, max_trials=1, steps=100)
    p = popen_worker("kill", sqlite_url, "--heartbeat", "1")
    try:
        _wait_for(lambda: (s.trial_dir(0) / "metrics.jsonl").is_file(), 120, "the trial to start training")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    st = sweep_status(open_sweep("kill", sqlite_url))
    assert st.counts == {"running": 1}  # nobody knows yet that its worker is dead
    # past the grace period (3 x heartbeat): SQLite stores heartbeats in whole seconds, so a silence of 3.5 s can
    # read as 3 s, which is not yet stale; 5 s is past it on any rounding
    time.sleep(5.0)
    rep = run_worker("kill", sqlite_url, threads=1, heartbeat_interval=1, grace_period=3, log=_quiet)
    trials = open_sweep("kill", sqlite_url).study.trials
    assert [trial_kind(t) for t in trials] == ["lost", "complete"]
    assert trials[1].params == trials[0].params and trials[1].system_attrs["failed_trial"] == 0
    assert [t.number for t in rep.trials] == [1]
    assert sweep_status(open_sweep("kill", sqlite_url)).used == 1  # the lost trial does not use the budget


def test_interrupted_sweep_resumes_and_loses_no_finished_trial(sqlite_url, tmp_path):
    s = tiny_sweep("resume", sqlite_url, tmp_path, max_trials=3, steps=150)  # long enough that trial 2 is mid-run when Ctrl-C lands, even under load
    p = popen_worker("resume", sqlite_url)
    try:
        _wait_for(lambda: (s.trial_dir(2) / "metrics.jsonl").is_file(), 180, "the third trial to start")
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out[-2000:]
    assert "trial 2 will be rerun" in out and "Traceback" not in out
    before = {t.number: t.value for t in open_sweep("resume", sqlite_url).study.trials if t.value is not None}
    assert sorted(before) == [0, 1]
    run_worker("resume", sqlite_url, threads=1, log=_quiet)
    trials = open_sweep("resume", sqlite_url).study.trials
    assert {t.number: t.value for t in trials if t.number in before} == before
    kinds = [trial_kind(t) for t in trials]
    assert kinds == ["complete", "complete", "lost", "complete"] and trials[3].user_attrs["retry_of"] == 2
    assert trials[3].params == trials[2].params


def test_pruned_trials_are_marked_and_never_reach_a_leaderboard(sqlite_url, tmp_path):
    s = tiny_sweep("prune", sqlite_url, tmp_path, space={"aux.head_lr": {"log": [1e-7, 1e-1]}}, max_trials=6,
                   steps=60, pruner="median")
    for lr in (1e-2, 8e-3, 1.2e-2, 9e-3, 1e-7, 2e-7):  # four good startup trials, then two whose head stays ~0
        s.study.enqueue_trial({"aux.head_lr": lr})
    rep = run_worker("prune", sqlite_url, threads=1, log=_quiet)
    assert [t.state for t in rep.trials] == ["complete"] * 4 + ["pruned"] * 2
    trials = open_sweep("prune", sqlite_url).study.trials
    for t in trials[4:]:
        assert t.user_attrs["pruned_at_step"] == 20
        d = s.trial_dir(t.number)
        assert not (d / "results.json").exists() and json.loads((d / "trial.json").read_text())["state"] == "pruned"
    entries, skipped = entries_from(tmp_path / "prune")
    assert sorted(e.path for e in entries) == [f"trial-{n:04d}/results.json" for n in range(4)] and not skipped


def test_a_trial_asked_after_the_budget_is_taken_is_surplus(sqlite_url, tmp_path):
    s = tiny_sweep("race", sqlite_url, tmp_path, max_trials=1)
    first, second = s.study.ask(), s.study.ask()  # two workers asked at the same moment
    assert not _surplus(s, first) and _surplus(s, second)
    rep = run_worker("race", sqlite_url, threads=1, log=_quiet)  # the running trials hold the only slot
    assert rep.trials == [] and rep.stopped == "trial budget spent (2/1 trials)"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_at_once_share_one_sweep(backend, sqlite_url, tmp_path, request):
    url = sqlite_url if backend == "sqlite" else request.getfixturevalue("pg_url")
    name = unique("two")
    s = tiny_sweep(name, url, tmp_path, max_trials=6)
    t0 = time.perf_counter()
    procs = [popen_worker(name, url) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    wall = time.perf_counter() - t0
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = open_sweep(name, url).study.trials
    assert len(trials) == 6 and all(trial_kind(t) == "complete" for t in trials)
    per_worker = [len(f.read_text().splitlines()) for f in (tmp_path / name / "workers").glob("*.jsonl")]
    assert sorted(per_worker)[0] >= 1 and sum(per_worker) == 6  # both workers ran trials, none twice
    assert len({s.trial_dir(t.number) for t in trials}) == 6 and all((s.trial_dir(t.number) / "results.json").is_file()
                                                                     for t in trials)
    print(f"\n{backend}: 2 workers, 6 trials of 20 nano steps in {wall:.1f} s wall; trials per worker {per_worker}")


def test_a_spent_budget_can_be_raised_and_workers_run_on(sqlite_url, tmp_path):
    from optbench.sweep.study import set_budget

    tiny_sweep("more", sqlite_url, tmp_path, max_trials=1)
    assert run_worker("more", sqlite_url, threads=1, log=_quiet).stopped == "trial budget spent (1/1 trials)"
    # creating it again with --resume and a larger budget (what a study file's raised `trials` does) extends it
    s = tiny_sweep("more", sqlite_url, tmp_path, max_trials=2, resume=True)
    assert s.spec.max_trials == 2 and open_sweep("more", sqlite_url).spec.max_trials == 2
    rep = run_worker("more", sqlite_url, threads=1, log=_quiet)
    assert [t.state for t in rep.trials] == ["complete"] and rep.stopped == "trial budget spent (2/2 trials)"
    assert [t.number for t in open_sweep("more", sqlite_url).study.trials] == [0, 1]  # trial 0 kept, not rerun
    # --resume without a budget keeps the stored one; a bad budget is refused with the sweep's name
    assert tiny_sweep("more", sqlite_url, tmp_path, resume=True).spec.max_trials == 2
    with pytest.raises(OptbenchError, match="sweep more: a budget must be positive, got max_device_hours=0"):
        set_budget(open_sweep("more", sqlite_url), max_device_hours=0)
    with pytest.raises(OptbenchError, match="give --max-trials and/or --max-device-hours"):
        set_budget(open_sweep("more", sqlite_url))
