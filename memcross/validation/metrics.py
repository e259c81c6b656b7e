r"""Metrics of trained models: memorization ratio with a bootstrap interval, where the learned
means sit, and the memorization transition over model sizes.

* A generated sample is **memorized** when :math:`d_1 < d_2 / 3`, with :math:`d_1, d_2` its
  distances to the nearest and second-nearest training points (the paper's test). The
  memorization ratio is the memorized fraction; its interval is a percentile bootstrap
  (``scipy.stats.bootstrap``).
* A learned mean is **near a training point** when it passes the same test against the training
  set, and **near a true mean** when it passes it against the true means.
* **Transition** over sizes ``M`` (increasing) with ratios ``r(M)``: start = first ``M`` with
  ``r >= 0.1``, end = first ``M`` with ``r >= 0.9``, and the 50% point interpolated linearly
  between the sizes where ``r`` first reaches 0.5.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

#: The nearest / second-nearest distance ratio below which a point counts as a copy.
RATIO_THRESHOLD = 1 / 3
START_LEVEL, MID_LEVEL, END_LEVEL = 0.1, 0.5, 0.9


def near_copies(points: torch.Tensor, reference: torch.Tensor, threshold: float = RATIO_THRESHOLD) -> np.ndarray:
    """Boolean per row of ``points``: nearest distance to ``reference`` < ``threshold`` x second-nearest.

    >>> ref = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    >>> near_copies(torch.tensor([[0.1, 0.0], [5.0, 0.0]]), ref).tolist()
    [True, False]
    """
    if reference.shape[0] < 2:
        raise ValueError("the ratio test needs at least 2 reference points")
    dist = torch.cdist(points.double(), reference.double())
    two = torch.topk(dist, 2, dim=1, largest=False).values
    return (two[:, 0] < threshold * two[:, 1]).cpu().numpy()


def bootstrap_interval(flags: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of 0/1 ``flags`` (degenerate data: the point)."""
    flags = np.asarray(flags, dtype=float)
    if flags.size == 0:
        raise ValueError("no samples to bootstrap")
    if np.all(flags == flags[0]):
        return float(flags[0]), float(flags[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((flags,), np.mean, confidence_level=confidence, n_resamples=resamples,
                              method="percentile", random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def memorization_ratio(samples: torch.Tensor, train: torch.Tensor, seed: int = 0) -> dict:
    """Memorized fraction of ``samples`` with its 95% bootstrap interval."""
    flags = near_copies(samples, train)
    low, high = bootstrap_interval(flags, seed=seed)
    return {"ratio": float(flags.mean()), "ratio_low": low, "ratio_high": high, "samples": int(flags.size)}


def mean_locations(learned: torch.Tensor, train: torch.Tensor, true_means: torch.Tensor) -> dict:
    """How many learned means sit on training points and how many on true means."""
    out = {"means_near_train": int(near_copies(learned, train).sum())}
    out["means_near_true"] = int(near_copies(learned, true_means).sum()) if true_means.shape[0] >= 2 else None
    return out


@dataclass(frozen=True)
class Transition:
    """Where the memorization ratio crosses 0.1 (start), 0.5 (mid, interpolated) and 0.9 (end), in
    model size ``M`` and as ``M/N``; ``None`` when the ratio never reaches the level."""

    start: int | None
    mid: float | None
    end: int | None
    N: int

    def ratios(self) -> dict:
        """``start``, ``mid`` and ``end`` as fractions ``M/N`` (None where the level is not reached)."""
        f = lambda v: None if v is None else v / self.N
        return {"start": f(self.start), "mid": f(self.mid), "end": f(self.end)}


def transition(sizes, ratios, N: int) -> Transition:
    """The transition of ratios ``ratios`` at increasing ``sizes``.

    >>> transition([10, 20, 30, 40], [0.0, 0.2, 0.6, 1.0], 40)
    Transition(start=20, mid=27.5, end=40, N=40)
    """
    sizes = np.asarray(sizes, dtype=float)
    r = np.asarray(ratios, dtype=float)
    if sizes.shape != r.shape or sizes.size == 0:
        raise ValueError("sizes and ratios must be non-empty and of the same length")
    if np.any(np.diff(sizes) <= 0):
        raise ValueError("sizes must be strictly increasing")
    at = levels(sizes, r)
    as_int = lambda v: None if v is None else int(v)
    return Transition(as_int(at["start"]), at["mid"], as_int(at["end"]), N)


def levels(xs, ratios) -> dict:
    """``start``, ``mid`` and ``end`` of a transition on positions ``xs`` (in the order given; they
    need not increase): ``xs`` at the first ratio reaching 0.1 and 0.9, and the interpolated
    :func:`crossing` of 0.5; None where a level is not reached.

    >>> levels([70, 90, 80], [0.0, 0.2, 0.6])
    {'start': 90.0, 'mid': 82.5, 'end': None}
    """
    r = np.asarray(ratios, dtype=float)

    def first(level):
        idx = np.flatnonzero(r >= level)
        return None if idx.size == 0 else float(xs[int(idx[0])])

    return {"start": first(START_LEVEL), "mid": crossing(xs, r, MID_LEVEL), "end": first(END_LEVEL)}


def crossing(xs, ratios, level: float = MID_LEVEL) -> float | None:
    """Where ``ratios`` (in the order given) first reach ``level``, interpolated linearly in ``xs``
    from the entry before (``xs`` need not increase: an effective size may not); ``xs[0]`` if the
    first entry does, None if none does.

    >>> crossing([10, 20, 30], [0.0, 0.2, 0.8])
    25.0
    """
    x = np.asarray(xs, dtype=float)
    r = np.asarray(ratios, dtype=float)
    idx = np.flatnonzero(r >= level)
    if idx.size == 0:
        return None
    i = int(idx[0])
    if i == 0:
        return float(x[0])
    lo, hi = r[i - 1], r[i]
    return float(x[i - 1] + (level - lo) / (hi - lo) * (x[i] - x[i - 1]))


def transition_note(sizes, ratios, name: str = "M") -> str | None:
    """What a transition read from ``ratios`` at ``sizes`` cannot say: ``None`` when the ratio
    crosses 0.5 inside the sizes tried, else where the transition lies instead (``name``: what a
    size is, ``M`` or ``width``).

    >>> transition_note([25, 50, 100], [0.9, 1.0, 1.0])
    'every size tried memorizes (ratio >= 0.5 at M = 25): the transition lies below the smallest size tried'
    >>> transition_note([25, 50, 100], [0.0, 0.05, 0.3])
    'no size tried memorizes (ratio < 0.5 up to M = 100): the transition lies above the largest size tried'
    >>> transition_note([25, 50, 100], [0.0, 0.6, 1.0]) is None
    True
    """
    sizes, r = list(sizes), np.asarray(ratios, dtype=float)
    if r[0] >= MID_LEVEL:
        return (f"every size tried memorizes (ratio >= {MID_LEVEL} at {name} = {sizes[0]}): the transition lies below "
                "the smallest size tried")
    if not np.any(r >= MID_LEVEL):
        return (f"no size tried memorizes (ratio < {MID_LEVEL} up to {name} = {sizes[-1]}): the transition lies above "
                "the largest size tried")
    return None


#: Where ``--refine`` puts its sizes: across the whole transition, or inside the pair of sizes whose
#: ratios bracket the 50% point (the sharpest reading of that point for a given number of sizes).
REFINE_AROUND = ("transition", "mid")

#: How the sweep's messages say where the refining sizes go.
REFINE_WHERE = {"transition": "across the transition", "mid": "around the 50% point"}


def check_refine_around(value) -> None:
    """Refuse a ``--refine-around`` other than :data:`REFINE_AROUND`'s, naming them."""
    if value not in REFINE_AROUND:
        raise ValueError(f"--refine-around must be one of {', '.join(REFINE_AROUND)}, got {value!r}")


def refine_sizes(sizes, ratios, N: int, count: int, around: str = "transition") -> list[int]:
    """``count`` new sizes spread between the last size below the start level and the end (or N),
    or, ``around="mid"``, between the two sizes whose ratios bracket the 50% level (none when the
    first size already reaches it or no size does).

    >>> refine_sizes([10, 20, 30, 40], [0.0, 0.2, 0.6, 1.0], 40, 3, around="mid")
    [22, 25, 28]
    """
    check_refine_around(around)
    sizes = [int(m) for m in sizes]
    r = np.asarray(ratios, dtype=float)
    if around == "mid":
        above = np.flatnonzero(r >= MID_LEVEL)
        if above.size == 0 or above[0] == 0 or count < 1:
            return []
        lo, hi = sizes[above[0] - 1], sizes[above[0]]
    else:
        above = np.flatnonzero(r >= START_LEVEL)
        if above.size == 0 or count < 1:
            return []
        lo = sizes[above[0] - 1] if above[0] > 0 else max(1, sizes[0] // 2)
        ends = np.flatnonzero(r >= END_LEVEL)
        hi = sizes[ends[0]] if ends.size else N
    new = np.unique(np.round(np.linspace(lo, hi, count + 2)[1:-1]).astype(int))
    return [int(m) for m in new if m not in sizes and 1 <= m <= N]
