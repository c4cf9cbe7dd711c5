"""Progress of a training run: a tqdm bar on a terminal, plain lines (loss, tokens/s, ETA) in logs."""

from __future__ import annotations

import math
import sys


class Progress:
    """tqdm bar on a terminal; plain lines in logs (loss, tokens/s, ETA)."""

    def __init__(self, total: int, start: int, enabled: bool, label: str):
        self.enabled, self.total, self.label = enabled, total, label
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.every = max(1, total // 10)
        if enabled and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, desc=label, unit="step", dynamic_ncols=True)

    def update(self, step: int, loss: float, tok_s: float, eta_s: float) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} | {tok_s:,.0f} tok/s | ETA {fmt_time(eta_s)}", refresh=False)
            self.bar.update(1)
        elif step % self.every == 0 or step == self.total:
            print(f"{self.label} step {step}/{self.total} | loss {loss:.4f} | {tok_s:,.0f} tok/s | "
                  f"ETA {fmt_time(eta_s)}", file=sys.stderr, flush=True)

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def fmt_time(s: float) -> str:
    """Seconds as 1h02m or 3m07s ("?" when not finite)."""
    if not math.isfinite(s):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
