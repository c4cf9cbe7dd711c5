"""A sweep worker's presence in a collaboration workspace (spec/workspace.md).

- It claims the sweep's direction on the board (one claim per agent and sweep, reused by that agent's other
  workers) and renews it with a progress note as trials finish.
- After each trial it writes a status snapshot `sweeps/{sweep}/{YYYYMMDD-HHmmss}_{agent}.json` (create-only,
  like messages): the dashboard shows running sweeps and their best-so-far from the newest snapshot.
- When the budget is spent and nothing runs, it posts one short results message (no leaderboard marker: the
  spec keeps that for leaderboard runs). `sweeps/{sweep}/finished.json`, created first and create-only, makes
  sure only one worker posts it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from optbench.sweep.status import SweepStatus
from optbench.workspace.board import Board
from optbench.workspace.messages import STAMP_FORMAT, message_name
from optbench.workspace.claims import list_claims, make_claim, update_claim
from optbench.workspace.identity import resolve_agent_id
from optbench.workspace.storage import SWEEP_DIR, Workspace

FINISHED = "finished.json"


def direction(sweep) -> str:
    s = sweep.spec
    return (f"sweep {s.name}: {sweep.recipe.optimizer} on track {s.track}, tuning {', '.join(s.space)} "
            f"({s.sampler}, objective {s.objective})")


def snapshot(sweep, status: SweepStatus, agent: str, finished: bool = False) -> dict:
    best = status.best
    return {
        "sweep": sweep.name, "agent": agent, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "track": sweep.spec.track, "optimizer": sweep.recipe.optimizer, "objective": sweep.spec.objective,
        "sampler": sweep.spec.sampler, "space": list(sweep.spec.space), "counts": status.counts,
        "finished_trials": status.finished, "max_trials": status.max_trials,
        "device_hours": round(status.device_hours, 4), "max_device_hours": status.max_device_hours,
        "best": None if best is None else {"trial": best.number, "value": best.value, "params": best.params},
        "finished": finished,
    }


def progress_text(status: SweepStatus) -> str:
    cap = f"/{status.max_trials}" if status.max_trials else ""
    best = status.best
    b = "no finished trial yet" if best is None else \
        f"best {best.value:.5g} (trial {best.number}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else
                                                                   f"{k}={v}" for k, v in best.params.items()) + ")"
    return f"{status.finished}{cap} trials done, {status.counts.get('running', 0)} running, {b}, " \
           f"{status.device_hours:.3f} device-hours"


class SweepPresence:
    def __init__(self, url: str, agent_id: str | None, sweep):
        self.ws = Workspace(url)
        self.agent = resolve_agent_id(agent_id)
        self.sweep = sweep
        self.claim_id: str | None = None

    def _write_snapshot(self, status: SweepStatus, finished: bool = False) -> str:
        stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
        folder = f"{SWEEP_DIR}/{self.sweep.name}"
        names = (f"{folder}/{message_name(stamp, self.agent, k)[:-3]}.json" for k in range(1, 1000))
        return self.ws.create_unique(names, json.dumps(snapshot(self.sweep, status, self.agent, finished), indent=1))

    def start(self, status: SweepStatus) -> str:
        """Claim the sweep's direction (or reuse this agent's active claim on it); returns the claim id."""
        want = direction(self.sweep)
        claims, _ = list_claims(self.ws)
        mine = [c for c in claims if c.owner == self.agent and c.direction == want]
        self.claim_id = mine[0].id if mine else make_claim(self.ws, self.agent, want)
        self._write_snapshot(status)
        return self.claim_id

    def update(self, status: SweepStatus) -> None:
        """Renew the claim with the progress and write a snapshot (after each trial)."""
        update_claim(self.ws, self.agent, self.claim_id, progress_text(status))
        self._write_snapshot(status)

    def finish(self, status: SweepStatus) -> str | None:
        """Post the results message once per sweep; returns its name (None when another worker posted it)."""
        try:
            self.ws.create(f"{SWEEP_DIR}/{self.sweep.name}/{FINISHED}",
                           json.dumps(snapshot(self.sweep, status, self.agent, finished=True), indent=1))
        except FileExistsError:
            return None
        self._write_snapshot(status, finished=True)
        return Board(self.ws).post(self.agent, results_body(self.sweep, status))


def results_body(sweep, status: SweepStatus) -> str:
    s = sweep.spec
    lines = [f"Sweep `{s.name}` finished: {sweep.recipe.optimizer} on the {s.track} track, tuning "
             f"{', '.join(s.space)} with Optuna ({s.sampler}), objective `{s.objective}`, {s.seeds} seed(s) per trial.",
             "",
             f"- trials: {status.counts.get('complete', 0)} complete, {status.counts.get('pruned', 0)} pruned, "
             f"{status.counts.get('failed', 0)} failed",
             f"- budget: {status.device_hours:.3f} device-hours"]
    if status.best is not None:
        b = status.best
        lines.append(f"- best: {b.value:.5g} (trial {b.number}): "
                     + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in b.params.items()))
        lines.append(f"- run folder: {b.user_attrs.get('run_dir')}")
    lines += ["", f"Report: `optbench sweep report {s.name} --out DIR`; recipe: `optbench sweep export {s.name} --out R.toml`."]
    return "\n".join(lines) + "\n"
