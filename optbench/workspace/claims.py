"""Claims: "I am working on this direction", stored in the workspace as create-only files.

Layout (every file immutable, every name carries its writer's agent_id):

    claims/{claim_id}/{YYYYMMDD-HHmmss}_{agent_id}.md      the claim itself (the first file)
    claims/{claim_id}/{YYYYMMDD-HHmmss}_{agent_id}~002.md  same-second updates, as on the message board

`claim_id` is `{YYYYMMDD-HHmmss}_{agent_id}` of the moment the claim was made (a `~NNN` suffix when one agent
makes two claims in a second). Each file is a message-style file: front matter with `agent`, `kind`
(`claim` or `update`) and an ISO `timestamp` with seconds, then the direction or the progress note.

A claim is active until 2 hours after its last update by its owner. Only the owner may update it; files a
different agent managed to put into the folder are ignored (and reported as warnings). Time is injectable
(`now=`) everywhere for tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import yaml

from optbench.clock import as_utc
from optbench.errors import OptbenchError
from optbench.workspace.messages import MAX_SEQ, STAMP_FORMAT, message_name, parse_name
from optbench.workspace.identity import validate_agent_id
from optbench.workspace.storage import CLAIM_DIR, Workspace

CLAIM_TTL = timedelta(hours=2)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CLAIM_ID_RE = re.compile(r"^\d{8}-\d{6}_[A-Za-z0-9][A-Za-z0-9._-]{0,63}(?:~\d{3,})?$")


@dataclass
class ClaimUpdate:
    name: str
    agent: str
    kind: str
    when: datetime
    text: str


@dataclass
class Claim:
    id: str
    owner: str
    direction: str
    created: datetime
    updates: list[ClaimUpdate] = field(default_factory=list)  # owner's progress notes, oldest first
    warnings: list[str] = field(default_factory=list)

    @property
    def last_update(self) -> datetime:
        return max([self.created] + [u.when for u in self.updates])

    @property
    def expires(self) -> datetime:
        return self.last_update + CLAIM_TTL

    def active(self, now: datetime | None = None) -> bool:
        return as_utc(now) < self.expires

    @property
    def progress(self) -> str | None:
        return self.updates[-1].text if self.updates else None


def _format(agent_id: str, kind: str, when: datetime, text: str) -> str:
    if not text.strip():
        raise OptbenchError(f"claim {kind} text is empty")
    return (
        f"---\nagent: {agent_id}\nkind: {kind}\ntimestamp: {when.strftime(ISO_FORMAT)}\n---\n"
        + text.strip()
        + "\n"
    )


def _parse(name: str, data: bytes) -> ClaimUpdate:
    """One claim file; raises ValueError with the reason when malformed."""
    text = data.decode("utf-8").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise ValueError("no front matter")
    end = text.find("\n---\n", 3)
    if end == -1:
        raise ValueError("front matter not closed")
    fm = yaml.load(text[4 : end + 1], Loader=yaml.BaseLoader)
    if not isinstance(fm, dict):
        raise ValueError("front matter is not a mapping")
    agent, kind, ts = fm.get("agent"), fm.get("kind"), fm.get("timestamp")
    if kind not in ("claim", "update"):
        raise ValueError(f"kind {kind!r} is not claim or update")
    parsed = parse_name(name)
    if parsed is None or parsed[1] != agent:
        raise ValueError(f"file name does not carry the writer's agent {agent!r}")
    when = datetime.strptime(str(ts), ISO_FORMAT).replace(tzinfo=timezone.utc)
    return ClaimUpdate(name=name, agent=str(agent), kind=str(kind), when=when, text=text[end + 5 :].strip())


def _create(ws: Workspace, folder: str, agent_id: str, when: datetime, text: str, kind: str) -> str:
    stamp = when.strftime(STAMP_FORMAT)
    taken = [p[2] for n in ws.listdir(folder, dirs=False) if (p := parse_name(n)) and n.startswith(f"{stamp}_{agent_id}") and p[1] == agent_id]
    start = max(taken) + 1 if taken else 1
    names = (f"{folder}/{message_name(stamp, agent_id, k)}" for k in range(start, MAX_SEQ + 1))
    return ws.create_unique(names, _format(agent_id, kind, when, text))


def make_claim(ws: Workspace, agent_id: str, direction: str, now: datetime | None = None) -> str:
    """Create a claim; return its id."""
    validate_agent_id(agent_id)
    when = as_utc(now)
    stamp = when.strftime(STAMP_FORMAT)
    taken = [
        p[2]
        for n in ws.listdir(CLAIM_DIR, dirs=True)
        if n.startswith(f"{stamp}_{agent_id}") and (p := parse_name(n + ".md")) and p[1] == agent_id
    ]
    seq = max(taken) + 1 if taken else 1
    while seq <= MAX_SEQ:
        claim_id = message_name(stamp, agent_id, seq)[: -len(".md")]
        folder = f"{CLAIM_DIR}/{claim_id}"
        # The claim file's name is the claim id itself, so two writers of one id collide on that one file.
        try:
            ws.create(f"{folder}/{claim_id}.md", _format(agent_id, "claim", when, direction))
            return claim_id
        except FileExistsError:
            seq += 1
    raise OptbenchError(f"{agent_id} made too many claims in second {stamp}")


def load_claim(ws: Workspace, claim_id: str) -> Claim:
    """A claim with its owner's updates; OptbenchError when it does not exist or is unreadable."""
    if not CLAIM_ID_RE.match(claim_id or ""):
        raise OptbenchError(f"claim id {claim_id!r} is not of the form YYYYMMDD-HHmmss_AGENT (as printed by `optbench claim`)")
    folder = f"{CLAIM_DIR}/{claim_id}"
    first = f"{claim_id}.md"
    names = ws.listdir(folder, dirs=False)
    if first not in names:
        raise OptbenchError(f"no claim {claim_id!r} in {ws.display(CLAIM_DIR)}")
    try:
        head = _parse(first, ws.read_bytes(f"{folder}/{first}"))
    except (ValueError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise OptbenchError(f"claim {claim_id!r} is malformed: {e}") from e
    if head.kind != "claim":
        raise OptbenchError(f"claim {claim_id!r} is malformed: its first file is not of kind 'claim'")
    claim = Claim(id=claim_id, owner=head.agent, direction=head.text, created=head.when)
    for n in names:
        if n == first or not n.endswith(".md"):
            continue
        try:
            u = _parse(n, ws.read_bytes(f"{folder}/{n}"))
        except (ValueError, UnicodeDecodeError, yaml.YAMLError) as e:
            claim.warnings.append(f"{folder}/{n}: malformed ({e}); ignored")
            continue
        if u.agent != claim.owner:
            claim.warnings.append(f"{folder}/{n}: written by {u.agent!r}, not the owner {claim.owner!r}; ignored")
            continue
        claim.updates.append(u)
    claim.updates.sort(key=lambda u: (u.when, u.name))
    return claim


def update_claim(
    ws: Workspace, agent_id: str, claim_id: str, progress: str, now: datetime | None = None
) -> Claim:
    """Add a progress note to one's own claim (this also renews it for 2 hours)."""
    validate_agent_id(agent_id)
    claim = load_claim(ws, claim_id)
    if claim.owner != agent_id:
        raise OptbenchError(f"claim {claim_id!r} belongs to {claim.owner!r}; only its owner can update it (you are {agent_id!r})")
    when = as_utc(now)
    _create(ws, f"{CLAIM_DIR}/{claim_id}", agent_id, when, progress, "update")
    return load_claim(ws, claim_id)


def list_claims(ws: Workspace, now: datetime | None = None, include_expired: bool = False) -> tuple[list[Claim], list[str]]:
    """(claims, warnings): the active claims (or all), oldest first; unreadable claims become warnings."""
    now = as_utc(now)
    out, warnings = [], []
    for claim_id in ws.listdir(CLAIM_DIR, dirs=True):
        try:
            c = load_claim(ws, claim_id)
        except OptbenchError as e:
            warnings.append(str(e))
            continue
        warnings.extend(c.warnings)
        if include_expired or c.active(now):
            out.append(c)
    return out, warnings
