"""A tolerant board (issue 15 item 6): a message another client of the workspace convention wrote (the original
workspace's shell script, a person by hand) reads the same as one optbench wrote, and optbench writes the
convention's format byte for byte. The fixtures are written from spec/workspace.md's description of a message."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

from optbench.workspace.board import Board
from optbench.workspace.messages import format_message, parse_message
from optbench.workspace.storage import init_workspace

FX = Path(__file__).parent / "fixtures" / "convention"
NAME = "20260430-143000_agent-01.md"
WHEN = datetime(2026, 4, 30, 14, 30, 0, tzinfo=timezone.utc)
REF, REF2 = "20260430-143000_agent-02.md", "20260430-142000_agent-03.md"


def _read(data: bytes | str):
    """What a reader sees of a message: every parsed field except the raw text."""
    d = asdict(parse_message(NAME, data))
    d.pop("text")
    return d


def test_optbench_writes_the_convention_byte_for_byte():
    assert format_message("agent-01", "Body in markdown.", refs=[REF], when=WHEN).encode() == (FX / "optbench_format.md").read_bytes()
    assert format_message("agent-01", "Body in markdown.", when=WHEN).encode() == (FX / "no_refs_optbench_format.md").read_bytes()


def test_board_post_writes_the_fixture_bytes(tmp_path):
    board = Board(init_workspace(str(tmp_path / "ws"))[0])
    name = board.post("agent-01", "Body in markdown.\n", refs=[REF], now=WHEN)
    assert name == NAME
    assert board.ws.read_bytes(f"message_board/{name}") == (FX / "optbench_format.md").read_bytes()


@pytest.mark.parametrize("fixture", ["spec_example.md", "refs_flow_list.md", "refs_block_list.md", "refs_without_md.md",
                                     "extra_keys.md", "hand_written.md"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_other_writers_read_the_same_one_ref(fixture, line_end):
    expected = _read((FX / "optbench_format.md").read_bytes())
    assert expected["warnings"] == [] and expected["refs"] == [REF] and expected["type"] == "agent"
    data = (FX / fixture).read_bytes().replace(b"\n", line_end.encode())
    assert _read(data) == expected


@pytest.mark.parametrize("fixture", ["two_refs_comma.md", "two_refs_list.md", "two_refs_spaces.md"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_other_writers_read_the_same_two_refs(fixture, line_end):
    expected = _read(format_message("agent-01", "Body in markdown.", refs=[REF, REF2], when=WHEN))
    assert expected["refs"] == [REF, REF2] and expected["warnings"] == []
    assert _read((FX / fixture).read_bytes().replace(b"\n", line_end.encode())) == expected


@pytest.mark.parametrize("fixture", ["no_refs_optbench_format.md", "no_refs_empty_line.md"])
def test_without_refs_reads_the_same(fixture):
    expected = _read(format_message("agent-01", "Body in markdown.", when=WHEN))
    assert expected["refs"] == [] and expected["warnings"] == []
    assert _read((FX / fixture).read_bytes()) == expected
    assert _read((FX / fixture).read_bytes().replace(b"\n", b"\r\n")) == expected


def test_board_and_cli_read_a_foreign_message_like_ours(tmp_path, capsys):
    from tests.workspace.cli_helpers import run_cli

    ws = init_workspace(str(tmp_path / "ws"))[0]
    ws.create(f"message_board/{NAME}", (FX / "extra_keys.md").read_bytes().replace(b"\n", b"\r\n"))
    m = Board(ws).read(NAME)
    assert m.ok and m.refs == [REF] and m.body == "Body in markdown.\n"
    code, out, err = run_cli(["board", "read", "-a", "-w", str(tmp_path / "ws")], capsys)
    assert code == 0 and "warning" not in err and "Body in markdown." in out
