"""Search-space files (TOML): one entry per hyperparameter, keyed by the names `--set` takes.

    lr = { log = [1e-4, 3e-2] }              # log-uniform between the bounds
    weight_decay = { uniform = [0.0, 0.3] }  # uniform
    train_steps = { int = [60, 140], step = 10 }
    warmup_steps = { categorical = [0, 10, 20] }
    [aux]
    embed_lr = { log = [0.01, 0.3] }         # the same as "aux.embed_lr" = { log = [...] }

`int` takes optional `step` (or `log = true`); float kinds take optional `grid = N` (points for the grid
sampler, log-spaced for `log`). Categorical choices may be any TOML values (lists too: betas).
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from optbench.errors import OptbenchError

KINDS = ("log", "uniform", "int", "categorical")
_OPTIONS = {"log": {"grid"}, "uniform": {"grid"}, "int": {"step", "log"}, "categorical": set()}


@dataclass(frozen=True)
class Param:
    """One hyperparameter's range."""

    name: str
    kind: str  # one of KINDS
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple = ()
    step: int = 1
    log: bool = False  # int only: log-spaced integers
    grid: int | None = None

    def distribution(self):
        if self.kind in ("log", "uniform"):
            return FloatDistribution(self.low, self.high, log=self.kind == "log")
        if self.kind == "int":
            return IntDistribution(self.low, self.high, step=self.step, log=self.log)
        return CategoricalDistribution([_encode(c) for c in self.choices])

    def suggest(self, trial) -> Any:
        """The trial's value (Optuna records it; enqueued retries get their stored value back)."""
        if self.kind in ("log", "uniform"):
            return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log")
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)
        return _decode(trial.suggest_categorical(self.name, [_encode(c) for c in self.choices]))

    def grid_values(self) -> list:
        if self.kind == "categorical":
            return [_encode(c) for c in self.choices]
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        if self.grid is None:
            raise OptbenchError(f"space: key {self.name!r}: the grid sampler needs `grid = N` points for a "
                                f"{self.kind} range (or use categorical)")
        pts = np.geomspace(self.low, self.high, self.grid) if self.kind == "log" else \
            np.linspace(self.low, self.high, self.grid)
        return [float(x) for x in pts]

    def to_dict(self) -> dict:
        if self.kind == "categorical":
            return {"categorical": list(self.choices)}
        d: dict = {self.kind: [self.low, self.high]}
        if self.kind == "int" and self.step != 1:
            d["step"] = self.step
        if self.kind == "int" and self.log:
            d["log"] = True
        if self.grid is not None:
            d["grid"] = self.grid
        return d


def _encode(v: Any) -> Any:
    """Optuna's categorical choices are scalars: lists travel as JSON text."""
    return json.dumps(v) if isinstance(v, (list, tuple, dict)) else v


def _decode(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        return json.loads(v)
    return v


def decode_params(params: dict) -> dict:
    """A trial's stored params (Optuna's view) as recipe values."""
    return {k: _decode(v) for k, v in params.items()}


@dataclass(frozen=True)
class Space:
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def suggest(self, trial) -> dict:
        return {name: p.suggest(trial) for name, p in self.params.items()}

    def grid(self) -> dict[str, list]:
        return {name: p.grid_values() for name, p in self.params.items()}

    def to_dict(self) -> dict:
        return {name: p.to_dict() for name, p in self.params.items()}

    def check_names(self, valid: list[str], where: str) -> None:
        """OptbenchError naming the first unknown key and listing the valid ones."""
        for name in self.params:
            if name not in valid:
                raise OptbenchError(f"space: unknown hyperparameter {name!r} for {where}; valid names: "
                                    f"{', '.join(valid)}")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _param(name: str, spec: Any, origin: str) -> Param:
    where = f"{origin}: key {name!r}"
    if not isinstance(spec, dict):
        raise OptbenchError(f"{where}: expected a table such as {{ log = [1e-4, 1e-2] }}, got {spec!r}")
    kinds = [k for k in KINDS if k in spec and not (k == "log" and isinstance(spec[k], bool))]
    if len(kinds) != 1:
        raise OptbenchError(f"{where}: give exactly one of {', '.join(KINDS)} (got {', '.join(sorted(spec)) or 'none'})")
    kind = kinds[0]
    extra = set(spec) - {kind} - _OPTIONS[kind]
    if extra:
        raise OptbenchError(f"{where}: unexpected field(s) {', '.join(sorted(extra))} for kind {kind!r}")
    value = spec[kind]
    if kind == "categorical":
        if not isinstance(value, list) or not value:
            raise OptbenchError(f"{where}: categorical needs a non-empty list of choices, got {value!r}")
        return Param(name, kind, choices=tuple(value))
    if not (isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value)):
        raise OptbenchError(f"{where}: {kind} needs [low, high] (two numbers), got {value!r}")
    low, high = value
    if not low < high:
        raise OptbenchError(f"{where}: {kind} bounds must have low < high, got [{low}, {high}]")
    if kind == "log" and low <= 0:
        raise OptbenchError(f"{where}: log bounds must be > 0, got [{low}, {high}]")
    grid = spec.get("grid")
    if grid is not None and not (isinstance(grid, int) and not isinstance(grid, bool) and grid >= 2):
        raise OptbenchError(f"{where}: grid must be an integer >= 2, got {grid!r}")
    if kind == "int":
        if not all(isinstance(v, int) for v in value):
            raise OptbenchError(f"{where}: int bounds must be integers, got {value!r}")
        step, log = spec.get("step", 1), spec.get("log", False)
        if not (isinstance(step, int) and not isinstance(step, bool) and step >= 1):
            raise OptbenchError(f"{where}: step must be an integer >= 1, got {step!r}")
        if not isinstance(log, bool) or (log and (step != 1 or low < 1)):
            raise OptbenchError(f"{where}: log = true needs step 1 and low >= 1")
        return Param(name, kind, low, high, step=step, log=log)
    return Param(name, kind, float(low), float(high), grid=grid)


def _flatten(data: dict, prefix: str = "") -> dict:
    """{"aux": {"embed_lr": {...}}} -> {"aux.embed_lr": {...}}: a table with no kind key is a prefix."""
    out = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not any(kk in v for kk in KINDS) and all(isinstance(x, dict) for x in v.values()):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def space_from_dict(data: dict, origin: str = "space") -> Space:
    if not data:
        raise OptbenchError(f"{origin}: the search space is empty")
    return Space({name: _param(name, spec, origin) for name, spec in _flatten(data).items()})


def parse_space(text: str, origin: str = "space") -> Space:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise OptbenchError(f"{origin}: not valid TOML ({e})") from None
    return space_from_dict(data, origin)


def load_space(path: str | Path) -> Space:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise OptbenchError(f"--space: cannot read {p} ({e.strerror or e})") from None
    return parse_space(text, str(p))
