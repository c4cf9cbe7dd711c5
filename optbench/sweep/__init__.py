"""Hyperparameter sweeps on Optuna, shared by any number of workers on any number of machines.

    from optbench.sweep import create_sweep, run_worker, sweep_status, write_report, export_recipe
    create_sweep("nano-lrwd", track="nano", recipe="nano-adamw", space="space.toml", max_trials=24)
    run_worker("nano-lrwd")                       # in as many processes / machines as you like
    write_report("nano-lrwd", "reports/nano-lrwd")
    export_recipe("nano-lrwd", "nano-adamw-tuned.toml")

Modules: space (search-space files), settings (trial params -> recipe via --set's path), storage (database URLs,
heartbeat), study (the sweep's stored definition), objective (loss / steps), trial (one run), worker, status,
report, export, shortcut (half-length then full-length), presence (workspace claims, board, dashboard status),
slurm (submitit launch).
"""

from optbench.sweep.export import export_recipe  # noqa: F401
from optbench.sweep.report import write_report  # noqa: F401
from optbench.sweep.shortcut import run_shortcut  # noqa: F401
from optbench.sweep.status import sweep_status, tuning_budget  # noqa: F401
from optbench.sweep.study import Sweep, SweepSpec, create_sweep, open_sweep, trial_dir  # noqa: F401
from optbench.sweep.worker import run_worker  # noqa: F401

__all__ = ["Sweep", "SweepSpec", "create_sweep", "export_recipe", "open_sweep", "run_shortcut", "run_worker",
           "sweep_status", "trial_dir", "tuning_budget", "write_report"]
