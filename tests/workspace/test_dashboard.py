"""Dashboard: data collection, the page in a real headless chromium (DOM + screenshot), and the local server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from optbench.workspace.dashboard import build_dashboard, collect, make_server, parse_markdown_tables

from .cli_helpers import run_cli

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium_binary() -> str | None:
    for n in CHROMIUM_NAMES:
        p = shutil.which(n)
        if p:
            return p
    return None


def run_chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    exe = chromium_binary()
    if exe is None:
        pytest.skip(f"no chromium binary found (tried {', '.join(CHROMIUM_NAMES)}); install it: apt-get install -y chromium")
    base = [
        exe,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=5000",
    ]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=60)


def test_collect_has_everything_the_page_shows(populated):
    ws, info = populated
    d = collect(ws, now=info["now"])
    assert d["message_count"] == 7
    assert [(p["steps"], p["new_best"]) for p in d["best_over_time"]] == [
        (5625, True), (3600, True), (4100, False), (3500, True)
    ]
    assert [c["direction"] for c in d["claims"]] == ["Muon weight decay schedule"]  # the others expired
    assert d["claims"][0]["progress"] == "wd warmup looks good, 4 seeds running"
    overall = d["leaderboard"]["tables"][0]
    assert overall["title"] == "Overall" and len(overall["rows"]) == 3
    assert [row[3] for row in overall["rows"]] == ["Muon", "Lion", "AdamW"]
    assert [row[1] for row in overall["rows"]] == ["3,250", "4,125", "5,875"]
    assert overall["align"][1] == "right"
    assert len(d["curves"]) == 6 and all(len(c["points"]) > 10 for c in d["curves"])
    # Lion's results.json has no curves: its curve comes from the upstream-format train_log.txt
    lion = [c for c in d["curves"] if c["artifact"] == "lion_agent-03"]
    assert [c["name"] for c in lion] == ["lion_agent-03 trial 0"] and lion[0]["points"][0][0] == 0
    bad = next(m for m in d["messages"] if m["name"] == info["names"]["bad"])
    assert bad["warnings"] and bad["steps"] is None
    json.dumps(d, allow_nan=False)  # plain JSON


def test_markdown_tables_parser():
    md = "# T\n\n## A\n\n| x | y |\n|---|---:|\n| 1 | 2 |\n| 3 | 4 |\n\n## B\n### Sub\n\n| z |\n|:-:|\n| q |\n"
    t = parse_markdown_tables(md)
    assert [x["title"] for x in t] == ["A", "B — Sub"]
    assert t[0]["rows"] == [["1", "2"], ["3", "4"]] and t[0]["align"] == ["left", "right"]
    assert t[1]["align"] == ["center"]


@pytest.mark.slow
def test_dashboard_renders_in_headless_chromium(populated, tmp_path):
    ws, info = populated
    out = tmp_path / "dash"
    index = build_dashboard(ws, out, now=info["now"])
    assert sorted(p.name for p in out.iterdir()) == ["dashboard.css", "dashboard.js", "data.js", "data.json", "index.html"]
    html = index.read_text()
    assert "http://" not in html and "https://" not in html  # everything local: no CDN
    for asset in ("dashboard.js", "dashboard.css"):
        assert "https://" not in (out / asset).read_text()

    r = run_chromium(["--dump-dom", index.as_uri()], tmp_path)
    dom = r.stdout
    assert r.returncode == 0 and "<body" in dom, r.stderr[-2000:]
    assert 'data-dashboard="ready"' in dom, "the page script did not finish (see dashboard-error in the DOM)"
    # leaderboard rows: Overall (2) + best per optimizer (one row per listed optimizer) + record history (2)
    rows = re.findall(r'<tr class="lb-row">(.*?)</tr>', dom, flags=re.S)
    overall = [row for row in rows if re.search(r'^\s*<td class="num">[123]</td>', row)]
    assert len(overall) == 3, rows
    assert "3,250" in overall[0] and "Muon" in overall[0]
    assert "4,125" in overall[1] and "Lion" in overall[1]
    assert "5,875" in overall[2] and "AdamW" in overall[2]
    # charts: drawn by the page script, which marks the container when done
    best = re.search(r'<div id="best-chart" class="chart" data-rendered="true" data-points="(\d+)">', dom)
    loss = re.search(r'<div id="loss-chart" class="chart" data-rendered="true" data-points="(\d+)">', dom)
    assert best and loss, dom[:3000]
    assert int(best.group(1)) == 5 + 4  # 4 best-so-far steps + the end point, + 4 result marks
    assert int(loss.group(1)) > 6 * 10
    assert dom.count('class="mark new-best"') == 3 and dom.count(">NEW BEST 3,500<") == 1
    assert dom.count('class="claim-row"') == 1
    assert "malformed: 2 leaderboard result markers" in dom
    assert dom.count('class="msg"') == 7

    shot = Path(os.environ.get("OPTBENCH_DASHBOARD_SHOT", tmp_path / "shot.png"))  # set it to keep the PNG
    r = run_chromium(["--window-size=1280,2000", f"--screenshot={shot}", index.as_uri()], tmp_path)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(shot))[..., :3]
    assert img.shape[:2] == (2000, 1280)
    assert img.std() > 0.05  # not a blank page
    red = (np.abs(img[..., 0] - 0xDC / 255) < 0.06) & (np.abs(img[..., 1] - 0x26 / 255) < 0.06) & (np.abs(img[..., 2] - 0x26 / 255) < 0.06)
    assert red.sum() > 50  # the NEW BEST marks and labels are drawn in red
    blue = (np.abs(img[..., 0] - 0x25 / 255) < 0.06) & (np.abs(img[..., 1] - 0x63 / 255) < 0.06) & (np.abs(img[..., 2] - 0xEB / 255) < 0.06)
    assert blue.sum() > 200  # the best-so-far line and the loss curves


def test_empty_workspace_dashboard(tmp_path, mem_url):
    from optbench.workspace.storage import init_workspace

    ws = init_workspace(mem_url)[0]
    index = build_dashboard(ws, tmp_path / "d")
    data = json.loads((tmp_path / "d" / "data.json").read_text())
    assert data["message_count"] == 0 and data["curves"] == [] and data["best_over_time"] == []
    assert index.exists()


def test_server_serves_a_fresh_build_on_localhost(populated, tmp_path):
    ws, info = populated
    server, out = make_server(ws.url, port=0, out=tmp_path / "served", interval=0.2)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "optbench workspace" in page and "data.js" in page
        data = urllib.request.urlopen(f"http://127.0.0.1:{port}/data.json", timeout=10).read()
        assert json.loads(data)["message_count"] == 7
        from optbench.workspace.board import Board

        assert json.loads(data)["refresh_s"] == 1  # the page reloads itself
        Board(ws).post("agent-05", "a new message")
        deadline = time.monotonic() + 20  # the server rebuilds on its interval, with no request needed
        while time.monotonic() < deadline:
            data = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/data.json", timeout=10).read())
            if data["message_count"] == 8 and server.rebuilds >= 1:
                break
            time.sleep(0.1)
        assert data["message_count"] == 8 and server.rebuilds >= 1
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


def test_cli_dashboard_build(populated, tmp_path, capsys):
    ws, _ = populated
    code, out, err = run_cli(["dashboard", "build", ws.url, "--out", str(tmp_path / "cli-dash")], capsys)
    assert code == 0, err
    assert (tmp_path / "cli-dash" / "index.html").exists()
    code, out, err = run_cli(["dashboard", "serve", ws.url, "--port", "70000"], capsys)
    assert code == 2 and "--port" in err
