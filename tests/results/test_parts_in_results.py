"""Results name the recipe's parts; the leaderboard, the recipes list, board posts and the dashboard show them
and filter on one ("which entries use the hyperball")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optbench.cli import app
from optbench.errors import OptbenchError
from optbench.results.leaderboard import entries_from, hparam_summary
from optbench.results.schema import CurvePoint, RunRecord, load_results, parse_results, results_from_runs, save_results


def _results(parts: list[str], optimizer: str = "chain", steps: int = 100, agent: str = "a1"):
    curve = [CurvePoint(step=s, val_loss=v) for s, v in [(0, 10.8), (steps, 3.27)]]
    runs = [RunRecord(seed=i, final_val_loss=3.27, curve=curve) for i in range(2)]
    return results_from_runs(runs, agent_id=agent, experiment=f"{optimizer} with {len(parts)} parts",
                             optimizer=optimizer, target=3.28, key_hparams={"lr": 0.018}, parts=parts,
                             recipe={"name": "r", "config": {"parts": {p: {} for p in parts}}})


@pytest.fixture
def folder(tmp_path):
    for name, parts in [("muonh", ["momentum", "orthogonalize", "aspect_scale", "hyperball"]),
                        ("record", ["momentum", "soap", "row_floor", "radius_pin", "aux.adam"]),
                        ("adamh", ["adam", "hyperball"]), ("plain", [])]:
        (tmp_path / name).mkdir()
        save_results(_results(parts, agent=name), tmp_path / name / "results.json")
    return tmp_path


def test_parts_round_trip_through_results_json(tmp_path):
    r = _results(["adam", "hyperball"])
    save_results(r, tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["parts"] == ["adam", "hyperball"]
    assert list(data).index("parts") == list(data).index("recipe") + 1
    assert load_results(tmp_path / "results.json").parts == ["adam", "hyperball"]
    plain = parse_results({"agent_id": "a", "experiment": "e", "optimizer": "muon", "steps_to_3_28": 3250,
                           "final_val_loss": 3.279}, "old.json")
    assert plain.parts == [] and "parts" not in json.loads(plain.to_json())


def test_leaderboard_names_parts_and_filters_on_one(folder):
    entries, _ = entries_from(folder)
    summaries = {e.results.agent_id: hparam_summary(e.results) for e in entries}
    assert summaries["adamh"] == "lr 0.018; parts: adam, hyperball"
    assert summaries["plain"] == "lr 0.018"
    hyper, _ = entries_from(folder, uses="hyperball")
    assert sorted(e.results.agent_id for e in hyper) == ["adamh", "muonh"]
    aux, _ = entries_from(folder, uses="adam")  # the aux chain's adam counts too
    assert sorted(e.results.agent_id for e in aux) == ["adamh", "record"]


def test_leaderboard_cli_uses_filter(folder):
    res = CliRunner().invoke(app, ["leaderboard", str(folder), "--uses", "hyperball"])
    assert res.exit_code == 0, res.output
    assert "results whose recipe uses `hyperball`" in res.output
    assert "parts: adam, hyperball" in res.output and "row_floor" not in res.output
    with pytest.raises(OptbenchError, match="--uses: unknown part 'hyperbal'"):
        CliRunner().invoke(app, ["leaderboard", str(folder), "--uses", "hyperbal"], catch_exceptions=False)


def test_recipes_uses_lists_the_published_entries_with_a_part():
    res = CliRunner().invoke(app, ["recipes", "--uses", "hyperball"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    for name in ("track3-4-adamh", "track3-5-muonh", "track3-8-normuonh", "track3-33-psgd-kron-h"):
        assert name in res.output
    assert "track3-46-record" not in res.output and "track3-36-muon" not in res.output


def test_board_result_post_names_the_parts():
    from optbench.workspace.board import result_post_body

    body = result_post_body(_results(["adam", "hyperball"]))
    assert "- parts: adam, hyperball" in body


def test_dashboard_artifacts_carry_parts(tmp_path):
    from optbench.workspace.artifacts import push
    from optbench.workspace.dashboard.builder import collect
    from optbench.workspace.storage import init_workspace

    ws, _, _ = init_workspace(str(tmp_path / "ws"))
    run = tmp_path / "run"
    run.mkdir()
    save_results(_results(["adam", "hyperball"]), run / "results.json")
    push(ws, "a1", run, "adamh")
    data = collect(ws)
    assert [a["parts"] for a in data["artifacts"]] == [["adam", "hyperball"]]
    js = (Path(__file__).resolve().parents[2] / "optbench/workspace/dashboard/dashboard.js").read_text()
    assert "parts-filter" in js  # the page's one filter on a part
