"""Argument checks shared by every layer: one message style, naming the argument and what is allowed.

This module imports nothing from the rest of the package, so any layer may use it.
"""

from __future__ import annotations

import difflib


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` to a misspelt ``name``, else ``""``.

    >>> did_you_mean("predit", ["derive", "predict", "plot"])
    " (did you mean 'predict'?)"
    >>> did_you_mean("zzz", ["derive", "predict"])
    ''
    """
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_name(what: str, name, known) -> ValueError:
    """The error for an unknown registry name: lists the known ones and suggests the closest.

    >>> str(unknown_name("schedule", "vpp", ["vp", "ve", "flow"]))
    "unknown schedule 'vpp'; known: vp, ve, flow (did you mean 'vp'?)"
    """
    known = list(known)
    return ValueError(f"unknown {what} {name!r}; known: {', '.join(map(str, known))}{did_you_mean(name, known)}")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Threads for a compute-bound command that do not oversubscribe the machine: the CPUs this
    process may use, less the ones other processes keep busy (the 1-minute load average), at
    least one. On an idle 2-core machine that is 2; under a load of 2 or more, 1."""
    import os

    cpus = available_cpus()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover
        load = 0.0
    return max(1, min(cpus, round(cpus - load)))


#: Seeds are integers in ``[0, SEED_LIMIT)``: numpy refuses negative seeds and torch refuses seeds of
#: 2**64 and more; derived seeds (``seed + 1`` ... ``seed + 4``) stay below 2**64.
SEED_LIMIT = 2**63


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an int if it is an integer in ``[0, 2**63)``; a ValueError naming ``name`` otherwise.

    >>> check_seed(7)
    7
    >>> check_seed(2**64, "--seed")
    Traceback (most recent call last):
    ...
    ValueError: --seed must be an integer in [0, 2**63), got 18446744073709551616
    """
    import numpy as np

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{name} must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def check_int(value, name: str, low: int | None = 1, high: int | None = None, *, accept_numpy: bool = False,
              why: str = "", high_name: str = "") -> int:
    """``value`` as an int if it is an integer (never a boolean) in ``[low, high]``; a ValueError
    naming ``name`` otherwise. ``None`` for ``low`` or ``high`` leaves that side open;
    ``accept_numpy`` also accepts numpy integers; ``why`` follows the bounds in the message and
    ``high_name`` names the upper bound (``N``). One message style:

    - ``low=1``: ``{name} must be a positive integer[ (at most {high}{why})], got {value!r}``;
    - otherwise: ``{name} must be an integer in [{low}, {high}]{why}, got ...`` (``>= {low}`` when
      ``high`` is None, no range at all when both are None).

    >>> check_int(3, "--steps", high=10)
    3
    >>> check_int(True, "--steps")
    Traceback (most recent call last):
    ...
    ValueError: --steps must be a positive integer, got True
    >>> check_int(20_000, "--draws", high=10_000)
    Traceback (most recent call last):
    ...
    ValueError: --draws must be a positive integer (at most 10,000), got 20000
    >>> check_int(21, "M", high=20, high_name="N")
    Traceback (most recent call last):
    ...
    ValueError: M must be a positive integer (at most N = 20), got 21
    >>> check_int(-1, "--refine", 0, 20, high_name="N")
    Traceback (most recent call last):
    ...
    ValueError: --refine must be an integer in [0, N] = [0, 20], got -1
    """
    if accept_numpy:
        import numpy as np

        kinds: tuple[type, ...] = (int, np.integer)
    else:
        kinds = (int,)
    if (isinstance(value, bool) or not isinstance(value, kinds) or (low is not None and value < low)
            or (high is not None and value > high)):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        bound = "" if high is None else f"{high_name} = {high:,}" if high_name else f"{high:,}"
        if low == 1:
            rule = f"a positive integer (at most {bound}{why})" if high is not None else f"a positive integer{why}"
        elif low is None and high is None:
            rule = f"an integer{why}"
        elif high is None:
            rule = f"an integer >= {low}{why}"
        elif low is None:
            rule = f"an integer <= {bound}{why}"
        elif high_name:
            rule = f"an integer in [{low}, {high_name}] = [{low}, {high}]{why}"
        else:
            rule = f"an integer in [{low}, {high}]{why}"
        raise ValueError(f"{name} must be {rule}, got {shown}")
    return int(value)


def check_threads(value, name: str = "--threads") -> int:
    """A thread count in ``[1, available_cpus()]``.

    >>> check_threads(1)
    1
    >>> check_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: --threads must be a positive integer (at most ..., the CPUs this process may use), got 0
    """
    return check_int(value, name, 1, available_cpus(), why=", the CPUs this process may use")


#: The largest text file (a configuration, a study, records) read whole: 64 MiB.
MAX_TEXT_BYTES = 64 * 2**20


def read_text(path, where: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a user's file, or a ValueError that starts with ``where`` and says why
    it cannot be read (missing, a folder, unreadable, too large, not UTF-8)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ValueError(f"{where} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{where} is a folder, not a file") from None
    except OSError as exc:
        raise ValueError(f"{where} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > max_bytes:
        raise ValueError(f"{where} is larger than {max_bytes // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not a text file (not UTF-8 at byte {exc.start})") from None


def parse_toml(text: str, where: str) -> dict:
    """TOML ``text`` as a dict, or a ValueError that starts with ``where``."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where} is not valid TOML ({exc})") from None
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (arrays or tables inside one another)") from None


# -- JSON records: the fields and types their readers use ------------------------------------------
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
               dict: "an object", None: "null"}


def check_record(value, schema: dict, what: str, error: type[ValueError] = ValueError) -> dict:
    """``value`` if it is a JSON object with the fields of ``schema``; otherwise ``error`` (a
    ValueError) naming ``what`` and the first wrong field.

    ``schema`` maps a field to ``bool``, ``int``, ``float`` (any number, not a boolean), ``str``,
    ``list``, ``dict``, ``None``, a nested schema, ``[type]`` (a list of such values) or a tuple of
    these (any of them). A field named with a trailing ``?`` may be absent. Fields not in the
    schema are not looked at.

    >>> check_record({"M": 4, "ratio": None}, {"M": int, "ratio": (float, None)}, "size record")
    {'M': 4, 'ratio': None}
    >>> check_record({"M": "4"}, {"M": int}, "size record")
    Traceback (most recent call last):
    ...
    ValueError: size record: field 'M' should be an integer, found '4' (str)
    """
    problem = _problem(value, schema, "")
    if problem:
        raise error(f"{what}: {problem}")
    return value


def _problem(value, want, field: str) -> str | None:
    if isinstance(want, dict):
        if not isinstance(value, dict):
            return _wrong(field, "an object", value)
        for name, sub in want.items():
            optional, name = name.endswith("?"), name.removesuffix("?")
            path = f"{field}.{name}" if field else name
            if name not in value:
                if optional:
                    continue
                return f"field {path!r} is missing"
            problem = _problem(value[name], sub, path)
            if problem:
                return problem
        return None
    if isinstance(want, list):
        if not isinstance(value, list):
            return _wrong(field, "a list", value)
        for i, item in enumerate(value):
            problem = _problem(item, want[0], f"{field}[{i}]")
            if problem:
                return problem
        return None
    options = want if isinstance(want, tuple) else (want,)
    if any(_is(value, w) for w in options):
        return None
    return _wrong(field, " or ".join(_TYPE_NAMES.get(w, "a " + type(w).__name__) for w in options), value)


def _is(value, want) -> bool:
    if want is None:
        return value is None
    if isinstance(want, (dict, list)):
        return _problem(value, want, "") is None
    if want in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if want is float else want)


def _wrong(field: str, expected: str, value) -> str:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    where = f"field {field!r}" if field else "the record"
    return f"{where} should be {expected}, found {shown} ({type(value).__name__})"


def split_spec(spec, what: str, allowed) -> tuple[str, dict[str, str]]:
    """``name[:key=value,...]`` as ``(name, {key: value})`` (values still text), with each key in
    ``allowed[name]`` (a mapping of registry names to their parameter names); a ValueError that
    names ``what``, the spec and what is allowed otherwise.

    >>> split_spec("min-snr:gamma=5", "weighting", {"min-snr": ["gamma"]})
    ('min-snr', {'gamma': '5'})
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"{what} must be a non-empty name, got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in allowed:
        raise ValueError(f"unknown {what} {name!r}; known {what}s: {', '.join(allowed)}{did_you_mean(name, allowed)}")
    params: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or key not in allowed[name]:
            names = ", ".join(allowed[name]) or "none"
            raise ValueError(f"{what} {spec!r}: unknown parameter {key!r} (parameters of {name!r}: {names})")
        if key in params:
            raise ValueError(f"{what} {spec!r}: parameter {key!r} is given twice")
        params[key] = value.strip()
    return name, params
