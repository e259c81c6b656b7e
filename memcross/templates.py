r"""Grayscale templates for image-like data, without downloads.

Sources (a registry):

* ``blobs`` — procedural: a sum of random Gaussian bumps on a ``side x side`` grid, thresholded
  to the requested ``sparsity`` (share of nonzero pixels) and min-max normalized to ``[0, 1]``.
* ``digits`` — natural images: scikit-learn's bundled 8x8 digits (``load_digits``; shipped with
  the package, nothing fetched), one template per class, upsampled to ``side x side`` with
  ``scipy.ndimage.zoom`` (cubic) and min-max normalized. Needs the ``images`` extra.
* ``file`` — your own array, a ``.npy`` file of shape ``(K, side, side)`` or ``(K, P)``.

Every source goes through :func:`check_templates`: finite, not all zero, enough templates.

Limits: ``side <= MAX_SIDE`` (128) for the procedural and digit templates, at most
``MAX_PIXELS`` (128 x 128) pixels per template and ``MAX_FILE_VALUES`` (2**24) numbers in a
template file, checked from the ``.npy`` header before the data is read; ``bumps <= MAX_BUMPS``.
A template file holds real numbers (bool, integer or float): complex, object, string and
structured arrays are refused, and nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memcross._checks import check_int, check_seed

#: Largest ``side`` of procedural and digit templates (a template has ``side**2`` pixels; the
#: coloured data dimension is ``3 side**2``).
MAX_SIDE = 128
#: Most pixels per template, from any source.
MAX_PIXELS = MAX_SIDE**2
#: Most numbers in a template file (``K' x P``): 128 MiB as float64.
MAX_FILE_VALUES = 2**24
#: Most Gaussian bumps per procedural template.
MAX_BUMPS = 100


def check_templates(templates, K: int | None = None, what: str = "templates") -> np.ndarray:
    """``templates`` as a float64 array ``(K, P)``; a ValueError that names the problem otherwise.

    >>> check_templates(np.ones((2, 3, 3))).shape
    (2, 9)
    >>> check_templates(np.zeros((2, 4)))
    Traceback (most recent call last):
    ...
    ValueError: templates: template 0 is all zero (every template needs some nonzero pixel)
    """
    if np.iscomplexobj(templates):
        raise ValueError(f"{what}: complex values; templates are real pixel intensities")
    try:
        arr = np.asarray(templates, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected an array of numbers") from None
    if arr.ndim == 3:
        arr = arr.reshape(arr.shape[0], -1)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what}: expected an array of shape (K, side, side) or (K, P), got shape {arr.shape}")
    if arr.shape[1] > MAX_PIXELS:
        raise ValueError(f"{what}: {arr.shape[1]} pixels per template, more than the {MAX_PIXELS} allowed "
                         f"({MAX_SIDE} x {MAX_SIDE})")
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
    _check_side(side, "blobs")
    check_int(bumps, "blobs bumps", 1, MAX_BUMPS)
    check_seed(seed, "blobs seed")
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
    _check_side(side, "digits")
    from scipy import ndimage

    digits = load_digits()
    out = []
    for k in range(K):
        img = digits.images[np.flatnonzero(digits.target == k)[0]]
        big = ndimage.zoom(img, side / img.shape[0], order=3)[:side, :side]
        out.append(_minmax(np.clip(big, 0, None)).ravel())
    return check_templates(np.array(out), K, "digits templates")


def _check_side(side, source: str) -> None:
    check_int(side, f"{source} side", 2, MAX_SIDE)


def _npy_header(path: Path, where: str) -> tuple[tuple, np.dtype]:
    """Shape and dtype from a ``.npy`` header, without reading the data."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as fh:
            if fh.read(6) != npy.MAGIC_PREFIX:
                raise ValueError(f"{where}: not a .npy file")
            fh.seek(0)
            version = npy.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(fh)
            else:
                raise ValueError(f"{where}: .npy format version {version[0]}.{version[1]} is not supported "
                                 "(save with numpy.save: versions 1.0 and 2.0)")
    except IsADirectoryError:
        raise ValueError(f"{where}: is a directory, not a .npy file") from None
    except OSError as exc:
        raise ValueError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: not a valid .npy file ({exc})") from None
    return shape, dtype


def file_templates(path: str | Path, K: int) -> np.ndarray:
    """Templates from a ``.npy`` file of shape ``(K', side, side)`` or ``(K', P)`` with ``K' >= K``.

    The header is read first: a file that is not a ``.npy`` array, an array that is not real
    numbers, of the wrong rank or above :data:`MAX_FILE_VALUES` / :data:`MAX_PIXELS` is refused
    before any data is read; nothing is unpickled."""
    path = Path(path)
    where = f"--templates file:{path}"
    if path.suffix != ".npy":
        raise ValueError(f"template file must be a .npy array, got {str(path)!r}")
    if not path.exists():
        raise ValueError(f"template file {str(path)!r} not found")
    shape, dtype = _npy_header(path, where)
    if dtype.kind == "c":
        raise ValueError(f"{where}: complex values ({dtype}); templates are real pixel intensities")
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise ValueError(f"{where}: values of type {dtype} are not numbers; save a float array")
    if len(shape) not in (2, 3):
        raise ValueError(f"{where}: expected an array of shape (K, side, side) or (K, P), got shape {shape}")
    count = int(np.prod(shape, dtype=object))
    pixels = int(np.prod(shape[1:], dtype=object))
    if count > MAX_FILE_VALUES or pixels > MAX_PIXELS:
        raise ValueError(f"{where}: an array of shape {shape} is too large; at most {MAX_PIXELS} pixels per "
                         f"template ({MAX_SIDE} x {MAX_SIDE}) and {MAX_FILE_VALUES} values in all")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ValueError(f"{where}: cannot read the array ({exc})") from None
    return check_templates(arr, K, f"templates in {path.name}")


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
    kwargs = {}
    for k, v in params.items():
        kind = allowed[name][k]
        try:
            kwargs[k] = kind(v)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"templates {spec!r}: {k} must be {what}, got {v!r}") from None
    if name == "blobs":
        return blob_templates(K, **kwargs)
    return digit_templates(K, **kwargs)
