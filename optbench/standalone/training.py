"""One training step and one evaluation, for one process or many (torchrun + DDP).

Per step: one forward-backward per microbatch on its summed loss, scaled so that the gradient is the SUM over every
token of the step (track 3) or its mean (the medium record), on every rank; the optimizers step and the gradients
are cleared; then any extra pass an optimizer asks for. Evaluation and checkpoints are not counted as training time.

The optimizer protocol (no-ops unless an optimizer defines the method):

- ``opt.train()`` / ``opt.eval()`` (schedule-free): called before training steps and before evaluation, so the
  parameter tensors hold the point that should be trained on / evaluated.
- ``opt.hessian_update_due(step) -> bool`` and ``opt.update_hessian()`` (Sophia): when due after a step, ONE extra
  forward+backward on labels sampled from the model (Gauss-Newton-Bartlett) leaves the estimator's gradient in
  ``p.grad``, then ``update_hessian()`` runs. A run with any extra pass breaks the one-pass-per-step rule.
- ``opt.before_forward()`` (EMA-Nesterov's look-ahead): right before each step's forward-backward.
"""

from __future__ import annotations

import contextlib
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP


def in_process_group() -> bool:
    """Whether torchrun started several processes (a process group is running)."""
    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if in_process_group():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if in_process_group():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def data_parallel(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP over the process group (it broadcasts rank 0's parameters and averages gradients), or the model itself
    in a single process."""
    if not in_process_group():
        return model
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def backward_scale(loss_reduction: str, world_size: int, batch_tokens: int) -> float:
    """Factor on a microbatch's summed loss before backward, so that after DDP's average over ranks the gradient is
    the step's summed loss ("sum", track 3: x world_size) or its mean over the step's tokens ("mean", the medium
    record: x world_size / batch_tokens; powers of two, so exact)."""
    if loss_reduction == "sum":
        return float(world_size)
    if loss_reduction == "mean":
        return world_size / batch_tokens
    raise ValueError(f"loss_reduction must be 'sum' or 'mean', got {loss_reduction!r}")


def set_train_mode(optimizers) -> None:
    for opt in optimizers:
        fn = getattr(opt, "train", None)
        if callable(fn):
            fn()


def set_eval_mode(optimizers) -> None:
    for opt in optimizers:
        fn = getattr(opt, "eval", None)
        if callable(fn):
            fn()


def before_forward(optimizers) -> None:
    """``opt.before_forward()`` where defined (EMA-Nesterov moves the weights to its look-ahead point), right
    before a step's forward-backward."""
    for opt in optimizers:
        fn = getattr(opt, "before_forward", None)
        if callable(fn):
            fn()


def hessian_due(optimizers, step: int) -> list:
    """The optimizers that want a Hessian-estimator gradient after this step."""
    return [opt for opt in optimizers
            if callable(getattr(opt, "hessian_update_due", None)) and opt.hessian_update_due(step)]


def forward_backward(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, mbs: int,
                     scale: float) -> torch.Tensor:
    """One forward-backward per microbatch of `mbs` rows on its summed loss times `scale` (backward_scale);
    gradients accumulate (under DDP only the last microbatch syncs them). Returns this rank's summed loss,
    detached."""
    assert len(inputs) % mbs == 0, f"{len(inputs)} rows do not split into microbatches of {mbs}"
    loss_sum = torch.zeros((), device=inputs.device)
    accum_steps = len(inputs) // mbs
    for i in range(accum_steps):
        no_sync = isinstance(model, DDP) and i < accum_steps - 1
        with model.no_sync() if no_sync else contextlib.nullcontext():
            loss = model(inputs[i * mbs:(i + 1) * mbs], targets[i * mbs:(i + 1) * mbs])
            (loss * scale).backward()
        loss_sum += loss.detach()
    return loss_sum


def optimizer_step(optimizers) -> None:
    """Every optimizer steps, in order; then the gradients are cleared. An optimizer that finds its own state
    non-finite may raise FloatingPointError; the message then names it."""
    for opt in optimizers:
        try:
            opt.step()
        except FloatingPointError as e:
            raise FloatingPointError(f"{type(opt).__name__} state ({e})") from e
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)


def extra_pass(model: torch.nn.Module, optimizers, step: int, inputs: torch.Tensor, scale: float) -> bool:
    """Sophia's Hessian estimate after the optimizer step, when due: ONE forward+backward of `inputs` on labels
    sampled from the model's own softmax (Gauss-Newton-Bartlett; summed loss times `scale`, as forward_backward),
    then update_hessian(). True if it ran."""
    due = hessian_due(optimizers, step)
    if not due:
        return False
    logits = model(inputs)
    sampled = torch.distributions.Categorical(logits=logits).sample()
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), sampled.view(-1), reduction="sum")
    (loss * scale).backward()
    for opt in due:
        opt.update_hessian()
    model.zero_grad(set_to_none=True)
    return True


def evaluate(model: torch.nn.Module, val_inputs: torch.Tensor, val_targets: torch.Tensor, mbs: int, val_tokens: int,
             optimizers) -> float:
    """Mean per-token val loss over val_tokens (summed over ranks), at the optimizers' evaluation point."""
    set_eval_mode(optimizers)
    model.eval()
    total = torch.zeros((), device=val_inputs.device, dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, len(val_inputs), mbs):
            total += model(val_inputs[i:i + mbs], val_targets[i:i + mbs]).double()
    all_reduce_sum(total)
    model.train()
    set_train_mode(optimizers)
    return float(total.item() / val_tokens)


class TrainClock:
    """Training time: stop() before an evaluation or a checkpoint, start() after it (each after a barrier, so the
    ranks agree); `total` counts only the time between them."""

    def __init__(self, total: float = 0.0):
        self.total = total
        self.t0 = time.perf_counter()

    def start(self) -> None:
        barrier()
        self.t0 = time.perf_counter()

    def stop(self) -> float:
        """Add the time since start() to the total; return it."""
        barrier()
        since = time.perf_counter() - self.t0
        self.total += since
        return since

    def now(self) -> float:
        """Training time so far, the clock still running."""
        return self.total + (time.perf_counter() - self.t0)
