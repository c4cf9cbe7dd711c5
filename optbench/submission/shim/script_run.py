"""`optbench run --script FILE`: a plain upstream-layout training script as a first-class run.

FILE is a script or an upstream log (its code section is the script: upstream's reproduction recipe). It is
written to OUT/train_gpt_simple.py, and that file runs, one process per seed: at full size (track small) `torchrun --standalone --nproc_per_node=G FILE [--seed S]` on the
machine's GPUs, the script as written; at a CPU track's size (cpu, nano) the shim's runner (runner.py: the script
rewritten to the track's size on CPU, `train_steps` = the track's or --set train_steps=N). Each process runs in
OUT/seed_S/ (data/fineweb10B -> the shards; the script writes its logs/<uuid>.txt there, its console goes to
console.txt). The logs are read by optbench.results.logparse; the run folder then holds, as a workspace artifact:
train_gpt_simple.py (the script, verbatim), train_log.txt (one upstream log: the script, the first run's version
line, every seed's evals as one trial each) and results.json (results_from_runs with the track's target and rule),
which `optbench stats` and the leaderboard read like any run's.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.submission.shim.rewrite import takes_seed

SCRIPT_TRACKS = ("small", "cpu", "nano")  # the track-3 GPT tracks: full size on GPUs, the CPU tracks via the shim
SCRIPT_FILE, LOG_FILE = "train_gpt_simple.py", "train_log.txt"


@dataclass(frozen=True)
class ScriptRun:
    """What runs: the script, the track, its step count (shim only), the seeds, the GPUs (full size only)."""

    script: Path  # the file given (a script or a log)
    source: str  # the script's text (a log's code section)
    track: object
    seeds: tuple[int, ...]
    steps: int | None  # None: the script's own run length (full size)
    nproc: int  # processes per seed (GPUs at full size; 1 on CPU)
    data_dir: Path
    takes_seed: bool

    @property
    def full_size(self) -> bool:
        return self.track.name == "small"


def command(plan: ScriptRun, script: Path, seed: int, workdir: Path) -> list[str]:
    """The command line that runs seed `seed` of the plan's `script` (the run folder's copy) in `workdir`."""
    if plan.full_size:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={plan.nproc}",
               str(script.resolve())]
        return cmd + (["--seed", str(seed)] if plan.takes_seed else [])
    return [sys.executable, "-m", "optbench.submission.shim.runner", str(script.resolve()),
            "--track", plan.track.name, "--steps", str(plan.steps), "--seed", str(seed),
            "--data", str(plan.data_dir.resolve()), "--workdir", str(workdir.resolve())]


def plan_run(script: Path, track: str = "nano", *, seed: int = 0, runs: int = 1, steps: int | None = None,
             data_dir: Path | None = None, nproc: int | None = None) -> ScriptRun:
    """Check the inputs and decide what runs (OptbenchError with the reason for anything that cannot)."""
    from optbench.results import logparse
    from optbench.tracks import get_track

    if track not in SCRIPT_TRACKS:
        raise OptbenchError(f"--track: a script runs on {', '.join(SCRIPT_TRACKS)} (the track-3 GPT model), "
                            f"not {track!r}")
    t = get_track(track)
    script = Path(script)
    if not script.is_file():
        raise OptbenchError(f"--script: {script}: no such file")
    try:
        source = script.read_text(encoding="utf-8")
        if logparse.looks_like_log(source):
            source = logparse.parse_log(script).code
        tree = ast.parse(source, filename=str(script))
    except (SyntaxError, UnicodeDecodeError) as e:
        raise OptbenchError(f"--script: {script} is not a Python script ({e})") from None
    if t.name == "small":
        if steps is not None:
            raise OptbenchError("--set train_steps: at full size the script runs as written (its own train_steps)")
        if nproc is None:
            import torch

            nproc = torch.cuda.device_count()
        if nproc < 1:
            raise OptbenchError("--track small runs the script at full size through torchrun on GPUs, and this "
                                "machine has none (use --track nano or cpu: the shim runs it on CPU)")
        data = Path(data_dir) if data_dir is not None else Path("data/fineweb10B")
    else:
        from optbench.data.corpus import default_data_dir

        data = Path(data_dir) if data_dir is not None else default_data_dir(t.vocab_size)
        nproc = 1
        steps = steps or t.train_steps
    if not data.is_dir():
        raise OptbenchError(f"--data: {data} is not a folder of fineweb_train_*.bin / fineweb_val_*.bin shards")
    return ScriptRun(script, source, t, tuple(range(seed, seed + runs)), steps, nproc, data, takes_seed(tree))


def run_one(plan: ScriptRun, script: Path, seed: int, workdir: Path, *, echo: bool = True):
    """Run one seed; returns the UpstreamLog of the script's log. OptbenchError with the script's last lines when
    it fails (the shim cannot run it) or writes no log."""
    from optbench.results import logparse
    from optbench.submission.shim.runner import link_data

    workdir.mkdir(parents=True)
    link_data(workdir, plan.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBENCH_TEST_")}
    tail: list[str] = []
    with open(workdir / "console.txt", "w") as console:
        proc = subprocess.Popen(command(plan, script, seed, workdir), cwd=workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in proc.stdout:
            console.write(line)
            tail = (tail + [line.rstrip("\n")])[-12:]
            if echo:
                print(f"[seed {seed}] {line}", end="", flush=True)
        rc = proc.wait()
    how = "through torchrun" if plan.full_size else f"through the shim at {plan.track.name} size"
    if rc != 0:
        raise OptbenchError(f"--script: {plan.script.name} failed {how} (seed {seed}, exit {rc}): "
                            + " | ".join(ln for ln in tail if ln.strip())[-1500:])
    logs = sorted((workdir / "logs").glob("*.txt"))
    if not logs:
        raise OptbenchError(f"--script: {plan.script.name} wrote no logs/<uuid>.txt {how} (seed {seed}); optbench "
                            "reads the run from the upstream log")
    return logparse.parse_log(logs[-1])


def _joined_log(script_text: str, logs) -> str:
    """One upstream log: the script, the first run's version line, each seed's eval lines (as the script wrote
    them, extra fields kept) as one trial."""
    from optbench.standalone.logformat import RULE

    lines = [script_text.rstrip("\n"), RULE, logs[0].version_line or "", RULE]
    for log in logs:
        raw = Path(log.path).read_text(encoding="utf-8").splitlines()
        lines += [raw[e.line_no - 1] for t in log.trials for e in t.evals]
    return "\n".join(lines) + "\n"


def run_script(plan: ScriptRun, out: Path, *, agent_id: str = "local", echo: bool = True):
    """All seeds of the plan into the run folder `out` (new or empty); returns the Results written."""
    from optbench.fsutil import atomic_write_text
    from optbench.results.schema import save_results
    from optbench.results.schema.build import results_from_runs
    from optbench.results.schema.provenance import collect_provenance

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise OptbenchError(f"--out: {out} exists and is not empty (use a new folder)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    t = plan.track
    print(f"{plan.script.name}: {len(plan.seeds)} seed(s) on {t.name} "
          + ("at full size through torchrun" if plan.full_size else f"through the shim on CPU, {plan.steps} steps"),
          flush=True)
    script = out / SCRIPT_FILE
    script.write_text(plan.source, encoding="utf-8")
    logs, records = [], []
    for seed in plan.seeds:
        log = run_one(plan, script, seed, out / f"seed_{seed}", echo=echo)
        logs.append(log)
        for r in log.run_records(t.target):
            records.append(r.model_copy(update={"seed": seed}))
    atomic_write_text(out / LOG_FILE, _joined_log(plan.source, logs))
    notes = [] if plan.full_size else [
        f"run through the optbench shim at {t.name} size on CPU ({plan.steps} steps): device, process group, "
        "compile, module dtype, sizes and run length rewritten (optbench.submission.shim); not the script's "
        "full-size result"]
    device = logs[0].device or ("cuda" if plan.full_size else "cpu")
    results = results_from_runs(
        records, agent_id=agent_id, experiment=f"{plan.script.name} on {t.name}", optimizer=plan.script.stem,
        target=t.target, rule=t.rule, track=t.name, notes="; ".join(notes) or None,
        provenance=collect_provenance(device=device, world_size=plan.nproc),
        train_steps=max(tr.train_steps for lg in logs for tr in lg.trials), wallclock_s=round(time.perf_counter() - t0, 3),
        compliance_notes=notes)
    save_results(results, out / "results.json")
    return results
