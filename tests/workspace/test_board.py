"""Message board: names, front matter, selectors, same-second posts, malformed files, marker, NEW BEST, CLI."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from optbench.errors import OptbenchError
from optbench.workspace.board import Board, marked_results
from optbench.workspace.messages import format_marker, parse_marker, parse_message
from optbench.workspace.storage import init_workspace

from .cli_helpers import run_cli
from .conftest import make_results

NOW = datetime(2026, 4, 30, 14, 30, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["local", "memory"])
def board(request, tmp_path, mem_url) -> Board:
    url = str(tmp_path / "ws") if request.param == "local" else mem_url
    return Board(init_workspace(url)[0])


def test_name_and_front_matter_exactly_as_the_spec(board):
    name = board.post("agent-01", "Body in markdown.", refs=["20260430-143000_agent-02.md"], now=NOW)
    assert name == "20260430-143000_agent-01.md"
    text = board.ws.read_text(f"message_board/{name}")
    assert text == (
        "---\n"
        "agent: agent-01\n"
        "type: agent\n"
        "timestamp: 2026-04-30 14:30 UTC\n"
        "refs: 20260430-143000_agent-02.md\n"
        "---\n"
        "Body in markdown.\n"
    )
    fm = yaml.safe_load(text.split("---\n")[1])
    assert fm == {"agent": "agent-01", "type": "agent", "timestamp": "2026-04-30 14:30 UTC", "refs": "20260430-143000_agent-02.md"}
    # no refs -> no refs line; other types; a numeric-looking agent id stays a string when read back
    n2 = board.post("007", "sys", type="system", now=NOW + timedelta(seconds=5))
    t2 = board.ws.read_text(f"message_board/{n2}")
    assert t2 == "---\nagent: 007\ntype: system\ntimestamp: 2026-04-30 14:30 UTC\n---\nsys\n"
    m = board.read(n2)
    assert m.ok and m.agent == "007" and m.type == "system" and m.refs == []


def test_post_refuses_bad_type_refs_and_empty_body(board):
    with pytest.raises(OptbenchError, match="type 'boss'"):
        board.post("agent-01", "x", type="boss", now=NOW)
    with pytest.raises(OptbenchError, match="ref"):
        board.post("agent-01", "x", refs=["../../etc/passwd"], now=NOW)
    with pytest.raises(OptbenchError, match="empty"):
        board.post("agent-01", "  \n", now=NOW)
    with pytest.raises(OptbenchError):
        board.post("../x", "x", now=NOW)
    assert board.names() == []


def test_same_second_posts_all_survive_in_order(board):
    names = [board.post("agent-01", f"post {i}", now=NOW) for i in range(4)]
    assert names == [
        "20260430-143000_agent-01.md",
        "20260430-143000_agent-01~002.md",
        "20260430-143000_agent-01~003.md",
        "20260430-143000_agent-01~004.md",
    ]
    other = board.post("agent-01x", "other agent, same second", now=NOW)
    assert other == "20260430-143000_agent-01x.md"
    later = board.post("agent-01", "next second", now=NOW + timedelta(seconds=1))
    assert sorted(board.names()) == board.names()
    mine = [n for n in board.names() if board.read(n).agent == "agent-01"]
    assert mine == names + [later]  # sorting names keeps each agent's posting order
    assert [board.read(n).body for n in names] == [f"post {i}\n" for i in range(4)]


def test_selectors(board):
    names = [board.post(f"agent-{i % 3}", f"m{i}", now=NOW + timedelta(minutes=i)) for i in range(15)]
    assert board.select() == names[-10:]
    assert board.select(last=3) == names[-3:]
    assert board.select(first=2) == names[:2]
    assert board.select(all=True) == names
    assert board.select(last=0) == []
    assert board.info().count == 15 and board.info().newest == names[-1]
    with pytest.raises(OptbenchError, match="one of"):
        board.select(last=2, first=2)
    with pytest.raises(OptbenchError, match=">= 0"):
        board.select(first=-1)
    assert board.read(names[3][:-3]).body == "m3\n"  # '.md' may be left off
    with pytest.raises(OptbenchError, match="no message"):
        board.read("20990101-000000_nobody.md")
    with pytest.raises(OptbenchError, match="plain file name"):
        board.read("../README.md")


@pytest.mark.parametrize(
    "name,content,warning",
    [
        ("20260430-100000_a.md", "no front matter\n", "no YAML front matter"),
        ("20260430-100001_a.md", "---\nagent: a\ntype: agent\n", "not closed"),
        ("20260430-100002_a.md", "---\nagent: [unclosed\n---\nbody\n", "malformed front matter"),
        ("20260430-100003_a.md", "---\nagent: a\ntimestamp: 2026-04-30 10:00 UTC\n---\nbody\n", "missing field 'type'"),
        ("20260430-100004_a.md", "---\nagent: a\ntype: boss\ntimestamp: 2026-04-30 10:00 UTC\n---\nb\n", "type 'boss'"),
        ("20260430-100005_a.md", "---\nagent: b\ntype: agent\ntimestamp: 2026-04-30 10:00 UTC\n---\nb\n", "differs"),
        ("random-name.md", "---\nagent: a\ntype: agent\ntimestamp: 2026-04-30 10:00 UTC\n---\nb\n", "file name"),
        ("20260430-100006_a.md", b"---\nagent: a\n\xff\xfe---\n", "not valid UTF-8"),
        ("20260430-100007_a.md", "- just\n- a list\n", "no YAML front matter"),
        ("20260430-100008_a.md", "---\n- a\n- b\n---\nbody\n", "not a mapping"),
        ("20260430-100009_a.md", "---\nagent: [a, b]\ntype: agent\ntimestamp: 2026-04-30 10:00 UTC\n---\nb\n", "single value"),
    ],
)
def test_malformed_message_is_shown_with_a_warning(board, name, content, warning, capsys):
    board.ws.create(f"message_board/{name}", content)
    good = board.post("agent-01", "fine", now=NOW)
    msgs = board.messages()
    bad = next(m for m in msgs if m.name == name)
    assert any(warning in w for w in bad.warnings), bad.warnings
    assert next(m for m in msgs if m.name == good).ok
    # the CLI shows it (exit 0) with the warning on stderr
    code, out, err = run_cli(["board", "read", "-a", "--workspace", board.ws.url], capsys)
    assert code == 0
    assert f"=== {name} ===" in out and f"=== {good} ===" in out
    assert "warning:" in err and warning in err


@pytest.mark.parametrize(
    "body,steps",
    [
        ("**Leaderboard result:** 3400 steps · val_loss 3.271 · 1 runs · Muon", 3400),
        ("x\n**Leaderboard result:** 3,245 steps · val_loss 3.2741 · 4 runs · Muon\nmore", 3245),
        ("  **Leaderboard result:**   12,345,678 steps · anything", 12345678),
        ("**Leaderboard result:** 950 steps", 950),
        ("no marker at all", None),
        ("We use the **Leaderboard result:** line only for final runs.", None),  # mid-sentence: not a marker
        ("```\n**Leaderboard result:** 100 steps · example\n```\n", None),  # inside a code fence
    ],
)
def test_marker_parsing(body, steps):
    mp = parse_marker(body)
    assert mp.steps == steps and mp.warnings == ()


@pytest.mark.parametrize(
    "body,why",
    [
        ("**Leaderboard result:** 3,400 steps · a\n**Leaderboard result:** 3,300 steps · b", "2 leaderboard result markers"),
        ("**Leaderboard result:** 3,40 steps · bad separators", "malformed leaderboard marker"),
        ("**Leaderboard result:** lots of steps", "malformed leaderboard marker"),
        ("**Leaderboard result:** 3400 · no unit", "malformed leaderboard marker"),
    ],
)
def test_malformed_markers(body, why):
    mp = parse_marker(body)
    assert mp.steps is None and any(why in w for w in mp.warnings)
    msg = parse_message("20260430-100000_a.md", f"---\nagent: a\ntype: agent\ntimestamp: 2026-04-30 10:00 UTC\n---\n{body}\n")
    assert msg.steps is None and not msg.ok


def test_format_marker_roundtrip():
    line = format_marker(3245, 3.27412, 4, "Muon")
    assert line == "**Leaderboard result:** 3,245 steps · val_loss 3.2741 · 4 runs · Muon"
    assert parse_marker(line).steps == 3245
    assert format_marker(100, 3.2, 1, "X").endswith("· 1 run · X")


def test_new_best_only_when_lower_than_every_earlier_marked_result(board):
    def mk(steps, minute, agent="agent-01"):
        return board.post(agent, f"r\n\n**Leaderboard result:** {steps:,} steps · val_loss 3.27 · 1 runs · X", now=NOW + timedelta(minutes=minute))

    mk(5625, 0)
    board.post("agent-02", "a plan, no marker", now=NOW + timedelta(minutes=1))
    mk(3600, 2)
    mk(3600, 3, "agent-02")  # equal is not lower: not NEW BEST
    mk(4000, 4)
    board.ws.create(
        "message_board/20260430-143500_agent-09.md",
        "---\nagent: agent-09\ntype: agent\ntimestamp: 2026-04-30 14:35 UTC\n---\n"
        "**Leaderboard result:** 10 steps\n**Leaderboard result:** 20 steps\n",
    )  # malformed (two markers): never counts
    mk(3500, 6)
    res = marked_results(board.messages())
    assert [(r.steps, r.new_best) for r in res] == [(5625, True), (3600, True), (3600, False), (4000, False), (3500, True)]
    assert [r.best_so_far for r in res] == [5625, 3600, 3600, 3600, 3500]


def test_cli_board_commands(tmp_path, capsys, monkeypatch):
    url = str(tmp_path / "ws")
    assert run_cli(["workspace", "init", url], capsys)[0] == 0
    monkeypatch.setenv("OPTBENCH_WORKSPACE", url)
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "agent-07")
    code, out, err = run_cli(["board", "post", "hello from argv"], capsys)
    assert code == 0 and out.strip().endswith("_agent-07.md"), (out, err)
    first = out.strip()
    code, out, _ = run_cli(["board", "post", "-t", "user", "-r", first], capsys, stdin="from stdin\n", monkeypatch=monkeypatch)
    assert code == 0
    second = out.strip()
    code, out, _ = run_cli(["board", "list"], capsys)
    assert out.split() == sorted([first, second])
    code, out, _ = run_cli(["board", "list", "-f", "1"], capsys)
    assert out.split() == [min(first, second)]
    code, out, _ = run_cli(["board", "read", second], capsys)
    assert "type: user" in out and f"refs: {first}" in out and "from stdin" in out
    code, out, _ = run_cli(["board", "info"], capsys)
    assert "messages: 2" in out and f"newest:   {max(first, second)}" in out
    code, out, _ = run_cli(["workspace", "info"], capsys)
    assert code == 0 and "messages:  2" in out and "artifacts: 0" in out
    code, out, err = run_cli(["board", "post", "--agent-id", "../evil", "x"], capsys)
    assert code == 2 and "optbench: error:" in err and "Traceback" not in err
    code, out, err = run_cli(["board", "read", "nope"], capsys)
    assert code == 2 and "no message" in err
    code, out, err = run_cli(["board", "read", "-n", "1", "-a"], capsys)
    assert code == 2


def test_post_result_writes_the_marker_or_refuses(tmp_path, capsys, monkeypatch):
    url = str(tmp_path / "ws")
    init_workspace(url)
    monkeypatch.setenv("OPTBENCH_WORKSPACE", url)
    monkeypatch.setenv("OPTBENCH_AGENT_ID", "agent-01")
    good = make_results("agent-01", "Muon", tau=905, floor=3.259, seeds=(0, 1, 2, 3))
    assert good.passes_rule and good.steps_to_target is not None
    (tmp_path / "good.json").write_text(good.to_json())
    code, out, err = run_cli(["board", "post", "--result", str(tmp_path / "good.json"), "--artifact", "artifacts/muon_agent-01/"], capsys)
    assert code == 0, err
    msg = Board(init_workspace(url)[0]).read(out.strip())
    assert msg.ok and msg.steps == good.steps_to_target
    assert f"**Leaderboard result:** {good.steps_to_target:,} steps · val_loss" in msg.body and "4 runs · Muon" in msg.body
    assert "artifacts/muon_agent-01/" in msg.body

    # never reaches 3.28
    bad = make_results("agent-01", "SGD", tau=5000, floor=3.40, seeds=(0,))
    (tmp_path / "never.json").write_text(bad.to_json())
    code, out, err = run_cli(["board", "post", "--result", str(tmp_path / "never.json")], capsys)
    assert code == 2 and "refusing the leaderboard marker" in err and "never reached" in err
    # reaches 3.28 but fails the significance rule (n=1, mean just under 3.28)
    weak = make_results("agent-01", "Lion", tau=905, floor=3.2765, seeds=(0,), last=8000)
    assert weak.reached_target and not weak.passes_rule
    (tmp_path / "weak.json").write_text(weak.to_json())
    code, out, err = run_cli(["board", "post", "--result", str(tmp_path / "weak.json")], capsys)
    assert code == 2 and "significance rule" in err
    # a plain workspace-format record without curves, judged on mean and n
    plain = tmp_path / "plain.json"
    plain.write_text('{"agent_id": "agent-01", "experiment": "e", "optimizer": "Muon", "steps_to_3_28": 3400, "final_val_loss": 3.277, "num_runs": 1}')
    code, out, err = run_cli(["board", "post", "--result", str(plain)], capsys)
    assert code == 2 and "needs mean < 3.27500" in err
    # someone else's results
    other = make_results("agent-02", "Muon", tau=905, floor=3.259, seeds=(0, 1, 2, 3))
    (tmp_path / "other.json").write_text(other.to_json())
    code, out, err = run_cli(["board", "post", "--result", str(tmp_path / "other.json")], capsys)
    assert code == 2 and "only your own" in err
    # schema violations are reported by the results schema
    (tmp_path / "broken.json").write_text('{"agent_id": "agent-01"}')
    code, out, err = run_cli(["board", "post", "--result", str(tmp_path / "broken.json")], capsys)
    assert code == 2 and "required field is missing" in err
    assert len(Board(init_workspace(url)[0]).names()) == 1  # only the good post exists
