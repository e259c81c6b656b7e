"""The ``memcross`` command: parses arguments, calls a layer, prints. No math here.

Exit codes: 0 success; 1 ``check`` found a mismatch (or ``derive --verify`` a failing step);
2 bad input, reported on one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memcross import __version__


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        raise UsageError(f"{self.prog}: {message}")


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


def _setting_from(args):
    from memcross.theory.setting import Setting

    given = {k: getattr(args, k) for k in _SETTING_FIELDS if getattr(args, k, None) is not None}
    if (given.get("alpha") or given.get("sigma")) and "schedule" not in given:
        given["schedule"] = "custom"
    if given.get("weight_expr") and "weighting" not in given:
        given["weighting"] = "custom"
    return Setting.from_dict(given)


def _write_or_print(text: str, output: str | None) -> None:
    if output is None:
        print(text)
        return
    path = Path(output)
    if not path.parent.exists():
        raise UsageError(f"--output: folder {str(path.parent)!r} does not exist")
    path.write_text(text + "\n")
    print(f"wrote {path}")


def _cmd_derive(args) -> int:
    from memcross.theory.derivation import derive

    derivation = derive(_setting_from(args))
    text = derivation.latex() if args.latex else derivation.text()
    status = 0
    if args.verify:
        report = derivation.verify()
        text += "\n\n" + (("% " + report.describe().replace("\n", "\n% ")) if args.latex else report.describe())
        status = 0 if report.ok else 1
    _write_or_print(text, args.output)
    return status


def _cmd_check(args) -> int:
    from memcross.theory.check import check_expression

    setting = _setting_from(args)
    values = {k: getattr(args, k) for k in ("s2", "C", "d", "N", "K") if getattr(args, k, None) is not None}
    if args.M is not None:
        values["M"] = args.M
    verdict = check_expression(args.expression, args.against, setting, values)
    print(f"{args.expression} vs {args.against}: {verdict.describe()}")
    return 0 if verdict.equal else 1


def build_parser() -> argparse.ArgumentParser:
    from memcross.theory.check import quantity_names

    parser = _Parser(prog="memcross", description="Predict, derive and verify the memorization crossover.")
    parser.add_argument("--version", action="version", version=f"memcross {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("derive", help="print the derivation of M*/N for a setting")
    _add_setting_arguments(p)
    p.add_argument("--latex", action="store_true", help="LaTeX align block instead of plain text")
    p.add_argument("--verify", action="store_true", help="also verify every step (exit 1 if one fails)")
    p.add_argument("--output", default=None, help="write to FILE instead of printing")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("check", help="does an expression equal the toolkit's quantity?")
    p.add_argument("expression", help="your expression (in t, d, s2, C, M, N, psi, ...)")
    p.add_argument("--against", required=True, choices=quantity_names(), metavar="QUANTITY",
                   help="one of: " + ", ".join(quantity_names()))
    p.add_argument("--M", dest="M", type=int, default=None, help="fix the model size M")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memcross`` console script."""
    from memcross.theory.parser import ExpressionError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except UsageError as exc:
        print(f"memcross: error: {str(exc).removeprefix('memcross: ')}", file=sys.stderr)
        return 2
    except (ValueError, ExpressionError, KeyError, TypeError) as exc:
        print(f"memcross: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("memcross: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
