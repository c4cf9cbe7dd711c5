"""Fuzz every reader of outside input on the read side (issue 15 item 2): results.json, messages and their front
matter, claims, search spaces, upstream logs, and `artifacts push` (the reader that writes).

Property: a clear OptbenchError (exit 2 at the CLI) or a correct result (it round-trips), never another exception,
never a file left half-written. Each test names its reader and sets max_examples; `python bench/fuzz_counts.py`
runs this file with hypothesis' statistics and prints the inputs tried per reader.
"""

from __future__ import annotations

import json
import math
import string
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optbench.errors import OptbenchError
from optbench.results.logparse import parse_log, parse_log_text
from optbench.results import stats
from optbench.results.schema import RunRecord, load_results, parse_results
from optbench.sweep.space import load_space, parse_space, space_from_dict
from optbench.workspace.artifacts import push
from optbench.workspace.board import Board
from optbench.workspace.claims import list_claims, load_claim
from optbench.workspace.messages import MESSAGE_TYPES, format_message, parse_message
from optbench.workspace.storage import Workspace, init_workspace

pytestmark = pytest.mark.slow  # ~1 min of generated inputs: the full suite runs it, the fast lane does not


def fuzz(max_examples: int) -> settings:
    """The suite's settings: an explicit number of inputs per reader, no per-input deadline (a shared machine)."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ---- shared strategies -------------------------------------------------------------------------------------------

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.just(1e999))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(st.text(max_size=12), kids, max_size=4)),
                           max_leaves=20)
junk_bytes = st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))

GOOD = {
    "agent_id": "agent-01", "timestamp": "2026-04-30T14:30:00Z", "experiment": "Muon", "optimizer": "Muon",
    "steps_to_3_28": 3000, "final_val_loss": 3.27, "num_runs": 1, "mean_val_loss": 3.27, "std_val_loss": 0.0,
    "key_hparams": {"lr": 0.025}, "target": 3.28, "rule": "workspace", "claimed_step": 3000, "seeds": [0],
    "runs": [{"seed": 0, "final_val_loss": 3.27, "steps_to_target": 3000,
              "curve": [{"step": 0, "val_loss": 10.8, "train_time_s": 0.0}, {"step": 3000, "val_loss": 3.27, "train_time_s": 9.5}]}],
}
FIELDS = [*GOOD, "notes", "track", "reached_target", "passes_rule", "compliant", "unofficial", "train_steps",
          "wallclock_s", "provenance", "recipe", "tuning_budget", "steps_to_2_92"]
PATHS = [(f,) for f in FIELDS] + [("runs", 0, k) for k in GOOD["runs"][0]] + [("runs", 0, "curve", 1, k) for k in
                                                                               ("step", "val_loss", "train_time_s")]


def _mutate(data: dict, path: tuple, value) -> dict:
    d = json.loads(json.dumps(data))
    node = d
    for k in path[:-1]:
        ok = (isinstance(node, dict) and k in node) or (isinstance(node, list) and isinstance(k, int) and k < len(node))
        if not ok:
            return d  # an earlier mutation replaced this part: nothing left to change
        node = node[k]
    if not isinstance(node, dict):
        return d
    if value is _DROP:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return d


_DROP = object()


def _check_record(r) -> None:
    """A record that validated is correct: it writes strict JSON and reads back equal."""
    text = r.to_json()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c} written"))
    again = load_results(text)
    assert again.model_dump() == r.model_dump()
    assert all(math.isfinite(x) for x in _floats(json.loads(text)))


def _floats(x):
    if isinstance(x, float):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _floats(v)
    elif isinstance(x, list):
        for v in x:
            yield from _floats(v)


# ---- results.json ----------------------------------------------------------------------------------------------

@fuzz(400)
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(json_values, st.just(_DROP))), min_size=1, max_size=3))
def test_results_json_mutated_record(mutations):
    """reader: results.json (a valid record with 1-3 fields replaced by anything JSON can hold, NaN/Infinity too)"""
    data = GOOD
    for path, value in mutations:
        data = _mutate(data, path, value)
    text = json.dumps(data)  # NaN/Infinity written as JSON's non-standard tokens, as Python writes them
    try:
        r = load_results(text)
    except OptbenchError as e:
        assert str(e).strip()
        return
    _check_record(r)


@fuzz(300)
@given(json_values)
def test_results_json_any_json(data):
    """reader: results.json (any JSON value)"""
    try:
        r = parse_results(data, "fuzz")
    except OptbenchError:
        return
    _check_record(r)


@fuzz(200)
@given(junk_bytes)
def test_results_json_any_bytes(data):
    """reader: results.json (any bytes in the file)"""
    _read_file("results.json", data, load_results, _check_record)


def _read_file(name: str, data: bytes, reader, check) -> None:
    """Write `data` to a fresh file `name`, read it with `reader`: a clear error, or a result that passes `check`."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        try:
            out = reader(p)
        except OptbenchError:
            return
        check(out)


@fuzz(100)
@given(st.one_of(junk_bytes, st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=2)
                 .map(lambda ms: json.dumps(_apply(ms)).encode())))
def test_artifacts_push_all_or_nothing(content):
    """reader: artifacts push (results.json from a folder; the reader that writes)"""
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "art"
        src.mkdir()
        (src / "results.json").write_bytes(content)
        (src / "train_log.txt").write_text("log\n")
        ws = init_workspace(str(Path(d) / "ws"))[0]
        board_before = (Path(d) / "ws" / "LEADERBOARD.md").read_bytes()
        folder = Path(d) / "ws" / "artifacts" / "fuzz_agent-01"
        try:
            push(ws, "agent-01", src, "fuzz")
        except OptbenchError:
            assert not folder.exists(), "a refused push left files behind"
            assert (Path(d) / "ws" / "LEADERBOARD.md").read_bytes() == board_before
            return
        assert sorted(p.name for p in folder.iterdir()) == ["results.json", "train_log.txt"]
        assert (folder / "results.json").read_bytes() == content
        load_results(folder / "results.json")


def _apply(mutations) -> dict:
    data = GOOD
    for path, value in mutations:
        data = _mutate(data, path, value)
    return data


# ---- messages and their front matter -----------------------------------------------------------------------------

# the agent-id rule (workspace.identity): this pattern, and no ".." anywhere
agent_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z", fullmatch=True).filter(lambda a: ".." not in a)
msg_names = st.one_of(
    st.builds(lambda s, a: f"2026{s:010d}"[:8] + "-" + f"{s:06d}"[-6:] + f"_{a}.md", st.integers(0, 10**10), agent_ids),
    st.text(max_size=30),
)


@fuzz(400)
@given(msg_names, junk_bytes)
def test_message_any_bytes(name, data):
    """reader: message file (any name, any bytes)"""
    m = parse_message(name, data)  # never raises: anything wrong is a warning
    assert isinstance(m.warnings, list) and all(isinstance(w, str) for w in m.warnings)
    assert m.refs == [r for r in m.refs if isinstance(r, str)]


front_matter_lines = st.lists(st.one_of(
    st.sampled_from(["agent: agent-01", "type: agent", "type: system", "timestamp: 2026-04-30 14:30 UTC", "refs:",
                     "refs: [a, b]", "refs:\n  - 20260430-143000_agent-02.md", "- x", "agent: [a, b]", "key: {a: 1}",
                     "---", "'unclosed", "&anchor x", "*alias", "!!python/object:os.system x", "? complex key",
                     "timestamp: 2026-04-30T14:30:00Z", "type: Agent", "agent:", "agent: 'agent-01'"]),
    st.text(alphabet=string.printable, max_size=30)), max_size=8)


@fuzz(400)
@given(front_matter_lines, st.text(max_size=60), st.sampled_from(["\n", "\r\n", "\r"]))
def test_message_front_matter(lines, body, eol):
    """reader: message front matter (YAML-ish lines between '---')"""
    text = eol.join(["---", *lines, "---", body])
    m = parse_message("20260430-143000_agent-01.md", text.encode())
    assert isinstance(m.warnings, list)
    if m.ok:
        assert m.agent == "agent-01" and m.type in MESSAGE_TYPES and m.timestamp


@fuzz(300)
@given(agent_ids, st.sampled_from(MESSAGE_TYPES), st.lists(st.builds(lambda s, a: f"20260430-{s:06d}_{a}.md",
       st.integers(0, 235959), agent_ids), max_size=3),
       st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), min_size=1, max_size=80)
       .filter(lambda b: b.strip()),
       st.sampled_from(["optbench", "list", "block", "crlf"]))
def test_message_written_by_any_client_reads_back(agent, mtype, refs, body, style):
    """reader: messages written by optbench or another client of the convention (round trip)"""
    when = datetime(2026, 4, 30, 14, 30, tzinfo=timezone.utc)
    text = format_message(agent, body, type=mtype, refs=refs, when=when)
    if style == "list" and refs:
        text = text.replace(f"refs: {', '.join(refs)}", f"refs: [{', '.join(refs)}]")
    elif style == "block" and refs:
        text = text.replace(f"refs: {', '.join(refs)}", "refs:\n" + "".join(f"  - {r}\n" for r in refs)).replace("\n\n---", "\n---")
    elif style == "crlf":
        text = text.replace("\n", "\r\n")
    m = parse_message(f"20260430-143000_{agent}.md", text.encode())
    assert m.ok, m.warnings
    assert (m.agent, m.type, m.refs) == (agent, mtype, refs)
    ours = parse_message(f"20260430-143000_{agent}.md", format_message(agent, body, type=mtype, refs=refs, when=when))
    assert m.body == ours.body and m.steps == ours.steps


@fuzz(150)
@given(st.text(max_size=40))
def test_board_read_any_name(name):
    """reader: board read NAME (any name asked for)"""
    board = Board(_MEM_WS)
    try:
        board.read(name)
    except OptbenchError:
        pass


_MEM_WS = init_workspace("memory://fuzz-read-board")[0]


# ---- claims ------------------------------------------------------------------------------------------------------

claim_texts = st.one_of(
    junk_bytes,
    st.builds(lambda a, k, ts, body, eol: eol.join(["---", f"agent: {a}", f"kind: {k}", f"timestamp: {ts}", "---", body]).encode(),
              st.one_of(st.just("agent-01"), st.text(max_size=10)), st.sampled_from(["claim", "update", "other", "[x]"]),
              st.one_of(st.just("2026-04-30T14:30:00Z"), st.text(max_size=25)), st.text(max_size=40),
              st.sampled_from(["\n", "\r\n"])),
)


@fuzz(300)
@given(claim_texts, st.lists(claim_texts, max_size=2))
def test_claims_any_files(head, updates):
    """reader: claims (a claim folder's files, any content)"""
    ws = Workspace(f"memory://fuzz-claims-{_next()}")
    cid = "20260430-143000_agent-01"
    ws.create(f"claims/{cid}/{cid}.md", head)
    for i, u in enumerate(updates):
        ws.create(f"claims/{cid}/20260430-15{i:02d}00_agent-01.md", u)
    claims, warnings = list_claims(ws, include_expired=True)
    assert all(isinstance(w, str) for w in warnings)
    try:
        c = load_claim(ws, cid)
    except OptbenchError:
        assert claims == []
        return
    assert [x.id for x in claims] == [cid] and c.owner == "agent-01"


_counter = [0]


def _next() -> int:
    _counter[0] += 1
    return _counter[0]


# ---- search spaces (sweep) ---------------------------------------------------------------------------------------

space_specs = st.dictionaries(
    st.text(alphabet=string.ascii_letters + "_.", min_size=1, max_size=10),
    st.one_of(st.dictionaries(st.sampled_from(["log", "uniform", "int", "categorical", "grid", "step", "x"]),
                              st.one_of(json_values.filter(lambda v: v is not None), st.lists(numbers, min_size=2, max_size=2)),
                              max_size=3),
              json_values.filter(lambda v: v is not None)),
    max_size=3)


@fuzz(300)
@given(space_specs)
def test_search_space_any_table(data):
    """reader: search space (any table of parameters)"""
    try:
        space = space_from_dict(data, "fuzz")
    except OptbenchError:
        return
    assert space_from_dict(space.to_dict(), "again").to_dict() == space.to_dict()
    _check_grid(space)


def _check_grid(space) -> None:
    """The grid sampler's values: every parameter's, or a clear error (a log range without `grid = N`)."""
    try:
        grid = space.grid()
    except OptbenchError:
        return
    assert set(grid) == set(space.names) and all(len(v) >= 1 for v in grid.values())


@fuzz(200)
@given(st.one_of(st.text(max_size=200), st.lists(st.sampled_from(
    ["lr = { log = [1e-4, 1e-2] }", "wd = { uniform = [0, 0.5], grid = 3 }", "[aux]", "embed_lr = { log = [0.1, 1] }",
     "x = { int = [1, 8], step = 2 }", "c = { categorical = [1, 'a'] }", "lr = { log = [0, 1] }", "bad = 3",
     "y = { log = [nan, 1] }", "z = { uniform = [inf, 1e308] }", "w = { int = [1, 1e3] }", "= 1", "[[arr]]"]),
    max_size=5).map("\n".join)))
def test_search_space_any_toml(text):
    """reader: search space (a TOML file's text)"""
    try:
        space = parse_space(text, "fuzz")
    except OptbenchError:
        return
    _check_grid(space)


@fuzz(150)
@given(junk_bytes)
def test_search_space_any_file(data):
    """reader: search space (--space FILE, any bytes)"""
    _read_file("space.toml", data, load_space, _check_grid)


# ---- upstream logs ------------------------------------------------------------------------------------------------

SEP = "=" * 100
eval_lines = st.builds(
    lambda s, t, loss, extra: f"step:{s}/{t} val_loss:{loss} train_time:{extra}",
    st.integers(0, 5000), st.integers(0, 5000),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(["nan", "-inf", "abc", "", "1e999"])),
    st.sampled_from(["0.0s step_avg:0.00ms", "12ms", "xs", "", "1.5s val_ema_loss:nan"]))
log_lines = st.lists(st.one_of(eval_lines, st.sampled_from(
    [SEP, "Running PyTorch 2.10.0 compiled for CUDA 12.8 on NVIDIA H100 with world_size 8", "Running PyTorch x",
     "Using seed=3", "step:5/10 train_time:1s", "step:x", "Running on device_name=cpu with world_size=0",
     "# optbench run: track=cpu seeds=[0, 1]", "Run UTC timestamp=2026-04-30T14:30:00Z"]), st.text(max_size=40)),
    max_size=25)


@fuzz(150)
@given(junk_bytes)
def test_upstream_log_any_file(data):
    """reader: upstream log (any bytes in the file)"""
    _read_file("log.txt", data, lambda p: parse_log(p).run_records(3.28), lambda runs: None)


@fuzz(400)
@given(log_lines, st.booleans())
def test_upstream_log_any_lines(lines, transcript):
    """reader: upstream log (results/logparse.py)"""
    text = "\n".join(["print('code')", SEP, *lines])
    try:
        log = parse_log_text(text, "fuzz.txt", transcript=transcript)
    except OptbenchError:
        return
    try:
        runs = log.run_records(3.28)
    except OptbenchError:
        return
    for run in runs:  # a run read from a log is a correct record: finite JSON that reads back equal
        text = run.model_dump_json()
        assert all(math.isfinite(x) for x in _floats(json.loads(text)))
        assert RunRecord.model_validate_json(text).model_dump() == run.model_dump()
        v = stats.evaluate_runs([run], target=3.28)
        assert v.first_below_target == run.steps_to_target or (v.first_below_target is None) == (run.steps_to_target is None)
