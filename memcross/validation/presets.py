"""Presets of a trained sweep (``memcross validate --preset``). Plain values: importing this
module imports no torch, so study files and ``memcross list`` read them without the validation extra."""

from __future__ import annotations

#: Presets: the paper's protocol (docs/validation.md, "Training") and a CPU-sized one. Both use the paper's
#: optimizer and learning-rate schedule; ``quick`` trades noise draws for evaluation samples.
PRESETS: dict[str, dict] = {
    "paper": {"steps": 50_000, "draws": 100, "n_eval": 50},
    "quick": {"steps": 50_000, "draws": 10, "n_eval": 200},
}


def preset_names() -> list[str]:
    """The names of the validation presets."""
    return list(PRESETS)


def get_preset(name: str) -> dict:
    """A copy of preset ``name``'s options; ValueError for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
