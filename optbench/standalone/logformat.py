"""The upstream log's lines: the rule around the version line, the version line, one line per evaluation and the
console progress line (a log is the run's code, RULE, version line, RULE, then one eval line per evaluation)."""

from __future__ import annotations

import platform

import torch

RULE = "=" * 100


def version_line(device: torch.device, world_size: int) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    return f"Running PyTorch {torch.version.__version__} compiled for CUDA {torch.version.cuda} on {name} " \
           f"with world_size {world_size}"


def eval_line(step: int, train_steps: int, val_loss: float, train_time_s: float, step_avg_ms: float) -> str:
    return f"step:{step}/{train_steps} val_loss:{val_loss:.5f} train_time:{train_time_s:.3f}s step_avg:{step_avg_ms:.2f}ms"


def train_line(step: int, train_steps: int, train_time_s: float) -> str:
    """The console line after each training step (not written to the log)."""
    return f"step:{step}/{train_steps} train_time:{train_time_s:.3f}s step_avg:{1000 * train_time_s / step:.2f}ms"
