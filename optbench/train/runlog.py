"""Run logs: the upstream-format text log (code, a line of =, version line, =, one line per eval) and a JSONL
of metrics. The text log is what `optbench stats` and upstream tooling parse."""

from __future__ import annotations

import json
from pathlib import Path

from optbench.fsutil import atomic_write_text
from optbench.standalone.logformat import RULE, eval_line, version_line

__all__ = ["RunLog", "RULE", "eval_line", "version_line"]


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
