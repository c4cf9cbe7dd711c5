"""`optbench submission pack`: a run folder -> a workspace artifact folder (spec/workspace.md "Layout"):

    train_gpt_simple.py   exported from the run's recipe and track (optbench.submission.export)
    results.json          the run's results.json, validated (optbench.results.schema.load_results)
    README.md             approach, hyperparameters, per-seed table, verdict, source
    train_log.txt         the run's log

Files are created, never replaced: if any of them already exists in the destination, nothing is written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from optbench.errors import OptbenchError

ARTIFACT_FILES = ("train_gpt_simple.py", "results.json", "README.md", "train_log.txt")


def _create(path: Path, data: bytes) -> None:
    """Write `path` atomically and only if it does not exist (temp file + hard link, which fails on a name
    that exists)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise OptbenchError(f"--out: {path} exists; pack never overwrites files (choose a new folder)") from None
    finally:
        os.unlink(tmp)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.5f}"
    return str(v)


def readme_text(recipe, track, results, run_cfg: dict) -> str:
    """The artifact README: approach, hyperparameters, per-seed table, verdict, source."""
    from optbench.results import stats
    from optbench.results.judging import verdict_of

    steps_name = results.steps_field
    lines = [f"# {results.experiment}", ""]
    lines += ["## Approach", ""]
    lines.append(f"Optimizer under test: **{recipe.optimizer}**"
                 + (f" on the hidden matrices; {recipe.aux.optimizer} on the embedding, LM head and vectors/scalars"
                    if recipe.aux is not None else " on every parameter") + ".")
    if recipe.description:
        lines += ["", recipe.description]
    lines += ["", f"Track: `{track.name}` ({track.description}); target val loss {track.target}.", ""]
    lines += ["## Hyperparameters", "", "| what | value |", "|---|---|"]
    lines.append(f"| recipe | `{recipe.name}` |")
    for k, v in recipe.hparams.items():
        lines.append(f"| {recipe.optimizer} {k} | {v} |")
    for ov in recipe.overrides:
        lines.append(f"| matrices matching `{ov.match}` | {', '.join(f'{k}={v}' for k, v in ov.hparams.items())} |")
    if recipe.aux is not None:
        a = recipe.aux
        lines.append(f"| aux {a.optimizer} lr (embed / head / scalars) | {a.embed_lr} / {a.head_lr} / {a.scalar_lr} |")
        for k, v in a.hparams.items():
            lines.append(f"| aux {k} | {v} |")
    T = run_cfg.get("train_steps") or recipe.train_steps or track.train_steps
    lines.append(f"| train_steps | {T} |")
    lines.append(f"| schedule | warmup {recipe.warmup_steps} steps, stable, linear cooldown over the last "
                 f"{recipe.cooldown_frac:g} |")
    lines += ["", f"Summary: `{recipe.summary()}`", ""]
    lines += ["## Runs", "", f"| seed | final val loss | first step below {track.target} | diverged |",
              "|---|---|---|---|"]
    for r in results.runs:
        lines.append(f"| {_fmt(r.seed)} | {_fmt(r.final_val_loss)} | {_fmt(r.steps_to_target)} | "
                     f"{'yes' if r.diverged else 'no'} |")
    if not results.runs:
        lines.append("| - | - | - | - |")
    lines += ["", "## Verdict", ""]
    v = verdict_of(results)
    if v is not None:
        lines.append(stats.format_verdict(v))
    else:
        lines.append(f"{steps_name}: {_fmt(results.steps_to_target)}, final val loss {_fmt(results.final_val_loss)} "
                     f"over {results.n} run(s) (no per-seed curves to re-judge)")
    lines.append("")
    lines.append(f"`{steps_name}` = {_fmt(results.steps_to_target)}, mean val loss {_fmt(results.mean_val_loss)}, "
                 f"std {_fmt(results.std_val_loss)}, n = {results.n}, rule `{results.rule}`, compliant: "
                 f"{results.compliant}.")
    for note in results.compliance_notes:
        lines.append(f"- {note}")
    lines += ["", "## Source", ""]
    lines.append(f"- Recipe source: {recipe.source or 'n/a'}")
    prov = results.provenance
    if prov is not None:
        lines.append(f"- optbench commit {prov.git_commit or 'unknown'}, torch {prov.torch_version or '?'}, "
                     f"device {prov.device or '?'}, world size {prov.world_size or '?'}")
    lines.append("- `train_gpt_simple.py` was exported from the recipe with `optbench export`; `train_log.txt` is the "
                 "optbench run's own log (its code section is the recipe and the optimizer/model source the run used).")
    lines += ["", "## Reproduce", "", "```",
              "torchrun --standalone --nproc_per_node=$(nvidia-smi -L | wc -l) train_gpt_simple.py "
              f"{max(1, results.n)}", "```", ""]
    return "\n".join(lines)


def pack(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Create the artifact folder `out` from an optbench run folder."""
    from optbench.results.schema import load_results
    from optbench.submission.export import export_script
    from optbench.train.config import RunConfig

    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise OptbenchError(f"RUN_DIR: {run_dir} is not a folder")
    cfg = RunConfig.load(run_dir)
    results_path = run_dir / "results.json"
    results = load_results(results_path)
    log_path = run_dir / "train_log.txt"
    if not log_path.is_file():
        raise OptbenchError(f"RUN_DIR: {run_dir} has no train_log.txt")
    if cfg.track.unofficial or results.unofficial:
        raise OptbenchError(f"RUN_DIR: {run_dir} is an unofficial run (fixed track fields changed); it cannot be "
                            "packed as a submission")
    recipe, track = cfg.recipe, cfg.track
    if recipe.train_steps != cfg.train_steps:
        recipe = recipe.model_copy(update={"train_steps": cfg.train_steps})
    files = {
        "train_gpt_simple.py": export_script(recipe, track).encode(),
        "results.json": results_path.read_bytes(),
        "README.md": readme_text(recipe, track, results, cfg.to_json()).encode(),
        "train_log.txt": log_path.read_bytes(),
    }
    out.mkdir(parents=True, exist_ok=True)
    existing = [n for n in ARTIFACT_FILES if (out / n).exists()]
    if existing:
        raise OptbenchError(f"--out: {out} already has {', '.join(existing)}; pack never overwrites files "
                            "(choose a new folder)")
    for name in ARTIFACT_FILES:
        _create(out / name, files[name])
    return out


__all__ = ["pack", "readme_text", "ARTIFACT_FILES"]
