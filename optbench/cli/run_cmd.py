"""`optbench run` and `optbench data ...`: the harness commands (`tracks` and `recipes` are in info_cmd)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from optbench.cli.app import app
from optbench.errors import OptbenchError

data_app = typer.Typer(no_args_is_help=True, help="Get benchmark data: FineWeb download, local text to shards.")
app.add_typer(data_app, name="data")


def _default_out(track: str, recipe: str) -> Path:
    return Path("runs") / f"{track}-{recipe}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def _broadcast_path(p: Path, env) -> Path:
    if not env.distributed:
        return p
    import torch.distributed as dist

    box = [str(p)]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


@app.command("run")
def run_cmd(
    track: str = typer.Option("cpu", "--track", help="small | medium | cpu | nano | proxy"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="optimizer under test (registry name)"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="bundled recipe name or a .toml file"),
    seed: int = typer.Option(0, "--seed", help="first seed; --runs N uses seed..seed+N-1"),
    runs: int = typer.Option(1, "--runs", min=1, help="number of seeds"),
    data: Optional[Path] = typer.Option(None, "--data", help="folder of fineweb_train_*.bin / fineweb_val_*.bin"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder (default runs/TRACK-RECIPE-TIME)"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    settings: List[str] = typer.Option([], "--set", help="override a recipe value: lr=0.02, aux.embed_lr=0.3, "
                                                           "train_steps=300 (repeatable)"),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", min=0, help="checkpoint every K steps"),
    keep_checkpoints: Optional[int] = typer.Option(
        None, "--keep-checkpoints", min=1, show_default=False,
        help="checkpoints kept per seed, also after the run ends (default: the latest while running, none after)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="resume the run in this folder"),
    unofficial: bool = typer.Option(False, "--unofficial", help="allow changing fixed track fields"),
    override: List[str] = typer.Option([], "--override", help="with --unofficial: track field, e.g. target=4.0"),
    compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help="torch.compile (default: on cuda)"),
    agent_id: Optional[str] = typer.Option(None, "--agent-id", show_default=False,
                                           help="results.json's agent id (default: $OPTBENCH_AGENT_ID, else "
                                                "$AGENT_ID, else your login name; the workspace commands use the same)"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
    tracker: List[str] = typer.Option([], "--tracker", help="also log to wandb | tensorboard | trackio (repeatable)"),
    script: Optional[Path] = typer.Option(None, "--script", help="an upstream-layout train_gpt_simple.py instead of a "
                                                                 "recipe: small = torchrun on GPUs, cpu/nano = shim"),
) -> None:
    """Train: one track + optimizer/recipe + seed(s). Writes train_log.txt, metrics.jsonl, results.json."""
    if not quiet and os.environ.get("RANK", "0") == "0":  # first output, before torch is imported (rank 0 only)
        print(f"optbench run: {'resuming ' + str(resume) if resume else f'track {track}'}: checking data and "
              "configuration ...", file=sys.stderr, flush=True)
    if script is not None:
        return _run_script(script, track, seed, runs, data, out, settings, agent_id, quiet,
                           conflicting=[n for n, v in (("--recipe", recipe), ("--optimizer", optimizer),
                                                       ("--resume", resume)) if v is not None])
    from optbench.assignments import parse_assignment
    from optbench.optim.recipe import resolve_recipe
    from optbench.tracks import run_data_dir, track_for_run
    from optbench.train import distributed
    from optbench.train.interrupt import RunInterrupted
    from optbench.train.loop import RunConfig, run
    from optbench.workspace.identity import resolve_agent_id

    env = distributed.setup(device)
    try:
        if resume is not None:
            kept = {} if keep_checkpoints is None else {"keep_checkpoints": keep_checkpoints}
            cfg = RunConfig.load(resume, device=device, progress=not quiet, **kept)
        else:
            pairs = dict(parse_assignment(o, "--override", "FIELD") for o in override)
            t = track_for_run(track, pairs, unofficial=unofficial, custom_data=None if data is None else str(data))
            r, text = resolve_recipe(recipe, optimizer, t, settings)
            out_dir = _broadcast_path(out or _default_out(t.name, r.name), env)
            if env.is_main and out_dir.exists() and any(out_dir.iterdir()):
                raise OptbenchError(f"--out: {out_dir} exists and is not empty (use a new folder, or --resume it)")
            cfg = RunConfig(track=t, recipe=r, recipe_text=text, seeds=list(range(seed, seed + runs)),
                            out_dir=out_dir, data_dir=run_data_dir(t, data, unofficial), device=device,
                            compile=(device == "cuda") if compile is None else compile,
                            checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                            agent_id=resolve_agent_id(agent_id), progress=not quiet)
        cfg.track.check_world_size(env.world_size)
        from optbench.trackers import tracked

        try:
            with tracked(tracker if env.is_main else [], cfg):
                results, diverged = run(cfg, env, resume=resume is not None)
        except RunInterrupted as e:
            if env.is_main:
                print(f"optbench: {e}; results.json marks the run interrupted"
                      + (f"; `optbench run --resume {cfg.out_dir}` continues it" if cfg.checkpoint_every else ""),
                      file=sys.stderr)
            raise typer.Exit(e.exit_code) from None
        if env.is_main:
            _summary(cfg, results)
        if diverged:
            d = next((r for r in results.runs if r.diverged), None) if results is not None else None
            where = f" at step {getattr(d, 'diverged_step', '?')} (seed {d.seed})" if d is not None else ""
            print(f"optbench: error: the run diverged{where} (NaN/Inf loss); results.json marks it diverged",
                  file=sys.stderr)
            raise typer.Exit(3)
    finally:
        distributed.teardown()


def _run_script(script: Path, track: str, seed: int, runs: int, data: Optional[Path], out: Optional[Path],
                settings: List[str], agent_id: Optional[str], quiet: bool, conflicting: list[str]) -> None:
    """`run --script`: optbench.submission.shim.script_run (plan, run, results.json)."""
    from optbench.assignments import parse_assignment
    from optbench.submission.shim.script_run import plan_run, run_script

    if conflicting:
        raise OptbenchError(f"--script: the script is the run; {', '.join(conflicting)} cannot be given with it")
    steps = None
    for s in settings:
        key, value = parse_assignment(s, "--set", "train_steps")
        if key != "train_steps" or not str(value).isdigit() or int(value) < 1:
            raise OptbenchError(f"--set {s}: with --script only train_steps=N (N >= 1) applies (the script's "
                                "hyperparameters are hard-coded)")
        steps = int(value)
    plan = plan_run(script, track, seed=seed, runs=runs, steps=steps, data_dir=data)
    out_dir = out or _default_out(plan.track.name, Path(script).stem)
    from optbench.workspace.identity import resolve_agent_id

    results = run_script(plan, out_dir, agent_id=resolve_agent_id(agent_id), echo=not quiet)
    print(f"{Path(script).name} on {plan.track.name}: final val loss "
          + ", ".join(f"{r.final_val_loss:.5f}" for r in results.runs) + f" over {results.num_runs} run(s); "
          + (f"target {plan.track.target} reached at step {results.steps_to_target}" if results.reached_target
             else f"target {plan.track.target} not reached"))
    print(f"results: {Path(out_dir) / 'results.json'}   log: {Path(out_dir) / 'train_log.txt'}")


def _summary(cfg, results) -> None:
    c = Console(stderr=False)
    steps = results.steps_to_target
    c.print(f"[bold]{cfg.recipe.name}[/bold] on {cfg.track.name}: target {cfg.track.target} "
            + (f"reached at step {steps}" if results.reached_target else "not reached")
            + f" over {results.num_runs} run(s)"
            + "; " + results.loss_summary()
            + f"; wall {results.wallclock_s:.1f}s")
    c.print(f"results: {Path(cfg.out_dir) / 'results.json'}   log: {Path(cfg.out_dir) / 'train_log.txt'}",
            markup=False, highlight=False, soft_wrap=True)  # a long path stays on one line


@data_app.command("fineweb")
def data_fineweb(
    train_shards: int = typer.Option(20, "--train-shards", help="train shards 1..N (each 10^8 tokens)"),
    dir: Path = typer.Option(Path("data/fineweb10B"), "--dir", help="destination folder"),
) -> None:
    """Download kjj0/fineweb10B-gpt2 from the Hugging Face hub, as upstream cached_fineweb10B.py."""
    from optbench.data.fineweb import download_fineweb

    paths = download_fineweb(train_shards, dir)
    print(f"{len(paths)} shards in {dir}")


@data_app.command("text")
def data_text(
    paths: List[Path] = typer.Argument(..., help="text/jsonl files or folders (train documents)"),
    out: Path = typer.Option(..., "--out", help="new folder for the shards"),
    val: List[Path] = typer.Option([], "--val", help="val documents (default: the first tokens of the stream)"),
    val_tokens: Optional[int] = typer.Option(None, "--val-tokens", help="without --val: tokens for the val shard"),
    bpe: Optional[Path] = typer.Option(None, "--bpe", help="GPT-2 .tiktoken rank file (default: bundled copy)"),
    vocab_size: Optional[int] = typer.Option(None, "--vocab-size", help="reduced vocabulary (CPU tracks: 8192)"),
    shard_tokens: int = typer.Option(10**8, "--shard-tokens", help="tokens per shard (upstream 10^8)"),
) -> None:
    """Tokenize text with the GPT-2 BPE into upstream-format shards (each document prefixed by <|endoftext|>)."""
    from optbench.data.text import text_to_shards

    meta = text_to_shards(paths, out, val_paths=val or None, val_tokens=val_tokens, bpe=bpe,
                          vocab_size=vocab_size, shard_tokens=shard_tokens)
    print(f"{out}: {meta['train_tokens']:,} train tokens, {meta['val_tokens']:,} val tokens, "
          f"vocabulary {meta['vocab_size']}")


@data_app.command("default")
def data_default(track: str = typer.Option("cpu", "--track")) -> None:
    """Build (once) and print the folder of the bundled offline corpus for a CPU track."""
    from optbench.data.corpus import default_data_dir
    from optbench.tracks import get_track

    t = get_track(track)
    if t.data == "fineweb":
        raise OptbenchError(f"--track: {track} has no bundled data (it trains on {t.data})")
    print(default_data_dir(t.vocab_size, t.data))
