"""``memcross check``: does an expression equal one of the toolkit's quantities?"""

from __future__ import annotations

from memcross.cli.common import _add_setting_arguments, _setting_from, _verdict_dict


def _cmd_check(args) -> int:
    from memcross.theory.check import check_expression

    setting = _setting_from(args)
    values = {k: getattr(args, k) for k in ("s2", "C", "d", "N", "K") if getattr(args, k, None) is not None}
    if args.M is not None:
        values["M"] = args.M
    verdict = check_expression(args.expression, args.against, setting, values)
    if args.json:
        import json

        print(json.dumps({"expression": args.expression, "against": args.against, **_verdict_dict(verdict)}, indent=2))
    else:
        print(f"{args.expression} vs {args.against}: {verdict.describe()}")
    return 0 if verdict.equal else 1


def add_parser(sub) -> None:
    """Register ``memcross check`` with the subcommand parser ``sub``."""
    from memcross.theory.check import quantity_names

    p = sub.add_parser("check", help="does an expression equal the toolkit's quantity?")
    p.add_argument("expression", help="your expression (in t, d, s2, C, M, N, psi, ...)")
    p.add_argument("--against", required=True, choices=quantity_names(), metavar="QUANTITY",
                   help="one of: " + ", ".join(quantity_names()))
    p.add_argument("--M", dest="M", type=int, default=None, help="fix the model size M")
    p.add_argument("--json", action="store_true", help="the verdict as JSON")
    _add_setting_arguments(p)
    p.set_defaults(func=_cmd_check)
