"""Bad inputs to `optbench run`, fed to two source trees (e.g. main and a branch): exit code and outcome of each.

    python bench/bad_inputs.py --before /work/main --after . [--only lr=abc,sigint]

Each case runs `python -m optbench ...` in a subprocess with PYTHONPATH set to the tree, on the nano track with a
few steps, in a fresh folder; the outcome column says what the user saw (the error line, a traceback's last line)
and what was left on disk. Prints one markdown table. Heavy: run it under `flock /tmp/optbench-heavy.lock`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NANO = ["run", "--track", "nano", "--optimizer", "adamw", "--quiet", "--set", "train_steps=3"]


class Tree:
    """Runs optbench from one source tree."""

    def __init__(self, root: Path, work: Path):
        self.root, self.work = root.resolve(), work
        self.env = dict(os.environ, PYTHONPATH=str(self.root), OMP_NUM_THREADS="1")

    def cmd(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "optbench", *args]

    def run(self, args: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(args), capture_output=True, text=True, env=self.env, timeout=timeout,
                              cwd=self.work)


def said(p) -> str:
    """The line a user reads: a traceback's last line, else the last non-empty stderr line."""
    lines = [ln for ln in (p.stderr or "").splitlines() if ln.strip()]
    if any(ln.startswith("Traceback") for ln in lines):
        return "TRACEBACK " + lines[-1][:90]
    return (lines[-1][:110] if lines else "(nothing on stderr)")


def left(out: Path) -> str:
    if not out.exists():
        return "no folder"
    names = sorted(p.name for p in out.iterdir())
    return "folder: " + ",".join(names) if names else "empty folder"


# ---------------------------------------------------------------- the cases: each returns (exit code, outcome)


def case_set(value):
    def f(t: Tree):
        out = t.work / "o"
        p = t.run([*NANO, "--set", value, "--out", str(out)])
        return p.returncode, f"{said(p)} | {left(out)}"
    return f


def recipe_fast(t: Tree):
    r = t.work / "fast.toml"
    r.write_text('name = "fast"\noptimizer = "adamw"\nscope = "all"\ntrain_steps = 3\n[hparams]\nlr = "fast"\n')
    out = t.work / "o"
    p = t.run(["run", "--track", "nano", "--recipe", str(r), "--quiet", "--out", str(out)])
    return p.returncode, f"{said(p)} | {left(out)}"


def recipe_binary(t: Tree):
    r = t.work / "bin.toml"
    r.write_bytes(bytes(range(256)) * 4)
    p = t.run(["run", "--track", "nano", "--recipe", str(r), "--quiet", "--out", str(t.work / "o")])
    return p.returncode, said(p)


def construct_error_then_rerun(t: Tree):
    out = t.work / "o"
    p = t.run(["run", "--track", "nano", "--recipe", "nano-muon", "--quiet", "--set", "train_steps=2",
               "--set", "ns_coefficients=bogus", "--out", str(out)])
    after_error = left(out)
    again = t.run(["run", "--track", "nano", "--recipe", "nano-muon", "--quiet", "--set", "train_steps=2",
                   "--out", str(out)])
    return p.returncode, f"{said(p)} | {after_error} | same --out again: exit {again.returncode}"


def out_of_vocab(t: Tree):
    data = t.work / "data"
    shutil.copytree(t.run(["data", "default", "--track", "nano"]).stdout.strip(), data)
    train = sorted(data.glob("fineweb_train_*.bin"))[0]
    raw = bytearray(train.read_bytes())
    raw[1024 + 2 * 500: 1024 + 2 * 501] = (5000).to_bytes(2, "little")  # a token id the 2,048-id model lacks
    train.write_bytes(bytes(raw))
    out = t.work / "o"
    p = t.run([*NANO, "--unofficial", "--data", str(data), "--out", str(out)])
    return p.returncode, f"{said(p)} | {left(out)}"


def _finished_run(t: Tree, *extra) -> Path:
    out = t.work / "r"
    p = t.run([*NANO, *extra, "--out", str(out)])
    assert p.returncode == 0, p.stderr
    return out


def resume_diverged(t: Tree):
    out = _finished_run(t)
    f = out / "results.json"
    data = json.loads(f.read_text())
    data["runs"][0]["diverged"] = True  # as a diverged run leaves it
    f.write_text(json.dumps(data))
    wall = data.get("wallclock_s")
    p = t.run(["run", "--resume", str(out), "--quiet"])
    after = json.loads(f.read_text()).get("wallclock_s")
    return p.returncode, f"{said(p)} | wallclock_s {wall} -> {after}"


def resume_no_checkpoint(t: Tree):
    out = _finished_run(t)
    (out / "results.json").unlink()
    shutil.rmtree(out / "trials", ignore_errors=True)
    p = t.run(["run", "--resume", str(out), "--quiet"])
    evals0 = sum(1 for ln in (out / "metrics.jsonl").read_text().splitlines()
                 if '"eval"' in ln and '"step": 0,' in ln)
    return p.returncode, f"{said(p)} | step-0 eval events: {evals0}"


def zero_byte_checkpoint(t: Tree):
    out = t.work / "r"
    proc = subprocess.Popen(t.cmd([*NANO[:-1], "train_steps=40", "--checkpoint-every", "2", "--out", str(out)]),
                            env=t.env, cwd=t.work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = out / "checkpoints" / "seed0" / "step_000002" / "COMPLETE"
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    d = sorted(p.parent for p in out.glob("checkpoints/seed0/*/COMPLETE"))[-1]
    (d / "rank0.pt").write_bytes(b"")
    p = t.run(["run", "--resume", str(out), "--quiet"])
    return p.returncode, said(p)


def keep_checkpoints(t: Tree):
    out = t.work / "o"
    p = t.run([*NANO, "--checkpoint-every", "1", "--out", str(out)])
    ck = out / "checkpoints"
    n = len(list(ck.glob("seed0/step_*"))) if ck.exists() else 0
    return p.returncode, f"{said(p) if p.returncode else 'ok'} | checkpoints left: {n}"


def signal_case(sig: int, checkpoint: bool):
    def f(t: Tree):
        out = t.work / "o"
        extra = ["--checkpoint-every", "2"] if checkpoint else []
        proc = subprocess.Popen(t.cmd([*NANO[:-1], "train_steps=60", *extra, "--out", str(out)]), env=t.env,
                                cwd=t.work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        marker = out / "metrics.jsonl"
        while not marker.exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
        res = out / "results.json"
        state = "no results.json"
        if res.exists():
            r = json.loads(res.read_text())
            state = "results.json " + ("interrupted" if r.get("interrupted") else
                                       "diverged" if r["runs"][0].get("diverged") else "final")
        ck = sorted(p.parent.name for p in out.glob("checkpoints/seed0/*/COMPLETE"))
        return proc.returncode, f"{said(subprocess.CompletedProcess([], 0, '', err))} | {state} | ckpts {ck[-2:]}"
    return f


CASES = {
    "--set lr=abc": case_set("lr=abc"),
    "recipe lr = \"fast\"": recipe_fast,
    "--set =5": case_set("=5"),
    "--set lr=-1": case_set("lr=-1"),
    "--set lr=0": case_set("lr=0"),
    "--set lr=nan": case_set("lr=nan"),
    "--set lr=inf": case_set("lr=inf"),
    "--set betas=[0.9, 1.5]": case_set("betas=[0.9, 1.5]"),
    "--set weight_decay=-1": case_set("weight_decay=-1"),
    "--set train_steps=0": case_set("train_steps=0"),
    "--set speed=3 (unknown)": case_set("speed=3"),
    "recipe file of binary bytes": recipe_binary,
    "shard with token id 5000 (nano: 2048 ids)": out_of_vocab,
    "error at optimizer construction, then rerun": construct_error_then_rerun,
    "--resume a finished diverged run": resume_diverged,
    "--resume with no checkpoint": resume_no_checkpoint,
    "--resume onto a zero-byte checkpoint": zero_byte_checkpoint,
    "--checkpoint-every 1 (retention)": keep_checkpoints,
    "SIGINT mid-run, checkpointing on": signal_case(signal.SIGINT, True),
    "SIGTERM mid-run, no checkpointing": signal_case(signal.SIGTERM, False),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="source tree (repository root) before the fix")
    ap.add_argument("--after", type=Path, required=True, help="source tree after the fix")
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    a = ap.parse_args()
    rows = []
    for name, case in CASES.items():
        if a.only and not any(s in name for s in a.only.split(",")):
            continue
        row = [name]
        for root in (a.before, a.after):
            with tempfile.TemporaryDirectory() as d:
                try:
                    code, what = case(Tree(root, Path(d)))
                except Exception as e:  # noqa: BLE001 - a case that could not be set up is reported, not fatal
                    code, what = "?", f"case failed: {type(e).__name__}: {e}"
                row += [str(code), what.replace("|", "/").replace("\n", " ")]
        rows.append(row)
        print(" | ".join(row[:1] + row[1::2]), file=sys.stderr, flush=True)
    print("| input | exit before | before | exit after | after |\n|---|---:|---|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
