"""Frozen tracks: cadence, schedule, world sizes, unofficial overrides, `optbench tracks`."""

import subprocess
import sys

import pytest

from optbench.errors import OptbenchError
from optbench.tracks import get_track, lr_multiplier, with_overrides


def test_small_cadence_is_upstream():
    steps = get_track("small").eval_steps()
    assert len(steps) == 38
    assert steps[:24] == list(range(0, 2876, 125))
    assert steps[24:] == list(range(2925, 3251, 25))


def test_schedule_values():
    assert lr_multiplier(0, 3250) == 1.0
    assert lr_multiplier(974, 3250) == 1.0
    assert lr_multiplier(3249, 3250) == pytest.approx(1 / 3250 / 0.7)
    assert lr_multiplier(1625, 3250) == pytest.approx(0.5 / 0.7)
    assert lr_multiplier(0, 5625, warmup_steps=250) == pytest.approx(1 / 250)
    assert lr_multiplier(249, 5625, warmup_steps=250) == 1.0


def test_world_sizes_and_accumulation():
    small = get_track("small")
    assert [small.accumulation_steps(w) for w in (1, 2, 4, 8)] == [8, 4, 2, 1]
    for bad in (3, 16):
        with pytest.raises(OptbenchError, match=f"world size {bad}"):
            small.check_world_size(bad)
    assert get_track("nano").max_world_size == 2


def test_unknown_track_and_overrides():
    with pytest.raises(OptbenchError, match="unknown track 'huge'"):
        get_track("huge")
    t = with_overrides(get_track("cpu"), {"target": 5.0})
    assert t.unofficial and t.target == 5.0 and t.overrides == {"target": 5.0}
    assert not get_track("cpu").unofficial
    with pytest.raises(OptbenchError, match="cannot override track field"):
        with_overrides(get_track("cpu"), {"name": "x"})


@pytest.mark.slow
def test_tracks_command_prints_param_counts():
    r = subprocess.run([sys.executable, "-m", "optbench", "tracks"], capture_output=True, text=True,
                       env=__import__("os").environ | {"COLUMNS": "250"})
    assert r.returncode == 0, r.stderr
    assert "162,354,816" in r.stdout and "3.28" in r.stdout and "2.92" in r.stdout
