"""Records: frozen results that serialize to JSON, whichever layer made them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from memcross.theory.setting import check_fields


@dataclass(frozen=True)
class Prediction:
    """A predicted critical ratio ``M*/N`` with everything needed to trust and reproduce it.

    ``value`` is a float; ``value_text`` the same number at ``dps`` digits. ``error`` is the
    error estimate: quadrature's, 0 for exact sums; for ``finite-d`` the coefficient's accuracy
    carried to the root, and ``dps`` the digits that leaves. ``notes`` are validity notes.
    """

    value: float
    value_text: str
    method: str
    setting: dict
    dps: int
    error: float
    M_star: float
    coefficient: float
    uncollapsed_weight: float
    max_point_weight: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["notes"] = list(self.notes)
        return out

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> Prediction:
        data = check_fields(cls, data, "prediction record")
        data["notes"] = tuple(data.get("notes", ()))
        return cls(**data)

    def row(self) -> dict:
        """A flat mapping for tables: setting fields next to the results."""
        flat = {k: v for k, v in self.setting.items()}
        flat.update({k: v for k, v in self.to_dict().items() if k not in ("setting",)})
        flat["notes"] = "; ".join(self.notes)
        return flat
