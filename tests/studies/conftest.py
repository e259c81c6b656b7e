"""Shared fixtures of the study tests: a tiny study, and the command line run in-process."""

import pytest


@pytest.fixture
def tiny_study() -> dict:
    """Two settings x two sizes of N, predicted and exact (one draw) for two seeds."""
    return {
        "study": {"name": "tiny"},
        "part": [{"methods": ["predict", "exact"], "grid": {"d": [8, 12], "K": [2], "N": [16, 24]}, "seeds": [0, 1],
                  "exact_draws": 1}],
    }


@pytest.fixture
def cli(capsys):
    """``cli(*args) -> (exit code, stderr)`` of ``memcross ARGS`` run in this process."""
    from memcross.cli import main

    def run(*args):
        rc = main([str(a) for a in args])
        return rc, capsys.readouterr().err

    return run
