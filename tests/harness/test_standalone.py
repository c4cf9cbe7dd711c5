"""optbench.standalone: the training step's one source. Its modules import only torch, numpy and the standard
library (the exporter inlines them verbatim); the split, the step, the protocol and the clock do what the loop
and the exported script rely on."""

from __future__ import annotations

import ast
import math
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import optbench.standalone
from optbench.standalone import data, groups, logformat, schedule, training
from optbench.tracks import get_track

MODULES = sorted(m.name for m in pkgutil.iter_modules(optbench.standalone.__path__))


def _imported_tops(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            tops.add(node.module.split(".")[0])
    return tops


def test_every_module_has_a_section_in_the_exported_script():
    from optbench.submission.export import SECTION_MODULES

    placed = [m for mods in SECTION_MODULES.values() for m in mods]
    assert sorted(placed) == [f"optbench.standalone.{m}" for m in MODULES]
    assert MODULES == ["data", "groups", "logformat", "schedule", "training"]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_only_torch_numpy_and_the_standard_library(name):
    path = Path(optbench.standalone.__path__[0]) / f"{name}.py"
    tops = _imported_tops(path)
    assert "optbench" not in tops
    assert tops <= set(sys.stdlib_module_names) | {"torch", "numpy"}, tops


def test_package_init_imports_nothing():
    assert _imported_tops(Path(optbench.standalone.__file__)) == set()


# ----------------------------------------------------------------------------- data


def test_data_errors_are_value_errors_naming_the_file(tmp_path):
    f = tmp_path / "fineweb_val_000000.bin"
    header = np.zeros(256, dtype="<i4")
    header[:3] = [data.MAGIC, data.VERSION, 10]
    f.write_bytes(header.tobytes() + np.arange(10, dtype="<u2").tobytes())
    assert data.read_shard(f).tolist() == list(range(10))
    with pytest.raises(data.DataError, match="val shard has 10 tokens; the track needs 16 \\+ 1"):
        data.load_val([f], 16, 4)
    f.write_bytes(header.tobytes() + np.arange(9, dtype="<u2").tobytes())
    with pytest.raises(data.DataError, match=f"{f}: corrupt shard: header says 10 tokens"):
        data.read_shard(f)
    assert issubclass(data.DataError, ValueError)


# ----------------------------------------------------------------------------- schedule and log lines


def test_eval_cadence_and_lr():
    assert [s for s in range(101) if schedule.is_eval_step(s, 100, 20, 5, 0.9)] == [0, 20, 40, 60, 80, 90, 95, 100]
    assert get_track("nano").eval_steps(100) == [0, 20, 40, 60, 80, 90, 95, 100]  # the track asks the same function
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([{"params": [p], "lr": 0.5}])
    opt.param_groups[0]["initial_lr"] = 0.5
    schedule.set_lr([opt], schedule.lr_multiplier(85, 100, cooldown_frac=0.3))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.15 / 0.3)


def test_log_lines_are_upstream_format():
    assert logformat.eval_line(125, 3250, 4.123456, 12.3456, 98.765) == \
        "step:125/3250 val_loss:4.12346 train_time:12.346s step_avg:98.77ms"
    assert logformat.train_line(4, 3250, 0.5) == "step:4/3250 train_time:0.500s step_avg:125.00ms"
    assert logformat.RULE == "=" * 100
    assert logformat.version_line(torch.device("cpu"), 1).startswith(f"Running PyTorch {torch.__version__} compiled")


# ----------------------------------------------------------------------------- groups


def _nano_model():
    t = get_track("nano")
    torch.manual_seed(0)
    return t.build_model()


def test_split_params_upstream_order_and_overrides():
    m = _nano_model()
    named = dict(m.named_parameters())
    aux, main = groups.split_params(m, lr=0.02, overrides=[("mlp", {"weight_decay": 0.1})],
                                    embed_lr=0.3, head_lr=0.004, scalar_lr=0.015)
    assert [g["lr"] for g in aux] == [0.3, 0.004, 0.015]
    assert aux[0]["params"] == [named["embed.weight"]] and aux[1]["params"] == [named["proj.weight"]]
    assert all(p.ndim < 2 for p in aux[2]["params"])
    name_of = {id(p): n for n, p in named.items()}
    assert [sorted(g) for g in main] == [["lr", "params"], ["lr", "params", "weight_decay"]]
    assert all("mlp" not in name_of[id(p)] for p in main[0]["params"])
    assert [name_of[id(p)] for p in main[1]["params"]] == \
        [n for n, p in named.items() if "mlp" in n and p.ndim >= 2]  # model order
    assert main[1]["lr"] == 0.02 and main[1]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="override match 'nope' selects no hidden matrix"):
        groups.split_params(m, overrides=[("nope", {})])
    _, everything = groups.split_params(m, scope="all", lr=1e-3, overrides=[("mlp", {})])
    assert everything == [{"params": list(m.parameters()), "lr": 1e-3}]


def test_covers_exactly_and_initial_lr():
    m = _nano_model()
    aux, main = groups.split_params(m, lr=0.02, embed_lr=0.3, head_lr=0.004, scalar_lr=0.015)
    opts = [torch.optim.AdamW(aux), torch.optim.SGD(main)]
    assert groups.covers_exactly(opts, m)
    assert not groups.covers_exactly(opts[:1], m)
    assert not groups.covers_exactly(opts + [torch.optim.SGD(main[0]["params"], lr=0.1)], m)
    groups.set_initial_lr(opts)
    assert [g["initial_lr"] for o in opts for g in o.param_groups] == [0.3, 0.004, 0.015, 0.02]


# ----------------------------------------------------------------------------- the step


def test_forward_backward_gradient_is_the_sum_over_the_batch():
    """Microbatch accumulation gives the gradient of the summed loss over the whole batch."""
    m = _nano_model()
    get_track("nano").init_model(m)
    for p in m.parameters():  # a generic point (the upstream init zeroes the projections)
        p.data.add_(0.01 * torch.randn_like(p))
    x = torch.randint(0, 2048, (8, 16))
    y = torch.randint(0, 2048, (8, 16))
    loss_sum = training.forward_backward(m, x, y, mbs=2, scale=1.0)
    micro = [p.grad.clone() for p in m.parameters()]
    m.zero_grad(set_to_none=True)
    full = m(x, y)
    full.backward()
    assert loss_sum.item() == pytest.approx(full.item(), rel=1e-5)
    for a, p in zip(micro, m.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)
    with pytest.raises(AssertionError, match="do not split into microbatches of 3"):
        training.forward_backward(m, x, y, mbs=3, scale=1.0)


def test_backward_scale_makes_the_sum_or_the_mean():
    assert training.backward_scale("sum", 8, 524288) == 8.0
    assert training.backward_scale("mean", 8, 524288) == 2.0**-16
    assert get_track("small").backward_scale(4) == training.backward_scale("sum", 4, 524288)
    with pytest.raises(ValueError, match="loss_reduction must be 'sum' or 'mean', got 'median'"):
        training.backward_scale("median", 1, 1)


class _Raises(torch.optim.SGD):
    def step(self, closure=None):
        raise FloatingPointError("nan in an inverse root")


def test_optimizer_step_clears_grads_and_names_a_failing_optimizer():
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.5)
    p.grad = torch.ones(3)
    training.optimizer_step([opt])
    assert p.tolist() == [0.5, 0.5, 0.5] and p.grad is None
    p.grad = torch.ones(3)
    with pytest.raises(FloatingPointError, match=r"^_Raises state \(nan in an inverse root\)$"):
        training.optimizer_step([opt, _Raises([p], lr=0.1)])


class _WantsHessian(torch.optim.SGD):
    def __init__(self, params, every):
        super().__init__(params, lr=0.0)
        self.every, self.seen = every, []

    def hessian_update_due(self, step):
        return step % self.every == 0

    def update_hessian(self):
        self.seen.append([p.grad is not None for p in self.param_groups[0]["params"]])


def test_extra_pass_runs_only_when_due_with_grads_then_clears_them():
    m = _nano_model()
    opt = _WantsHessian(m.parameters(), every=2)
    x = torch.randint(0, 2048, (4, 16))
    assert training.extra_pass(m, [opt, torch.optim.SGD(m.parameters(), lr=0.1)], 1, x, 1.0) is False
    assert opt.seen == []
    assert training.extra_pass(m, [opt], 2, x, 1.0) is True
    assert len(opt.seen) == 1 and all(opt.seen[0])  # update_hessian saw a gradient on every parameter
    assert all(p.grad is None for p in m.parameters())


def test_train_clock_counts_only_between_start_and_stop(monkeypatch):
    now = iter([10.0, 12.5, 20.0, 21.0, 30.0])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(now))
    clock = training.TrainClock(total=1.0)  # 10.0
    clock.start()  # 12.5
    assert clock.stop() == 7.5 and clock.total == 8.5  # 20.0
    clock.start()  # 21.0
    assert clock.now() == 17.5  # 30.0: 8.5 + 9
    assert math.isclose(clock.total, 8.5)
