"""The loop <-> optimizer protocol: schedule-free's eval swap around every evaluation, Sophia's extra Hessian pass
counted and marked non-compliant, the one-pass Sophia variant compliant; --unofficial marks every artifact."""

import json
import subprocess
import sys

import pytest
import torch

from optbench.optim import protocol
from optbench.results.schema import load_results
from optbench.standalone.training import evaluate
from optbench.tracks import get_track


class _Recorder(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.1)
        self.calls = []

    def train(self):
        self.calls.append("train")

    def eval(self):
        self.calls.append("eval")


def test_evaluate_swaps_to_eval_point_and_back():
    track = get_track("nano")
    torch.manual_seed(0)
    model = track.build_model()
    track.init_model(model)
    opt = _Recorder(model.parameters())
    x = torch.randint(0, track.vocab_size, (track.val_tokens // track.seq_len, track.seq_len))
    loss = evaluate(model, x, x, track.micro_batch_rows, track.val_tokens, [opt, torch.optim.SGD(
        model.parameters(), lr=0.1)])
    assert opt.calls == ["eval", "train"] and model.training
    assert abs(loss - torch.log(torch.tensor(2048.0)).item()) < 1e-4


def test_schedulefree_eval_point_is_x():
    from optbench.optim import get

    p = torch.nn.Parameter(torch.ones(4, 4))
    opt = get("adamw-schedulefree")([p], lr=0.1, betas=(0.9, 0.999))
    protocol.set_train_mode([opt])
    for _ in range(3):
        p.grad = torch.ones(4, 4)
        opt.step()
    y = p.detach().clone()
    z = opt.state[p]["z"].clone()
    protocol.set_eval_mode([opt])
    assert torch.allclose(p, torch.lerp(y, z, 1 - 1 / 0.9), atol=1e-6)
    protocol.set_train_mode([opt])
    assert torch.allclose(p, y, atol=1e-6)


def _sophia_recipe(tmp_path, estimator):
    f = tmp_path / f"sophia-{estimator}.toml"
    f.write_text(f'''name = "sophia-{estimator}"
optimizer = "sophia"
hparams = {{ lr = 0.001, weight_decay = 0.1, hessian_interval = 5, estimator = "{estimator}" }}
train_steps = 12
[aux]
embed_lr = 0.05
head_lr = 0.01
scalar_lr = 0.01
hparams = {{ betas = [0.8, 0.95], eps = 1e-10 }}
''')
    return f


@pytest.mark.slow
def test_sophia_gnb_counts_extra_passes_and_breaks_one_pass_rule(tmp_path, nano_data):
    for estimator, passes in (("gnb", 2), ("minibatch", 0)):
        out = tmp_path / estimator
        r = subprocess.run([sys.executable, "-m", "optbench", "run", "--track", "nano", "--recipe",
                            str(_sophia_recipe(tmp_path, estimator)), "--out", str(out), "--quiet"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        res = load_results(out / "results.json")
        assert res.runs[0].extra_passes == passes  # steps 4 and 9 of 12 with interval 5
        assert res.compliant is (passes == 0)
        assert res.recipe.config["hparams"]["estimator"] == estimator
        if passes:
            assert any("extra forward/backward" in n for n in res.compliance_notes)


@pytest.mark.slow
def test_unofficial_override_is_marked_everywhere(tmp_path, nano_data):
    out = tmp_path / "u"
    r = subprocess.run([sys.executable, "-m", "optbench", "run", "--track", "nano", "--recipe", "nano-adamw",
                        "--set", "train_steps=5", "--unofficial", "--override", "target=8.0", "--out", str(out),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = load_results(out / "results.json")
    assert res.unofficial and res.target == 8.0 and not res.compliant
    assert "UNOFFICIAL" in (out / "train_log.txt").read_text().splitlines()[0]
    run = json.loads((out / "run.json").read_text())
    assert run["unofficial"] and run["track_overrides"] == {"target": 8.0}
