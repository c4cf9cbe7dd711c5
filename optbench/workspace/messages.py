"""A message file of the board: one immutable markdown file per message, named `{YYYYMMDD-HHmmss}_{agent_id}.md` (UTC).

File content is YAML front matter then a markdown body, exactly as the workspace spec shows:

    ---
    agent: agent-01
    type: agent
    timestamp: 2026-04-30 14:30 UTC
    refs: 20260430-143000_agent-02.md
    ---
    Body in markdown.

(`refs` is written only when given; several refs are written comma-separated on the one line.)

Same-second posts. When an agent posts twice within one UTC second, the second message is named
`{stamp}_{agent_id}~002.md`, the third `~003`, and so on (three digits, up to ~999). `~` is not allowed in an
agent id, so the agent part of a name stays unambiguous, and `~` sorts after `.`, so for one agent and one
second `x.md < x~002.md < x~003.md`: sorting names still gives the order in which the posts were made.

Malformed files (no or broken front matter, a missing field, an unknown type, two leaderboard markers, bytes
that are not UTF-8) are still listed and shown, each with its warnings; they never stop a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Sequence

import yaml

from optbench.clock import as_utc
from optbench.errors import OptbenchError
from optbench.workspace.identity import validate_agent_id

MESSAGE_TYPES = ("agent", "system", "user")
NAME_RE = re.compile(
    r"^(?P<stamp>\d{8}-\d{6})_(?P<agent>[A-Za-z0-9][A-Za-z0-9._-]{0,63})(?:~(?P<seq>\d{3,}))?\.md$"
)
STAMP_FORMAT = "%Y%m%d-%H%M%S"
FM_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
MAX_SEQ = 999

MARKER_PREFIX = "**Leaderboard result:**"
_MARKER_RE = re.compile(
    r"^\*\*Leaderboard result:\*\*\s*(?P<steps>\d{1,3}(?:,\d{3})+|\d+)\s+steps\b"
)


def message_name(stamp: str, agent_id: str, seq: int = 1) -> str:
    """`{stamp}_{agent}.md` for the first message of a second, `{stamp}_{agent}~{seq:03d}.md` after it."""
    if seq == 1:
        return f"{stamp}_{agent_id}.md"
    if not 2 <= seq <= MAX_SEQ:
        raise OptbenchError(f"message sequence number {seq} out of range 2..{MAX_SEQ}")
    return f"{stamp}_{agent_id}~{seq:03d}.md"


def parse_name(name: str) -> tuple[datetime, str, int] | None:
    """(UTC time, agent_id, seq) of a message file name, or None when the name does not follow the rule."""
    m = NAME_RE.match(name)
    if not m:
        return None
    try:
        when = datetime.strptime(m["stamp"], STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return when, m["agent"], int(m["seq"] or 1)


# ---- the leaderboard marker ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkerParse:
    steps: int | None
    warnings: tuple[str, ...] = ()


def parse_marker(body: str) -> MarkerParse:
    """The step count of the one `**Leaderboard result:** <steps> steps · ...` line of a body.

    A marker line is a line (outside ``` fences) that starts with `**Leaderboard result:**`; a mention of the
    marker in the middle of a sentence is not one. Thousands separators (`3,245`) are allowed. Two or more
    marker lines, or a marker line whose step count cannot be read, make the message malformed: steps is None
    and the reason is in warnings.
    """
    lines = []
    fenced = False
    for line in body.splitlines():
        s = line.strip()
        if s.startswith("```") or s.startswith("~~~"):
            fenced = not fenced
            continue
        if not fenced and s.startswith(MARKER_PREFIX):
            lines.append(s)
    if not lines:
        return MarkerParse(None)
    if len(lines) > 1:
        return MarkerParse(None, (f"malformed: {len(lines)} leaderboard result markers (at most one allowed)",))
    m = _MARKER_RE.match(lines[0])
    if not m:
        return MarkerParse(
            None, (f"malformed leaderboard marker {lines[0]!r}: expected '{MARKER_PREFIX} <steps> steps · ...'",)
        )
    return MarkerParse(int(m["steps"].replace(",", "")))


def format_marker(steps: int, val_loss: float, n_runs: int, optimizer: str) -> str:
    """The marker line for a result: `**Leaderboard result:** 3,400 steps · val_loss 3.2710 · 4 runs · Muon`."""
    runs = "run" if n_runs == 1 else "runs"
    return f"{MARKER_PREFIX} {steps:,} steps · val_loss {val_loss:.4f} · {n_runs} {runs} · {optimizer}"


# ---- messages --------------------------------------------------------------------------------------------


@dataclass
class Message:
    name: str
    text: str
    agent: str | None = None
    type: str | None = None
    timestamp: str | None = None
    refs: list[str] = field(default_factory=list)
    body: str = ""
    when: datetime | None = None  # from the file name (second precision)
    steps: int | None = None  # the leaderboard marker's step count, when there is exactly one valid marker
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings


def format_message(
    agent_id: str, body: str, type: str = "agent", refs: Sequence[str] = (), when: datetime | None = None
) -> str:
    """The file content of a message: the spec's front matter, then the body (ending in a newline)."""
    validate_agent_id(agent_id)
    if type not in MESSAGE_TYPES:
        raise OptbenchError(f"message type {type!r} is not allowed; allowed: {', '.join(MESSAGE_TYPES)}")
    refs = [validate_ref(r) for r in refs]
    if not body.strip():
        raise OptbenchError("message body is empty")
    lines = ["---", f"agent: {agent_id}", f"type: {type}", f"timestamp: {as_utc(when).strftime(FM_TIME_FORMAT)}"]
    if refs:
        lines.append(f"refs: {', '.join(refs)}")
    lines.append("---")
    return "\n".join(lines) + "\n" + body.rstrip("\n") + "\n"


def validate_ref(ref: str) -> str:
    """A ref names a message file (`20260430-143000_agent-02.md`; the `.md` may be left off)."""
    ref = ref.strip()
    if ref and not ref.endswith(".md"):
        ref += ".md"
    if not NAME_RE.match(ref):
        raise OptbenchError(
            f"ref {ref!r} is not a message file name; expected YYYYMMDD-HHmmss_AGENT.md (e.g. 20260430-143000_agent-02.md)"
        )
    return ref


def split_refs(refs: str | Iterable[str] | None) -> list[str]:
    """Refs given as 'a.md,b.md' / 'a.md b.md' or as a list."""
    if refs is None:
        return []
    if isinstance(refs, str):
        refs = [refs]
    out: list[str] = []
    for r in refs:
        out.extend(p for p in re.split(r"[,\s]+", r) if p)
    return out


def parse_message(name: str, data: bytes | str) -> Message:
    """Parse one message file; anything wrong becomes a warning on the returned Message, never an exception."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            msg = Message(name=name, text=text, body=text)
            msg.warnings.append("malformed: file is not valid UTF-8")
            _name_checks(msg)
            return msg
    else:
        text = data
    msg = Message(name=name, text=text, body=text)
    _name_checks(msg)
    t = text.lstrip("\ufeff").replace("\r\n", "\n")
    if not t.startswith("---\n"):
        msg.warnings.append("malformed: no YAML front matter (the file must start with a '---' line)")
        _marker(msg)
        return msg
    end = t.find("\n---", 3)
    while end != -1 and not (t.startswith("\n", end + 4) or end + 4 == len(t)):
        end = t.find("\n---", end + 4)
    if end == -1:
        msg.warnings.append("malformed: front matter is not closed by a '---' line")
        _marker(msg)
        return msg
    fm_text = t[4 : end + 1]
    msg.body = t[end + 5 :]
    try:
        fm = yaml.load(fm_text, Loader=yaml.BaseLoader)  # BaseLoader: every scalar stays a string
    except yaml.YAMLError as e:
        msg.warnings.append(f"malformed front matter: {str(e).splitlines()[0]}")
        _marker(msg)
        return msg
    if fm is None:
        fm = {}
    if not isinstance(fm, dict):
        msg.warnings.append("malformed front matter: not a mapping of fields")
        _marker(msg)
        return msg
    for key in ("agent", "type", "timestamp"):
        v = fm.get(key)
        if v is None or v == "":
            msg.warnings.append(f"malformed front matter: missing field {key!r}")
        elif not isinstance(v, str):
            msg.warnings.append(f"malformed front matter: field {key!r} must be a single value, got {type(v).__name__}")
    agent, mtype, ts = fm.get("agent"), fm.get("type"), fm.get("timestamp")
    msg.agent = agent if isinstance(agent, str) else None
    msg.type = mtype if isinstance(mtype, str) else None
    msg.timestamp = ts if isinstance(ts, str) else None
    if msg.type is not None and msg.type not in MESSAGE_TYPES:
        msg.warnings.append(f"malformed front matter: type {msg.type!r} is not one of {', '.join(MESSAGE_TYPES)}")
    parsed = parse_name(name)
    if msg.agent and parsed and parsed[1] != msg.agent:
        msg.warnings.append(f"front matter agent {msg.agent!r} differs from the file name's agent {parsed[1]!r}")
    if msg.timestamp and not _timestamp_ok(msg.timestamp):
        msg.warnings.append(f"malformed front matter: timestamp {msg.timestamp!r} is not 'YYYY-MM-DD HH:MM UTC'")
    refs = fm.get("refs")
    if isinstance(refs, str):
        msg.refs = split_refs(refs)
    elif isinstance(refs, list):
        msg.refs = [r for r in refs if isinstance(r, str)]
    _marker(msg)
    return msg


def _timestamp_ok(ts: str) -> bool:
    for fmt in (FM_TIME_FORMAT, "%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            datetime.strptime(ts, fmt)
            return True
        except ValueError:
            pass
    return False


def _name_checks(msg: Message) -> None:
    parsed = parse_name(msg.name)
    if parsed is None:
        msg.warnings.append("file name does not follow YYYYMMDD-HHmmss_AGENT.md")
    else:
        msg.when = parsed[0]


def _marker(msg: Message) -> None:
    mp = parse_marker(msg.body)
    msg.steps = mp.steps
    msg.warnings.extend(mp.warnings)
