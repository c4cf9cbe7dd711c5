"""UTC time, the one home for it: now, a checked conversion to aware UTC, and the timestamp forms optbench
writes (results.json's ISO 8601 `2026-04-30T14:30:00Z`) and reads (that, offsets, and the message board's
`2026-04-30 14:30 UTC`)."""

from __future__ import annotations

from datetime import datetime, timezone

from optbench.errors import OptbenchError

ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def as_utc(when: datetime | None) -> datetime:
    """`when` converted to UTC (None: now). A naive datetime is refused: its zone is unknown."""
    when = when or utcnow()
    if when.tzinfo is None:
        raise OptbenchError(f"time {when!r} has no timezone; pass an aware UTC datetime")
    return when.astimezone(timezone.utc)


def iso_stamp(when: datetime | None = None) -> str:
    """`2026-04-30T14:30:00Z`: the results.json timestamp of `when` (default now)."""
    return as_utc(when).strftime(ISO_FORMAT)


def parse_timestamp(ts: str | None) -> datetime | None:
    """A results timestamp as a naive UTC datetime: ISO 8601 (`2026-04-30T14:30:00Z`, offsets converted) or the
    message-board form `2026-04-30 14:30 UTC`. None when it is neither."""
    if not ts:
        return None
    text = ts.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        d = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is not None:
        d = d.astimezone(timezone.utc).replace(tzinfo=None)
    return d
