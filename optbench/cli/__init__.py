"""Command-line entry point: a thin layer over library calls.

Every area registers its commands on `app` from its own module, imported below. User errors
(OptbenchError, bad flags) print one line without a traceback and exit 2.
"""

from __future__ import annotations

import sys

from optbench.cli.app import app
from optbench.errors import OptbenchError

# --- command modules (each registers its commands on `app` when imported) ---
from optbench.cli import info_cmd  # noqa: E402,F401
from optbench.cli import run_cmd  # noqa: E402,F401
from optbench.cli import workspace_cmd  # noqa: E402,F401
from optbench.cli import results_cmd  # noqa: E402,F401
from optbench.cli import submission_cmd  # noqa: E402,F401
from optbench.cli import sweep_cmd  # noqa: E402,F401


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="optbench")  # standalone: usage errors print and exit 2
    except OptbenchError as e:
        print(f"optbench: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)


__all__ = ["app", "main"]
