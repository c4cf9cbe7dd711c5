"""Claims: create-only files in the workspace, owner-only updates, expiry 2 h after the last update."""

from __future__ import annotations

from datetime import timedelta

import pytest

from optbench.errors import OptbenchError
from optbench.workspace.claims import load_claim, list_claims, make_claim, update_claim
from optbench.workspace.storage import init_workspace

from .cli_helpers import run_cli
from .conftest import T0


@pytest.fixture(params=["local", "memory"])
def ws(request, tmp_path, mem_url):
    url = str(tmp_path / "ws") if request.param == "local" else mem_url
    return init_workspace(url)[0]


def active_ids(ws, now):
    return [c.id for c in list_claims(ws, now=now)[0]]


def test_claim_expires_two_hours_after_its_last_update(ws):
    cid = make_claim(ws, "agent-01", "tuning PSGD Kron hyperparameters", now=T0)
    assert cid == "20260430-090000_agent-01"
    assert active_ids(ws, T0 + timedelta(hours=1, minutes=59, seconds=59)) == [cid]
    assert active_ids(ws, T0 + timedelta(hours=2)) == []  # expired exactly at 2 h
    # an update (even after expiry) renews it for 2 h from the update
    c = update_claim(ws, "agent-01", cid, "lr 5e-4 best so far", now=T0 + timedelta(hours=1, minutes=30))
    assert c.progress == "lr 5e-4 best so far" and c.expires == T0 + timedelta(hours=3, minutes=30)
    assert active_ids(ws, T0 + timedelta(hours=3, minutes=29)) == [cid]
    assert active_ids(ws, T0 + timedelta(hours=3, minutes=30)) == []
    everything = list_claims(ws, now=T0 + timedelta(days=1), include_expired=True)[0]
    assert [c.id for c in everything] == [cid]


def test_only_the_owner_can_update(ws):
    cid = make_claim(ws, "agent-01", "Muon wd schedule", now=T0)
    with pytest.raises(OptbenchError, match="belongs to 'agent-01'"):
        update_claim(ws, "agent-02", cid, "hijack", now=T0 + timedelta(minutes=5))
    assert load_claim(ws, cid).updates == []
    # a file another agent slipped into the folder is ignored (with a warning), it does not renew the claim
    ws.create(
        f"claims/{cid}/20260430-105900_agent-02.md",
        "---\nagent: agent-02\nkind: update\ntimestamp: 2026-04-30T10:59:00Z\n---\nsneaky\n",
    )
    c = load_claim(ws, cid)
    assert c.updates == [] and any("not the owner" in w for w in c.warnings)
    assert active_ids(ws, T0 + timedelta(hours=2, minutes=1)) == []


def test_same_second_claims_and_updates_get_unique_names(ws):
    a = make_claim(ws, "agent-01", "one", now=T0)
    b = make_claim(ws, "agent-01", "two", now=T0)
    assert (a, b) == ("20260430-090000_agent-01", "20260430-090000_agent-01~002")
    update_claim(ws, "agent-01", a, "u1", now=T0)
    update_claim(ws, "agent-01", a, "u2", now=T0)
    c = load_claim(ws, a)
    assert [u.text for u in c.updates] == ["u1", "u2"]
    assert ws.listdir(f"claims/{a}") == [
        "20260430-090000_agent-01.md",
        "20260430-090000_agent-01~002.md",
        "20260430-090000_agent-01~003.md",
    ]
    assert load_claim(ws, b).direction == "two"


def test_bad_ids_and_missing_claims(ws):
    with pytest.raises(OptbenchError, match="not of the form"):
        load_claim(ws, "../message_board")
    with pytest.raises(OptbenchError, match="no claim"):
        update_claim(ws, "agent-01", "20260430-090000_agent-01", "x", now=T0)
    with pytest.raises(OptbenchError, match="empty"):
        make_claim(ws, "agent-01", "   ", now=T0)
    ws.create("claims/20260430-090000_agent-05/20260430-090000_agent-05.md", "garbage")
    claims, warnings = list_claims(ws, now=T0)
    assert claims == [] and any("malformed" in w for w in warnings)


def test_cli_claim_update_and_list(tmp_path, capsys, monkeypatch):
    url = str(tmp_path / "ws")
    init_workspace(url)
    monkeypatch.setenv("OPTBENCH_WORKSPACE", url)
    code, out, err = run_cli(["claim", "--agent-id", "agent-01", "PSGD Kron lr sweep"], capsys)
    assert code == 0, err
    cid = out.strip()
    code, out, err = run_cli(["claims"], capsys)
    assert code == 0 and cid in out and "PSGD Kron lr sweep" in out
    code, out, err = run_cli(["claim", "--agent-id", "agent-02", "update", cid, "mine now"], capsys)
    assert code == 2 and "only its owner" in err
    code, out, err = run_cli(["claim", "--agent-id", "agent-01", "update", cid, "lr 3e-4 diverges"], capsys)
    assert code == 0 and f"updated {cid}" in out
    code, out, err = run_cli(["claim", "--agent-id", "agent-01", "a", "b"], capsys)
    assert code == 2 and "usage" in err
    # the new claim was announced on the board
    code, out, err = run_cli(["board", "read", "-a"], capsys)
    assert f"Claim `{cid}`: PSGD Kron lr sweep" in out
