"""Ctrl-C (SIGINT) and SIGTERM during a run: the handler only notes the signal; the loop stops at the next step
boundary, writes a final checkpoint (when checkpointing is on) and a results.json marked interrupted, then raises
RunInterrupted, which the CLI turns into exit code 128 + the signal number (130, 143). A second signal stops at once.
"""

from __future__ import annotations

import signal
import threading

#: the signals a run stops cleanly on
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal after saving what it had (a KeyboardInterrupt, so callers that already stop on
    Ctrl-C, e.g. a sweep worker, still do)."""

    def __init__(self, signum: int, step: int | None = None):
        self.signum, self.step = signum, step
        where = f" at step {step}" if step is not None else ""
        super().__init__(f"interrupted by {signal.Signals(signum).name}{where}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequests:
    """Within the block, SIGINT/SIGTERM set `signum` instead of stopping the process (main thread only; elsewhere
    the process keeps its handlers and `signum` stays None)."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def _note(self, signum, frame) -> None:
        if self.signum is not None:  # the second signal: stop now
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._old[s] = signal.signal(s, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()
