r"""Study files: a declared grid of cells (predict / exact / validate), checked before anything runs.

A study file (TOML) names the study, fixed setting fields, and one or more parts, each a grid of
setting fields crossed with seeds and methods::

    [study]
    name = "paper-gmm"

    [setting]              # fields every cell shares
    schedule = "vp"

    [[part]]
    methods = ["predict", "exact"]
    grid = { d = [30, 40], K = [3, 6], N = [50, 100] }
    seeds = [0]
    exact_draws = 8

    [[part]]
    methods = ["validate"]
    grid = { d = [30], K = [4], N = [100] }
    preset = "quick"
    steps = 12500

Every cell is a unit of work keyed by its full configuration in the study's store
(:class:`~memcross.store.Store`); :mod:`memcross.studies.cells` computes one,
:mod:`memcross.studies.executors` runs a study's cells and :mod:`memcross.studies.report` reads
them back.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from memcross._checks import available_cpus, check_int, check_seed, parse_toml, read_text
from memcross.records import CELL_PAYLOADS
from memcross.store import config_key
from memcross.theory.setting import Setting, check_fields
from memcross.validation.presets import PRESETS, preset_revision

METHODS = tuple(CELL_PAYLOADS)
_PART_KEYS = {"methods", "grid", "seeds", "exact_draws", "preset", "steps", "draws", "n_eval", "sizes", "threads",
              "family", "widths"}


@dataclass(frozen=True)
class Cell:
    """One unit of work: a method on one setting and seed, with its options."""

    method: str
    setting: dict
    seed: int
    options: dict = field(default_factory=dict)

    def config(self) -> dict:
        """The plain values that identify the cell: method, setting, seed and options."""
        return {"method": self.method, "setting": self.setting, "seed": self.seed, "options": self.options}

    def key(self) -> str:
        """The cell's store key: :func:`config_key` of :meth:`config`."""
        return config_key("cell", self.config())

    def label(self) -> str:
        """A short human label: method, the data model (other than the isotropic mixture) or ``d``,
        ``K``, ``N`` and seed."""
        s = self.setting
        data = s.get("data")
        where = f"data={data}" if data and data != "isotropic" else f"d={s.get('d')}"
        return f"{self.method} {where} K={s.get('K')} N={s.get('N')} seed={self.seed}"


@dataclass(frozen=True)
class Study:
    """A parsed study file."""

    name: str
    config: dict
    cells: tuple[Cell, ...]

    @property
    def fingerprint(self) -> str:
        """A key naming the study's whole configuration: :func:`config_key` of ``config``."""
        return config_key("study", self.config)


#: Largest study file read (a study is a few lines of TOML).
MAX_STUDY_BYTES = 1 << 20
#: Keys of the ``[study]`` table.
_STUDY_KEYS = {"name"}
#: A study's name names its store file: letters, digits, ``-``, ``_`` and ``.``, not starting with ``.``.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
#: Integer options of a part: the most each may be (``threads``: the CPUs this process may use).
_PART_LIMITS = {"steps": 100_000_000, "draws": 10_000, "exact_draws": 10_000, "n_eval": 1_000_000}


def load_study(path: str | Path, check_plans: bool = True) -> Study:
    """Parse and check a study file; every cell's setting is validated before anything runs.

    Whatever is wrong with the file — missing, a directory, unreadable, larger than
    :data:`MAX_STUDY_BYTES`, not UTF-8, not TOML, nested too deeply, or a study that does not
    check — is one ValueError that names the file. ``check_plans``: see :func:`parse_study`."""
    path = Path(path)
    where = f"study file {str(path)!r}"
    data = parse_toml(read_text(path, where, MAX_STUDY_BYTES), where)
    try:
        return parse_study(data, default_name=path.stem, check_plans=check_plans)
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply (arrays or tables inside one another)") from None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def check_study_name(name, where: str = "study name") -> str:
    """``name`` if it is a plain file name (it names the store ``memcross-runs/NAME.sqlite``):
    1 to 100 letters, digits, ``-``, ``_`` or ``.``, not starting with ``.``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where} must be a plain file name (1-100 letters, digits, '-', '_' or '.', not starting "
                         f"with '.'; it names the store file), got {name!r}")
    return name


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else ``os.cpu_count()``."""
    return available_cpus()


def _table(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a table, got {_kind(value)} {_show(value)}")
    return value


def _kind(value) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _scalar_fields(fields: dict, what: str) -> None:
    """Setting values are strings or numbers (never arrays, tables or booleans)."""
    for k, v in fields.items():
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError(f"{what} field {k!r} must be a string or a number, got {_kind(v)} {_show(v)}")


def _positive(part: dict, key: str, where: str, high: int, why: str = "") -> None:
    if key in part:
        check_int(part[key], f"{where}: {key}", 1, high, why=why)


def parse_study(data: dict, default_name: str = "study", check_plans: bool = True) -> Study:
    """Check a parsed study (a dict, as from TOML) and build its cells. Every mistake is a
    ValueError naming the table and key: unknown tables or keys, values of the wrong type, names
    that are not plain file names, integer options out of range (``threads`` at most
    :func:`usable_cpus`), seeds outside ``[0, 2**63)``, settings that do not check, and, with
    ``check_plans``, for ``validate`` cells anything :func:`~memcross.validation.sweep.plan_from`
    refuses (that needs the validation extra; a report, which only reads the store, goes without)."""

    _table(data, "study")
    unknown = set(data) - {"study", "setting", "part"}
    if unknown:
        raise ValueError(f"study: unknown table(s) {', '.join(sorted(unknown))}; allowed: study, setting, part")
    head = _table(data.get("study", {}), "[study]")
    bad = set(head) - _STUDY_KEYS
    if bad:
        raise ValueError(f"[study]: unknown key(s) {', '.join(sorted(map(str, bad)))}; allowed: "
                         f"{', '.join(sorted(_STUDY_KEYS))}")
    if "name" in head:
        name = check_study_name(head["name"], "[study] name")
    else:
        name = check_study_name(default_name, f"study name {default_name!r} (from the file name; set [study] name)")
    base = check_fields(Setting, _table(data.get("setting", {}), "[setting]"), "setting")
    _scalar_fields(base, "[setting]")
    parts = data.get("part", [])
    if not isinstance(parts, list):
        raise ValueError(f"part must be [[part]] tables (an array of tables), got {_kind(parts)} {_show(parts)}")
    if not parts:
        raise ValueError("study: no [[part]] tables; each part names methods and a grid")
    cpus = usable_cpus()
    cells = []
    for i, part in enumerate(parts):
        where = f"part {i + 1}"
        _table(part, where)
        bad = set(part) - _PART_KEYS
        if bad:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, bad)))}; "
                             f"allowed: {', '.join(sorted(_PART_KEYS))}")
        methods = part.get("methods", [])
        if (not isinstance(methods, list) or not methods
                or any(not isinstance(m, str) or m not in METHODS for m in methods)):
            raise ValueError(f"{where}: methods must be a non-empty list of {', '.join(METHODS)}, got {_show(methods)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"{where}: methods lists a method twice: {methods!r}")
        grid = _table(part.get("grid", {}), f"{where}: grid")
        check_fields(Setting, grid, f"{where} grid")
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise ValueError(f"{where}: grid field {k!r} needs a non-empty list of values")
            for x in v:
                _scalar_fields({k: x}, f"{where}: grid")
        seeds = part.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds:
            raise ValueError(f"{where}: seeds must be a non-empty list of integers, got {_show(seeds)}")
        for seed in seeds:
            check_seed(seed, f"{where}: each seed")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{where}: seeds lists a seed twice: {seeds!r}")
        for key, high in _PART_LIMITS.items():
            _positive(part, key, where, high)
        _positive(part, "threads", where, cpus, ", the CPUs this process may use")
        if "preset" in part:
            if not isinstance(part["preset"], str) or part["preset"] not in PRESETS:
                raise ValueError(f"{where}: unknown preset {_show(part['preset'])}; known presets: {', '.join(PRESETS)}")
        sizes = part.get("sizes", [])
        if not isinstance(sizes, list):
            raise ValueError(f"{where}: sizes must be a list of integers, got {_kind(sizes)} {_show(sizes)}")
        family = part.get("family")
        if family is not None and not isinstance(family, str):
            raise ValueError(f"{where}: family must be a name (gmm or mlp[:depth=D,embed=E]), got {_show(family)}")
        widths = part.get("widths")
        if widths is not None and (family in (None, "gmm") or not isinstance(widths, list) or "sizes" in part):
            raise ValueError(f"{where}: widths must be a list of integers and go with family = \"mlp\" "
                             "(instead of sizes)")
        fields = list(grid)
        for combo in itertools.product(*(grid[f] for f in fields)):
            setting = dict(base, **dict(zip(fields, combo)))
            try:
                checked = Setting.from_dict(setting)  # validate now, not in a worker
            except (TypeError, AttributeError) as exc:  # a value of a type the field cannot take
                raise ValueError(f"{where}: setting {setting} does not check ({exc})") from None
            bad_sizes = [M for M in sizes if isinstance(M, bool) or not (isinstance(M, int) and 1 <= M <= checked.N)]
            if "validate" in methods and bad_sizes:
                raise ValueError(f"{where}: sizes must be integers in [1, N] = [1, {checked.N}], got {bad_sizes}")
            for method in methods:
                # a prediction does not depend on the data seed: one cell per setting
                for seed in ([0] if method == "predict" else seeds):
                    cell = Cell(method, setting, int(seed), _options(method, part, checked.data_model.name))
                    if method == "validate" and check_plans:
                        _check_validate(cell, checked, where)
                    cells.append(cell)
    keys = [c.key() for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("study: some cells are declared twice (same method, setting, seed and options)")
    config = {"name": name, "setting": base, "part": parts}
    return Study(name, config, tuple(cells))


def _check_validate(cell: Cell, setting, where: str) -> None:
    """Build the cell's validation plan (as :func:`~memcross.studies.cells.run_cell` will) so that
    whatever it refuses is refused now. Memory is not checked here: the cell may run on another
    machine."""
    from memcross.validation.sweep import plan_from

    opts = cell.options
    try:
        plan_from(setting, opts.get("preset"), opts.get("widths", opts.get("sizes")), "cpu", cell.seed,
                  exact_draws=opts.get("exact_draws", 8), n_eval=opts.get("n_eval"), steps=opts.get("steps"),
                  draws=opts.get("draws"), family=opts.get("family"), check_memory=False)
    except ValueError as exc:
        msg = str(exc)
        for flag, key in _FLAG_KEYS.items():
            msg = msg.replace(flag, key)
        raise ValueError(f"{where}: {cell.label()}: {msg}") from None


#: ``memcross validate`` flags in plan messages, and the study keys that set them.
_FLAG_KEYS = {"--steps": "steps", "--draws": "draws", "--n-eval": "n_eval", "--exact-draws": "exact_draws",
              "--seed": "seed", "--sizes": "sizes", "--widths": "widths", "--family": "family"}


def _options(method: str, part: dict, data: str) -> dict:
    """A cell's options from its part; a ``validate`` cell's carry its preset's revision where the
    preset's content has changed since studies first keyed cells by its name
    (:data:`~memcross.validation.presets.REVISIONS`)."""
    threads = int(part.get("threads", 1))
    if method == "predict":
        return {"threads": threads}
    if method == "exact":
        return {"draws": int(part.get("exact_draws", 8)), "threads": threads}
    opts = {k: part[k] for k in ("preset", "steps", "draws", "n_eval", "sizes", "family", "widths") if k in part}
    opts.setdefault("preset", "quick")
    revision = preset_revision(opts["preset"], data, opts.get("family"))
    if revision > 1:  # the cells of presets never changed keep the keys they were stored under
        opts["preset_revision"] = revision
    opts["exact_draws"] = int(part.get("exact_draws", 8))
    opts["threads"] = threads
    return opts


def default_study_store(study: Study) -> Path:
    """The default store of a study: ``memcross-runs/<name>.sqlite``, relative to the working directory."""
    return Path("memcross-runs") / f"{study.name}.sqlite"


def cpu_count() -> int:
    """The CPUs this process may use (:func:`usable_cpus`)."""
    return usable_cpus()
