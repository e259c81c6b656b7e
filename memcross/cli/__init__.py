"""The ``memcross`` command: parses arguments, calls a layer, prints. No math here.

One module per command (``derive``, ``predict``, ``table``, ``plot``, ``exact``, ``validate``,
``study``, ``list``, ``check``), each with ``add_parser(sub)`` and its ``_cmd_*`` function;
:mod:`memcross.cli.common` holds the argument groups they share.

Exit codes: 0 success; 1 ``check`` found a mismatch (or ``derive --verify`` a failing step);
2 bad input, reported on one line.
"""

from __future__ import annotations

import argparse
import os
import sys

from memcross import __version__
from memcross.cli import check, derive, exact, listing, plot, predict, study, table, validate
from memcross.cli.common import UsageError, _Parser
from memcross.cli.table import SIZE_COLUMNS, SUMMARY_COLUMNS

#: The command modules, in the order ``memcross --help`` lists them.
COMMANDS = (derive, predict, table, plot, exact, validate, study, listing, check)

__all__ = ["COMMANDS", "SIZE_COLUMNS", "SUMMARY_COLUMNS", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``memcross`` parser: one subcommand per module of :data:`COMMANDS`, in that order."""
    parser = _Parser(prog="memcross", description="Predict, derive and verify the memorization crossover.")
    parser.add_argument("--version", action="version", version=f"memcross {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser

_EXTRAS = {"torch": "validation", "sklearn": "images", "dask": "scale", "distributed": "scale"}

def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``memcross`` console script: 0 success, 1 a failed check or verification,
    2 a user mistake (one line on stderr), 130 interrupted."""
    from memcross.theory.parser import ExpressionError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        return args.func(args)
    except UsageError as exc:
        return _fail(str(exc).removeprefix("memcross: "))
    except (ValueError, ExpressionError) as exc:
        return _fail(str(exc))
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in _EXTRAS:
            raise
        extra = _EXTRAS[root]
        return _fail(f"this command needs the {extra!r} extra ({root} is not installed): "
                     f"pip install 'memcross[{extra}]'")
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("memcross: interrupted", file=sys.stderr)
        return 130

def _fail(message: str) -> int:
    print(f"memcross: error: {message}", file=sys.stderr)
    return 2
