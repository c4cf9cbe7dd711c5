"""`optbench export`, `optbench check` and `optbench submission pack`: single-file submissions."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from optbench.cli.app import app
from optbench.errors import OptbenchError

submission_app = typer.Typer(no_args_is_help=True, help="Submission artifacts: pack a run into a workspace folder.")
app.add_typer(submission_app, name="submission")


@app.command("export")
def export_cmd(
    recipe: str = typer.Option(..., "--recipe", help="bundled recipe name or a .toml file"),
    track: str = typer.Option("small", "--track", help="small | cpu | nano (the track-3 GPT tracks)"),
    out: Path = typer.Option(Path("train_gpt_simple.py"), "--out", help="the script to write"),
    settings: List[str] = typer.Option([], "--set", help="override a recipe value first: lr=0.02, train_steps=3000"),
    force: bool = typer.Option(False, "--force", help="replace an existing --out file"),
) -> None:
    """Write ONE self-contained train_gpt_simple.py (upstream layout, hard-coded hparams, inlined optimizer)."""
    from optbench.fsutil import atomic_write_text
    from optbench.optim.recipe import apply_settings, load_recipe
    from optbench.submission.export import export_script

    r, _ = apply_settings(load_recipe(recipe), settings)
    text = export_script(r, track)
    if out.exists() and not force:
        raise OptbenchError(f"--out: {out} exists; choose a new file name (or pass --force to replace it)")
    atomic_write_text(out, text)
    print(f"{out}: {len(text.splitlines())} lines, recipe {r.name}, track {track}; run with "
          f"`torchrun --standalone --nproc_per_node=N {out.name} [NUM_TRIALS]`")


@app.command("check")
def check_cmd(
    path: Path = typer.Argument(..., help="a train_gpt_simple.py or an upstream-format log"),
    log: Optional[Path] = typer.Option(None, "--log", help="the script's log: its code section must equal the script"),
    track: Optional[str] = typer.Option(None, "--track", help="track the rules come from (default: the script's "
                                                              "TRACK, else small)"),
    dynamic: Optional[bool] = typer.Option(None, "--dynamic/--no-dynamic",
                                           help="run the script at nano size on CPU (default: on for scripts)"),
    steps: int = typer.Option(2, "--steps", min=1, help="optimizer steps the dynamic check observes"),
    data: Optional[Path] = typer.Option(None, "--data", help="nano shards for the dynamic check (default: bundled)"),
    rule: Optional[str] = typer.Option(None, "--rule", help="stats rule for a log's verdict (default: the track's)"),
) -> None:
    """Check a script or log against the benchmark rules; exit 1 on any violation, 0 if clean."""
    from optbench.submission.check import check

    rep = check(path, log=log, track=track, dynamic=dynamic, steps=steps, data_dir=data, rule=rule)
    for v in rep.violations:
        print(f"VIOLATION {v}")
    for n in rep.notes:
        print(f"note: {n}")
    if rep.violations:
        print(f"{path}: {len(rep.violations)} violation(s)")
        raise typer.Exit(1)
    print(f"{path}: clean")


@submission_app.command("pack")
def pack_cmd(
    run_dir: Path = typer.Argument(..., help="an optbench run folder (run.json, results.json, train_log.txt)"),
    out: Path = typer.Option(..., "--out", help="the artifact folder to create"),
) -> None:
    """Create a workspace artifact folder: train_gpt_simple.py, results.json, README.md, train_log.txt."""
    from optbench.submission.pack import ARTIFACT_FILES, pack

    d = pack(run_dir, out)
    print(f"{d}: " + ", ".join(ARTIFACT_FILES))
