import pytest

from memcross.cli import SIZE_COLUMNS, SUMMARY_COLUMNS
from memcross.numerics import plots, predict
from memcross.numerics.tables import latex_document, latex_packages, render_table
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


def _store_rows():
    """Rows shaped like `memcross table --store` gives them (sweep summaries, per-size results)."""
    summary = [dict(d=50, K=12, N=200, preset="paper", predicted_c1=0.66035964, predicted_finite_d=0.7691,
                    predicted_finite_snr=0.7956, exact=0.7925,
                    observed_start=0.3, observed_mid=0.5903, observed_end=1.0, baseline_ratio=0.05,
                    unconverged="10,20,30,40,50,60,70,80,90,100")] * 3
    sizes = [dict(data="colored-templates:digits", d=None, K=6, N=100, M=m, M_over_N=m / 100, ratio=0.05 * k,
                  ratio_low=0.025 * k, ratio_high=0.08 * k, variance=1.085e-2 / (k + 1), means_near_train=m - 1,
                  means_near_true=1, templates_near_true=2, train_loss=7.886, val_loss=13.02, pmem_train_loss=8.24,
                  converged=k % 2 == 0) for k, m in enumerate(range(10, 101, 10))]
    return summary, ["data", "d", "K", "N", *SIZE_COLUMNS[:7], "templates_near_true", *SIZE_COLUMNS[7:]], sizes


def test_latex_table_layout(paper_rows):
    text = render_table(paper_rows[:3], ["schedule", "weighting", "method", "value", "notes"], "latex")
    assert "\\begin{tabularx}{\\linewidth}{lllr>{\\raggedright\\arraybackslash}X}" in text  # notes wrap
    assert latex_packages(text) == ["booktabs", "array", "tabularx"]
    text = render_table(paper_rows, ["schedule", "weighting", "method", "value", "notes"], "latex")
    assert "\\begin{longtable}" in text and "\\endhead" in text  # 40 rows of notes: breaks across pages
    text = render_table(paper_rows, None, "latex")  # the default columns: a smaller font
    assert "\\footnotesize" in text and "tabularx" not in text and "resizebox" not in text
    summary, columns, _ = _store_rows()
    text = render_table(summary, SUMMARY_COLUMNS, "latex")
    assert "\\begin{tabular}[b]{@{}r@{}}predicted\\_\\\\finite\\_d\\end{tabular}" in text  # stacked header
    assert "\\resizebox{\\ifdim\\width>\\linewidth" in text and latex_packages(text) == ["booktabs", "graphicx"]


def test_documented_tables_compile_within_the_margins(paper_rows, pdflatex):
    """Every table the docs show or name, and the wide ones, compile with no overfull box."""
    summary, size_columns, sizes = _store_rows()
    tables = [
        # docs/tables.md: the LaTeX example, and the markdown example's columns
        dict(columns=["schedule", "weighting", "method", "value"], caption="Critical ratio M*/N, paper setting",
             label="tab:paper", siunitx=True),
        dict(columns=["schedule", "weighting", "method", "value", "coefficient"], siunitx=True),
        dict(columns=None),                                         # the default columns
        dict(columns=None, siunitx=True),
        dict(columns=["value", "M_star", "coefficient", "error", "uncollapsed_weight", "max_point_weight", "dps", "d"],
             siunitx=True),                                         # eight S columns
        dict(rows=paper_rows[:3], columns=["schedule", "weighting", "method", "value", "notes"], caption="Notes"),
        dict(columns=["schedule", "weighting", "method", "value", "notes"]),  # long notes on several pages
        # docs/cli.md, docs/validation.md: `memcross table --store FILE [--kind summary|sizes]`
        dict(rows=summary, columns=SUMMARY_COLUMNS),
        dict(rows=sizes, columns=size_columns, siunitx=True),
        dict(rows=sizes * 8, columns=size_columns),                 # too wide and too long: a float per page
    ]
    for k, spec in enumerate(tables):
        rows, si = spec.pop("rows", paper_rows), spec.get("siunitx", False)
        table = render_table(rows, spec.pop("columns"), "latex", **spec)
        result = pdflatex(latex_document(table, siunitx=si), name=f"table{k}")
        assert not result.problems(), (k, result.problems())


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
