"""The proxy study (issue 14), in chunks that resume from its committed storage (studies/proxy/).

    python bench/proxy_study.py create             # the sweeps, one per optimizer (idempotent)
    flock /tmp/optbench-heavy.lock python bench/proxy_study.py work [--entry NAME] [--trials 1]
    flock /tmp/optbench-heavy.lock python bench/proxy_study.py final [--entry NAME]     # one final seed
    OMP_NUM_THREADS=1 nice -n 10 python bench/proxy_study.py all    # entry by entry: its sweep, then its seeds
    python bench/proxy_study.py status
    python bench/proxy_study.py report             # docs/proxy_study.md and docs/proxy_study.png
    python bench/proxy_study.py recipes            # the tuned proxy-* recipes into optbench/optim/recipes/

`work` runs one trial of the sweep with the fewest; `final` one seed of the best configuration of a finished sweep;
each is a few minutes, so a loop of them shares the machine. Design and budget: docs/proxy.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.study.plan import load_study

STUDY = Path(__file__).resolve().parents[1] / "studies" / "proxy" / "study.toml"
RECIPES = Path(__file__).resolve().parents[1] / "optbench" / "optim" / "recipes"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("create", "work", "final", "all", "status", "report", "recipes"))
    ap.add_argument("--study", default=str(STUDY))
    ap.add_argument("--entry", default=None, help="only this entry (work, final)")
    ap.add_argument("--trials", type=int, default=1, help="trials to run (work)")
    a = ap.parse_args(argv)
    try:
        study = load_study(a.study)
        if a.command == "create":
            from optbench.study.run import create_sweeps

            for name in create_sweeps(study):
                print(f"sweep {name}: ready")
        elif a.command == "work":
            from optbench.study.run import work

            work(study, a.entry, a.trials)
        elif a.command == "final":
            from optbench.study.run import final

            final(study, a.entry)
        elif a.command == "all":
            from optbench.study.run import create_sweeps, run_all

            create_sweeps(study)
            run_all(study)
        elif a.command == "status":
            from optbench.study.run import status_table

            print(status_table(study))
        elif a.command == "report":
            from optbench.study.report import write_report

            md, fig = write_report(study)
            print(f"wrote {md} and {fig}")
        else:
            from optbench.study.finals import write_recipes

            for path in write_recipes(study, RECIPES):
                print(f"wrote {path}")
    except OptbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
