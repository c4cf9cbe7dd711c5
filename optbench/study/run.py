"""Running a rank study in small chunks that resume from its committed storage.

- `create_sweeps`: one `optbench sweep` per entry (its space from the study's rule), in the study's SQLite file;
  idempotent, so a later sitting resumes the same sweeps.
- `work`: one trial of the entry that has the fewest (round robin), so a partial study stays balanced.
- `final`: the next seed of the best configuration of an entry whose sweep is done (one seed per call; a run
  folder's finished seeds are kept, so calls add seeds until the study's `final_seeds` are all there).
- `run_all`: entry by entry in the study's order, its sweep then its final seeds, so a study stopped part way
  has whole entries.
Each call does a few minutes of work; wrap it in `flock /tmp/optbench-heavy.lock` on a shared machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.study.plan import Entry, Study


def create_sweeps(study: Study) -> list[str]:
    """Create (or open, when they exist with the same definition) every entry's sweep, its first trial enqueued at
    the entry's centre; returns their names."""
    from optbench.sweep import create_sweep

    (study.dir / study.storage).parent.mkdir(parents=True, exist_ok=True)
    names = []
    for e in study.entries:
        sweep = create_sweep(study.sweep_name(e), track=study.track, recipe=study.recipe_ref(e),
                             space=study.space(e), storage=study.storage_url(), sampler=study.sampler, seeds=1,
                             first_seed=study.sweep_seed, objective="steps", max_trials=study.trials,
                             runs_dir=study.runs_dir(e), resume=True)
        if not sweep.study.trials:
            sweep.study.enqueue_trial(study.centre(e))
        names.append(sweep.name)
    return names


@dataclass
class EntryState:
    entry: Entry
    used: int  # trials that count toward the budget
    finished: int
    seeds_done: list[int]  # final seeds with a finished run

    def sweep_done(self, budget: int) -> bool:
        return self.finished >= budget

    def finals_done(self, seeds: list[int]) -> bool:
        return all(s in self.seeds_done for s in seeds)


def final_seeds_done(folder: Path) -> list[int]:
    """Seeds whose run finished in a final-run folder (the loop's trials/seedN.json)."""
    return sorted(int(p.stem[4:]) for p in (folder / "trials").glob("seed*.json"))


def states(study: Study) -> list[EntryState]:
    from optbench.sweep import open_sweep, sweep_status

    out = []
    for e in study.entries:
        st = sweep_status(open_sweep(study.sweep_name(e), study.storage_url()))
        out.append(EntryState(e, st.used, st.finished, final_seeds_done(study.final_dir(e))))
    return out


def work(study: Study, entry: str | None = None, trials: int = 1, log=print) -> list[str]:
    """Run `trials` trials, each for the entry with the fewest so far (or for `entry`); returns the sweeps run."""
    from optbench.sweep import run_worker

    ran = []
    for _ in range(trials):
        todo = [s for s in states(study) if not s.sweep_done(study.trials) and s.used < study.trials
                and (entry is None or s.entry.name == entry)]
        if not todo:
            log(f"study {study.name}: every sweep has its {study.trials} trials" if entry is None
                else f"study {study.name}: sweep of {entry} has its {study.trials} trials")
            break
        pick = min(todo, key=lambda s: (s.used, study.names.index(s.entry.name)))
        name = study.sweep_name(pick.entry)
        report = run_worker(name, study.storage_url(), n_trials=1, runs_dir=study.runs_dir(pick.entry), log=log)
        log(report.summary())
        ran.append(name)
    return ran


def final(study: Study, entry: str | None = None, log=print) -> str | None:
    """Run the next final seed of `entry` (or of the first entry whose sweep is done and finals are not);
    returns the entry's name, or None when nothing is left to run."""
    from optbench.study.finals import run_final_seed

    for s in states(study):
        if entry is not None and s.entry.name != entry:
            continue
        if not s.sweep_done(study.trials):
            if entry is not None:
                raise OptbenchError(f"study {study.name}: the sweep of {entry} has {s.finished} of its "
                                    f"{study.trials} trials; finish it first (`work --entry {entry}`)")
            continue
        if s.finals_done(study.final_seeds):
            continue
        seed = next(x for x in study.final_seeds if x not in s.seeds_done)
        run_final_seed(study, s.entry, seed, log=log)
        return s.entry.name
    log(f"study {study.name}: no final run left to do")
    return None


def run_all(study: Study, log=print) -> None:
    """Finish every entry in the study's order: the rest of its sweep, then the rest of its final seeds."""
    for e in study.entries:
        while work(study, e.name, 1, log=log):
            pass
        while final(study, e.name, log=log) is not None:
            pass


def status_table(study: Study) -> str:
    """One line per entry: trials finished of the budget, the best value so far, final seeds done."""
    from optbench.sweep import open_sweep, sweep_status

    lines = [f"study {study.name} ({study.storage_url().removeprefix('sqlite:///')}):"]
    for s in states(study):
        best = sweep_status(open_sweep(study.sweep_name(s.entry), study.storage_url())).best
        best_txt = f"best {best.value:,.0f} steps (trial {best.number})" if best is not None else "no best yet"
        done = len([x for x in s.seeds_done if x in study.final_seeds])
        lines.append(f"  {s.entry.name:<10} trials {s.finished:>2}/{study.trials}  {best_txt:<32} "
                     f"final seeds {done}/{len(study.final_seeds)}")
    return "\n".join(lines)
