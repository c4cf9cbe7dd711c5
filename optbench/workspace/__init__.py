"""The collaboration workspace (spec/workspace.md): storage over fsspec, identity, message board, claims,
artifacts, leaderboard regeneration and the static dashboard.

    from optbench.workspace import Workspace, Board, init_workspace
    ws = Workspace("memory://demo")          # or a local folder, hf://buckets/..., s3://...
    Board(ws).post("agent-01", "hello")
"""

from optbench.workspace.board import Board, marked_results  # noqa: F401
from optbench.workspace.messages import Message, parse_marker, parse_message  # noqa: F401
from optbench.workspace.claims import list_claims, make_claim, update_claim  # noqa: F401
from optbench.workspace.identity import resolve_agent_id, validate_agent_id  # noqa: F401
from optbench.workspace.storage import Workspace, init_workspace, open_workspace  # noqa: F401

__all__ = [
    "Board",
    "Message",
    "Workspace",
    "init_workspace",
    "list_claims",
    "make_claim",
    "marked_results",
    "open_workspace",
    "parse_marker",
    "parse_message",
    "resolve_agent_id",
    "update_claim",
    "validate_agent_id",
]
