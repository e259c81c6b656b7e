"""Every `$ memcross ...` example in README.md and docs/*.md prints the numbers the page shows.

Each console block is replayed in a scratch folder (with ``studies/`` of this checkout beside it):
its commands run in order through a shell (pipes included), and the numbers of each command's
documented output are compared with the numbers it prints now. Runs that take many minutes
(``validate``, a whole ``study run``) are listed in :data:`LONG` and skipped unless
``MEMCROSS_DOCS_ALL=1``. Run standalone for a report: ``python tests/test_documented_numbers.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Documented commands that take many minutes (trained sweeps, the paper study).
LONG = ("memcross validate", "memcross study run", "memcross study report")
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[+-]?\d+)?|(?<![\w.])\d+(?:e[+-]?\d+)?(?![\w.])")


def blocks(page: Path) -> list[list[tuple[str, str]]]:
    """The console blocks of ``page``: each a list of ``(command, documented output)``."""
    out = []
    for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.S):
        runs: list[tuple[str, list[str]]] = []
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("$ "):
                command = line[2:]
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1] + " " + lines[i].strip()
                runs.append((command, []))
            elif runs:
                runs[-1][1].append(line)
            i += 1
        out.append([(c, "\n".join(o)) for c, o in runs])
    return out


def numbers(text: str) -> list[str]:
    """The numbers of ``text`` in order, paths and store names left out."""
    text = re.sub(r"\S*/\S*\.(sqlite|json|png|pdf|svg|csv|md)\b", "", text)
    return NUMBER.findall(text)


def _shown(documented: str, got: list[str]) -> bool:
    """Whether the documented output's numbers are what was printed. Lines of ``...`` (or ``|...|``
    table rows) elide: each piece between them must appear in order, without gaps inside it."""
    pieces = re.split(r"^\s*\|?\s*\.\.\.[\s|.]*$", documented, flags=re.M)
    wants = [numbers(p) for p in pieces]
    if len(wants) == 1:
        return wants[0] == got
    at = 0
    for k, want in enumerate(wants):
        if not want:
            continue
        starts = [i for i in range(at, len(got) - len(want) + 1) if got[i:i + len(want)] == want]
        if not starts or (k == 0 and starts[0] != 0):
            return False
        at = starts[0] + len(want)
    return not wants[-1] or at == len(got) or documented.rstrip().endswith("...")


def cases():
    for page in PAGES:
        for k, block in enumerate(blocks(page)):
            if any(c.startswith("memcross") for c, _ in block):
                yield pytest.param(page, block, id=f"{page.name}-{k}")


def replay(block, tmp: Path) -> list[str]:
    """Run the block's commands in ``tmp``; return the mismatches (empty: all numbers agree)."""
    (tmp / "studies").exists() or shutil.copytree(ROOT / "studies", tmp / "studies")
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "memcross").write_text(f"#!/bin/sh\nexec {sys.executable} -m memcross \"$@\"\n")
    (bin_dir / "memcross").chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    problems = []
    for command, documented in block:
        if command.startswith(LONG) and not os.environ.get("MEMCROSS_DOCS_ALL"):
            continue
        done = subprocess.run(command, shell=True, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        printed = done.stdout + done.stderr
        got = numbers(printed)
        if not _shown(documented, got):
            problems.append(f"$ {command}\n  documented: {numbers(documented)}\n  printed:    {got}")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize(("page", "block"), list(cases()))
def test_documented_commands_print_the_documented_numbers(page, block, tmp_path):
    pytest.importorskip("torch")
    problems = replay(block, tmp_path)
    assert not problems, "\n".join(problems)


if __name__ == "__main__":
    import tempfile

    failures = 0
    for param in cases():
        page, block = param.values
        with tempfile.TemporaryDirectory() as tmp:
            problems = replay(block, Path(tmp))
        status = "ok" if not problems else "DIFFERS"
        failures += bool(problems)
        print(f"{param.id}: {status}" + ("".join("\n  " + p for p in problems)))
    sys.exit(1 if failures else 0)
