import shutil
import subprocess

import pytest

from memcross.numerics import plots, predict
from memcross.numerics.tables import latex_document, render_table
from memcross.theory import Setting

SCHEDULES = ["vp", "vp-cosine", "vp-linear", "ve", "flow"]
WEIGHTINGS = ["x0-uniform", "eps-uniform", "elbo", "min-snr:gamma=5"]


@pytest.fixture(scope="module")
def paper_rows():
    return [predict(Setting(schedule=s, weighting=w), method=m).row()
            for s in SCHEDULES for w in WEIGHTINGS for m in ("asymptotic", "finite-d")]


def test_latex_table_structure_and_escaping(paper_rows):
    rows = paper_rows + [{"schedule": "a_b & c%", "weighting": "x#y", "method": "m", "value": 0.5}]
    text = render_table(rows, ["schedule", "weighting", "method", "value"], "latex",
                        caption="M*/N & friends_", label="tab:paper", digits=5, siunitx=True)
    assert "\\toprule" in text and "\\midrule" in text and "\\bottomrule" in text
    assert "a\\_b \\& c\\%" in text and "x\\#y" in text
    assert "\\caption{M*/N \\& friends\\_}" in text
    assert "{lllS}" in text
    assert text.count("\\\\\n") == len(rows) + 1
    assert "0.66036" in text


def test_csv_and_markdown(paper_rows):
    csv_text = render_table(paper_rows, ["schedule", "weighting", "method", "value"], "csv")
    lines = csv_text.splitlines()
    assert lines[0] == "schedule,weighting,method,value" and len(lines) == 41
    md = render_table(paper_rows[:2], ["schedule", "value"], "markdown", digits=6)
    assert md.splitlines()[2] == "| vp | 0.66036 |"


def test_bad_table_input(paper_rows):
    with pytest.raises(ValueError, match="unknown column"):
        render_table(paper_rows, ["nope"])
    with pytest.raises(ValueError, match="known formats"):
        render_table(paper_rows, fmt="html")
    with pytest.raises(ValueError, match="label"):
        render_table(paper_rows, label="bad label{}")
    with pytest.raises(ValueError, match="no records"):
        render_table([])


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_paper_table_compiles(paper_rows, tmp_path):
    table = render_table(paper_rows, ["schedule", "weighting", "method", "value", "coefficient"], "latex",
                         caption="Critical ratio, paper setting", label="tab:paper", siunitx=True)
    (tmp_path / "t.tex").write_text(latex_document(table, siunitx=True))
    out = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:]
    assert (tmp_path / "t.pdf").exists()


def test_figures_written(tmp_path):
    for name, call in [
        ("per_time.png", lambda p: plots.per_time_figure(Setting(), p)),
        ("phase.pdf", lambda p: plots.phase_figure(Setting(), p)),
        ("coefficient.png", lambda p: plots.coefficient_figure(p, dims=(30, 50), K=4, N=100)),
    ]:
        path = call(tmp_path / name)
        assert path.exists() and path.stat().st_size > 1000
    with pytest.raises(ValueError, match="must end in"):
        plots.phase_figure(Setting(), tmp_path / "x.txt")
