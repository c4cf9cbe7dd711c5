"""An entry's final runs: its sweep's best configuration, run with the study's fresh seeds, one seed per call.

The folder is an ordinary run folder (results.json over the seeds so far); a later call adds the next seed and
rewrites results.json over all of them. A folder made from another configuration is refused, never mixed.
"""

from __future__ import annotations

import json
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.study.plan import Entry, Study


def final_recipe(study: Study, entry: Entry):
    """(Recipe, its TOML text): the sweep's best configuration, citing the study and carrying its tuning_budget."""
    import tomli_w

    from optbench.sweep.export import best_recipe

    sweep = study.sweep_name(entry)
    recipe, best = best_recipe(sweep, study.storage_url(), recipe_name=f"{study.track}-{entry.name}")
    source = (f"optbench proxy study `{study.name}` (studies/{study.dir.name}/study.toml, docs/proxy_study.md): "
              f"best of {recipe.tuning_budget.trials} trials of sweep {sweep}, trial {best.number}, "
              f"objective steps = {best.value:.6g}")
    recipe = recipe.model_copy(update={"source": source, "description": f"{entry.label} tuned on the {study.track} "
                                       f"track by the proxy study ({study.trials} trials, {study.sampler} sampler)"})
    text = tomli_w.dumps(recipe.model_dump(mode="json", exclude_none=True))
    return recipe, text


def run_final_seed(study: Study, entry: Entry, seed: int, log=print) -> Path:
    """Train `seed` of the entry's best configuration into its final folder; returns the folder."""
    from optbench.data.corpus import default_data_dir
    from optbench.study.run import final_seeds_done
    from optbench.tracks import get_track
    from optbench.train.distributed import setup
    from optbench.train.loop import RunConfig, run

    track = get_track(study.track)
    recipe, text = final_recipe(study, entry)
    out = study.final_dir(entry)
    done = final_seeds_done(out)
    if seed in done:
        raise OptbenchError(f"{out}: seed {seed} is already done")
    stored = out / "run.json"
    if stored.is_file() and json.loads(stored.read_text())["recipe"] != recipe.model_dump():
        raise OptbenchError(f"{out} holds runs of another configuration than the best of sweep "
                            f"{study.sweep_name(entry)}; move it away to start the final runs again")
    seeds = [s for s in study.final_seeds if s in done] + [seed]
    cfg = RunConfig(track=track, recipe=recipe, recipe_text=text, seeds=seeds, out_dir=out,
                    data_dir=default_data_dir(track.vocab_size, track.data),
                    experiment=f"{study.name} final {entry.name}")
    log(f"study {study.name}: final run of {entry.name}, seed {seed} ({len(done)} of {len(study.final_seeds)} "
        f"done), train_steps {cfg.train_steps}")
    run(cfg, setup("cpu"), resume=bool(done))
    return out


def write_recipes(study: Study, recipe_dir: Path) -> list[Path]:
    """Each entry whose sweep is done: its best configuration as the bundled recipe `TRACK-ENTRY.toml`, with the
    sweep's tuning_budget, the study as source and, once its final runs are all there, their result as
    `published`."""
    import tomli_w

    from optbench.fsutil import atomic_write_text
    from optbench.optim.recipe import Published, parse_recipe
    from optbench.study.report import collect

    written = []
    for row in collect(study):
        if row.trials < study.trials:
            continue
        recipe, _ = final_recipe(study, row.entry)
        if row.complete and not row.extrapolated:
            mean = sum(row.finals) / len(row.finals)
            recipe = recipe.model_copy(update={"published": Published(
                steps=int(row.proxy_steps), mean_val_loss=round(mean, 5), n=len(row.finals))})
        text = ("# written by `python bench/proxy_study.py recipes` from the proxy study (docs/proxy_study.md)\n"
                + tomli_w.dumps(recipe.model_dump(mode="json", exclude_none=True)))
        out = Path(recipe_dir) / f"{recipe.name}.toml"
        parse_recipe(text, str(out))  # what we write must load back
        atomic_write_text(out, text)
        written.append(out)
    return written
