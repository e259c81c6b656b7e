"""``memcross derive``: the derivation of M*/N for a setting, as text, LaTeX or JSON, optionally verified."""

from __future__ import annotations

from memcross.cli.common import UsageError, _add_setting_arguments, _setting_from, _verdict_dict, _write_or_print


def _cmd_derive(args) -> int:
    from memcross.theory.derivation import derive

    derivation = derive(_setting_from(args))
    report = derivation.verify() if args.verify else None
    status = 0 if report is None or report.ok else 1
    if args.json:
        import json

        _write_or_print(json.dumps(_derivation_dict(derivation, report), indent=2), args.output)
        return status
    if args.standalone and not args.latex:
        raise UsageError("--standalone needs --latex")
    if args.latex:
        text = derivation.latex_document() if args.standalone else derivation.latex()
    else:
        text = derivation.text()
    if report is not None:
        text += "\n\n" + (("% " + report.describe().replace("\n", "\n% ")) if args.latex else report.describe())
    _write_or_print(text, args.output)
    return status

def _derivation_dict(derivation, report) -> dict:
    """A derivation (and its verification) as plain JSON values."""
    from memcross.theory.derivation import _is_exact_number, show_text

    result = derivation.result
    out = {
        "setting": derivation.setting.to_dict(),
        "steps": [{"name": s.name, "lhs": show_text(s.lhs), "rhs": show_text(s.rhs), "reason": s.reason}
                  for s in derivation.steps],
        "result": None if result is None else show_text(result),
        "value": float(result) if _is_exact_number(result) else None,
    }
    if report is not None:
        out["verification"] = {"ok": report.ok, "failed_step": report.failed_step,
                               "steps": [{"name": name, **_verdict_dict(v)} for name, v in report.verdicts]}
    return out


def add_parser(sub) -> None:
    """Register ``memcross derive`` with the subcommand parser ``sub``."""
    p = sub.add_parser("derive", help="print the derivation of M*/N for a setting")
    _add_setting_arguments(p)
    p.add_argument("--latex", action="store_true", help="LaTeX align block instead of plain text")
    p.add_argument("--verify", action="store_true", help="also verify every step (exit 1 if one fails)")
    p.add_argument("--output", default=None, help="write to FILE instead of printing")
    p.add_argument("--standalone", action="store_true",
                   help="with --latex: a compilable LaTeX document (article + amsmath)")
    p.add_argument("--json", action="store_true", help="the steps (and verification) as JSON")
    p.set_defaults(func=_cmd_derive)
