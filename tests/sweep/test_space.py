"""Search-space files: the four kinds, nested aux tables, grid points, and one-line errors naming the key."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given, settings, strategies as st

from optbench.errors import OptbenchError
from optbench.sweep.space import decode_params, parse_space, space_from_dict

SPACE = """
lr = { log = [1e-4, 1e-2], grid = 3 }
weight_decay = { uniform = [0.0, 0.3] }
train_steps = { int = [60, 140], step = 20 }
betas = { categorical = [[0.9, 0.95], [0.8, 0.95]] }
[aux]
embed_lr = { log = [0.01, 0.3] }
"""


def test_kinds_and_nested_aux():
    sp = parse_space(SPACE, "s.toml")
    assert sp.names == ["lr", "weight_decay", "train_steps", "betas", "aux.embed_lr"]
    lr, ts = sp.params["lr"], sp.params["train_steps"]
    assert (lr.kind, lr.low, lr.high, lr.grid) == ("log", 1e-4, 1e-2, 3)
    assert (ts.kind, ts.low, ts.high, ts.step) == ("int", 60, 140, 20)
    assert ts.grid_values() == [60, 80, 100, 120, 140]
    assert lr.grid_values() == pytest.approx([1e-4, 1e-3, 1e-2])
    assert isinstance(lr.distribution(), optuna.distributions.FloatDistribution) and lr.distribution().log
    # to_dict is what the study stores; it reads back to the same space
    assert space_from_dict(sp.to_dict()) == sp


def test_suggestions_stay_in_bounds_and_lists_decode():
    sp = parse_space(SPACE, "s.toml")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        t = study.ask()
        p = sp.suggest(t)
        assert 1e-4 <= p["lr"] <= 1e-2 and 0 <= p["weight_decay"] <= 0.3 and p["train_steps"] in (60, 80, 100, 120, 140)
        assert p["betas"] in ([0.9, 0.95], [0.8, 0.95])  # a list again, not Optuna's JSON text
        assert decode_params(t.params) == p
        study.tell(t, 1.0)


@pytest.mark.parametrize("text, message", [
    ("lr = 0.01", "key 'lr': expected a table"),
    ("lr = { log = [1e-4] }", "key 'lr': log needs [low, high]"),
    ("lr = { log = [0.0, 1e-2] }", "key 'lr': log bounds must be > 0"),
    ("lr = { uniform = [0.5, 0.1] }", "key 'lr': uniform bounds must have low < high"),
    ("lr = { log = [1e-4, 1e-2], uniform = [0, 1] }", "key 'lr': give exactly one of log, uniform, int, categorical"),
    ("lr = { normal = [0, 1] }", "key 'lr': give exactly one of"),
    ("train_steps = { int = [10.5, 20] }", "key 'train_steps': int bounds must be integers"),
    ("warmup_steps = { categorical = [] }", "key 'warmup_steps': categorical needs a non-empty list"),
    ("lr = { log = [1e-4, 1e-2], step = 2 }", "key 'lr': unexpected field(s) step"),
    ("lr = { log = [1e-4", "s.toml: not valid TOML"),
    ("", "the search space is empty"),
])
def test_malformed_space_names_the_key(text, message):
    with pytest.raises(OptbenchError) as e:
        parse_space(text, "s.toml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_grid_needs_points_for_float_ranges():
    sp = parse_space("weight_decay = { uniform = [0.0, 0.3] }", "s.toml")
    with pytest.raises(OptbenchError, match="key 'weight_decay': the grid sampler needs `grid = N`"):
        sp.grid()


@settings(max_examples=40, deadline=None)
@given(lo=st.floats(1e-6, 1.0), ratio=st.floats(1.01, 1e4), n=st.integers(2, 9))
def test_log_grid_is_geometric_between_the_bounds(lo, ratio, n):
    p = space_from_dict({"lr": {"log": [lo, lo * ratio], "grid": n}}).params["lr"]
    g = p.grid_values()
    assert len(g) == n and g[0] == pytest.approx(lo) and g[-1] == pytest.approx(lo * ratio)
    steps = [math.log(b / a) for a, b in zip(g, g[1:])]
    assert max(steps) - min(steps) < 1e-9 * max(1.0, abs(max(steps)))


def test_qmc_sweep_is_scrambled_so_its_first_trials_are_not_the_corner_and_the_centre():
    """An unscrambled Sobol sequence gives the low corner, then the exact centre, after Optuna's random first trial:
    a 3-trial budget would tune nothing."""
    import warnings

    from optbench.sweep.study import SweepSpec, _sampler

    sp = parse_space('lr = { log = [1e-4, 1e-2] }\nweight_decay = { uniform = [0.0, 0.3] }', "s.toml")
    spec = SweepSpec(name="q", track="nano", recipe={}, recipe_text="", space=sp.to_dict(), runs_dir="r",
                     sampler="qmc", sampler_seed=3)

    def first_points(seed_spec):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the sampler's ExperimentalWarning is silenced where it is made
            study = optuna.create_study(sampler=_sampler(seed_spec, sp, None))
        pts = []
        for _ in range(3):
            t = study.ask()
            p = sp.suggest(t)
            pts.append((p["lr"], p["weight_decay"]))
            study.tell(t, 1.0)
        return pts

    pts = first_points(spec)
    assert pts[1] != pytest.approx((1e-4, 0.0)) and pts[2] != pytest.approx((1e-3, 0.15))
    assert all(1e-4 <= lr <= 1e-2 and 0 <= wd <= 0.3 for lr, wd in pts)
    assert first_points(spec) == pts  # every worker with the same sampler_seed draws the same sequence
    assert first_points(spec.model_copy(update={"sampler_seed": 4})) != pts
