"""What one `optbench run` is: track, recipe, seeds, folders and switches; saved as run.json for --resume."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from optbench.errors import OptbenchError
from optbench.optim.recipe import Recipe
from optbench.tracks import Track, get_track, with_overrides

RUN_JSON = "run.json"  # the run folder's config file


@dataclass
class RunConfig:
    track: Track
    recipe: Recipe
    recipe_text: str
    seeds: list[int]
    out_dir: Path
    data_dir: Path
    device: str = "cpu"
    compile: bool = False
    checkpoint_every: int = 0
    agent_id: str = "local"
    experiment: str = ""
    progress: bool = True
    extra_notes: list[str] = field(default_factory=list)

    @property
    def train_steps(self) -> int:
        return self.recipe.train_steps or self.track.train_steps

    def to_json(self) -> dict:
        return {
            "track": self.track.name, "track_overrides": self.track.overrides, "unofficial": self.track.unofficial,
            "recipe": self.recipe.model_dump(), "recipe_text": self.recipe_text, "seeds": self.seeds,
            "out_dir": str(self.out_dir), "data_dir": str(self.data_dir), "device": self.device,
            "compile": self.compile, "checkpoint_every": self.checkpoint_every, "agent_id": self.agent_id,
            "experiment": self.experiment, "train_steps": self.train_steps,
        }

    @classmethod
    def from_json(cls, data: dict, **changes) -> RunConfig:
        """The config `to_json` wrote, with `changes` (field=value, e.g. out_dir, device, progress) applied."""
        try:
            track = with_overrides(get_track(data["track"]), data.get("track_overrides") or {})
            fields = dict(track=track, recipe=Recipe.model_validate(data["recipe"]), recipe_text=data["recipe_text"],
                          seeds=list(data["seeds"]), out_dir=Path(data["out_dir"]), data_dir=Path(data["data_dir"]),
                          device=data["device"], compile=data["compile"], checkpoint_every=data["checkpoint_every"],
                          agent_id=data["agent_id"], experiment=data["experiment"])
        except KeyError as e:
            raise OptbenchError(f"run config: field {e.args[0]!r} is missing") from None
        return cls(**{**fields, **changes})

    @classmethod
    def load(cls, run_dir: str | Path, **changes) -> RunConfig:
        """The config of the run folder `run_dir` (its run.json; out_dir is `run_dir`), with `changes` applied."""
        f = Path(run_dir) / RUN_JSON
        if not f.is_file():
            raise OptbenchError(f"{run_dir} has no {RUN_JSON} (not an optbench run folder)")
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise OptbenchError(f"{f} is not valid JSON ({e.msg})") from None
        return cls.from_json(data, **{"out_dir": Path(run_dir), **changes})
