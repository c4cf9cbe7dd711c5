"""Parse upstream-format training logs (KJ records/track_3_optimization, track3.md section 8).

A log is, in order:

    <the entire source file of the training script>
    ==================================================================================================== (100 '=')
    Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8 on NVIDIA H100 80GB HBM3 with world_size 8
    ====================================================================================================
    step:0/3250 val_loss:10.82584 train_time:0.000s step_avg:0.00ms
    step:125/3250 val_loss:4.27581 train_time:18.513s step_avg:148.10ms
    ...

Several back-to-back trials append to one log; each trial block starts at `step:0/T val_loss:...`, and each
becomes one run. Older logs write `train_time:18513ms`; both are read (as seconds). Lines that do not start
with `step:` after the header (nvidia-smi tables, memory notes) are skipped; a `step:` line with `val_loss:`
that does not parse is an error naming the file and line. Per-step training lines (`step:N/T train_time:...`
without val_loss) are skipped.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import fsspec

from optbench.errors import OptbenchError
from optbench.results import stats
from optbench.results.schema import CurvePoint, Results, RunRecord, results_from_runs

SEPARATOR = "=" * 100

_VERSION = re.compile(
    r"^Running PyTorch (?P<torch>\S+)(?: compiled for CUDA (?P<cuda>\S+))?(?: on (?P<device>.+?))?"
    r" with world_size (?P<ws>\d+)\s*$"
)
_NUM = r"(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)"
_EVAL = re.compile(
    rf"^step:(?P<step>\d+)/(?P<total>\d+)\s+val_loss:(?P<loss>{_NUM})"
    rf"(?:\s+train_time:(?P<time>{_NUM})(?P<unit>ms|s))?"
    rf"(?:\s+step_avg:(?P<avg>{_NUM})ms)?\s*$",
    re.IGNORECASE,
)
_TRAIN = re.compile(r"^step:\d+/\d+\s+train_time:")


@dataclass
class EvalLine:
    step: int
    val_loss: float
    train_time_s: float | None
    step_avg_ms: float | None
    line_no: int


@dataclass
class Trial:
    """One training run inside a log (one `step:0/T` block)."""

    index: int
    train_steps: int
    evals: list[EvalLine] = field(default_factory=list)

    @property
    def curve(self) -> list[tuple[int, float]]:
        return [(e.step, e.val_loss) for e in self.evals]

    @property
    def final_val_loss(self) -> float:
        return self.evals[-1].val_loss

    @property
    def complete(self) -> bool:
        """True when the trial evaluated at its last step T (not cut short)."""
        return bool(self.evals) and self.evals[-1].step == self.train_steps

    def run_record(self, target: float, log_path: str | None = None) -> RunRecord:
        """The trial as a RunRecord (seed None: upstream scripts set no seed; extra fields `trial` = its index
        in the log and `train_steps` = its T, so a cut-short trial can be told apart)."""
        pts = [CurvePoint(step=e.step, val_loss=e.val_loss, train_time_s=e.train_time_s) for e in self.evals]
        return RunRecord.from_curve(
            pts, target=target, seed=None, log_path=log_path, trial=self.index, train_steps=self.train_steps
        )


@dataclass
class UpstreamLog:
    path: str
    code: str
    version_line: str | None
    torch_version: str | None
    cuda_version: str | None
    device: str | None
    world_size: int | None
    trials: list[Trial]

    def run_records(self, target: float) -> list[RunRecord]:
        return [t.run_record(target, self.path) for t in self.trials]

    def to_results(
        self,
        *,
        agent_id: str = "upstream",
        experiment: str | None = None,
        optimizer: str = "unknown",
        target: float,
        rule: str = stats.DEFAULT_RULE,
        **kw: Any,
    ) -> Results:
        """A results record for the log's trials (all of them: no cherry-picking)."""
        train_steps = max(t.train_steps for t in self.trials)
        wall = [t.evals[-1].train_time_s for t in self.trials if t.evals[-1].train_time_s is not None]
        return results_from_runs(
            self.run_records(target),
            agent_id=agent_id,
            experiment=experiment or os.path.basename(self.path),
            optimizer=optimizer,
            target=target,
            rule=rule,
            train_steps=train_steps,
            wallclock_s=(sum(wall) / len(wall)) if wall else None,
            provenance={
                "torch_version": self.torch_version,
                "device": self.device,
                "world_size": self.world_size,
            },
            **kw,
        )


def _float(text: str) -> float:
    return float(text)  # accepts nan / inf in any case


def parse_log_text(text: str, source: str = "<log>") -> UpstreamLog:
    """Parse the text of an upstream-format log. OptbenchError names `source` and the 1-based line."""
    lines = text.splitlines()
    seps = [i for i, ln in enumerate(lines) if ln.rstrip() == SEPARATOR]
    if not seps:
        raise OptbenchError(
            f"{source}: not an upstream-format log: no line of 100 '=' separating the source code from the log"
        )
    # prefer the separator that is followed by the version line (the code itself may contain a '=' line)
    head = next((i for i in seps if i + 1 < len(lines) and lines[i + 1].startswith("Running PyTorch")), seps[0])
    code = "\n".join(lines[:head]) + ("\n" if head else "")
    version_line = torch = cuda = device = None
    ws = None
    body_start = head + 1
    if body_start < len(lines) and lines[body_start].startswith("Running PyTorch"):
        version_line = lines[body_start].rstrip()
        m = _VERSION.match(version_line)
        if not m:
            raise OptbenchError(
                f"{source}:{body_start + 1}: version line does not parse: {version_line!r} "
                "(expected 'Running PyTorch <ver> compiled for CUDA <ver> on <device> with world_size <N>')"
            )
        torch, cuda, device, ws = m["torch"], m["cuda"], m["device"], int(m["ws"])
        if cuda == "None":  # a CPU build of torch (optbench's CPU tracks)
            cuda = None
        body_start += 1
        if body_start < len(lines) and lines[body_start].rstrip() == SEPARATOR:
            body_start += 1

    trials: list[Trial] = []
    for i in range(body_start, len(lines)):
        ln = lines[i].strip()
        if not ln.startswith("step:"):
            continue
        if "val_loss:" not in ln:
            if _TRAIN.match(ln):
                continue
            raise OptbenchError(f"{source}:{i + 1}: malformed step line: {ln[:120]!r}")
        m = _EVAL.match(ln)
        if not m:
            raise OptbenchError(
                f"{source}:{i + 1}: malformed eval line: {ln[:120]!r} "
                "(expected 'step:S/T val_loss:X train_time:Ys step_avg:Zms')"
            )
        step, total = int(m["step"]), int(m["total"])
        t = None
        if m["time"] is not None:
            t = _float(m["time"])
            if m["unit"].lower() == "ms":
                t /= 1000.0
        avg = _float(m["avg"]) if m["avg"] is not None else None
        e = EvalLine(step, _float(m["loss"]), t, avg, i + 1)
        cur = trials[-1] if trials else None
        if cur is None or step == 0 or step <= cur.evals[-1].step or total != cur.train_steps:
            cur = Trial(index=len(trials), train_steps=total)
            trials.append(cur)
        if step > total:
            raise OptbenchError(f"{source}:{i + 1}: eval step {step} is beyond the run length {total}")
        cur.evals.append(e)
    if not trials:
        raise OptbenchError(f"{source}: no eval lines ('step:S/T val_loss:X ...') after the header")
    return UpstreamLog(
        path=source,
        code=code,
        version_line=version_line,
        torch_version=torch,
        cuda_version=cuda,
        device=device,
        world_size=ws,
        trials=trials,
    )


def parse_log(path: str | os.PathLike) -> UpstreamLog:
    """Read and parse an upstream-format log (local path or fsspec URL)."""
    src = os.fspath(path)
    try:
        with fsspec.open(src, "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        raise OptbenchError(f"{src}: no such file") from None
    except OSError as e:
        raise OptbenchError(f"{src}: cannot read ({e})") from None
    return parse_log_text(text, src)


def looks_like_log(text: str) -> bool:
    """Cheap test: does the text contain the upstream separator line?"""
    return any(ln.rstrip() == SEPARATOR for ln in text.splitlines())


def is_finite_trial(t: Trial) -> bool:
    return all(math.isfinite(e.val_loss) for e in t.evals)
