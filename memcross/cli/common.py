"""Pieces every command shares: the parser class, argument groups whose choices come from the registries,
the setting of a command line, output files and stores."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from memcross._checks import did_you_mean
from memcross.theory.datamodels import DEFAULT_DATA, data_model_names, parse_data_spec


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""

class _Parser(argparse.ArgumentParser):
    """One-line errors with a suggestion for a misspelt command or option; no abbreviations
    (``--schedul`` is not taken as ``--schedule``)."""

    def __init__(self, *args, allow_abbrev=False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)

    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}{self._suggestion(message)}")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            known = re.findall(r"'([^']*)'", choice.group(2)) or [c.strip() for c in choice.group(2).split(",")]
            return did_you_mean(choice.group(1), known)
        unknown = re.search(r"unrecognized arguments: (\S+)", message)
        if unknown and unknown.group(1).startswith("--"):
            options = [o for parser in self._all_parsers() for a in parser._actions for o in a.option_strings
                       if o.startswith("--")]
            return did_you_mean(unknown.group(1).split("=")[0], options)
        return ""

    def _all_parsers(self):
        """This parser and its subcommands' (an unknown option is reported by the top parser)."""
        yield self
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    yield from parser._all_parsers()

def _add_setting_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("setting")
    g.add_argument("--schedule", default=None, help="vp (default), vp-cosine, vp-linear, ve, flow, custom")
    g.add_argument("--alpha", default=None, help="custom schedule: alpha_t as an expression in t")
    g.add_argument("--sigma", default=None, help="custom schedule: sigma_t as an expression in t")
    g.add_argument("--t-max", default=None, help="custom schedule: end of its time range (default 1)")
    g.add_argument("--time", default=None,
                   help="grid:START,STOP,COUNT | points:T1,... | interval:T_MIN,T_MAX (default grid:0.001,0.999,26)")
    g.add_argument("--weighting", default=None,
                   help="x0-uniform (default), eps-uniform, ..., uniform, elbo, min-snr[:gamma=G], edm[:sd=S], "
                        "sigmoid[:b=B], custom")
    g.add_argument("--weight-expr", default=None, help="custom weighting: expression in t (may use psi, alpha, sigma)")
    g.add_argument("--target", default=None, help="network parameterization: x0 (default), eps, score, velocity, v")
    g.add_argument("--s2", default=None, help="per-coordinate component variance (default 1)")
    g.add_argument("--C", dest="C", default=None, help="coefficient of the partial memorizer's excess (default 1)")
    g.add_argument("--dim", dest="d", type=int, default=None, help="dimension d (default 50)")
    g.add_argument("--components", dest="K", type=int, default=None, help="mixture components K (default 12)")
    g.add_argument("--train", dest="N", type=int, default=None, help="training-set size N (default 200)")

_SETTING_FIELDS = ("schedule", "alpha", "sigma", "t_max", "time", "weighting", "weight_expr", "target",
                   "s2", "C", "d", "K", "N")

def _setting_fields(args) -> dict:
    """The setting fields given on the command line, with the data model (``--data``,
    ``--templates``, ``--sc2``) where the command has one."""
    fields = {k: getattr(args, k) for k in _SETTING_FIELDS if getattr(args, k, None) is not None}
    if hasattr(args, "data") and _data_spec(args) != DEFAULT_DATA:
        fields["data"] = _data_spec(args)
    return fields

def _with_data_defaults(fields: dict) -> dict:
    """``fields`` with the data model's own defaults for fields not given (the paper's K = 6,
    N = 100 for coloured templates)."""
    if fields.get("data", DEFAULT_DATA) == DEFAULT_DATA:
        return fields
    cls, _ = parse_data_spec(fields["data"])
    return {**cls.setting_defaults, **fields}

def _setting_from(args):
    return _setting_from_dict(_with_data_defaults(_setting_fields(args)))

def _data_spec(args) -> str:
    """``--data`` with ``--templates`` and ``--sc2`` folded in: ``colored-templates:templates=digits,sc2=2``.
    A template spec's own parameters (``blobs:side=15,seed=3``) become the data model's."""
    spec = args.data
    extra = []
    if args.templates is not None:
        name, _, params = args.templates.partition(":")
        extra.append(f"templates={args.templates}" if name == "file" else
                     ",".join([f"templates={name}", *filter(None, params.split(","))]))
    if args.sc2 is not None:
        extra.append(f"sc2={args.sc2}")
    if not extra:
        return spec
    cls, params = parse_data_spec(spec)
    for flag, key in (("--templates", "templates"), ("--sc2", "sc2")):
        if getattr(args, key) is not None and key not in cls.parameters:
            raise UsageError(f"{flag} is only used with --data colored-templates, not {cls.name!r}")
        if getattr(args, key) is not None and key in params:
            raise UsageError(f"{flag} and --data {spec!r} both set {key}; give it once")
    return spec + (",".join(["", *extra]) if ":" in spec else ":" + ",".join(extra))

def _write_or_print(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    path = output_path(output, "--output")
    try:
        path.write_text(text + "\n")
    except OSError as exc:
        raise UsageError(f"--output {output!r}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {path}")

def output_path(output: str, flag: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """``output`` as a path to write, checked before any work: its folder exists, it is not a
    folder itself, and (for figures) it ends in one of ``suffixes``."""
    path = Path(output)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UsageError(f"{flag} must end in {', '.join(suffixes)}, got {output!r}")
    if path.is_dir():
        raise UsageError(f"{flag} {output!r} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag}: folder {str(path.parent)!r} does not exist")
    if (path.exists() and not os.access(path, os.W_OK)) or not os.access(path.parent, os.W_OK):
        raise UsageError(f"{flag} {output!r}: not writable")
    return path

_INT_FIELDS = ("d", "K", "N")

def _load_config(path: str) -> dict:
    from memcross._checks import parse_toml, read_text

    data = parse_toml(read_text(path, f"--config: file {path!r}"), f"--config: {path!r}")
    setting = data.get("setting", {})
    if not isinstance(setting, dict):
        raise UsageError(f"--config: {path!r}: [setting] must be a table of setting fields")
    data = dict(setting, **{k: v for k, v in data.items() if k != "setting"})
    return data

def _setting_from_dict(data: dict):
    from memcross.theory.setting import Setting

    data = dict(data)
    if (data.get("alpha") or data.get("sigma")) and "schedule" not in data:
        data["schedule"] = "custom"
    if data.get("weight_expr") and "weighting" not in data:
        data["weighting"] = "custom"
    return Setting.from_dict(data)

def _parse_sizes(text: str | None, N: int, flag: str = "--sizes"):
    """``10,20,30`` or ``START:STOP:STEP`` (inclusive); None for the default grid."""
    if text is None:
        return None
    try:
        if ":" in text:
            start, stop, step = (int(v) for v in text.split(":"))
            if step < 1:
                raise ValueError
            return list(range(start, stop + 1, step))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected M1,M2,... or START:STOP:STEP with positive integers") from None


def _open_store(args, required: bool = False):
    """The store of ``--store`` (default under ./memcross-runs/); with ``--no-store``, None, or a
    throw-away store in a temporary folder when the command needs one."""
    import tempfile

    from memcross.store import Store, default_store_path

    if getattr(args, "no_store", False):
        if args.store:
            raise UsageError("give --store FILE or --no-store, not both")
        return Store(Path(tempfile.mkdtemp(prefix="memcross-")) / "run.sqlite") if required else None
    return Store(args.store or default_store_path())

def _add_data_arguments(p) -> None:
    g = p.add_argument_group("data model")
    g.add_argument("--data", default=DEFAULT_DATA, type=_checked_data,
                   help=f"data model NAME[:key=value,...]: {', '.join(data_model_names())} (default isotropic; "
                        "colored-templates: docs/images.md)")
    g.add_argument("--templates", default=None,
                   help="coloured templates: blobs[:side=15,sparsity=0.3,seed=0] (default), digits[:side=15] "
                        "(needs scikit-learn), file:PATH.npy")
    g.add_argument("--sc2", type=float, default=None, help="coloured templates: colour variance (default 1)")

def _checked_data(spec: str) -> str:
    """``--data``: a registered data model with valid parameter names (values are checked with the setting)."""
    try:
        parse_data_spec(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return spec

def _add_store_arguments(p) -> None:
    p.add_argument("--store", default=None, help="study store (SQLite; default ./memcross-runs/memcross.sqlite)")
    p.add_argument("--no-store", action="store_true", help="do not read or write a store")

def _add_threads_argument(p) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: the CPUs this process may use, less the load average; "
                        "at least 1)")

def _set_threads(args) -> int:
    """Apply ``--threads`` (checked) or the default that does not oversubscribe the machine."""
    import torch

    from memcross._checks import check_threads, default_threads

    n = default_threads() if args.threads is None else check_threads(args.threads)
    torch.set_num_threads(n)
    return n

class _Given(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        setattr(namespace, self.dest + "_given", True)


FIGURE_SUFFIXES = (".pdf", ".png", ".svg")


def _verdict_dict(verdict) -> dict:
    """A comparison's verdict as plain JSON values."""
    import sympy as sp

    def number(v):
        return None if v is None else str(sp.N(v, 15))

    return {"equal": verdict.equal, "method": verdict.method, "detail": verdict.detail,
            "description": verdict.describe(), "point": {str(k): number(v) for k, v in verdict.point.items()},
            "left": number(verdict.left), "right": number(verdict.right)}
