"""The message board: the message_board/ folder of a workspace (list, select, read, post create-only), the
leaderboard markers in canonical order with NEW BEST, and the body of a results message. The file format of one
message (name, front matter, marker line) is optbench.workspace.messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from optbench.clock import as_utc
from optbench.errors import OptbenchError
from optbench.workspace.messages import (MAX_SEQ, STAMP_FORMAT, Message, format_marker, format_message, message_name,
                                         parse_message, parse_name)
from optbench.workspace.storage import MESSAGE_DIR, Workspace


@dataclass(frozen=True)
class BoardInfo:
    count: int
    newest: str | None


class Board:
    """The message_board/ folder of a workspace."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def names(self) -> list[str]:
        """All message file names (`*.md`) in canonical (sorted) order."""
        return [n for n in self.ws.listdir(MESSAGE_DIR, dirs=False) if n.endswith(".md")]

    def info(self) -> BoardInfo:
        names = self.names()
        return BoardInfo(len(names), names[-1] if names else None)

    def select(self, last: int | None = None, first: int | None = None, all: bool = False) -> list[str]:
        """Names by the spec's selectors: last N (default 10), first N, or all. At most one selector."""
        given = sum(x is not None and x is not False for x in (last, first, all or None))
        if given > 1:
            raise OptbenchError("choose one of -n N (last N), -f N (first N) or -a (all)")
        for flag, v in (("-n", last), ("-f", first)):
            if v is not None and v < 0:
                raise OptbenchError(f"{flag} must be >= 0, got {v}")
        names = self.names()
        if all:
            return names
        if first is not None:
            return names[:first]
        n = 10 if last is None else last
        return names[-n:] if n else []

    def read(self, name: str) -> Message:
        """One message by name (the `.md` may be left off)."""
        if not name.endswith(".md"):
            name += ".md"
        if "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
            raise OptbenchError(f"message name {name!r} must be a plain file name in {MESSAGE_DIR}/")
        rel = f"{MESSAGE_DIR}/{name}"
        if not self.ws.exists(rel):
            raise OptbenchError(f"no message {name!r} in {self.ws.display(MESSAGE_DIR)}")
        return parse_message(name, self.ws.read_bytes(rel))

    def messages(self, names: Iterable[str] | None = None) -> list[Message]:
        """Parsed messages (all, or the given names) in canonical order."""
        out = []
        for n in self.names() if names is None else names:
            try:
                data = self.ws.read_bytes(f"{MESSAGE_DIR}/{n}")
            except (OptbenchError, OSError) as e:
                m = Message(name=n, text="")
                m.warnings.append(f"unreadable: {e}")
                out.append(m)
                continue
            out.append(parse_message(n, data))
        return out

    def post(
        self,
        agent_id: str,
        body: str,
        type: str = "agent",
        refs: Sequence[str] = (),
        now: datetime | None = None,
    ) -> str:
        """Write a new message and return its file name (create-only; same-second posts get `~NNN`)."""
        when = as_utc(now)
        text = format_message(agent_id, body, type=type, refs=refs, when=when)
        stamp = when.strftime(STAMP_FORMAT)
        prefix = f"{stamp}_{agent_id}"
        taken = [
            p[2]
            for n in self.ws.listdir(MESSAGE_DIR, dirs=False)
            if n.startswith(prefix) and (p := parse_name(n)) and p[1] == agent_id
        ]
        start = max(taken) + 1 if taken else 1
        if start > MAX_SEQ:
            raise OptbenchError(f"{agent_id} already posted {MAX_SEQ} messages in second {stamp}; wait a second")
        names = (f"{MESSAGE_DIR}/{message_name(stamp, agent_id, k)}" for k in range(start, MAX_SEQ + 1))
        rel = self.ws.create_unique(names, text)
        return rel.rsplit("/", 1)[1]


# ---- marked results and NEW BEST -------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkedResult:
    name: str
    agent: str | None
    when: datetime | None
    steps: int
    new_best: bool
    best_so_far: int  # the best (lowest) marked steps up to and including this message


def marked_results(messages: Iterable[Message]) -> list[MarkedResult]:
    """Messages with a valid marker, in canonical order; NEW BEST when lower than every earlier marked result.

    A message whose marker is malformed (two markers, unreadable steps) does not count.
    """
    out: list[MarkedResult] = []
    best: int | None = None
    for m in messages:
        if m.steps is None:
            continue
        new = best is None or m.steps < best
        if new:
            best = m.steps
        out.append(MarkedResult(m.name, m.agent, m.when, m.steps, new, best))  # type: ignore[arg-type]
    return out


# ---- results messages ------------------------------------------------------------------------------------
# (whether a record may carry the marker is results policy: optbench.results.eligibility.marker_refusal)


def result_post_body(results, note: str = "", artifact: str | None = None, rule: str | None = None) -> str:
    """A results message: the free-text note, a summary of the record, and the marker line last.

    Steps and val loss are the record's judgement (results.judging.judge_record, as the marker policy and the
    leaderboard see it), so a record whose top-level losses are null but whose curves pass still reads right."""
    from optbench.results import rule_policy
    from optbench.results.judging import judge_record

    rule_name = rule_policy.for_results(results, override=rule).rule.name
    j = judge_record(results, rule_name)
    steps, mean, n = j.steps, j.mean, j.n
    if steps is None or mean is None:
        raise OptbenchError(f"{results.experiment}: no step count and val loss to report (the run set never reached "
                            f"the target, or its val loss is null)")
    lines = []
    if note.strip():
        lines += [note.strip(), ""]
    lines.append(f"Results: {results.experiment}")
    lines.append("")
    lines.append(f"- optimizer: {results.optimizer}")
    lines.append(f"- steps to {results.target:g}: {steps:,} (rule {rule_name}: {'pass' if j.passed else 'fail'})")
    std = f", std {results.std_val_loss:.4f}" if results.std_val_loss is not None else ""
    lines.append(f"- val loss: {mean:.4f} (mean of {n} run{'s' if n != 1 else ''}{std})")
    if results.key_hparams:
        lines.append("- key hparams: " + ", ".join(f"{k}={v}" for k, v in results.key_hparams.items()))
    if results.parts:
        lines.append("- parts: " + ", ".join(results.parts))
    if results.track:
        lines.append(f"- track: {results.track}")
    if artifact:
        lines.append(f"- artifact: {artifact}")
    if results.notes:
        lines.append(f"- notes: {results.notes}")
    lines += ["", format_marker(steps, mean, n, results.optimizer)]
    return "\n".join(lines) + "\n"
