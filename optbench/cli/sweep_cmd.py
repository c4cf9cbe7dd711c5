"""`optbench sweep create|worker|status|budget|report|export|shortcut`: thin wrappers over optbench.sweep."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from optbench.cli.app import app

sweep_app = typer.Typer(no_args_is_help=True, help="Hyperparameter sweeps on Optuna, shared by many workers.")
app.add_typer(sweep_app, name="sweep")

StorageOpt = typer.Option(None, "--storage", help="sqlite:///FILE (default sweeps/optuna.db, or "
                          "$OPTBENCH_SWEEP_STORAGE), postgresql://..., mysql://...", show_default=False)


def _out(line: str) -> None:
    typer.echo(line)


@sweep_app.command("create")
def create_cmd(
    name: str = typer.Argument(..., help="sweep name (unique in the storage)"),
    track: str = typer.Option(..., "--track", help="small | medium | cpu | nano | proxy"),
    space: Path = typer.Option(..., "--space", help="search-space TOML file"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="base recipe: bundled name or .toml file"),
    storage: Optional[str] = StorageOpt,
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | random | qmc | grid | cmaes"),
    seeds: int = typer.Option(1, "--seeds", min=1, help="seeds per trial (the objective averages them)"),
    objective: str = typer.Option("loss", "--objective", help="loss | steps"),
    max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1),
    max_device_hours: Optional[float] = typer.Option(None, "--max-device-hours"),
    pruner: str = typer.Option("none", "--pruner", help="none | median | halving (on the eval curve)"),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="trial run folders (default sweeps/NAME)"),
    data: Optional[Path] = typer.Option(None, "--data", help="shards (default: the track's bundled data)"),
    resume: bool = typer.Option(False, "--resume", help="continue an existing sweep of this name"),
) -> None:
    """Create a sweep: the track, base recipe, space, objective, sampler and budget go into the storage."""
    from optbench.sweep import create_sweep
    from optbench.sweep.storage import redact

    s = create_sweep(name, track=track, space=space, optimizer=optimizer, recipe=recipe, storage=storage,
                     sampler=sampler, seeds=seeds, objective=objective, max_trials=max_trials,
                     max_device_hours=max_device_hours, pruner=pruner, runs_dir=runs_dir, data_dir=data, resume=resume)
    _out(f"sweep {s.name} in {redact(s.storage_url)}: {s.recipe.name} on {s.spec.track}, tuning "
         f"{', '.join(s.spec.space)}; start workers with `optbench sweep worker {s.name}"
         + (f" --storage {redact(s.storage_url)}" if storage else "") + "`")


@sweep_app.command("worker")
def worker_cmd(
    name: str = typer.Argument(...),
    storage: Optional[str] = StorageOpt,
    trials: Optional[int] = typer.Option(None, "--trials", min=1, help="stop after N trials (default: budget)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    data: Optional[Path] = typer.Option(None, "--data", help="this machine's shard folder"),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="this machine's trial folders"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads for this worker"),
    tracker: List[str] = typer.Option([], "--tracker", help="wandb | tensorboard | trackio (repeatable)"),
    heartbeat: int = typer.Option(20, "--heartbeat", min=1, help="seconds between heartbeats; a trial silent "
                                  "for 3x this is failed and retried"),
    workspace: Optional[str] = typer.Option(None, "--workspace", help="claim the sweep and post results there"),
    agent_id: Optional[str] = typer.Option(None, "--agent-id", envvar=["OPTBENCH_AGENT_ID", "AGENT_ID"]),
    slurm: List[str] = typer.Option([], "--slurm", help="submit as SLURM jobs: KEY=VALUE submitit parameters "
                                    "(partition=gpu, timeout_min=60, gpus_per_node=1)"),
    workers: int = typer.Option(1, "--workers", min=1, help="with --slurm: number of worker jobs"),
    slurm_cluster: str = typer.Option("slurm", "--slurm-cluster", help="slurm | local (submitit's local executor)"),
) -> None:
    """Run trials until the sweep's budget is spent (any number of workers at once, on any machines)."""
    kw = dict(n_trials=trials, device=device, data_dir=data, runs_dir=runs_dir, threads=threads,
              trackers=tuple(tracker), heartbeat_interval=heartbeat, workspace=workspace, agent_id=agent_id)
    if slurm or slurm_cluster != "slurm":
        from optbench.sweep.slurm import launch_workers

        jobs = launch_workers(name, storage, workers, slurm, folder=Path(runs_dir or "sweeps") / "slurm" / name,
                              cluster=slurm_cluster, **kw)
        _out(f"submitted {len(jobs)} worker job(s): {', '.join(str(j.job_id) for j in jobs)}")
        return
    from optbench.sweep import run_worker

    try:
        report = run_worker(name, storage, **kw)
    except KeyboardInterrupt:
        print("optbench: interrupted; the running trial is enqueued again: `optbench sweep worker "
              f"{name}` resumes the sweep", file=sys.stderr)
        raise typer.Exit(130)
    _out(report.summary())


@sweep_app.command("status")
def status_cmd(name: str = typer.Argument(...), storage: Optional[str] = StorageOpt) -> None:
    """Trials done / running / failed / pruned, the best so far, the budget used."""
    from optbench.sweep.space import decode_params
    from optbench.sweep.stages import load_stages
    from optbench.sweep.status import sweep_status

    for s in load_stages(name, storage):
        st = sweep_status(s)
        c = st.counts
        cap = f" of {st.max_trials}" if st.max_trials else ""
        hours = f" of {st.max_device_hours:g}" if st.max_device_hours else ""
        _out(f"{s.name}: {st.finished}{cap} trials done ({c.get('complete', 0)} complete, {c.get('pruned', 0)} "
             f"pruned, {c.get('failed', 0)} failed), {c.get('running', 0)} running, {c.get('waiting', 0)} waiting, "
             f"{c.get('lost', 0)} lost and retried; {st.device_hours:.4f}{hours} device-hours used"
             + ("; budget spent" if st.spent() else ""))
        if st.best is not None:
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in decode_params(st.best.params).items())
            _out(f"  best: {st.best.value:.6g} (trial {st.best.number}: {params}) in {st.best.user_attrs.get('run_dir')}")


@sweep_app.command("budget")
def budget_cmd(
    name: str = typer.Argument(...),
    storage: Optional[str] = StorageOpt,
    max_trials: Optional[int] = typer.Option(None, "--max-trials", min=1),
    max_device_hours: Optional[float] = typer.Option(None, "--max-device-hours"),
) -> None:
    """Change a sweep's budget (raise it to run more trials where the sweep stopped; finished trials are kept)."""
    from optbench.sweep import open_sweep
    from optbench.sweep.study import set_budget

    old = open_sweep(name, storage)
    new = set_budget(old, max_trials=max_trials, max_device_hours=max_device_hours)
    _out(f"sweep {name}: budget {_budget(old.spec)} -> {_budget(new.spec)}; start workers with "
         f"`optbench sweep worker {name}" + (" --storage ..." if storage else "") + "`")


def _budget(spec) -> str:
    parts = [f"{spec.max_trials} trials" if spec.max_trials else "", f"{spec.max_device_hours:g} device-hours"
             if spec.max_device_hours else ""]
    return ", ".join(p for p in parts if p) or "none"


@sweep_app.command("report")
def report_cmd(name: str = typer.Argument(...), out: Path = typer.Option(..., "--out", help="report folder"),
               storage: Optional[str] = StorageOpt) -> None:
    """Markdown report: best configurations, every trial, plots, importances, budget."""
    from optbench.sweep import write_report

    _out(f"wrote {write_report(name, out, storage)}")


@sweep_app.command("export")
def export_cmd(name: str = typer.Argument(...), out: Path = typer.Option(..., "--out", help="RECIPE.toml"),
               storage: Optional[str] = StorageOpt) -> None:
    """The best configuration as a recipe that cites the sweep and carries its tuning_budget."""
    from optbench.sweep import export_recipe

    _out(f"wrote {export_recipe(name, out, storage)}; run it with `optbench run --recipe {out}`")


@sweep_app.command("shortcut")
def shortcut_cmd(
    name: str = typer.Argument(...),
    track: str = typer.Option(..., "--track"),
    space: Path = typer.Option(..., "--space"),
    fraction: float = typer.Option(0.5, "--fraction", help="stage-1 run length as a fraction of train_steps"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer"),
    recipe: Optional[str] = typer.Option(None, "--recipe"),
    storage: Optional[str] = StorageOpt,
    sampler: str = typer.Option("tpe", "--sampler"),
    seeds: int = typer.Option(1, "--seeds", min=1),
    objective: str = typer.Option("loss", "--objective"),
    stage1_trials: int = typer.Option(24, "--stage1-trials", min=1),
    stage2_trials: int = typer.Option(12, "--stage2-trials", min=1),
    around: float = typer.Option(3.0, "--around", help="stage 2 searches lr and wd in best/around .. best*around"),
    pruner: str = typer.Option("none", "--pruner"),
    runs_dir: Optional[Path] = typer.Option(None, "--runs-dir"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
) -> None:
    """Stage 1: every knob at train_steps x fraction; stage 2: lr and wd at full length around the stage-1 best."""
    from optbench.sweep import run_shortcut

    run_shortcut(name, track=track, space=space, fraction=fraction, optimizer=optimizer, recipe=recipe,
                 storage=storage, sampler=sampler, seeds=seeds, objective=objective, stage1_trials=stage1_trials,
                 stage2_trials=stage2_trials, around=around, pruner=pruner, runs_dir=runs_dir, threads=threads)
    _out(f"shortcut {name} done: `optbench sweep report {name} --out DIR`, `optbench sweep export {name} --out R.toml`")
