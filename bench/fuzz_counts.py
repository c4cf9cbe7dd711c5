"""How many inputs the read-side fuzz suite tried, per reader: runs tests/fuzz/test_fuzz_read_inputs.py with
hypothesis' statistics and prints one table.

    python bench/fuzz_counts.py [-k EXPR]

"inputs run" counts the examples that reached the reader (passing + failing, every phase: the example database's
replays, generation, shrinking); "invalid" the generated inputs hypothesis discarded before the reader saw them
(a strategy's filter, an input too large).
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = "tests/fuzz/test_fuzz_read_inputs.py"
_PHASE = re.compile(r"- (\d+) passing examples?, (\d+) failing examples?, (\d+) invalid examples?")


def _readers() -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    mod = importlib.import_module("tests.fuzz.test_fuzz_read_inputs")
    out = {}
    for name in dir(mod):
        fn = getattr(mod, name)
        if name.startswith("test_") and callable(fn):
            doc = (fn.__doc__ or "").strip().splitlines()
            out[name] = doc[0].removeprefix("reader: ") if doc else name
            settings = getattr(fn, "_hypothesis_internal_use_settings", None)
            out[name + ".max"] = str(settings.max_examples) if settings is not None else "?"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=None, help="pytest -k expression (a subset of the readers)")
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "pytest", SUITE, "-q", "-p", "no:randomly", "-p", "no:xdist",
           "--hypothesis-show-statistics", "-m", "slow or not slow"] + (["-k", args.k] if args.k else [])
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    readers = _readers()
    rows, test = {}, None
    for line in p.stdout.splitlines():
        m = re.match(r"^\S*::(test_\w+):\s*$", line.strip())
        if m:
            test = m.group(1)
            rows[test] = [0, 0, 0]
            continue
        m = _PHASE.search(line)
        if m and test:
            for i in range(3):
                rows[test][i] += int(m.group(i + 1))
    summary = next((ln for ln in reversed(p.stdout.splitlines()) if " passed" in ln or " failed" in ln), "?")
    print("| reader | test | max_examples | inputs run | failing | invalid |")
    print("|---|---|---:|---:|---:|---:|")
    total = 0
    for t, (ok, bad, inv) in rows.items():
        total += ok + bad
        print(f"| {readers.get(t, t)} | {t} | {readers.get(t + '.max', '?')} | {ok + bad} | {bad} | {inv} |")
    print(f"\n{total} inputs in all; pytest: {summary.strip()}")
    if p.returncode:
        print(p.stdout[-3000:], file=sys.stderr)
        sys.exit(p.returncode)


if __name__ == "__main__":
    main()
