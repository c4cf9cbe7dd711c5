"""Launch sweep workers as SLURM jobs with submitit (`optbench sweep worker NAME --slurm KEY=VALUE ...`).

KEY=VALUE pairs are submitit AutoExecutor parameters: the generic ones (timeout_min, gpus_per_node, cpus_per_task,
mem_gb, nodes, tasks_per_node, name) as they are, anything else as a SLURM one (partition=gpu becomes
slurm_partition). cluster="local" runs the same jobs as local processes (submitit's LocalExecutor: the tests).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from optbench.errors import OptbenchError

GENERIC = ("name", "timeout_min", "mem_gb", "nodes", "cpus_per_task", "gpus_per_node", "tasks_per_node",
           "stderr_to_stdout")


def parse_slurm_args(pairs: list[str]) -> dict:
    """["partition=gpu", "timeout_min=60"] -> {"slurm_partition": "gpu", "timeout_min": 60}."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise OptbenchError(f"--slurm: {p!r} is not KEY=VALUE (e.g. partition=gpu, timeout_min=60)")
        k, raw = (x.strip() for x in p.split("=", 1))
        try:
            v = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            v = raw
        out[k if k in GENERIC or k.startswith("slurm_") else f"slurm_{k}"] = v
    return out


def _worker_job(name: str, storage: str | None, worker_kw: dict) -> dict:
    """What each job runs (module level: submitit pickles it)."""
    from optbench.sweep.worker import run_worker

    report = run_worker(name, storage, **worker_kw)
    return {"trials": [vars(t) for t in report.trials], "stopped": report.stopped}


def launch_workers(name: str, storage: str | None, n_workers: int, slurm: list[str] | dict, *,
                   folder: str | Path, cluster: str = "slurm", **worker_kw) -> list:
    """Submit n_workers jobs that each run `run_worker(name, storage, **worker_kw)`; returns the submitit jobs."""
    import submitit

    from optbench.sweep import storage as storage_mod

    if n_workers < 1:
        raise OptbenchError(f"--workers {n_workers}: must be >= 1")
    params = slurm if isinstance(slurm, dict) else parse_slurm_args(slurm)
    url = storage_mod.resolve_url(storage)
    if url.startswith("sqlite") and cluster == "slurm":
        raise OptbenchError("--slurm: jobs on other nodes cannot share a SQLite file safely; give --storage "
                            "postgresql://... (or mysql://...)")
    try:
        ex = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        ex.update_parameters(name=f"optbench-sweep-{name}", **params)
    except (ValueError, NameError, RuntimeError, TypeError) as e:
        raise OptbenchError(f"--slurm: {str(e).splitlines()[0]}") from None
    with ex.batch():
        jobs = [ex.submit(_worker_job, name, url, worker_kw) for _ in range(n_workers)]
    return jobs
