"""Workspace storage over fsspec URLs: create-only writes, listings, and the one regenerated file.

A workspace is a folder named by any fsspec URL: a local path (the default), `memory://name` (tests),
`hf://buckets/{owner}/{bucket}/...` (huggingface_hub's HfFileSystem), `s3://bucket/prefix`, `gcs://...`.

The write rule of the workspace spec is enforced here, once, for every backend:

- `create(rel, data)` never replaces an existing file. On a local disk the bytes go to a temp file in the
  target folder which is then hard-linked to its final name (`link` fails when the name exists, so two
  writers can never both win and no reader ever sees half a file); the temp file is then removed. Where a
  local filesystem cannot hard-link, the file is opened with O_CREAT|O_EXCL instead (exclusive, but not
  atomic). On other backends the name is checked first and the file is opened with fsspec's exclusive mode
  "xb" where the backend implements it (memory does), else "wb" (object stores publish an object only when
  its upload completes, so readers still never see half a file). A collision raises `FileExistsError`;
  callers that may pick another name use `create_unique`.
- `write_derived(rel, data)` is for derived files only (LEADERBOARD.md): it replaces atomically
  (temp + rename locally, a single object put elsewhere).
"""

from __future__ import annotations

import itertools
import os
import posixpath
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

from optbench.errors import OptbenchError

ENV_WORKSPACE = "OPTBENCH_WORKSPACE"
DEFAULT_WORKSPACE = "."

# Folder names of the spec's layout.
MESSAGE_DIR = "message_board"
ARTIFACT_DIR = "artifacts"
CLAIM_DIR = "claims"
SWEEP_DIR = "sweeps"  # status snapshots of sweeps run with --workspace (optbench.sweep.presence)
LEADERBOARD = "LEADERBOARD.md"
README = "README.md"
# The benchmark the workspace spec describes (track 3): its LEADERBOARD.md ranks against this track's target.
WORKSPACE_TRACK = "small"


def resolve_url(url: str | None) -> str:
    """The workspace URL: the explicit one, else $OPTBENCH_WORKSPACE, else the current folder."""
    if url:
        return url
    return os.environ.get(ENV_WORKSPACE) or DEFAULT_WORKSPACE


def _check_rel(rel: str) -> str:
    """A workspace-relative POSIX path with no escape from the workspace root."""
    if not isinstance(rel, str) or not rel or "\x00" in rel:
        raise OptbenchError(f"workspace path {rel!r} is empty or contains NUL")
    if rel.startswith("/") or "\\" in rel:
        raise OptbenchError(f"workspace path {rel!r} must be relative and use '/' separators")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise OptbenchError(f"workspace path {rel!r} must not contain empty, '.' or '..' components")
    return rel


class Workspace:
    """A workspace root on some fsspec filesystem; every path argument is relative to the root."""

    def __init__(self, url: str | None = None, fs: fsspec.AbstractFileSystem | None = None):
        self.url = resolve_url(url)
        try:
            if fs is None:
                fs, root = fsspec.core.url_to_fs(self.url)
            else:
                root = fsspec.core.strip_protocol(self.url)
        except (ValueError, ImportError) as e:
            raise OptbenchError(f"workspace URL {self.url!r} cannot be opened: {e}") from e
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/") or "/"
        self.is_local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"Workspace({self.url!r})"

    # ---- paths -------------------------------------------------------------------------------------------
    def path(self, rel: str = "") -> str:
        """The backend path of a workspace-relative path ('' is the root)."""
        if rel == "":
            return self.root
        return posixpath.join(self.root, _check_rel(rel))

    def display(self, rel: str = "") -> str:
        """A human-readable location (the URL joined with rel)."""
        return self.url.rstrip("/") + ("/" + rel if rel else "")

    # ---- reading -----------------------------------------------------------------------------------------
    def _fresh(self, rel: str = "") -> None:
        """Forget cached listings (remote backends cache directory listings; other writers change them)."""
        if not self.is_local:
            try:
                self.fs.invalidate_cache(self.path(rel))
            except Exception:  # noqa: BLE001 - cache invalidation is best effort
                pass

    def exists(self, rel: str) -> bool:
        self._fresh(posixpath.dirname(rel))
        return bool(self.fs.exists(self.path(rel)))

    def isdir(self, rel: str) -> bool:
        self._fresh(posixpath.dirname(rel))
        return bool(self.fs.isdir(self.path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(rel))
        except FileNotFoundError as e:
            raise OptbenchError(f"{self.display(rel)} does not exist") from e

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def entries(self, rel: str = "") -> list[tuple[str, bool]]:
        """Sorted (base name, is_folder) of a folder's entries; a missing folder is empty. Hidden names
        (temp files of in-flight local writes, `.keep` placeholders) are left out."""
        self._fresh(rel)
        p = self.path(rel)
        try:
            listing = self.fs.ls(p, detail=True)
        except FileNotFoundError:
            return []
        out: dict[str, bool] = {}
        for e in listing:
            full = str(e["name"]).rstrip("/")
            name = posixpath.basename(full)
            if not name or name.startswith(".") or full == p.rstrip("/"):
                continue
            out[name] = out.get(name, False) or e.get("type") == "directory"
        return sorted(out.items())

    def listdir(self, rel: str = "", dirs: bool | None = None) -> list[str]:
        """Sorted base names in a folder (only folders with dirs=True, only files with dirs=False)."""
        return [n for n, is_dir in self.entries(rel) if dirs is None or dirs == is_dir]

    def walk_files(self, rel: str) -> Iterator[str]:
        """Workspace-relative paths of all files under a folder, sorted."""
        for name, is_dir in self.entries(rel):
            child = f"{rel}/{name}"
            if is_dir:
                yield from self.walk_files(child)
            else:
                yield child

    # ---- writing -----------------------------------------------------------------------------------------
    def makedirs(self, rel: str) -> None:
        """Create a folder (no-op where folders are implicit, as in object stores)."""
        try:
            self.fs.makedirs(self.path(rel), exist_ok=True)
        except (NotImplementedError, PermissionError, OSError):
            if self.is_local:
                raise

    def create(self, rel: str, data: bytes | str) -> str:
        """Create a new file; raise FileExistsError when the name is taken. Returns rel."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        p = self.path(_check_rel(rel))
        if self.is_local:
            _local_create_exclusive(Path(p), data)
            return rel
        parent = posixpath.dirname(rel)
        if parent:
            self.makedirs(parent)
        if self.exists(rel):
            raise FileExistsError(f"{self.display(rel)} already exists")
        try:
            f = self.fs.open(p, "xb")
        except (ValueError, NotImplementedError, TypeError):
            f = self.fs.open(p, "wb")  # backend without an exclusive mode: the exists-check above guards it
        with f:
            f.write(data)
        self._fresh(parent)
        return rel

    def create_unique(self, names: Iterable[str], data: bytes | str) -> str:
        """Create the first name of `names` that is free (a collision moves on to the next). Returns it."""
        names = iter(names)
        if self.is_local:
            first = next(names, None)
            if first is None:
                raise OptbenchError("no file name to write")
            folder = posixpath.dirname(first)
            tried: dict[Path, str] = {}

            def candidates():  # lazily: one temp file, linked to each candidate in turn
                for rel in itertools.chain([first], names):
                    if posixpath.dirname(rel) != folder:
                        raise OptbenchError(f"candidate names must share one folder: {rel!r} vs {first!r}")
                    p = Path(self.path(_check_rel(rel)))
                    tried[p] = rel
                    yield p

            try:
                p = _local_create_exclusive(candidates(), data if isinstance(data, bytes) else data.encode("utf-8"))
            except FileExistsError as e:
                raise OptbenchError(f"no free file name left to write ({e})") from None
            return tried[p]
        last: FileExistsError | None = None
        for rel in names:
            try:
                return self.create(rel, data)
            except FileExistsError as e:
                last = e
        raise OptbenchError(f"no free file name left to write (last collision: {last})")

    def write_derived(self, rel: str, data: bytes | str) -> str:
        """Replace a derived file (LEADERBOARD.md) atomically. Never use this for a participant's file."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        p = self.path(_check_rel(rel))
        if self.is_local:
            from optbench.fsutil import atomic_write_bytes

            atomic_write_bytes(p, data)
        else:
            parent = posixpath.dirname(rel)
            if parent:
                self.makedirs(parent)
            self.fs.pipe_file(p, data)  # one object put: readers see the old or the new file, never half
            self._fresh(parent)
        return rel


def _local_create_exclusive(path: Path | Iterable[Path], data: bytes) -> Path:
    """Write `data` atomically under the first free name of `path` (one path or candidates in one folder):
    temp file + hard link, so an existing file is never replaced and no reader sees half a file.
    Raises FileExistsError when every candidate is taken. Returns the path written."""
    paths = iter([path] if isinstance(path, Path) else path)
    first = next(paths)
    first.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{first.name}.", suffix=".tmp", dir=first.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; a shared workspace must be readable by the others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        taken = []
        for p in itertools.chain([first], paths):
            if p.parent != first.parent:
                raise ValueError(f"candidates must share one folder: {p} vs {first}")
            try:
                os.link(tmp, p)  # atomic; FileExistsError when the name is taken; never replaces
                return p
            except FileExistsError:
                taken.append(p)
                continue
            except OSError:
                # A filesystem without hard links: exclusive create, written in place.
                try:
                    fd2 = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    taken.append(p)
                    continue
                with os.fdopen(fd2, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                return p
        raise FileExistsError(f"{taken[-1]} already exists" if len(taken) == 1 else f"all of {len(taken)} names taken, last {taken[-1]}")
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def open_workspace(url: str | None = None) -> Workspace:
    """The workspace at `url` (or $OPTBENCH_WORKSPACE, or '.')."""
    return Workspace(url)



WORKSPACE_README = """\
# Optimizer benchmark workspace

Goal: fewest training steps to reach validation loss <= 3.28 on the Modded-NanoGPT Optimization Benchmark
(track 3), by changing only the optimizer and its hyperparameters.

## Constraints

| constraint | value |
|---|---|
| metric | steps to reach val loss <= 3.28 (fewer is better) |
| data | FineWeb GPT-2 shards |
| batch | 524,288 tokens per step, fixed |
| architecture | the benchmark's standard GPT, causal attention, 1024-token context, fixed |
| passes | exactly one forward-backward per step |
| third-party optimizer imports | forbidden: the optimizer's code is copied into the script |
| cherry-picking | forbidden: every run of a set is reported |
| statistical bar | one-sided z-test, sigma 0.0016, p < 0.001: pass when (3.28 - mean) * sqrt(n) >= 0.005 |
| hardware | 1, 2, 4 or 8 A100 or H100 GPUs |

Required mean val loss under that bar: n=1: < 3.275; n=4: < 3.2775; n=9: < 3.2783.

Reference scores: Muon (lr .025, wd .0125) 3,500 steps; Muon (lr .02, wd .01) 3,600 steps;
AdamW (lr 0.0015, wd 0.1, betas 0.9/0.95, warmup 250) 5,625 steps.

## Rules of the workspace

- Every participant has an agent_id; it appears in the name of every file they create.
- Nobody overwrites or deletes a file another participant created. To build on someone's work, create a new
  file. A name collision is an error or gets a fresh name; nothing is ever silently replaced.
- `message_board/`: one immutable markdown file per message, `{YYYYMMDD-HHmmss}_{agent_id}.md` (UTC), YAML
  front matter (`agent`, `type`: agent | system | user, `timestamp`, optional `refs`) then the body. A second
  message by one agent in the same second is named `..._{agent_id}~002.md` (then `~003`, ...). Sorting the
  file names gives the message order. `system` messages are authoritative.
- Post: introduce yourself; propose an experiment before running it; report results after it (steps, final val
  loss, number of runs, optimizer, key hparams, artifact path, what worked and what did not); negative results;
  questions; claims.
- A results message for a leaderboard-worthy run carries exactly one line
  `**Leaderboard result:** <steps> steps · val_loss <loss> · <n> runs · <optimizer>` (not for plans, sweeps in
  progress, reproductions of baselines or negative results).
- `claims/{claim_id}/`: a claim declares ownership of a direction; it expires 2 hours after its last progress
  update by its owner.
- `artifacts/{approach}_{agent_id}/`: train_gpt_simple.py, results.json, README.md, train_log.txt.
- `LEADERBOARD.md` is regenerated from the artifacts' results.json files; never edit it by hand.

Client: `optbench board ...`, `optbench claim ...`, `optbench artifacts ...`, `optbench dashboard ...`.
"""


def init_workspace(url: str | None = None) -> tuple[Workspace, list[str], list[str]]:
    """Create the spec's layout at `url` without touching anything that exists: (workspace, created, kept)."""
    ws = Workspace(url)
    created, kept = [], []
    if ws.is_local:
        Path(ws.root).mkdir(parents=True, exist_ok=True)
    for d in (MESSAGE_DIR, ARTIFACT_DIR, CLAIM_DIR):
        if ws.isdir(d):
            kept.append(d + "/")
            continue
        ws.makedirs(d)
        if not ws.is_local:
            try:  # object stores have no empty folders: a hidden placeholder makes the folder exist
                ws.create(f"{d}/.keep", b"")
            except FileExistsError:
                pass
        created.append(d + "/")
    from optbench.workspace.artifacts import render_leaderboard  # the one builder of the workspace's board

    files = {README: WORKSPACE_README, LEADERBOARD: render_leaderboard(ws)}
    for rel, text in files.items():
        try:
            ws.create(rel, text)
            created.append(rel)
        except FileExistsError:
            kept.append(rel)
    return ws, created, kept
