"""A small study file for the study tests: three nano entries (Muon, AdamW, and Lion from a recipe file next to
the study), with the study-level fields given as keyword overrides."""

import tomli_w

HEAD = {"name": "mini", "track": "nano", "trials": 2, "range_factor": 4.0, "steps": [50, 200],
        "final_seeds": [1, 2], "reference": "muon", "ratio": ["muon", "adamw"]}

ENTRIES = [
    {"name": "muon", "label": "Muon", "recipe": "nano-muon", "full_steps": 3250, "full_source": "#36"},
    {"name": "adamw", "label": "AdamW", "recipe": "nano-adamw", "full_steps": 4950, "full_source": "PR #353"},
    {"name": "lion", "label": "Lion", "recipe": "lion.toml", "full_steps": 12250, "full_source": "PR #326"},
]

LION = {"name": "mini-lion", "track": "nano", "optimizer": "lion",
        "hparams": {"lr": 0.0008, "weight_decay": 0.0125, "betas": [0.9, 0.99]},
        "aux": {"embed_lr": 0.7, "head_lr": 0.032, "scalar_lr": 0.015}}


def write_study(folder, lion_knob: dict | None = None, lion: dict = LION, **head):
    """Write `folder/study.toml` (HEAD updated by `head`; None drops a field) and `folder/lion.toml`."""
    (folder / "lion.toml").write_text(tomli_w.dumps(lion))
    fields = {k: v for k, v in {**HEAD, **head}.items() if v is not None}
    entries = [dict(e) for e in ENTRIES]
    if lion_knob is not None:
        entries[2]["knob"] = lion_knob
    path = folder / "study.toml"
    path.write_text(tomli_w.dumps({**fields, "entry": entries}))
    return path
