"""Participant identity: the agent_id that appears in every file name a participant creates."""

from __future__ import annotations

import getpass
import os
import re

from optbench.errors import OptbenchError

ENV_AGENT_IDS = ("OPTBENCH_AGENT_ID", "AGENT_ID")

# Starts with a letter or digit, then letters, digits, '.', '_' or '-'; 64 characters at most; no '..'.
# No '/', '\\', '~', spaces or NUL: an id is safe inside a file name on every backend, and '~' is reserved
# for the same-second suffix of message names (see board.py).
AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
AGENT_ID_RULE = "1-64 characters: a letter or digit, then letters, digits, '.', '_' or '-' (no '..')"


def validate_agent_id(agent_id: object, what: str = "agent_id") -> str:
    """Return agent_id when it is safe, else raise OptbenchError naming the value and the rule."""
    if not isinstance(agent_id, str):
        raise OptbenchError(f"{what} must be a string, got {type(agent_id).__name__}: {agent_id!r}")
    if agent_id == "":
        raise OptbenchError(f"{what} is empty; allowed: {AGENT_ID_RULE}")
    if "\x00" in agent_id:
        raise OptbenchError(f"{what} {agent_id!r} contains a NUL character; allowed: {AGENT_ID_RULE}")
    if "/" in agent_id or "\\" in agent_id or os.path.isabs(agent_id):
        raise OptbenchError(f"{what} {agent_id!r} contains a path separator; allowed: {AGENT_ID_RULE}")
    if ".." in agent_id:
        raise OptbenchError(f"{what} {agent_id!r} contains '..'; allowed: {AGENT_ID_RULE}")
    if len(agent_id) > 64:
        raise OptbenchError(f"{what} is {len(agent_id)} characters long (max 64); allowed: {AGENT_ID_RULE}")
    if not AGENT_ID_RE.match(agent_id):
        raise OptbenchError(f"{what} {agent_id!r} is not allowed; allowed: {AGENT_ID_RULE}")
    return agent_id


def login_agent_id() -> str | None:
    """The login name made into an agent id (characters outside the rule become '-'), or None without one."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return None
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name).replace("..", "-").lstrip("._-")[:64]
    return name if AGENT_ID_RE.match(name or "") else None


def resolve_agent_id(agent_id: str | None = None, required: bool = True) -> str | None:
    """The explicit agent_id, else $OPTBENCH_AGENT_ID, else $AGENT_ID, else (when `required`) the login name: one
    derivation for runs (results.json's agent_id) and workspace commands, so a run pushes as its own agent."""
    if agent_id is None:
        for var in ENV_AGENT_IDS:
            if os.environ.get(var):
                return validate_agent_id(os.environ[var], what=f"${var}")
        if required:
            login = login_agent_id()
            if login is None:
                raise OptbenchError(
                    "no agent id: pass --agent-id ID or set $OPTBENCH_AGENT_ID (or $AGENT_ID); "
                    f"allowed: {AGENT_ID_RULE}"
                )
            return login
        return None
    return validate_agent_id(agent_id, what="--agent-id")
