"""`optbench check`: a training script or an upstream-format log against the benchmark rules (track3.md 1, 5-8).

One job per module: `static` (the AST rules), `dynamic` (run a few steps at nano size and compare with the
track), `logs` (an upstream log's code section, trials and verdict), `report` (what a check returns). This
module is the entry point that picks the checks for what it is given.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.submission.check.dynamic import dynamic_check, expected_fingerprint, judge_steps
from optbench.submission.check.logs import OPTBENCH_RUN_LOG, log_check
from optbench.submission.check.report import Report, Violation
from optbench.submission.check.static import CLI_MODULES, THIRD_PARTY_OPTIMIZERS, static_check


def check(path: str | os.PathLike, *, log: str | os.PathLike | None = None, track: str | None = None,
          dynamic: bool | None = None, steps: int = 2, data_dir=None, rule: str | None = None) -> Report:
    """Check a script or a log (or a script and its log). OptbenchError (exit 2) for unreadable input."""
    from optbench.results import logparse

    p = Path(path)
    if not p.is_file():
        raise OptbenchError(f"{p}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise OptbenchError(f"{p}: cannot read as text ({e})") from None
    rep = Report(str(p))
    if logparse.looks_like_log(text):
        if log is not None:
            raise OptbenchError(f"{p} is a log; give the script first and the log with --log")
        rep.extend(log_check(p, track=track, rule=rule))
        if dynamic:
            code = logparse.parse_log(p).code
            with tempfile.TemporaryDirectory(prefix="optbench-logcode-") as tmp:
                s = Path(tmp) / "train_gpt_simple.py"
                s.write_text(code)
                rep.extend(dynamic_check(s, track, steps=steps, data_dir=data_dir))
        return rep
    rep.extend(static_check(text, str(p), track))
    if dynamic is None or dynamic:
        rep.extend(dynamic_check(p, track, steps=steps, data_dir=data_dir))
    if log is not None:
        lp = Path(log)
        if not lp.is_file():
            raise OptbenchError(f"--log: {lp}: no such file")
        rep.extend(log_check(lp, script_text=text, script_name=str(p), track=track, rule=rule))
    return rep


__all__ = ["check", "static_check", "dynamic_check", "log_check", "judge_steps", "Report", "Violation",
           "THIRD_PARTY_OPTIMIZERS", "CLI_MODULES", "OPTBENCH_RUN_LOG", "expected_fingerprint"]
