"""The data-quality report for ops: one static HTML page that works offline.

Counts, rates and rule names only; never a patient-level value.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import fs, lake
from jobs.config import Settings
from jobs.contracts import gold_contracts

log = logging.getLogger(__name__)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#1d1d1f;max-width:70rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
th{background:#f3f3f3}.pass{color:#0a6b2d;font-weight:600}.fail{color:#b00020;font-weight:600}
.warn{color:#8a5a00;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def _table(headers: list[str], rows: list[list], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            if isinstance(value, tuple):  # (text, css class)
                cells.append(f'<td class="{value[1]}">{html.escape(str(value[0]))}</td>')
            else:
                text = "" if value is None else str(value)
                cells.append(
                    f'<td class="num">{html.escape(text)}</td>' if i in numeric else f"<td>{html.escape(text)}</td>"
                )
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        return "<p>None.</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _status(ok: bool, fail_word: str = "FAIL", css: str = "fail") -> tuple[str, str]:
    return ("PASS", "pass") if ok else (fail_word, css)


def build_report(spark: SparkSession, settings: Settings, run_id: str) -> str:
    sections = []

    manifest_path = settings.table("ops", "landing_manifest")
    if lake.table_exists(spark, manifest_path):
        files = lake.read(spark, manifest_path).orderBy("source", "delivery", "path").collect()
        sections.append(
            "<h2>Files delivered</h2>"
            + _table(
                ["source", "delivery", "file", "status", "rule", "reason", "rows in file", "landed", "quarantined"],
                [
                    [
                        f.source,
                        f.delivery,
                        f.path.rsplit("/", 1)[-1],
                        (f.status, "pass" if f.status == "landed" else "warn" if f.status == "duplicate" else "fail"),
                        f.rule,
                        f.reason,
                        f.rows_in_file,
                        f.rows_landed,
                        f.rows_quarantined,
                    ]
                    for f in files
                ],
                numeric={6, 7, 8},
            )
        )

    quarantine_path = settings.path("lake", "quarantine", "rows")
    if lake.table_exists(spark, quarantine_path):
        rows = (
            lake.read(spark, quarantine_path)
            .groupBy("stage", "source", "rule")
            .agg(F.count("*").alias("rows"))
            .orderBy("stage", "source", "rule")
            .collect()
        )
        sections.append(
            "<h2>Rows quarantined</h2><p>Fix these at source; each row is kept with its file, "
            "line and reason in <code>lake/quarantine/rows</code>.</p>"
            + _table(["stage", "source", "rule", "rows"], [list(r) for r in rows], numeric={3})
        )

    dq_path = settings.table("ops", "dq_results")
    if lake.table_exists(spark, dq_path):
        results = lake.read(spark, dq_path).where(F.col("run_id") == run_id).orderBy("table", "rule_id").collect()
        gates = []
        for contract in gold_contracts():
            mine = [r for r in results if r.table == contract.name]
            if not mine:
                gates.append([contract.name, ("not validated", "warn"), None, None, None])
                continue
            failed = [r for r in mine if not r.success and r.severity == "fail"]
            warned = [r for r in mine if not r.success and r.severity == "warn"]
            gates.append([contract.name, _status(not failed), len(mine), len(failed), len(warned)])
        sections.append(
            "<h2>Quality gates</h2>"
            + _table(["table", "gate", "rules", "failed", "warnings"], gates, numeric={2, 3, 4})
        )
        sections.append(
            "<h2>Rules</h2>"
            + _table(
                ["table", "rule", "severity", "result", "rows checked", "unexpected", "unexpected %", "observed"],
                [
                    [
                        r.table,
                        r.rule_id,
                        r.severity,
                        _status(
                            r.success,
                            "FAIL" if r.severity == "fail" else "WARN",
                            "fail" if r.severity == "fail" else "warn",
                        ),
                        r.element_count,
                        r.unexpected_count,
                        None if r.unexpected_percent is None else f"{r.unexpected_percent:.2f}",
                        r.observed_value,
                    ]
                    for r in results
                ],
                numeric={4, 5, 6, 7},
            )
        )

    published = []
    for contract in gold_contracts():
        path = settings.table("gold", contract.name)
        if lake.table_exists(spark, path):
            published.append([contract.name, lake.version(spark, path), lake.read(spark, path).count(), contract.grain])
        else:
            published.append([contract.name, "not published", None, contract.grain])
    sections.append(
        "<h2>Published gold tables</h2>" + _table(["table", "version", "rows", "grain"], published, numeric={2})
    )

    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>placelake quality report — {html.escape(run_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>placelake data-quality report</h1><p>Run <code>{html.escape(run_id)}</code>, generated {generated}. "
        "Counts, rates and rule names only: no patient-level values appear here.</p>"
        + "".join(sections)
        + "</body></html>"
    )


def write_report(spark: SparkSession, settings: Settings, run_id: str) -> str:
    path = f"{settings.reports}/quality.html"
    fs.write_text(path, build_report(spark, settings, run_id))
    log.info("quality report: %s", path)
    return path
