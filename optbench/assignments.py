"""KEY=VALUE assignments from the command line (`--set`, `--override`): the value is read as a TOML literal
(`0.02`, `[0.9, 0.95]`, `true`, `"x"`), else kept as a bare string (`ns_coefficients=tuned5`)."""

from __future__ import annotations

import tomllib
from typing import Any

from optbench.errors import OptbenchError


def parse_value(raw: str) -> Any:
    """A TOML literal's value, else the text itself."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_assignment(text: str, flag: str, key_word: str = "KEY") -> tuple[str, Any]:
    """`lr=0.02` -> ("lr", 0.02); OptbenchError naming the flag when there is no '='."""
    if "=" not in text:
        raise OptbenchError(f"{flag}: {text!r} is not {key_word}=VALUE")
    key, raw = text.split("=", 1)
    return key.strip(), parse_value(raw.strip())


__all__ = ["parse_value", "parse_assignment"]
