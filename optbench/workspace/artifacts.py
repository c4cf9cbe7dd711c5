"""Artifacts: `artifacts/{approach}_{agent_id}/` folders holding a results.json and what produced it.

push  copies a local folder into the workspace, create-only: it validates results.json first (the results
      schema), writes only into the pusher's own folder, refuses any file that already exists there, and
      writes results.json last (a folder whose results.json is visible is complete). Then LEADERBOARD.md is
      regenerated from every artifact's results.json (the one derived, regenerated file of a workspace).
pull  copies an artifact folder to a local folder (refusing to overwrite local files).
list  every artifact folder with its results (or why they could not be read).

Approach names use letters, digits, '.' and '-' (no '_'), so the first '_' of a folder name always
separates the approach from the agent id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.workspace.identity import validate_agent_id
from optbench.workspace.storage import ARTIFACT_DIR, LEADERBOARD, WORKSPACE_TRACK, Workspace

APPROACH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
APPROACH_RULE = "1-64 characters: a letter or digit, then letters, digits, '.' or '-' (no '_', no '..')"
RESULTS = "results.json"


def validate_approach(name: str) -> str:
    if not isinstance(name, str) or not APPROACH_RE.match(name) or ".." in name:
        raise OptbenchError(f"--name {name!r} is not allowed; allowed: {APPROACH_RULE}")
    return name


def folder_name(approach: str, agent_id: str) -> str:
    return f"{validate_approach(approach)}_{validate_agent_id(agent_id)}"


def split_folder(name: str) -> tuple[str, str] | None:
    """(approach, agent_id) of a folder name made by optbench, else None."""
    if "_" not in name:
        return None
    approach, agent = name.split("_", 1)
    if not APPROACH_RE.match(approach):
        return None
    try:
        validate_agent_id(agent)
    except OptbenchError:
        return None
    return approach, agent


def _parse_results(data: bytes, source: str):
    from optbench.results.schema import parse_results

    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OptbenchError(f"{source}: not valid JSON: {e}") from None
    return parse_results(obj, source)


@dataclass
class Artifact:
    name: str  # folder name
    files: list[str] = field(default_factory=list)  # paths relative to the folder
    results: object | None = None  # optbench.results.Results
    warning: str | None = None

    @property
    def path(self) -> str:
        return f"{ARTIFACT_DIR}/{self.name}"


def _local_files(src: Path) -> list[Path]:
    files = []
    for p in sorted(src.rglob("*")):
        rel = p.relative_to(src)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if p.is_symlink():
            raise OptbenchError(f"{p}: symbolic links are not pushed; copy the file into {src} instead")
        if p.is_file():
            files.append(p)
    return files


@dataclass
class PushReport:
    folder: str
    files: list[str]
    leaderboard: str


def push(ws: Workspace, agent_id: str, src: str | Path, approach: str) -> PushReport:
    """Copy the local folder `src` to artifacts/{approach}_{agent_id}/ (create-only), then regenerate
    LEADERBOARD.md."""
    from optbench.results.schema import load_results

    validate_agent_id(agent_id)
    name = folder_name(approach, agent_id)
    src = Path(src)
    if not src.is_dir():
        raise OptbenchError(f"artifact folder {str(src)!r} does not exist or is not a folder")
    if not (src / RESULTS).is_file():
        raise OptbenchError(f"{src / RESULTS}: missing; an artifact folder needs a results.json (see spec/workspace.md)")
    results = load_results(src / RESULTS)  # raises OptbenchError naming every problem
    if results.agent_id != agent_id:
        raise OptbenchError(
            f"{src / RESULTS}: agent_id is {results.agent_id!r} but you are {agent_id!r}; "
            "push only your own results (build on others' work by creating your own folder)"
        )
    folder = f"{ARTIFACT_DIR}/{name}"
    if ws.exists(f"{folder}/{RESULTS}"):
        try:
            owner = json.loads(ws.read_bytes(f"{folder}/{RESULTS}")).get("agent_id")
        except (ValueError, AttributeError):
            owner = None
        if owner != agent_id:
            raise OptbenchError(
                f"{ws.display(folder)} holds results of agent {owner!r}, not yours ({agent_id!r}); "
                "it is not your folder: choose another --name"
            )
    files = _local_files(src)
    rels = [p.relative_to(src).as_posix() for p in files]
    existing = [r for r in rels if ws.exists(f"{folder}/{r}")]
    if existing:
        raise OptbenchError(
            f"{ws.display(folder)} already has {', '.join(existing)}; files are never overwritten: "
            "push under a new --name (e.g. a version suffix like muon-v2)"
        )
    order = sorted(range(len(files)), key=lambda i: rels[i] == RESULTS)  # results.json last
    written = []
    for i in order:
        try:
            ws.create(f"{folder}/{rels[i]}", files[i].read_bytes())
        except FileExistsError:
            raise OptbenchError(
                f"{ws.display(folder + '/' + rels[i])} appeared while pushing (another writer?); not overwritten. "
                f"Already written: {', '.join(written) or 'nothing'}"
            ) from None
        written.append(rels[i])
    text = regenerate_leaderboard(ws)
    return PushReport(folder=folder, files=written, leaderboard=text)


def list_artifacts(ws: Workspace, with_files: bool = True) -> list[Artifact]:
    """Every artifact folder, sorted by name, with its parsed results.json (or a warning)."""
    out = []
    for name in ws.listdir(ARTIFACT_DIR, dirs=True):
        a = Artifact(name=name)
        folder = f"{ARTIFACT_DIR}/{name}"
        if with_files:
            a.files = [p[len(folder) + 1 :] for p in ws.walk_files(folder)]
        if ws.exists(f"{folder}/{RESULTS}"):
            try:
                a.results = _parse_results(ws.read_bytes(f"{folder}/{RESULTS}"), ws.display(f"{folder}/{RESULTS}"))
            except OptbenchError as e:
                a.warning = str(e)
        else:
            a.warning = f"{ws.display(folder)}: no results.json"
        out.append(a)
    return out


def pull(ws: Workspace, name: str, out: str | Path) -> list[Path]:
    """Copy artifacts/{name}/ to the local folder `out` (never overwriting a local file)."""
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or name.startswith("."):
        raise OptbenchError(f"artifact name {name!r} must be a folder name in {ARTIFACT_DIR}/ (see `optbench artifacts list`)")
    folder = f"{ARTIFACT_DIR}/{name}"
    if not ws.isdir(folder):
        raise OptbenchError(f"no artifact {name!r} in {ws.display(ARTIFACT_DIR)} (see `optbench artifacts list`)")
    rels = [p[len(folder) + 1 :] for p in ws.walk_files(folder)]
    out = Path(out)
    clash = [r for r in rels if (out / r).exists()]
    if clash:
        raise OptbenchError(f"{out} already has {', '.join(clash)}; not overwritten (choose another --out)")
    from optbench.fsutil import atomic_write_bytes

    written = []
    for r in rels:
        written.append(atomic_write_bytes(out / r, ws.read_bytes(f"{folder}/{r}")))
    return written


def render_leaderboard(ws: Workspace) -> str:
    """LEADERBOARD.md's text, built by the results package's leaderboard builder (optbench.results.leaderboard)
    from the workspace's results.json files (artifacts/*/results.json). The builder is given the workspace
    root, so its links (artifacts/{folder}/train_log.txt) are relative to LEADERBOARD.md's own folder."""
    from optbench.results.leaderboard import build_leaderboard
    from optbench.tracks import get_track

    return build_leaderboard(ws.url, target=get_track(WORKSPACE_TRACK).target)


def regenerate_leaderboard(ws: Workspace, max_rounds: int = 3) -> str:
    """Rebuild LEADERBOARD.md from all artifacts' results and replace it atomically; returns the text.

    Two pushes at once may each build from a listing that misses the other's folder, and the later write
    would then drop a result. So after writing, the board is built again; if artifacts changed meanwhile it is
    written again (a few rounds; the next push or `optbench leaderboard` catches anything later still).
    """
    text = render_leaderboard(ws)
    for _ in range(max_rounds):
        ws.write_derived(LEADERBOARD, text)
        again = render_leaderboard(ws)
        if again == text:
            break
        text = again
    return text
