"""Runner of the shim: one CPU process that runs a plain upstream-layout script at a CPU track's size.

    python -m optbench.submission.shim.runner SCRIPT --track nano --steps N [--seed S] [--data DIR]
                                              [--workdir DIR] [-- SCRIPT_ARGS...]

The process is prepared (`prepare_process`), then the rewritten source (rewrite.py) runs as __main__:
- the working folder holds data/fineweb10B -> the track's shards (upstream reads "data/fineweb10B/..." relative to
  the working folder) and receives the script's logs/<uuid>.txt;
- RANK=0, WORLD_SIZE=1, LOCAL_RANK=0 and MASTER_ADDR/MASTER_PORT are set, so the script's own
  dist.init_process_group (rewritten to gloo) starts a one-process group;
- torch.cuda.set_device / synchronize / set_rng_state_all are no-ops, get_device_name names the CPU,
  get_rng_state_all is empty (a CPU build of torch has no CUDA to answer them);
- sys.argv[0] is the ORIGINAL script, so the log's code section is the script as written; torch.manual_seed(S)
  is set before the script runs, and `--seed S` is passed when the script declares that option.
The rewritten source is kept next to the logs (shimmed_<name>) and is what tracebacks point at.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import types
from pathlib import Path

SHIMMED_PREFIX = "shimmed_"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def link_data(workdir: Path, data_dir: Path) -> None:
    """workdir/data/fineweb10B -> data_dir (the path upstream scripts read their shards from)."""
    d = workdir / "data"
    d.mkdir(parents=True, exist_ok=True)
    link = d / "fineweb10B"
    if not link.exists():
        link.symlink_to(Path(data_dir).resolve(), target_is_directory=True)


def patch_cuda() -> None:
    """Answer the torch.cuda calls upstream scripts make, on a machine without CUDA."""
    import torch

    cuda = torch.cuda
    cuda.set_device = lambda *a, **k: None
    cuda.synchronize = lambda *a, **k: None
    cuda.get_device_name = lambda *a, **k: "cpu (optbench shim)"
    cuda.get_rng_state_all = lambda: []
    cuda.set_rng_state_all = lambda states: None


def prepare_process(workdir: Path, data_dir: Path, seed: int | None) -> None:
    """Working folder, one-process group environment, torch.cuda answers, the seed (module docstring)."""
    import torch

    link_data(workdir, data_dir)
    os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(free_port())})
    patch_cuda()
    os.chdir(workdir)
    if seed is not None:
        torch.manual_seed(seed)


def shimmed_code(script: Path, track, steps: int, workdir: Path):
    """(code object of the rewritten script, Rewritten) ; the rewritten source is written to workdir."""
    from optbench.submission.shim.rewrite import rewrite

    rw = rewrite(script.read_text(encoding="utf-8"), track, steps, str(script))
    shimmed = workdir / f"{SHIMMED_PREFIX}{script.name}"
    shimmed.write_text(rw.source)
    return compile(rw.source, str(shimmed), "exec", dont_inherit=True), rw


def exec_as_main(code, script: Path, argv: list[str], namespace_locals=None) -> None:
    """Run a code object as the __main__ module of `script` (sys.argv[0] = script)."""
    import builtins

    mod = types.ModuleType("__main__")
    mod.__file__ = str(script)
    sys.modules["__main__"] = mod
    g = mod.__dict__
    g["__builtins__"] = builtins
    sys.argv = [str(script), *argv]
    sys.path[0] = str(script.parent)
    exec(code, g, g if namespace_locals is None else namespace_locals(g))


def main(argv: list[str]) -> int:
    from optbench.tracks import get_track

    ap = argparse.ArgumentParser(prog="python -m optbench.submission.shim.runner")
    ap.add_argument("script", type=Path)
    ap.add_argument("--track", default="nano")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=Path.cwd())
    ap.add_argument("script_args", nargs="*")
    a = ap.parse_args(argv)
    track = get_track(a.track)
    data = a.data
    if data is None:
        from optbench.data.corpus import default_data_dir

        data = default_data_dir(track.vocab_size)
    script, workdir = a.script.resolve(), a.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    code, rw = shimmed_code(script, track, a.steps, workdir)
    args = list(a.script_args)
    if rw.takes_seed and a.seed is not None and "--seed" not in args:
        args = ["--seed", str(a.seed), *args]
    print(f"optbench shim: {script.name} at {track.name} size on CPU, {a.steps} steps, seed {a.seed} "
          f"({len(rw.changes)} rewrites)", file=sys.stderr, flush=True)
    prepare_process(workdir, data, a.seed)
    exec_as_main(code, script, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
