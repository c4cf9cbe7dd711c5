"""Several processes post to one local workspace at the same moment: nothing lost, nothing overwritten."""

from __future__ import annotations

import hashlib
import multiprocessing as mp

import pytest

from optbench.workspace.board import Board
from optbench.workspace.messages import parse_name
from optbench.workspace.storage import Workspace, init_workspace

PROCS = 4
POSTS = 25


def body_for(agent: str, proc: int, i: int) -> str:
    payload = hashlib.sha256(f"{agent}/{proc}/{i}".encode()).hexdigest() * 40  # ~2.5 KB, checkable
    return f"proc {proc} post {i}\n\n{payload}\n"


def _poster(url: str, agent: str, proc: int, barrier, queue) -> None:
    board = Board(Workspace(url))
    barrier.wait()  # all processes start posting at the same moment
    names = []
    try:
        for i in range(POSTS):
            names.append(board.post(agent, body_for(agent, proc, i)))
        queue.put((proc, names, None))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        queue.put((proc, names, repr(e)))


@pytest.mark.parametrize("mode", ["same-agent", "different-agents"])
def test_concurrent_posts(tmp_path, mode):
    url = str(tmp_path / "ws")
    init_workspace(url)
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(PROCS), ctx.Queue()
    agents = ["agent-same"] * PROCS if mode == "same-agent" else [f"agent-{p}" for p in range(PROCS)]
    procs = [ctx.Process(target=_poster, args=(url, agents[p], p, barrier, queue)) for p in range(PROCS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    errors = [(proc, err) for proc, _, err in results if err]
    assert not errors, errors

    board = Board(Workspace(url))
    files = board.names()
    assert len(files) == PROCS * POSTS  # no message lost
    reported = sorted(n for _, names, _ in results for n in names)
    assert reported == files  # every reported name exists, and no two posts got one name
    leftovers = [p.name for p in (tmp_path / "ws" / "message_board").iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no temp files left behind
    for proc, names, _ in results:
        for i, name in enumerate(names):
            m = board.read(name)
            assert m.ok, (name, m.warnings)
            assert m.agent == agents[proc]
            assert m.body == body_for(agents[proc], proc, i)  # intact, not overwritten by another writer
        # each process's own posts sort in the order it made them
        assert sorted(names) == names
        assert all(parse_name(n) for n in names)
    print(f"{mode}: {PROCS} processes x {POSTS} posts -> {len(files)} messages found")


def _pusher(url: str, agent: str, src: str, barrier, queue) -> None:
    from optbench.workspace.artifacts import push

    barrier.wait()
    try:
        push(Workspace(url), agent, src, "opt")
        queue.put((agent, None))
    except Exception as e:  # noqa: BLE001
        queue.put((agent, repr(e)))


def test_concurrent_pushes_leave_a_complete_leaderboard(tmp_path):
    from .conftest import make_results, write_artifact_dir

    url = str(tmp_path / "ws")
    init_workspace(url)
    n = 3
    srcs = []
    for k in range(n):
        r = make_results(f"agent-{k}", f"Opt{k}", tau=905 + 50 * k, floor=3.259, seeds=(0, 1, 2, 3))
        srcs.append(str(write_artifact_dir(tmp_path / f"src{k}", r)))
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_pusher, args=(url, f"agent-{k}", srcs[k], barrier, queue)) for k in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(err is None for _, err in results), results
    overall = Workspace(url).read_text("LEADERBOARD.md").split("## Best known")[0]
    for k in range(n):
        assert f"artifacts/opt_agent-{k}/train_log.txt" in overall  # no push was dropped by a stale rewrite
