"""Identity: one safe agent_id pattern; everything else is refused with an OptbenchError."""

from __future__ import annotations

import pytest

from optbench.errors import OptbenchError
from optbench.workspace.identity import resolve_agent_id, validate_agent_id

REFUSED = [
    "",  # empty
    "a/b",  # slash
    "../etc",  # parent + slash
    "..",  # parent
    "a..b",  # '..' inside
    "/abs",  # absolute path
    "a\\b",  # backslash
    "nul\x00id",  # NUL
    "x" * 65,  # over-long (max 64)
    "-leading-dash",  # must start with a letter or digit
    ".hidden",  # must start with a letter or digit
    "has space",
    "tilde~2",  # '~' is reserved for same-second message names
    "colon:id",
    "new\nline",
    "ünïcode",
]
ACCEPTED = ["agent-01", "a", "A.b_c-9", "0", "x" * 64, "gpt_4o.run-3"]


@pytest.mark.parametrize("bad", REFUSED)
def test_refused_ids(bad):
    with pytest.raises(OptbenchError, match="allowed|must be"):
        validate_agent_id(bad)


@pytest.mark.parametrize("good", ACCEPTED)
def test_accepted_ids(good):
    assert validate_agent_id(good) == good


def test_resolution_order(monkeypatch):
    monkeypatch.delenv("OPTBENCH_AGENT_ID", raising=False)
    monkeypatch.delenv("AGENT_ID", raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "Ada Lovelace")
    assert resolve_agent_id(None) == "Ada-Lovelace"  # the login name, made into an id
    monkeypatch.setattr("getpass.getuser", lambda: "..")
    with pytest.raises(OptbenchError, match="no agent id"):
        resolve_agent_id(None)
    assert resolve_agent_id(None, required=False) is None
    monkeypatch.setenv("AGENT_ID", "from-agent-id")
    assert resolve_agent_id(None) == "from-agent-id"
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "from-optbench")
    assert resolve_agent_id(None) == "from-optbench"
    assert resolve_agent_id("explicit") == "explicit"
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "../bad")
    with pytest.raises(OptbenchError, match=r"\$OPTBENCH_AGENT_ID"):
        resolve_agent_id(None)
    with pytest.raises(OptbenchError, match="--agent-id"):
        resolve_agent_id("")
