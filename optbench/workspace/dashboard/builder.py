"""Build the static dashboard of a workspace: index.html + dashboard.css + dashboard.js + data.js (+ data.json).

Everything is local (no CDN): the page is the static files shipped next to this module plus one generated
data file. `data.js` sets `window.OPTBENCH_DATA` (a script file works from file:// where fetch() of a JSON
file does not); `data.json` holds the same data for other tools.

Data on the page: the leaderboard (LEADERBOARD.md, as built by the results package's leaderboard builder,
rendered as tables), best steps over time from the board's marked results with NEW BEST marks, the latest
messages (with warnings for malformed ones; bodies as markdown rendered by markdown-it-py with raw HTML off,
then sanitised by nh3), the active claims, the sweeps run with --workspace (newest status snapshot of each:
running, finished or stale, with the best so far), and the loss curves of artifacts whose results.json has
per-seed curves. `refresh_s` > 0 makes the page reload itself that often.
"""

from __future__ import annotations

import json
import math
import posixpath
import shutil
from datetime import datetime
from pathlib import Path

import nh3
from markdown_it import MarkdownIt

from optbench.clock import as_utc
from optbench.errors import OptbenchError
from optbench.fsutil import atomic_write_text
from optbench.workspace import artifacts as artifacts_mod
from optbench.workspace.board import Board, marked_results
from optbench.workspace.claims import CLAIM_TTL, list_claims
from optbench.workspace.storage import LEADERBOARD, SWEEP_DIR, Workspace

ASSET_DIR = Path(__file__).resolve().parent
ASSETS = ("index.html", "dashboard.css", "dashboard.js")
LATEST_MESSAGES = 30


def _iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _num(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def parse_markdown_tables(text: str) -> list[dict]:
    """The tables of a markdown document: [{"title", "header", "align" (left/right/center), "rows"}]."""
    tables: list[dict] = []
    h2 = h3 = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith("### "):
            h3 = s[4:].strip()
        elif s.startswith("#"):
            h2, h3 = s.lstrip("#").strip(), None
        title = f"{h2} — {h3}" if h2 and h3 else (h3 or h2)
        is_sep = (
            i + 1 < len(lines)
            and set(lines[i + 1].strip().replace("|", "").replace(" ", "")) <= set("-:")
            and "-" in lines[i + 1]
        )
        if s.startswith("|") and is_sep:
            header = [c.strip() for c in s.strip("|").split("|")]
            align = []
            for c in lines[i + 1].strip().strip("|").split("|"):
                c = c.strip()
                align.append("center" if c.startswith(":") and c.endswith(":") else "right" if c.endswith(":") else "left")
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            tables.append({"title": title, "header": header, "align": align, "rows": rows})
            continue
        i += 1
    return tables


LOG_FILES = ("train_log.txt", "log.txt")
_ALLOWED_TAGS = frozenset(nh3.ALLOWED_TAGS) - {"img"}  # no remote images: the page loads nothing from outside
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def render_markdown(text: str) -> str:
    """A message body as safe HTML: markdown-it-py (raw HTML disabled), then nh3's allowlist sanitiser."""
    return nh3.clean(_MARKDOWN.render(text), tags=set(_ALLOWED_TAGS), link_rel="noopener noreferrer nofollow")


def collect_sweeps(ws: Workspace, now: datetime, warnings: list[str]) -> list[dict]:
    """Each sweep folder's newest status snapshot, with its state: running, finished, or stale (no snapshot for
    as long as a claim lives)."""
    out = []
    for name in ws.listdir(SWEEP_DIR, dirs=True):
        files = sorted(f for f in ws.listdir(f"{SWEEP_DIR}/{name}", dirs=False) if f.endswith(".json"))
        snaps = [f for f in files if f != "finished.json"]
        if not snaps:
            continue
        path = f"{SWEEP_DIR}/{name}/{snaps[-1]}"
        try:
            snap = json.loads(ws.read_text(path))
            when = datetime.strptime(snap["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=now.tzinfo)
        except (ValueError, KeyError, TypeError, OptbenchError) as e:
            warnings.append(f"{ws.display(path)}: unreadable sweep status ({e})")
            continue
        state = "finished" if "finished.json" in files or snap.get("finished") else \
            "stale" if now - when > CLAIM_TTL else "running"
        agents = sorted({f.split("_", 1)[1].rsplit(".", 1)[0].split("~")[0] for f in snaps if "_" in f})
        best = snap.get("best") or {}
        out.append({"sweep": name, "state": state, "agents": agents, "updated": snap["time"],
                    "track": snap.get("track"), "optimizer": snap.get("optimizer"), "objective": snap.get("objective"),
                    "finished_trials": snap.get("finished_trials"), "max_trials": snap.get("max_trials"),
                    "device_hours": snap.get("device_hours"), "best_value": _num(best.get("value")),
                    "best_params": best.get("params") or {}, "best_trial": best.get("trial")})
    return sorted(out, key=lambda d: (d["state"] != "running", d["sweep"]))


def _log_curves(ws: Workspace, art, warnings: list[str]) -> list[dict]:
    """Val-loss curves of an artifact's upstream-format log (parsed by optbench.results.logparse)."""
    from optbench.results.logparse import looks_like_log, parse_log_text

    logs = [f for f in art.files if posixpath.basename(f) in LOG_FILES]
    out = []
    for rel in logs:
        path = f"{art.path}/{rel}"
        try:
            text = ws.read_bytes(path).decode("utf-8", errors="replace")
            if not looks_like_log(text):
                continue
            log = parse_log_text(text, ws.display(path))
        except OptbenchError as e:
            warnings.append(f"{ws.display(path)}: {e}")
            continue
        for t in log.trials:
            pts = [[e.step, _num(e.val_loss)] for e in t.evals if _num(e.val_loss) is not None]
            if pts:
                out.append({"name": f"{art.name} trial {t.index}", "artifact": art.name, "points": pts})
    return out


def collect(ws: Workspace, now: datetime | None = None, refresh_s: int = 0) -> dict:
    """Everything the page shows, as plain JSON-able data."""
    now = as_utc(now)
    warnings: list[str] = []
    board = Board(ws)
    messages = board.messages()
    marked = marked_results(messages)
    new_best = {m.name for m in marked if m.new_best}

    # leaderboard: the builder's markdown (regenerated in memory from the artifacts; the stored file when
    # the builder cannot run), rendered client-side from its tables
    arts = artifacts_mod.list_artifacts(ws, with_files=True)
    try:
        lb_text = artifacts_mod.render_leaderboard(ws)
        lb_source = "built from artifacts"
    except OptbenchError as e:
        lb_text = ws.read_text(LEADERBOARD) if ws.exists(LEADERBOARD) else ""
        lb_source = f"stored LEADERBOARD.md ({e})"
    warnings += [a.warning for a in arts if a.warning]

    curves = []
    for a in arts:
        r = a.results
        found = False
        for i, run in enumerate(getattr(r, "runs", None) or []):
            pts = [[p.step, _num(p.val_loss)] for p in run.curve if _num(p.val_loss) is not None]
            if pts:
                found = True
                seed = run.seed if run.seed is not None else i
                curves.append({"name": f"{a.name} seed {seed}", "artifact": a.name, "points": pts, "target": r.target})
        if not found:  # no per-seed curves in results.json: read the artifact's upstream-format log, if any
            target = getattr(r, "target", None)
            for c in _log_curves(ws, a, warnings):
                curves.append({**c, "target": target})

    claims, claim_warnings = list_claims(ws, now=now)
    warnings += claim_warnings
    latest = messages[-LATEST_MESSAGES:][::-1]
    sweeps = collect_sweeps(ws, now, warnings)
    return {
        "workspace": ws.url,
        "generated_at": _iso(now),
        "refresh_s": refresh_s,
        "sweeps": sweeps,
        "leaderboard": {"source": lb_source, "markdown": lb_text, "tables": parse_markdown_tables(lb_text)},
        "best_over_time": [
            {
                "name": m.name,
                "agent": m.agent,
                "time": _iso(m.when),
                "steps": m.steps,
                "best": m.best_so_far,
                "new_best": m.new_best,
            }
            for m in marked
        ],
        "messages": [
            {
                "name": m.name,
                "agent": m.agent,
                "type": m.type,
                "timestamp": m.timestamp,
                "refs": m.refs,
                "body": m.body,
                "body_html": render_markdown(m.body),
                "steps": m.steps,
                "new_best": m.name in new_best,
                "warnings": m.warnings,
            }
            for m in latest
        ],
        "message_count": len(messages),
        "claims": [
            {
                "id": c.id,
                "owner": c.owner,
                "direction": c.direction,
                "progress": c.progress,
                "last_update": _iso(c.last_update),
                "expires": _iso(c.expires),
            }
            for c in claims
        ],
        "artifacts": [
            {
                "name": a.name,
                "files": a.files,
                "optimizer": getattr(a.results, "optimizer", None),
                "steps": getattr(a.results, "steps_to_target", None),
                "parts": list(getattr(a.results, "parts", None) or []),
                "warning": a.warning,
            }
            for a in arts
        ],
        "curves": curves,
        "warnings": warnings,
    }


def build_dashboard(ws: Workspace | str, out: str | Path, now: datetime | None = None, refresh_s: int = 0) -> Path:
    """Write the dashboard of `ws` to the folder `out`; returns the path of index.html."""
    if not isinstance(ws, Workspace):
        ws = Workspace(ws)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = collect(ws, now=now, refresh_s=refresh_s)
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    atomic_write_text(out / "data.json", text + "\n")
    atomic_write_text(out / "data.js", "window.OPTBENCH_DATA = " + text.replace("</", "<\\/") + ";\n")
    for name in ASSETS:
        src = ASSET_DIR / name
        if (out / name).exists() and (out / name).read_bytes() == src.read_bytes():
            continue
        tmp = out / f".{name}.tmp"
        shutil.copyfile(src, tmp)
        tmp.replace(out / name)
    return out / "index.html"
