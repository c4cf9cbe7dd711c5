"""Run logs: the upstream-format text log (code, a line of =, version line, =, one line per eval) and a JSONL
of metrics. The text log is what `optbench stats` and upstream tooling parse.

Metric sinks: inside `with metric_sinks(sink, ...)`, every RunLog.metric record (a dict with "event") also goes to
each sink, called as sink(record). Experiment trackers and a sweep's pruner are sinks; a sink may raise to stop
the run (the pruner raises optuna.TrialPruned)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from optbench.fsutil import atomic_write_text
from optbench.standalone.logformat import RULE, eval_line, version_line

__all__ = ["RunLog", "RULE", "eval_line", "version_line", "metric_sinks"]

_SINKS: list = []


@contextlib.contextmanager
def metric_sinks(*sinks):
    """Send every metric record of the runs made inside the block to each sink as well."""
    _SINKS.extend(sinks)
    try:
        yield
    finally:
        for s in sinks:
            _SINKS.remove(s)


class RunLog:
    """Writes train_log.txt and metrics.jsonl in a run folder (rank 0 only)."""

    def __init__(self, run_dir: Path, code: str, version: str):
        self.dir = Path(run_dir)
        self.text_path = self.dir / "train_log.txt"
        self.jsonl_path = self.dir / "metrics.jsonl"
        self.header = f"{code.rstrip()}\n{RULE}\n{version}\n{RULE}\n"

    def start(self, trial_lines: list[str] | None = None) -> None:
        """(Re)write the log: header plus any eval lines already known (resume rewrites what was logged)."""
        body = "".join(line + "\n" for line in (trial_lines or []))
        atomic_write_text(self.text_path, self.header + body)

    def eval(self, line: str) -> None:
        with open(self.text_path, "a") as f:
            f.write(line + "\n")

    def metric(self, **record) -> None:
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for sink in list(_SINKS):
            sink(record)
