"""Frozen track definitions: model, batch, data, target and evaluation cadence.

- small:  upstream track 3 (Modded-NanoGPT Optimization Benchmark), target 3.28 on FineWeb.
- medium: the NanoGPT-Medium optimizer leaderboard (04/22/25 medium record model), target 2.92 on FineWeb.
- cpu:    a CPU proxy on the bundled books19c-mini corpus (reduced 8,192-id GPT-2 vocabulary), minutes on 2 cores.
- nano:   a smoke track on the same corpus, seconds.
Calibration of the CPU tracks: docs/tracks.md. A recipe cannot change these fields; `--unofficial` can, and every
artifact of such a run says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from optbench.errors import OptbenchError
from optbench.model.gpt import GPTConfig
from optbench.standalone.schedule import is_eval_step, lr_multiplier
from optbench.standalone.training import backward_scale
from optbench.target import below_target  # the one rule; re-exported here


#: recipe init scheme -> the function of optbench.model.gpt that initializes a GPT (the exporter inlines it)
GPT_INIT_FUNCTIONS = {"track3": "init_weights", "torch-default": "init_weights_torch_default"}
BENCHMARK_EXCHANGE_RATE = 0.0045 / 100  # track 3's rule of thumb: 100 more steps buy 0.0045 val loss


@dataclass(frozen=True)
class Track:
    name: str
    description: str
    model: str  # "gpt" (track-3 GPT) or "medium" (NanoGPT-Medium record model)
    model_config: object
    batch_tokens: int  # tokens per optimizer step, across all ranks
    seq_len: int  # tokens per row
    micro_batch_rows: int  # rows per forward-backward on one rank
    target: float  # validation loss to reach
    val_tokens: int  # the first N tokens of the val shard
    train_steps: int  # default run length T (a recipe may set its own)
    eval_every: int  # eval cadence while step/T < late_frac
    eval_every_late: int  # eval cadence once step/T >= late_frac
    late_frac: float
    data: str  # "fineweb" or "books19c-mini"
    rule: str  # default significance-rule preset (optbench.results.stats)
    upstream: str = ""  # where the definition comes from
    val_seq_len: int = 0  # tokens per validation row (0: seq_len); the medium record validates on 262,144-token rows
    loss_reduction: str = "sum"  # "sum": gradient of the summed loss (track 3); "mean": of the mean (medium record)
    # val loss per training step near the target: turns a loss gap into steps (sweep objective `steps`);
    # small/medium: the benchmark's 0.0045 per 100 steps; cpu/nano: measured, docs/tracks.md
    exchange_rate: float = BENCHMARK_EXCHANGE_RATE
    unofficial: bool = False
    overrides: dict = field(default_factory=dict)  # fields changed under --unofficial

    @property
    def batch_rows(self) -> int:
        return self.batch_tokens // self.seq_len

    @property
    def val_row_tokens(self) -> int:
        """Tokens per validation row (the val set is cut into rows of this length)."""
        return self.val_seq_len or self.seq_len

    def backward_scale(self, world_size: int) -> float:
        """Factor on a microbatch's summed loss before backward (optbench.standalone.training.backward_scale): the
        gradient is the step's summed loss ("sum") or its mean over the step's tokens ("mean")."""
        try:
            return backward_scale(self.loss_reduction, world_size, self.batch_tokens)
        except ValueError as e:
            raise OptbenchError(f"track {self.name}: {e}") from None

    @property
    def max_world_size(self) -> int:
        """World sizes must divide this (so every rank does a whole number of microbatches)."""
        return self.batch_rows // self.micro_batch_rows

    @property
    def vocab_size(self) -> int:
        return self.model_config.vocab_size

    def reached(self, val_loss: float | None) -> bool:
        """Whether a val loss counts as reaching this track's target (the one rule: see below_target)."""
        return below_target(val_loss, self.target)

    def check_world_size(self, world_size: int) -> None:
        if world_size < 1 or self.max_world_size % world_size:
            raise OptbenchError(
                f"world size {world_size}: track {self.name!r} needs a world size that divides "
                f"{self.max_world_size} ({self.batch_rows} rows of {self.seq_len} tokens per step, "
                f"{self.micro_batch_rows} rows per microbatch)"
            )

    def accumulation_steps(self, world_size: int) -> int:
        self.check_world_size(world_size)
        return self.max_world_size // world_size

    def eval_steps(self, train_steps: int | None = None) -> list[int]:
        """Every eval_every steps while s/T < late_frac, every eval_every_late after, and always at T."""
        T = train_steps or self.train_steps
        return [s for s in range(T + 1) if is_eval_step(s, T, self.eval_every, self.eval_every_late, self.late_frac)]

    def build_model(self, embed_dtype=None):
        import torch

        dtype = embed_dtype or torch.float32
        if self.model == "gpt":
            from optbench.model.gpt import GPT

            return GPT(self.model_config, embed_dtype=dtype)
        if self.model == "medium":
            from optbench.model.medium import MediumGPT

            return MediumGPT(self.model_config, embed_dtype=dtype)
        raise OptbenchError(f"track {self.name}: unknown model kind {self.model!r}")

    def init_model(self, model, scheme: str = "track3") -> None:
        if self.model == "gpt":
            from optbench.model import gpt

            getattr(gpt, GPT_INIT_FUNCTIONS[scheme])(model)
        else:
            from optbench.model.medium import init_medium_weights

            init_medium_weights(model)

    def fixed_fields(self) -> dict:
        return {
            "model": self.model, "model_config": dict(vars(self.model_config)) if hasattr(self.model_config, "__dict__")
            else str(self.model_config), "batch_tokens": self.batch_tokens, "seq_len": self.seq_len,
            "micro_batch_rows": self.micro_batch_rows, "target": self.target, "val_tokens": self.val_tokens,
            "val_seq_len": self.val_row_tokens, "loss_reduction": self.loss_reduction, "data": self.data,
        }


def _medium_config():
    from optbench.model.medium import MediumConfig

    return MediumConfig()


SMALL = Track(
    name="small",
    description="Modded-NanoGPT Optimization Benchmark (track 3): 12x768 GPT, FineWeb, 524,288 tokens/step",
    model="gpt", model_config=GPTConfig(), batch_tokens=8 * 64 * 1024, seq_len=1024, micro_batch_rows=64,
    target=3.28, val_tokens=20 * 524288, train_steps=3250, eval_every=125, eval_every_late=25, late_frac=0.9,
    data="fineweb", rule="upstream-2026-04-30",
    upstream="KellerJordan/modded-nanogpt records/track_3_optimization/train_gpt_simple.py @f411b3d3 (result #36)",
)

CPU = Track(
    name="cpu",
    description="CPU proxy: 4x128 GPT (2 heads of 64), 8,192-id GPT-2 vocabulary, books19c-mini, 2,048 tokens/step",
    model="gpt", model_config=GPTConfig(vocab_size=8192, num_layers=4, model_dim=128, head_dim=64),
    batch_tokens=8 * 256, seq_len=256, micro_batch_rows=4, target=5.00, val_tokens=32768, train_steps=400,
    eval_every=50, eval_every_late=10, late_frac=0.9, data="books19c-mini", rule="workspace",
    upstream="optbench proxy; calibration in docs/tracks.md",
    exchange_rate=0.0024,  # measured: bench/exchange_rate.py, docs/tracks.md
)

NANO = Track(
    name="nano",
    description="Smoke track: 2x64 GPT (2 heads of 32), 2,048-id GPT-2 vocabulary, books19c-mini, 1,024 tokens/step",
    model="gpt", model_config=GPTConfig(vocab_size=2048, num_layers=2, model_dim=64, head_dim=32),
    batch_tokens=8 * 128, seq_len=128, micro_batch_rows=4, target=5.00, val_tokens=8192, train_steps=100,
    eval_every=20, eval_every_late=5, late_frac=0.9, data="books19c-mini", rule="workspace",
    upstream="optbench smoke track; calibration in docs/tracks.md",
    exchange_rate=0.0049,  # measured: bench/exchange_rate.py, docs/tracks.md
)

_STATIC = {t.name: t for t in (SMALL, CPU, NANO)}
TRACK_NAMES = ("small", "medium", "cpu", "nano")


def get_track(name: str) -> Track:
    if name == "medium":
        return Track(
            name="medium",
            description="NanoGPT-Medium optimizer leaderboard: the 04/22/25 medium record model (16x1024), "
                        "FineWeb, 524,288 tokens/step as 8 packed 65,536-token sequences",
            model="medium", model_config=_medium_config(), batch_tokens=8 * 65536, seq_len=65536,
            micro_batch_rows=1, target=2.92, val_tokens=20 * 524288, train_steps=5960, eval_every=125,
            eval_every_late=125, late_frac=1.0, data="fineweb", rule="workspace",
            upstream="KellerJordan/modded-nanogpt records/061525_GPT2MediumOptimizationLeaderboard (04/22/25 record)",
            # the record (records/track_2_medium/2025-04-22_Record8): val_seq_len = 4*64*1024, mean CE per GPU,
            # gradients all-reduced with ReduceOp.AVG
            val_seq_len=4 * 65536, loss_reduction="mean",
        )
    try:
        return _STATIC[name]
    except KeyError:
        raise OptbenchError(f"--track: unknown track {name!r}; choose one of {', '.join(TRACK_NAMES)}") from None


UNOFFICIAL_FIELDS = ("batch_tokens", "seq_len", "micro_batch_rows", "target", "val_tokens", "val_seq_len", "data")


def with_overrides(track: Track, overrides: dict) -> Track:
    """A copy with fixed fields changed; marks the track unofficial. Only for --unofficial runs."""
    bad = sorted(set(overrides) - set(UNOFFICIAL_FIELDS) - {"model_config"})
    if bad:
        raise OptbenchError(f"cannot override track field(s) {', '.join(bad)}; allowed: {', '.join(UNOFFICIAL_FIELDS)}")
    if not overrides:
        return track
    return replace(track, unofficial=True, overrides=dict(overrides), **overrides)


def track_for_run(name: str, overrides: dict | None = None, *, unofficial: bool = False,
                  custom_data: str | None = None) -> Track:
    """The track a run uses: `name`, its fixed fields changed (`--override`, other shards via `--data`) only when
    the run is unofficial."""
    track = get_track(name)
    if overrides:
        if not unofficial:
            raise OptbenchError("--override changes a fixed track field; it needs --unofficial")
        return with_overrides(track, overrides)
    if unofficial and custom_data is not None:
        return with_overrides(track, {"data": f"custom:{custom_data}"})
    return track


def run_data_dir(track: Track, data, unofficial: bool):
    """The shard folder a run trains on: `--data` for FineWeb tracks (required), the bundled corpus for the CPU
    tracks (other shards only for an unofficial run)."""
    if track.data == "fineweb":
        if data is None:
            raise OptbenchError(
                f"--data: track {track.name} trains on FineWeb; download it with "
                f"`optbench data fineweb --train-shards 20 --dir data/fineweb10B` and pass --data data/fineweb10B")
        return data
    if data is not None:
        if not unofficial:
            raise OptbenchError(f"--data: track {track.name}'s data is fixed ({track.data}); "
                                f"pass --unofficial to train on other shards")
        return data
    from optbench.data.corpus import default_data_dir

    return default_data_dir(track.vocab_size)


__all__ = ["Track", "below_target", "get_track", "TRACK_NAMES", "with_overrides", "track_for_run", "run_data_dir",
           "lr_multiplier"]
