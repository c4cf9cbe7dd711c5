"""Parse upstream-format training logs (KJ records/track_3_optimization, track3.md section 8), of every era.

A log is, in order:

    <the entire source file of the training script>
    ==================================================================================================== (100 '=')
    Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8 on NVIDIA H100 80GB HBM3 with world_size 8
    ====================================================================================================
    Using seed=3                                                        (optional, any era)
    step:0/3250 val_loss:10.82584 train_time:0.000s step_avg:0.00ms
    step:125/3250 val_loss:4.27581 train_time:18.513s step_avg:148.10ms
    ...

What varies between eras, and is read:
  * the version line: long (`... on <device> with world_size N`), short (`Running PyTorch X compiled for CUDA Y`,
    most logs since June 2026), after a `Running Python ...` line (2024-25 speedrun logs, with an nvidia-smi
    table and a second '=' line before the eval lines) or absent (the code is followed by the console output);
    `Running on device_name=<device> with world_size=<N>` fills device and world size when the version line has
    none;
  * eval lines: `step:S/T` then `key:value` fields. `val_loss` is required; `train_time` is read in `s` or `ms`
    (as seconds), `step_avg` in ms; every other field (`val_ema_loss`, `ema_beta`, `extrap_count`, `handoff`,
    ...) is kept in EvalLine.fields (numbers as floats, other values as written), never rejected;
  * several back-to-back trials in one log: each `step:0/T` block (or a step going backwards, or a new T) is
    one trial;
  * seeds, where the log says them: `Using seed=N`, `trial:i/n seed:N`, `Using seed_env=N`, `config ... seed=N`
    (the seed applies to the next trial that starts), and optbench's own header `# optbench run: track=...
    seeds=[...]` (in trial order).
Per-step training lines (`step:N/T train_time:...`, no val_loss) and any other text are skipped. A `step:` line
with `val_loss:` that does not parse is an error naming the file and line.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import fsspec

from optbench.errors import OptbenchError
from optbench.results.schema import CurvePoint, Results, RunRecord, results_from_runs

SEPARATOR = "=" * 100
DEFAULT_METRIC = "val_loss"

_VERSION = re.compile(
    r"^Running PyTorch (?P<torch>\S+)(?: compiled for CUDA (?P<cuda>\S+))?"
    r"(?: on (?P<device>.+?)\s+with world_size (?P<ws>\d+))?\s*$",
    re.IGNORECASE,  # 2024 logs print `Running pytorch`
)
_DEVICE_LINE = re.compile(r"^Running on device_name=(?P<device>.+?)\s+with world_size=(?P<ws>\d+)\s*$")
_STEP = re.compile(r"^step:(?P<step>\d+)/(?P<total>\d+)(?:\s|$)")
_NUM = re.compile(r"^(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)$", re.IGNORECASE)
_TIME = re.compile(r"^(?P<v>.+?)(?P<unit>ms|s)$")
_SEED = re.compile(r"(?:^|\s)(?:Using\s+)?seed(?:_env)?[=:]\s*(?P<seed>-?\d+)\b")
_OPTBENCH_HEADER = re.compile(r"^# optbench run: track=(?P<track>\S+).*?\bseeds=\[(?P<seeds>[-\d, ]*)\]")
_TIMESTAMP = re.compile(r"^Run UTC timestamp=(?P<ts>\S+)\s*$")


@dataclass
class EvalLine:
    step: int
    val_loss: float
    train_time_s: float | None
    step_avg_ms: float | None
    line_no: int
    fields: dict[str, float | str] = field(default_factory=dict)  # every other key:value of the line

    def value(self, metric: str = DEFAULT_METRIC) -> float | None:
        """The line's value of an eval field (`val_loss` or any extra numeric field); None when absent."""
        if metric == DEFAULT_METRIC:
            return self.val_loss
        v = self.fields.get(metric)
        return v if isinstance(v, float) else None


@dataclass
class Trial:
    """One training run inside a log (one `step:0/T` block)."""

    index: int
    train_steps: int
    seed: int | None = None
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

    @property
    def metrics(self) -> list[str]:
        """The numeric eval fields this trial logged (val_loss first)."""
        names = [DEFAULT_METRIC]
        for e in self.evals:
            names += [k for k, v in e.fields.items() if isinstance(v, float) and k not in names]
        return names

    def run_record(self, target: float, log_path: str | None = None, metric: str = DEFAULT_METRIC) -> RunRecord:
        """The trial as a RunRecord judged on `metric` (the curve's val_loss is that field's value; eval lines
        without the field are left out). Extra fields: `trial` = its index in the log, `train_steps` = its T
        (so a cut-short trial can be told apart) and, for another metric than val_loss, `metric`."""
        pts = [
            CurvePoint(step=e.step, val_loss=e.value(metric), train_time_s=e.train_time_s)
            for e in self.evals
            if e.value(metric) is not None
        ]
        if not pts:
            raise OptbenchError(
                f"{log_path or 'log'}: trial {self.index} has no eval field {metric!r}; "
                f"its eval lines have {', '.join(self.metrics)}"
            )
        extra: dict[str, Any] = {"trial": self.index, "train_steps": self.train_steps}
        if metric != DEFAULT_METRIC:
            extra["metric"] = metric
        return RunRecord.from_curve(pts, target=target, seed=self.seed, log_path=log_path, **extra)


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
    track: str | None = None  # the track an optbench run log names in its header (upstream logs name none)
    timestamp: str | None = None  # `Run UTC timestamp=...` when the log prints one

    @property
    def metrics(self) -> list[str]:
        """The numeric eval fields of the log's trials (val_loss first)."""
        names: list[str] = []
        for t in self.trials:
            names += [m for m in t.metrics if m not in names]
        return names

    def run_records(self, target: float, metric: str = DEFAULT_METRIC) -> list[RunRecord]:
        return [t.run_record(target, self.path, metric) for t in self.trials]

    def to_results(
        self,
        *,
        target: float,
        rule: str,
        agent_id: str = "upstream",
        experiment: str | None = None,
        optimizer: str = "unknown",
        metric: str = DEFAULT_METRIC,
        **kw: Any,
    ) -> Results:
        """A results record for the log's trials (all of them: no cherry-picking)."""
        train_steps = max(t.train_steps for t in self.trials)
        wall = [t.evals[-1].train_time_s for t in self.trials if t.evals[-1].train_time_s is not None]
        return results_from_runs(
            self.run_records(target, metric),
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


def _value(text: str) -> float | str:
    return float(text) if _NUM.match(text) else text


def _eval_line(ln: str, line_no: int, source: str) -> EvalLine:
    """`step:S/T val_loss:X [train_time:Ys|Yms] [step_avg:Zms] [key:value ...]` -> EvalLine."""
    m = _STEP.match(ln)
    step, total = int(m["step"]), int(m["total"])
    fields: dict[str, float | str] = {}
    for tok in ln[m.end():].split():
        key, sep, val = tok.partition(":")
        if not sep or not key or not val:
            raise OptbenchError(
                f"{source}:{line_no}: malformed eval line: {ln[:120]!r} (expected 'step:S/T val_loss:X "
                f"key:value ...'; {tok!r} is not key:value)"
            )
        fields[key] = val
    loss = fields.pop("val_loss", None)
    if loss is None or not _NUM.match(loss):
        raise OptbenchError(
            f"{source}:{line_no}: malformed eval line: {ln[:120]!r} "
            "(expected 'step:S/T val_loss:X train_time:Ys step_avg:Zms')"
        )
    t = avg = None
    raw_t = fields.pop("train_time", None)
    if raw_t is not None:
        tm = _TIME.match(raw_t)
        if not tm or not _NUM.match(tm["v"]):
            raise OptbenchError(f"{source}:{line_no}: malformed train_time {raw_t!r} (expected e.g. 18.513s or 18513ms)")
        t = float(tm["v"]) / (1000.0 if tm["unit"] == "ms" else 1.0)
    raw_avg = fields.pop("step_avg", None)
    if raw_avg is not None:
        a = raw_avg[:-2] if raw_avg.endswith("ms") else raw_avg
        avg = float(a) if _NUM.match(a) else None
    e = EvalLine(step, float(loss), t, avg, line_no, {k: _value(v) for k, v in fields.items()})
    if step > total:
        raise OptbenchError(f"{source}:{line_no}: eval step {step} is beyond the run length {total}")
    return e


def _header(lines: list[str], source: str, transcript: bool = False) -> int:
    """Index of the separator line that ends the code section (-1: none, for a console transcript)."""
    seps = [i for i, ln in enumerate(lines) if ln.rstrip() == SEPARATOR]
    if not seps and transcript:
        return -1
    if not seps:
        raise OptbenchError(
            f"{source}: not an upstream-format log: no line of 100 '=' separating the source code from the log"
        )
    # the separator followed by the environment lines (`Running PyTorch ...`, older logs `Running Python ...` first;
    # the code itself may contain a '=' line) ...
    for i in seps:
        if any(ln.lower().startswith(("running pytorch", "running python")) for ln in lines[i + 1:i + 3]):
            return i
    # ... else (no version line) the last separator before the first eval line
    first_eval = next((i for i, ln in enumerate(lines) if _STEP.match(ln.strip()) and "val_loss:" in ln), len(lines))
    before = [i for i in seps if i < first_eval]
    return before[-1] if before else seps[0]


def parse_log_text(text: str, source: str = "<log>", transcript: bool = False) -> UpstreamLog:
    """Parse the text of an upstream-format log. OptbenchError names `source` and the 1-based line.

    transcript=True also accepts a console transcript without the code section (the eval lines a run printed;
    e.g. per-seed stdout files next to a record): its `code` is empty."""
    lines = text.splitlines()
    head = _header(lines, source, transcript)
    first = 1 if head > 0 and lines[0].rstrip() == SEPARATOR else 0  # some 2024 logs open with a '=' line
    code = "\n".join(lines[first:head]) + "\n" if head > first else ""
    version_line = torch = cuda = device = None
    ws = None
    body_start = head + 1
    at = next((i for i in range(body_start, min(body_start + 2, len(lines)))
               if lines[i].lower().startswith("running pytorch")), None)
    if at is not None:
        version_line = lines[at].rstrip()
        m = _VERSION.match(version_line)
        if not m:
            raise OptbenchError(
                f"{source}:{at + 1}: version line does not parse: {version_line!r} "
                "(expected 'Running PyTorch <ver> [compiled for CUDA <ver>] [on <device> with world_size <N>]')"
            )
        torch, cuda, device = m["torch"], m["cuda"], m["device"]
        ws = int(m["ws"]) if m["ws"] else None
        if cuda == "None":  # a CPU build of torch (optbench's CPU tracks)
            cuda = None
        body_start = at + 1

    track = None
    header_seeds: list[int] = []
    hm = _OPTBENCH_HEADER.match(lines[0]) if lines else None
    if hm:
        track = hm["track"]
        header_seeds = [int(s) for s in hm["seeds"].replace(" ", "").split(",") if s]

    trials: list[Trial] = []
    pending_seed: int | None = None
    timestamp = None
    for i in range(body_start, len(lines)):
        ln = lines[i].strip()
        if not ln.startswith("step:"):
            dm = _DEVICE_LINE.match(ln)
            if dm and device is None:
                device, ws = dm["device"], int(dm["ws"])
            tm = _TIMESTAMP.match(ln)
            if tm and timestamp is None:
                timestamp = tm["ts"]
            sm = _SEED.search(ln)
            if sm:
                pending_seed = int(sm["seed"])
            continue
        if not _STEP.match(ln):
            raise OptbenchError(f"{source}:{i + 1}: malformed step line: {ln[:120]!r}")
        if "val_loss:" not in ln:
            continue  # a per-step training line
        e = _eval_line(ln, i + 1, source)
        total = int(_STEP.match(ln)["total"])
        cur = trials[-1] if trials else None
        if cur is None or e.step == 0 or e.step <= cur.evals[-1].step or total != cur.train_steps:
            cur = Trial(index=len(trials), train_steps=total, seed=pending_seed)
            pending_seed = None
            trials.append(cur)
        cur.evals.append(e)
    if not trials:
        raise OptbenchError(f"{source}: no eval lines ('step:S/T val_loss:X ...') after the header")
    for t, s in zip(trials, header_seeds):
        if t.seed is None:
            t.seed = s
    return UpstreamLog(
        path=source,
        code=code,
        version_line=version_line,
        torch_version=torch,
        cuda_version=cuda,
        device=device,
        world_size=ws,
        trials=trials,
        track=track,
        timestamp=timestamp,
    )


def read_text(path: str | os.PathLike) -> str:
    """A log's text (local path or fsspec URL); OptbenchError naming the path when it cannot be read."""
    src = os.fspath(path)
    try:
        with fsspec.open(src, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        raise OptbenchError(f"{src}: no such file") from None
    except OSError as e:
        raise OptbenchError(f"{src}: cannot read ({e})") from None


def parse_log(path: str | os.PathLike, transcript: bool = False) -> UpstreamLog:
    """Read and parse an upstream-format log (local path or fsspec URL); transcript: see parse_log_text."""
    return parse_log_text(read_text(path), os.fspath(path), transcript)


def looks_like_log(text: str) -> bool:
    """Cheap test: does the text contain the upstream separator line?"""
    return any(ln.rstrip() == SEPARATOR for ln in text.splitlines())


def is_finite_trial(t: Trial) -> bool:
    return all(math.isfinite(e.val_loss) for e in t.evals)
