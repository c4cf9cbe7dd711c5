"""A sweep name as status, report and export read it: one sweep, or the two stages of a shortcut
(NAME-stage1 and NAME-stage2)."""

from __future__ import annotations

from optbench.sweep.study import Sweep, open_sweep, sweep_names


def stage_name(name: str, stage: int) -> str:
    return f"{name}-stage{stage}"


def load_stages(name: str, storage: str | None = None) -> list[Sweep]:
    """[the sweep] or [stage 1, stage 2 (once it exists)] of a shortcut called `name`."""
    names = set(sweep_names(storage))
    if name in names:
        return [open_sweep(name, storage)]
    if stage_name(name, 1) in names:
        return [open_sweep(stage_name(name, s), storage) for s in (1, 2) if stage_name(name, s) in names]
    return [open_sweep(name, storage)]  # raises the "no sweep" error listing what is there
