"""Helpers for the CLI tests: most commands run in-process through ``main([...])``."""

import io
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace


def call(*args, timeout=None):
    """``main(args)`` in this process, with the output a subprocess run would give."""
    from memcross.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in args])
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())
