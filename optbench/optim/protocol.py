"""The small protocol between the training loop and any optimizer that needs a loop hook.

The loop calls these functions for *every* optimizer; they are no-ops unless the optimizer defines the
matching method:

- ``opt.train()`` / ``opt.eval()`` (schedule-free API): called before training steps and before evaluation,
  so the parameter tensors hold the point that should be trained on / evaluated.
- ``opt.hessian_update_due(step) -> bool`` and ``opt.update_hessian()`` (Sophia): when due after a step, the
  loop computes the estimator's gradient with ONE extra forward+backward pass on labels sampled from the
  model (Gauss-Newton-Bartlett), leaves it in ``p.grad``, calls ``update_hessian()`` and counts the extra
  pass. A run with any extra pass breaks the benchmark's one-pass rule and is marked non-compliant.
- ``opt.part_schedules`` ({group index: [schedule, ...]}, set by recipe schedule parts): after the loop has set
  every group's lr from the recipe's schedule, each listed schedule sets its group's value for this step
  (``schedule.set(group, step, train_steps)``: PowerCool, split cooldowns, momentum warm-up/cool-down);
  ``apply_schedules`` in optbench.standalone.schedule.
- ``opt.before_forward()`` (EMA-Nesterov's look-ahead): called right before each step's forward-backward.

The functions live in optbench.standalone.training (with extra_pass, the Hessian pass itself), the source that
both the loop and the exported submission script run.
"""

from optbench.standalone.schedule import apply_schedules
from optbench.standalone.training import before_forward, extra_pass, hessian_due, set_eval_mode, set_train_mode

__all__ = ["set_train_mode", "set_eval_mode", "hessian_due", "extra_pass", "before_forward", "apply_schedules"]
