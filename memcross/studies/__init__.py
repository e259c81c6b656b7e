"""memcross.studies: declared grids of cells (predict / exact / validate), run resumably, reported.

* :mod:`~memcross.studies.spec` — the study file: :class:`Study`, :class:`Cell`, :func:`load_study`;
* :mod:`~memcross.studies.cells` — the registry of cell methods and :func:`run_cell`;
* :mod:`~memcross.studies.executors` — :func:`run_study` in-process, on processes or on Dask;
* :mod:`~memcross.studies.report` — :func:`study_rows`, :func:`error_rows`, :func:`render_report`.

Importing this package imports no torch; ``exact`` and ``validate`` cells load the validation layer
when they run, and a report only reads the store.
"""

from memcross.studies.cells import CELL_METHODS, run_cell
from memcross.studies.executors import (
    CONNECT_TIMEOUT,
    WORKERS_PER_CPU,
    RunSummary,
    check_workers,
    claim_store,
    max_workers,
    run_study,
)
from memcross.studies.report import REPORT_COLUMNS, error_rows, render_report, study_rows
from memcross.studies.spec import (
    MAX_STUDY_BYTES,
    METHODS,
    Cell,
    Study,
    check_study_name,
    default_study_store,
    load_study,
    parse_study,
    usable_cpus,
)

__all__ = [
    "CELL_METHODS", "CONNECT_TIMEOUT", "MAX_STUDY_BYTES", "METHODS", "REPORT_COLUMNS", "WORKERS_PER_CPU", "Cell",
    "RunSummary", "Study", "check_study_name", "check_workers", "claim_store", "default_study_store", "error_rows",
    "load_study", "max_workers", "parse_study", "render_report", "run_cell", "run_study", "study_rows",
    "usable_cpus",
]
