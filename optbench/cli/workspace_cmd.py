"""Workspace commands: `workspace init|info`, `board info|list|read|post`, `claim`, `claims`,
`artifacts push|pull|list`, `dashboard build|serve`. Thin wrappers over optbench.workspace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from optbench.cli.app import app
from optbench.errors import OptbenchError

WS_HELP = "workspace URL: a folder, memory://, hf://buckets/OWNER/NAME, s3://... (default: $OPTBENCH_WORKSPACE, else .)"
AGENT_HELP = "your agent id (default: $OPTBENCH_AGENT_ID, else $AGENT_ID)"

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help=WS_HELP, show_default=False)
AgentOpt = typer.Option(None, "--agent-id", help=AGENT_HELP, show_default=False)

workspace_app = typer.Typer(no_args_is_help=True, help="Create and inspect a collaboration workspace.")
board_app = typer.Typer(no_args_is_help=True, help="The workspace message board (one immutable file per message).")
artifacts_app = typer.Typer(no_args_is_help=True, help="Artifact folders: artifacts/{approach}_{agent_id}/.")
dashboard_app = typer.Typer(no_args_is_help=True, help="A static dashboard of a workspace (local files, no CDN).")
app.add_typer(workspace_app, name="workspace")
app.add_typer(board_app, name="board")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(dashboard_app, name="dashboard")


def _ws(url: Optional[str]):
    from optbench.workspace.storage import Workspace

    return Workspace(url)


def _warn(text: str) -> None:
    typer.echo(f"warning: {text}", err=True)


# ---- workspace -------------------------------------------------------------------------------------------


@workspace_app.command("init")
def workspace_init(url: Optional[str] = typer.Argument(None, help=WS_HELP, show_default=False)) -> None:
    """Create README.md, LEADERBOARD.md, message_board/, artifacts/ and claims/ (never touching what exists)."""
    from optbench.workspace.storage import init_workspace

    ws, created, kept = init_workspace(url)
    for c in created:
        typer.echo(f"created {ws.display(c)}")
    for k in kept:
        typer.echo(f"kept    {ws.display(k)} (exists)")


@workspace_app.command("info")
def workspace_info(workspace: Optional[str] = WorkspaceOpt) -> None:
    """Counts: messages, artifacts, active claims."""
    from optbench.workspace.artifacts import list_artifacts
    from optbench.workspace.board import Board
    from optbench.workspace.claims import list_claims

    ws = _ws(workspace)
    bi = Board(ws).info()
    claims, _ = list_claims(ws)
    typer.echo(f"workspace: {ws.url}")
    typer.echo(f"messages:  {bi.count} (newest: {bi.newest or '-'})")
    typer.echo(f"artifacts: {len(list_artifacts(ws, with_files=False))}")
    typer.echo(f"claims:    {len(claims)} active")


# ---- board -----------------------------------------------------------------------------------------------

LastOpt = typer.Option(None, "-n", help="the last N messages (default 10)", show_default=False)
FirstOpt = typer.Option(None, "-f", help="the first N messages", show_default=False)
AllOpt = typer.Option(False, "-a", "--all", help="all messages")


@board_app.command("info")
def board_info(workspace: Optional[str] = WorkspaceOpt) -> None:
    """Message count and the newest file name."""
    from optbench.workspace.board import Board

    bi = Board(_ws(workspace)).info()
    typer.echo(f"messages: {bi.count}")
    typer.echo(f"newest:   {bi.newest or '-'}")


@board_app.command("list")
def board_list(
    last: Optional[int] = LastOpt, first: Optional[int] = FirstOpt, all: bool = AllOpt, workspace: Optional[str] = WorkspaceOpt
) -> None:
    """Message file names in canonical order (last 10 by default)."""
    from optbench.workspace.board import Board

    for name in Board(_ws(workspace)).select(last=last, first=first, all=all):
        typer.echo(name)


@board_app.command("read")
def board_read(
    name: Optional[str] = typer.Argument(None, help="one message's file name", show_default=False),
    last: Optional[int] = LastOpt,
    first: Optional[int] = FirstOpt,
    all: bool = AllOpt,
    workspace: Optional[str] = WorkspaceOpt,
) -> None:
    """Messages with their bodies (last 10 by default, or the selectors, or one named message)."""
    from optbench.workspace.board import Board

    board = Board(_ws(workspace))
    if name is not None:
        if last is not None or first is not None or all:
            raise OptbenchError("read: give either a message name or one of -n/-f/-a, not both")
        msgs = [board.read(name)]
    else:
        msgs = board.messages(board.select(last=last, first=first, all=all))
    for i, m in enumerate(msgs):
        if i:
            typer.echo("")
        typer.echo(f"=== {m.name} ===")
        for w in m.warnings:
            _warn(f"{m.name}: {w}")
        typer.echo(m.text.rstrip("\n"))


@board_app.command("post")
def board_post(
    body: Optional[str] = typer.Argument(None, help="message body (markdown); omitted or '-': read stdin", show_default=False),
    type: str = typer.Option("agent", "-t", "--type", help="agent | system | user"),
    refs: List[str] = typer.Option([], "-r", "--refs", help="message(s) this one answers (comma-separated or repeated)"),
    result: Optional[Path] = typer.Option(
        None, "--result", help="post a results message with the leaderboard marker from this results.json", show_default=False
    ),
    artifact: Optional[str] = typer.Option(None, "--artifact", help="artifact path to cite in a results message", show_default=False),
    rule: Optional[str] = typer.Option(None, "--rule", help="stats rule to judge --result by (default: the record's)", show_default=False),
    workspace: Optional[str] = WorkspaceOpt,
    agent_id: Optional[str] = AgentOpt,
) -> None:
    """Post a message (create-only; prints the new file name)."""
    from optbench.results.eligibility import marker_refusal
    from optbench.workspace.board import Board, result_post_body
    from optbench.workspace.messages import split_refs
    from optbench.workspace.identity import resolve_agent_id

    agent = resolve_agent_id(agent_id)
    if body == "-" or (body is None and result is None):
        if sys.stdin is None or (sys.stdin.isatty() and body is None):
            raise OptbenchError("post: give the body as an argument or pipe it on stdin")
        body = sys.stdin.read()
    ws = _ws(workspace)
    if result is not None:
        from optbench.results.schema import load_results

        res = load_results(result)
        reason = marker_refusal(res, agent_id=agent, rule=rule)
        if reason:
            raise OptbenchError(f"{result}: refusing the leaderboard marker: {reason}")
        body = result_post_body(res, note=body or "", artifact=artifact, rule=rule)
    name = Board(ws).post(agent, body or "", type=type, refs=split_refs(refs))
    typer.echo(name)


# ---- claims ----------------------------------------------------------------------------------------------


@app.command("claim")
def claim_cmd(
    args: List[str] = typer.Argument(..., metavar="DIRECTION | update CLAIM_ID PROGRESS", help="claim a direction, or update your claim"),
    no_post: bool = typer.Option(False, "--no-post", help="do not announce a new claim on the message board"),
    workspace: Optional[str] = WorkspaceOpt,
    agent_id: Optional[str] = AgentOpt,
) -> None:
    """Claim a direction (prints its id), or `claim update ID "progress"` (renews it for 2 hours)."""
    from optbench.workspace.board import Board
    from optbench.workspace.claims import CLAIM_TTL, make_claim, update_claim
    from optbench.workspace.identity import resolve_agent_id

    agent = resolve_agent_id(agent_id)
    ws = _ws(workspace)
    if len(args) == 3 and args[0] == "update":
        c = update_claim(ws, agent, args[1], args[2])
        typer.echo(f"updated {c.id}; active until {c.expires:%Y-%m-%d %H:%M} UTC")
        return
    if len(args) != 1:
        raise OptbenchError('usage: optbench claim "DIRECTION"  or  optbench claim update CLAIM_ID "PROGRESS"')
    claim_id = make_claim(ws, agent, args[0])
    typer.echo(claim_id)
    if not no_post:
        hours = int(CLAIM_TTL.total_seconds() // 3600)
        Board(ws).post(agent, f"Claim `{claim_id}`: {args[0]}\n\n(expires {hours} h after its last progress update)")


@app.command("claims")
def claims_cmd(
    all: bool = typer.Option(False, "-a", "--all", help="include expired claims"), workspace: Optional[str] = WorkspaceOpt
) -> None:
    """Active claims (a claim expires 2 hours after its last update)."""
    from optbench.clock import utcnow
    from optbench.workspace.claims import list_claims

    now = utcnow()
    claims, warnings = list_claims(_ws(workspace), now=now, include_expired=all)
    for w in warnings:
        _warn(w)
    if not claims:
        typer.echo("no active claims" if not all else "no claims")
        return
    table = Table("id", "owner", "direction", "latest progress", "expires (UTC)", *(["state"] if all else []))
    for c in claims:
        row = [c.id, c.owner, c.direction, c.progress or "-", f"{c.expires:%Y-%m-%d %H:%M}"]
        if all:
            row.append("active" if c.active(now) else "expired")
        table.add_row(*row)
    Console(width=160).print(table)


# ---- artifacts -------------------------------------------------------------------------------------------


@artifacts_app.command("push")
def artifacts_push(
    src: Path = typer.Argument(..., help="local folder with results.json (and train_gpt_simple.py, README.md, train_log.txt)"),
    name: str = typer.Option(..., "--name", help="approach name (letters, digits, '.', '-')"),
    workspace: Optional[str] = WorkspaceOpt,
    agent_id: Optional[str] = AgentOpt,
) -> None:
    """Copy a folder to artifacts/{name}_{agent_id}/ (create-only), then regenerate LEADERBOARD.md."""
    from optbench.workspace.artifacts import push
    from optbench.workspace.identity import resolve_agent_id

    ws = _ws(workspace)
    rep = push(ws, resolve_agent_id(agent_id), src, name)
    for f in rep.files:
        typer.echo(f"pushed {ws.display(rep.folder + '/' + f)}")
    typer.echo(f"regenerated {ws.display('LEADERBOARD.md')}")


@artifacts_app.command("pull")
def artifacts_pull(
    name: str = typer.Argument(..., help="artifact folder name, e.g. muon_agent-01"),
    out: Path = typer.Option(..., "--out", help="local folder to copy into"),
    workspace: Optional[str] = WorkspaceOpt,
) -> None:
    """Copy an artifact folder to a local folder (never overwriting local files)."""
    from optbench.workspace.artifacts import pull

    for p in pull(_ws(workspace), name, out):
        typer.echo(f"pulled {p}")


@artifacts_app.command("list")
def artifacts_list(workspace: Optional[str] = WorkspaceOpt) -> None:
    """Artifact folders with their optimizer, steps and files."""
    from optbench.workspace.artifacts import list_artifacts

    arts = list_artifacts(_ws(workspace))
    if not arts:
        typer.echo("no artifacts")
        return
    table = Table("folder", "optimizer", "steps", "val loss", "files")
    for a in arts:
        r = a.results
        if a.warning:
            _warn(a.warning)
        steps = "-" if r is None or r.steps_to_target is None else f"{r.steps_to_target:,}"
        loss = "-" if r is None or r.final_val_loss is None else f"{r.final_val_loss:.4f}"
        table.add_row(a.name, getattr(r, "optimizer", "-") or "-", steps, loss, ", ".join(a.files))
    Console(width=160).print(table)


# ---- dashboard -------------------------------------------------------------------------------------------


@dashboard_app.command("build")
def dashboard_build(
    url: Optional[str] = typer.Argument(None, help=WS_HELP, show_default=False),
    out: Path = typer.Option(Path("dashboard"), "--out", help="output folder"),
) -> None:
    """Build the static dashboard (index.html, data.js, data.json, css, js) into --out."""
    from optbench.workspace.dashboard import build_dashboard

    index = build_dashboard(_ws(url), out)
    typer.echo(f"built {index}")


@dashboard_app.command("serve")
def dashboard_serve(
    url: Optional[str] = typer.Argument(None, help=WS_HELP, show_default=False),
    port: int = typer.Option(8000, "--port", help="port on 127.0.0.1 (0: any free port)"),
    out: Optional[Path] = typer.Option(None, "--out", help="build folder (default: a temp folder)", show_default=False),
    interval: float = typer.Option(30, "--interval", help="seconds between rebuilds (the page reloads as often)"),
) -> None:
    """Serve the dashboard on http://127.0.0.1:PORT/, rebuilt from the workspace every --interval seconds."""
    from optbench.workspace.dashboard import serve

    if not 0 <= port <= 65535:
        raise OptbenchError(f"--port {port} is not a port number (0-65535)")
    if not interval > 0:
        raise OptbenchError(f"--interval {interval}: must be > 0 seconds")
    serve(url, port=port, out=out, interval=interval)
