r"""Grayscale templates for image-like data, without downloads.

Sources (a registry):

* ``blobs`` — procedural: a sum of random Gaussian bumps on a ``side x side`` grid, thresholded
  to the requested ``sparsity`` (share of nonzero pixels) and min-max normalized to ``[0, 1]``.
* ``digits`` — natural images: scikit-learn's bundled 8x8 digits (``load_digits``; shipped with
  the package, nothing fetched), one template per class, upsampled to ``side x side`` with
  ``scipy.ndimage.zoom`` (cubic) and min-max normalized. Needs the ``images`` extra.
* ``file`` — your own array, a ``.npy`` file of shape ``(K, side, side)`` or ``(K, P)``.

Every source goes through :func:`check_templates`: finite, not all zero, enough templates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage


def check_templates(templates, K: int | None = None, what: str = "templates") -> np.ndarray:
    """``templates`` as a float64 array ``(K, P)``; a ValueError that names the problem otherwise.

    >>> check_templates(np.ones((2, 3, 3))).shape
    (2, 9)
    >>> check_templates(np.zeros((2, 4)))
    Traceback (most recent call last):
    ...
    ValueError: templates: template 0 is all zero (every template needs some nonzero pixel)
    """
    arr = np.asarray(templates, dtype=float)
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what}: expected an array of shape (K, side, side) or (K, P), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"{what}: template {bad} has NaN or infinite pixels")
    zero = np.flatnonzero(~np.any(arr != 0, axis=1))
    if zero.size:
        raise ValueError(f"{what}: template {int(zero[0])} is all zero (every template needs some nonzero pixel)")
    if K is not None and arr.shape[0] < K:
        raise ValueError(f"{what}: {arr.shape[0]} template(s) given but K = {K} components need {K}")
    return arr if K is None else arr[:K]


def _minmax(img: np.ndarray) -> np.ndarray:
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo) if hi > lo else img


def blob_templates(K: int, side: int = 15, sparsity: float = 0.3, bumps: int = 4, seed: int = 0) -> np.ndarray:
    """``K`` procedural templates: random Gaussian bumps, the top ``sparsity`` share of pixels kept.

    >>> t = blob_templates(3, side=15, sparsity=0.3, seed=1)
    >>> t.shape, float(t.min()), float(t.max()), round(float((t > 0).mean()), 1)
    ((3, 225), 0.0, 1.0, 0.3)
    """
    if not 0 < sparsity <= 1:
        raise ValueError(f"sparsity must be in (0, 1], got {sparsity!r}")
    if side < 2:
        raise ValueError(f"side must be >= 2, got {side!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    out = []
    for _ in range(K):
        img = np.zeros((side, side))
        for _ in range(bumps):
            cy, cx = rng.uniform(0.15, 0.85, 2)
            width = rng.uniform(0.08, 0.2)
            img += rng.uniform(0.5, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
        cut = np.quantile(img, 1 - sparsity)
        out.append(_minmax(np.where(img > cut, img - cut, 0.0)).ravel())
    return check_templates(np.array(out))


def digit_templates(K: int, side: int = 15) -> np.ndarray:
    """One template per digit class 0..K-1 (the first image of each class in scikit-learn's
    bundled digits), upsampled to ``side x side``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ValueError("digits templates need scikit-learn: pip install 'memcross[images]'") from None
    if not 1 <= K <= 10:
        raise ValueError(f"digits templates: K must be in 1..10 (ten digit classes), got {K}")
    digits = load_digits()
    out = []
    for k in range(K):
        img = digits.images[np.flatnonzero(digits.target == k)[0]]
        big = ndimage.zoom(img, side / img.shape[0], order=3)[:side, :side]
        out.append(_minmax(np.clip(big, 0, None)).ravel())
    return check_templates(np.array(out), K, "digits templates")


def file_templates(path: str | Path, K: int) -> np.ndarray:
    """Templates from a ``.npy`` file of shape ``(K', side, side)`` or ``(K', P)`` with ``K' >= K``."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"template file must be a .npy array, got {str(path)!r}")
    if not path.exists():
        raise ValueError(f"template file {str(path)!r} not found")
    return check_templates(np.load(path, allow_pickle=False), K, f"templates in {path.name}")


def load_templates(spec: str, K: int) -> np.ndarray:
    """``blobs[:side=15,sparsity=0.3,seed=0]``, ``digits[:side=15]`` or ``file:PATH.npy``."""
    name, _, rest = spec.partition(":")
    if name == "file":
        return file_templates(rest, K)
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"templates {spec!r}: expected key=value, got {item!r}")
        params[key.strip()] = value.strip()
    allowed = {"blobs": {"side": int, "sparsity": float, "seed": int, "bumps": int}, "digits": {"side": int}}
    if name not in allowed:
        raise ValueError(f"unknown templates {name!r}; known: blobs, digits, file:PATH.npy")
    unknown = set(params) - set(allowed[name])
    if unknown:
        raise ValueError(f"templates {name!r}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(allowed[name])}")
    try:
        kwargs = {k: allowed[name][k](v) for k, v in params.items()}
    except ValueError:
        raise ValueError(f"templates {spec!r}: bad parameter value") from None
    if name == "blobs":
        return blob_templates(K, **kwargs)
    return digit_templates(K, **kwargs)
