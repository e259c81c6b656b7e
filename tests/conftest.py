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
