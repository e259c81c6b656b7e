"""The presets' contents, pinned to their revisions: a study keys its ``validate`` cells by the
preset's name and revision, so a preset whose content changes must have its revision bumped."""

import hashlib

import pytest

from memcross.store import canonical
from memcross.validation.presets import DATA_PRESETS, FAMILY_PRESETS, PRESETS, get_preset, preset_revision

#: (table, preset) -> (revision, the first 16 hex digits of the SHA-256 of its canonical JSON).
PINNED = {
    ("isotropic", "paper"): (1, "55dc9a08f4353e6a"),
    ("isotropic", "quick"): (1, "26228e0167832435"),
    ("colored-templates", "paper"): (1, "773635fc00d97766"),
    ("colored-templates", "quick"): (2, "11ce843585d9aa91"),
    ("family:mlp", "paper"): (1, "96d7ef92faf745cb"),
    ("family:mlp", "quick"): (1, "8e59cfc832cbd98f"),
}

TABLES = {"isotropic": PRESETS, **DATA_PRESETS, **{f"family:{k}": v for k, v in FAMILY_PRESETS.items()}}


def _lookup(table: str) -> dict:
    """The ``get_preset`` / ``preset_revision`` arguments that read ``table``."""
    if table.startswith("family:"):
        return {"data": "isotropic", "family": table.partition(":")[2] + ":depth=3"}
    return {"data": table, "family": None}


@pytest.mark.parametrize("table,name", sorted((t, n) for t, presets in TABLES.items() for n in presets))
def test_each_presets_content_is_pinned_to_its_revision(table, name):
    """Changed a preset? Bump its entry in ``REVISIONS`` and pin the new content here."""
    content = TABLES[table][name]
    digest = hashlib.sha256(canonical(content).encode()).hexdigest()[:16]
    args = _lookup(table)
    assert (preset_revision(name, **args), digest) == PINNED[(table, name)]
    assert get_preset(name, **args) == content


def test_revisions_follow_get_presets_lookup():
    assert preset_revision("quick", "colored-templates") == 2
    assert preset_revision("quick", "colored-templates", "gmm") == 2  # the data model's own family
    assert preset_revision("quick", "colored-templates", "mlp") == 1  # the MLP family's preset
    assert preset_revision("quick") == preset_revision("paper", "colored-templates") == 1
    assert preset_revision("quick", "some-data-model-without-presets") == 1
    assert set(PINNED) == {(t, n) for t, presets in TABLES.items() for n in presets}
