"""The batch report's formats: ``zhbench batch report --format``'s choices, each with its writer (in
``report.py``, imported only when a report is written) and the suffixes of ``-o`` that choose it."""

from __future__ import annotations

from typing import Any

from zhbench.workbench.session.output_formats import OutputFormat, writer_in

_REPORT = "zhbench.workbench.session.batch.report"

#: each writer takes a ``report.BatchReport`` (named here by no import: ``report.py`` reads this table)
REPORT_FORMATS: dict[str, OutputFormat[Any]] = {
    "md": OutputFormat(writer_in(_REPORT, "report_markdown"), (".md",), "Markdown"),
    "html": OutputFormat(writer_in(_REPORT, "report_html"), (".html", ".htm"), "one self-contained HTML page"),
    "json": OutputFormat(writer_in(_REPORT, "report_json_text"), (".json",), "JSON"),
}
