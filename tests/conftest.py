"""Shared fixtures: compiling LaTeX output with pdflatex and reading how it fits the page; tests
marked ``needs_torch`` are skipped where torch is not installed."""

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest

OVERFULL = re.compile(r"Overfull \\([hv])box \(([\d.]+)pt too (?:wide|high)\)[^\n]*")
TEXT_SHOWN = re.compile(rb"\]\s*TJ|\)\s*Tj")


@dataclass
class Compiled:
    log: str
    pages: int
    overfull: list      # (box kind h/v, points, log line) over the tolerance
    blank_pages: list   # 1-based pages that show nothing but a page number
    warnings: list      # 'Float too large', 'Float(s) lost', 'too tall' lines

    def problems(self) -> list[str]:
        return ([f"overfull \\{k}box by {pt} pt: {line}" for k, pt, line in self.overfull]
                + [f"page {p} is blank" for p in self.blank_pages] + self.warnings)


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("torch") is not None:
        return
    skip = pytest.mark.skip(reason="needs torch: pip install 'memcross[validation]'")
    for item in items:
        if item.get_closest_marker("needs_torch"):
            item.add_marker(skip)


@pytest.fixture
def pdflatex(tmp_path):
    """``compile(source) -> Compiled``: runs pdflatex in a temporary folder (uncompressed, so that
    each page's text can be counted); skips the test where pdflatex is not installed."""
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: the LaTeX output is not compiled here")

    def compile_(source: str, name: str = "doc", tolerance: float = 1.0) -> Compiled:
        (tmp_path / f"{name}.tex").write_text(source)
        out = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"-jobname={name}",
             rf"\pdfcompresslevel=0 \pdfobjcompresslevel=0 \input{{{name}.tex}}"],
            cwd=tmp_path, capture_output=True, text=True, errors="replace", timeout=180)
        log = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert out.returncode == 0, log[-3000:]
        pdf = (tmp_path / f"{name}.pdf").read_bytes()
        streams = re.findall(rb"<<\s*/Length \d+\s*>>\s*stream\r?\n(.*?)endstream", pdf, re.S)
        page_texts = [s for s in streams if s.startswith(b"BT") or b" Tf " in s[:200]]
        pages = int(re.search(r"Output written on .*?\((\d+) pages?", log).group(1))
        overfull = [(m.group(1), float(m.group(2)), m.group(0)) for m in OVERFULL.finditer(log)
                    if float(m.group(2)) > tolerance]
        blank = [k + 1 for k, s in enumerate(page_texts) if len(TEXT_SHOWN.findall(s)) <= 1]
        warnings = [line for line in log.splitlines()
                    if "Float too large" in line or "Float(s) lost" in line or "too tall" in line]
        return Compiled(log, pages, overfull, blank, warnings)

    return compile_


# -- stored records as the sweep writes them -------------------------------------------------------
def _summary_dict(**changes) -> dict:
    """A sweep summary laid out as `memcross validate` stores it (kind ``summary``)."""
    summary = {"d": 30, "K": 4, "N": 100, "schedule": "vp", "time": "grid:0.001,0.999,26", "weighting": "x0-uniform",
               "data": "isotropic", "templates": None, "preset": "quick", "steps": 10, "draws": 10, "seed": 0,
               "predicted_c1": 0.66, "predicted_finite_d": 0.77, "exact": 0.79, "observed_start": 0.6,
               "observed_mid": 0.78, "observed_end": 0.9, "transition_note": None, "baseline_ratio": 0.0,
               "unconverged": "none", "sizes": "50,100", "gen_train_loss": 41.5, "mem_train_loss": 0.25,
               "gen_val_loss": 43.0}
    return {**summary, **changes}


def _size_dict(M: int, N: int = 100, ratio: float = 0.5, per_time: bool = True, templates_near_true=None,
               **changes) -> dict:
    """A trained size laid out as `memcross validate` stores it (kind ``size``); a study's validate
    cell keeps it without the per-time losses (``per_time=False``); coloured templates add
    ``templates_near_true``."""
    size = {"M": M, "M_over_N": M / N, "ratio": ratio, "ratio_low": max(0.0, ratio - 0.05),
            "ratio_high": min(1.0, ratio + 0.05), "samples": 200, "variance": 1e-6, "means_near_train": M,
            "means_near_true": 0,
            **({} if templates_near_true is None else {"templates_near_true": templates_near_true}),
            "train_loss": 7.5, "val_loss": 13.0,
            **({"train_loss_t": [1.0, 2.5], "val_loss_t": [1.5, 3.0]} if per_time else {}),
            "pmem_train_loss": 8.25, "pmem_val_loss": 12.5, "converged": True, "loss_fell": True,
            "variance_moved": True, "final_loss": 0.125, "steps_per_second": 250.0}
    return {**size, **changes}


@pytest.fixture
def stored():
    """``stored.summary(**changes)`` and ``stored.size(M, ...)``: records as the sweep stores them."""
    from types import SimpleNamespace

    return SimpleNamespace(summary=_summary_dict, size=_size_dict)


# -- running without torch -------------------------------------------------------------------------
#: Two ways to run without torch. ``none``: ``sys.modules['torch'] = None``, so that ``import
#: torch`` fails. ``missing``: an import hook that finds no torch, as on a machine without it.
#: scipy's array-API checks read ``sys.modules['torch']`` and fail on None, so under ``none``
#: whatever goes through them (finite-d predictions) fails for a reason of scipy's.
TORCH_BLOCKS = {
    "none": "import sys\nsys.modules['torch'] = None\n",
    "missing": ("import sys\n"
                "class NoTorch:\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name.split('.')[0] == 'torch':\n"
                "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
                "sys.meta_path.insert(0, NoTorch())\n"),
}


@pytest.fixture
def without_torch():
    """``without_torch(code, *args, block="missing", cwd=None)``: the finished subprocess that runs
    Python ``code`` (with ``args``) on this checkout's memcross, torch blocked by ``block`` (None:
    not blocked, to see that nothing imports it)."""
    import os
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}

    def run(code: str, *args, block: str = "missing", cwd=None):
        return subprocess.run([sys.executable, "-c", (TORCH_BLOCKS[block] if block else "") + code, *map(str, args)],
                              capture_output=True, text=True, timeout=600, cwd=cwd, env=env)

    return run


# -- the study tests' fixtures (a conftest per folder would clash with --doctest-modules) --
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
