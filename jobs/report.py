"""The data-quality report for ops: one static HTML page that works offline
(no scripts, no fonts or styles from anywhere else; charts are inline SVG),
linking to each table's GX Data Docs page (jobs/data_docs.py).

Counts, rates, rule names and file names only; never a patient-level value.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Row, SparkSession

from jobs import data_docs, fs, lake
from jobs.config import Settings
from jobs.contracts import gold_contracts
from jobs.scorecard import coverage

log = logging.getLogger(__name__)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;color:#1d1d1f;max-width:72rem;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#0a6b2d;font-weight:600}.fail{color:#b00020;font-weight:600}
.warn{color:#8a5a00;font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:700;color:#fff}
.verdict.pass{background:#0a6b2d}.verdict.fail{background:#b00020}
nav a{margin-right:1rem}.muted{color:#666}figure{margin:.5rem 0}figcaption{font-size:.85rem;color:#444}
"""
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


@dataclass(frozen=True)
class Link:
    text: str
    href: str


# The lake tables the report reads, by the name its SQL gives them.
REPORT_TABLES = {
    "dq_results": ("ops", "dq_results"),
    "scorecard": ("ops", "scorecard"),
    "landing_manifest": ("ops", "landing_manifest"),
    "quarantine_rows": ("quarantine", "rows"),
    "person_link": ("silver", "person_link"),
    "person": ("silver", "person"),
    "linkage_metrics": ("ops", "linkage_metrics"),
    **{f"gold_{c.name}": ("gold", c.name) for c in gold_contracts()},
}


class ReportTables:
    """The report's reads: one SQL text per question, over REPORT_TABLES, run by DuckDB over
    delta-rs on a lake on local disk within settings.gate_memory_bytes (no Spark job: on Spark the
    twenty-odd small queries took 10-15 s of a run at 100,000 people) and by Spark otherwise.

    The SQL keeps to what both dialects read alike: ? parameters, no quoted identifiers (a column
    named like a keyword is sorted in Python). Rows come back as pyspark Rows either way.
    """

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        from jobs.gate import gates_locally

        self.spark = spark
        self.paths = {name: settings.table(*where) for name, where in REPORT_TABLES.items()}
        self.local = gates_locally(settings, list(self.paths.values()))
        self._sql = None
        self._registered: set[str] = set()

    def exists(self, name: str) -> bool:
        path = self.paths[name]
        return lake.exists_local(path) if self.local else lake.table_exists(self.spark, path)

    def version(self, name: str) -> int | None:
        from deltalake import DeltaTable

        if not self.local:
            return lake.version(self.spark, self.paths[name])  # None for a table that does not exist
        return DeltaTable(self.paths[name]).version() if self.exists(name) else None

    def rows(self, query: str, *params, tables: tuple[str, ...]) -> list[Row]:
        """Run query (reading tables, which must exist) with ? bound to params, in order."""
        if not self.local:
            for name in set(tables) - self._registered:
                lake.read(self.spark, self.paths[name]).createOrReplaceTempView(name)
                self._registered.add(name)
            # Spark's own binding (args=) leaves the markers unbound on a session with Delta's
            # extension (UNBOUND_SQL_PARAMETER on 4.1: delta-io/delta#7640, SPARK-59672): literals.
            return self.spark.sql(_bind_spark(query, params)).collect()
        if self._sql is None:
            import duckdb

            self._sql = duckdb.connect()
        for name in set(tables) - self._registered:
            self._sql.register(name, lake.dataset_local(self.paths[name]))
            self._registered.add(name)
        result = self._sql.execute(query, list(params))
        columns = [d[0] for d in result.description]
        return [Row(**dict(zip(columns, values, strict=True))) for values in result.fetchall()]

    def close(self) -> None:
        if self._sql is not None:
            self._sql.close()
        elif not self.local:
            for name in self._registered:
                self.spark.catalog.dropTempView(name)
        self._registered.clear()


def _bind_spark(query: str, params: tuple) -> str:
    """query with each ? replaced, in order, by its parameter as a Spark SQL string literal
    (backslash escapes: a quote or a backslash in a run id stays itself). Every ? in query is a
    marker: the report's SQL has none inside its own string constants."""
    parts = query.split("?")
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(parts) - 1} parameter markers for {len(params)} parameters")
    quoted = ["'" + str(p).replace("\\", "\\\\").replace("'", "\\'") + "'" for p in params]
    return "".join(part + (quoted[i] if i < len(quoted) else "") for i, part in enumerate(parts))


def _cell(value, kind: str) -> str:
    """kind: text, num or pct (a 0-1 rate shown as a percentage)."""
    if isinstance(value, Link):
        return f'<td><a href="{html.escape(value.href)}">{html.escape(value.text)}</a></td>'
    if isinstance(value, tuple):  # (text, css class)
        return f'<td class="{value[1]}">{html.escape(str(value[0]))}</td>'
    if value is None:
        text = ""
    elif kind == "pct" and isinstance(value, float):
        text = f"{value:.1%}"
    else:
        text = str(value)
    css = ' class="num"' if kind in ("num", "pct") else ""
    return f"<td{css}>{html.escape(text)}</td>"


def _table(headers: list[str], rows: list[list], numeric: set[int] | None = None, pct: set[int] | None = None) -> str:
    numeric, pct = numeric or set(), pct or set()
    if not rows:
        return "<p class='muted'>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(_cell(v, "pct" if i in pct else "num" if i in numeric else "text") for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(ok: bool, severity: str = "fail") -> tuple[str, str]:
    if ok:
        return "PASS", "pass"
    return ("FAIL", "fail") if severity == "fail" else (severity.upper(), "warn")


def svg_trend(title: str, series: dict[str, list[tuple[str, float]]], width: int = 640, height: int = 220) -> str:
    """A line chart of rates (0-1) by month, one line per series, as inline SVG."""
    months = sorted({m for points in series.values() for m, _ in points})
    if not months:
        return ""
    left, right, top, bottom = 44, 150, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(month: str) -> float:
        return left + (plot_w * months.index(month) / max(len(months) - 1, 1))

    def y(value: float) -> float:
        return top + plot_h * (1 - value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}">'
    ]
    for tick in (0, 0.5, 1):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.0%}</text>')
    for month in (months[0], months[-1]) if len(months) > 1 else (months[0],):
        parts.append(f'<text x="{x(month):.1f}" y="{height - 8}" font-size="11" text-anchor="middle">{month}</text>')
    for i, (name, points) in enumerate(sorted(series.items())):
        colour = _PALETTE[i % len(_PALETTE)]
        coords = " ".join(f"{x(m):.1f},{y(v):.1f}" for m, v in sorted(points))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"/>')
        for m, v in points:
            parts.append(
                f'<circle cx="{x(m):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>'
                f"{html.escape(name)} {m}: {v:.1%}</title></circle>"
            )
        parts.append(
            f'<text x="{left + plot_w + 10}" y="{top + 14 + 16 * i}" font-size="12" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{html.escape(title)}</figcaption></figure>"


def _gate_section(tables: ReportTables, settings: Settings, run_id: str) -> tuple[str, bool | None]:
    if not tables.exists("dq_results"):
        return "<h2 id='gates'>Quality gates</h2><p class='muted'>No validation results yet.</p>", None
    dq = ("dq_results",)
    results = sorted(
        tables.rows("SELECT * FROM dq_results WHERE run_id = ?", run_id, tables=dq),
        key=lambda r: (r.layer, r.table, r.rule_id),
    )
    previous_run = tables.rows(
        "SELECT run_id, max(validated_at) AS last_validated FROM dq_results WHERE run_id <> ? GROUP BY run_id "
        "ORDER BY last_validated DESC LIMIT 1",
        run_id,
        tables=dq,
    )
    failing_before = set()
    if previous_run:
        failing_before = {
            (r.layer, r.table, r.rule_id)
            for r in tables.rows(
                "SELECT * FROM dq_results WHERE run_id = ? AND NOT success", previous_run[0].run_id, tables=dq
            )
        }
    by_table: dict[tuple[str, str], list] = {}
    for r in results:
        by_table.setdefault((r.layer, r.table), []).append(r)
    docs = set(data_docs.pages(f"{settings.reports}/data_docs"))
    gate_rows, all_passed = [], True
    for (layer, table), mine in sorted(by_table.items(), key=lambda kv: (kv[0][0] != "gold", kv[0])):
        failed = [r for r in mine if not r.success and r.severity == "fail"]
        other = [r for r in mine if not r.success and r.severity != "fail"]
        all_passed &= not failed
        gate_rows.append(
            [
                f"{layer}.{table}",
                _status(not failed),
                len(mine),
                len(failed),
                len(other),
                ", ".join(r.rule_id for r in failed) or None,
                Link("GX Data Docs", f"data_docs/{page}")
                if (page := data_docs.page_name(layer, table)) in docs
                else None,
            ]
        )
    for contract in gold_contracts():
        if ("gold", contract.name) not in by_table:
            gate_rows.append([f"gold.{contract.name}", ("not validated", "warn"), None, None, None, None, None])
            all_passed = False
    not_passing = [r for r in results if not r.success]
    rule_rows = [
        [
            f"{r.layer}.{r.table}",
            r.rule_id,
            r.severity,
            _status(False, r.severity),
            "new" if (r.layer, r.table, r.rule_id) not in failing_before else "also last run",
            r.element_count,
            r.unexpected_count,
            None if r.unexpected_percent is None else f"{r.unexpected_percent:.2f}%",
        ]
        for r in sorted(not_passing, key=lambda r: (r.severity != "fail", r.layer, r.table, r.rule_id))
    ]
    fixed = sorted(failing_before - {(r.layer, r.table, r.rule_id) for r in not_passing})
    section = (
        "<h2 id='gates'>Quality gates</h2>"
        + _table(
            ["table", "gate", "rules", "failed", "warnings / drops", "failed rules", "latest validation"],
            gate_rows,
            numeric={2, 3, 4},
        )
        + f"<h3>Rules not passing ({len(not_passing)} of {len(results)})</h3>"
        + _table(
            ["table", "rule", "severity", "result", "since", "rows checked", "unexpected", "unexpected %"],
            rule_rows,
            numeric={5, 6, 7},
        )
        + (
            f"<p>Fixed since the last run: {html.escape(', '.join(f'{t[0]}.{t[1]} {t[2]}' for t in fixed))}</p>"
            if fixed
            else ""
        )
    )
    return section, all_passed


def _scorecard_section(tables: ReportTables, run_id: str) -> str:
    if not tables.exists("scorecard"):
        return ""
    by_month = tables.rows(
        "SELECT source, organisation, delivery_month, max(rows) AS rows, avg(completeness) AS completeness, "
        "avg(validity) AS validity, avg(default_rate) AS default_rate FROM scorecard WHERE run_id = ? "
        "GROUP BY source, organisation, delivery_month ORDER BY source, delivery_month",
        run_id,
        tables=("scorecard",),
    )
    latest: dict[str, object] = {}
    for r in by_month:
        latest[r.source] = r
    summary = [
        [r.source, r.organisation, r.delivery_month, r.rows, r.completeness, r.validity, r.default_rate]
        for r in latest.values()
    ]
    worst = tables.rows(
        "SELECT source, delivery_month, field, pii, rows, completeness, validity, default_rate FROM scorecard "
        "WHERE run_id = ? AND validity < 1 ORDER BY validity, source, field, delivery_month LIMIT 15",
        run_id,
        tables=("scorecard",),
    )
    received: dict[str, list[str]] = {}
    if tables.exists("landing_manifest"):
        # Months with rows in bronze: from the files landed, not a scan of bronze.
        for r in tables.rows(
            "SELECT DISTINCT source, substr(delivery, 1, 7) AS month FROM landing_manifest "
            "WHERE status = 'landed' AND rows_landed > 0",
            tables=("landing_manifest",),
        ):
            received.setdefault(r.source, []).append(r.month)
    covered = [coverage(name, received.get(name, [])) for name in latest]
    coverage_rows = [
        [c["source"], c["expected"], c["received"], ", ".join(c["missing"]) or None, _status(not c["missing"], "warn")]
        for c in covered
    ]
    charts = svg_trend(
        "Validity by delivery month (mean over fields)",
        {s: [(r.delivery_month, r.validity) for r in by_month if r.source == s] for s in latest},
    )
    charts += svg_trend(
        "Completeness by delivery month (mean over fields)",
        {s: [(r.delivery_month, r.completeness) for r in by_month if r.source == s] for s in latest},
    )
    return (
        "<h2 id='scorecard'>Scorecard</h2><p>Per source, from the values as delivered (bronze): completeness "
        "(share of rows with a value), validity (share of values meeting the contract), default-value rate "
        "(share of 'unknown' codes such as 9, X, 1900-01-01).</p>"
        + _table(
            ["source", "organisation", "latest delivery", "rows", "completeness", "validity", "default rate"],
            summary,
            numeric={3, 4, 5, 6},
            pct={4, 5, 6},
        )
        + "<h3>Coverage: monthly deliveries expected and received</h3>"
        + _table(["source", "months expected", "months received", "missing", "coverage"], coverage_rows, numeric={1, 2})
        + charts
        + "<h3>Fields with the lowest validity</h3>"
        + _table(
            ["source", "delivery", "field", "pii class", "rows", "completeness", "validity", "default rate"],
            [list(r) for r in worst],
            numeric={4, 5, 6, 7},
            pct={5, 6, 7},
        )
    )


def _landing_section(tables: ReportTables) -> str:
    parts = []
    if tables.exists("landing_manifest"):
        files = tables.rows(
            "SELECT * FROM landing_manifest ORDER BY source, delivery, path", tables=("landing_manifest",)
        )
        parts.append(
            "<h2 id='files'>Files delivered</h2>"
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
    if tables.exists("quarantine_rows"):
        rows = tables.rows(
            "SELECT stage, source, rule, count(*) AS rows FROM quarantine_rows GROUP BY stage, source, rule "
            "ORDER BY stage, source, rule",
            tables=("quarantine_rows",),
        )
        parts.append(
            "<h2 id='quarantine'>Rows quarantined</h2><p>Fix these at source; each row is kept with its "
            "file, line and reason in <code>lake/quarantine/rows</code>.</p>"
            + _table(["stage", "source", "rule", "rows"], [list(r) for r in rows], numeric={3})
        )
    return "".join(parts)


def _linkage_section(tables: ReportTables) -> str:
    if not tables.exists("person_link"):
        return ""
    rows = tables.rows(
        "SELECT source, method, count(*) AS records FROM person_link GROUP BY source, method ORDER BY source, method",
        tables=("person_link",),
    )
    persons = tables.rows("SELECT count(*) AS persons FROM person", tables=("person",))[0].persons
    return (
        f"<h2 id='linkage'>Linkage</h2><p>{sum(r.records for r in rows)} records linked into {persons} people.</p>"
        + _table(["source", "method", "records"], [[r.source, r.method, r.records] for r in rows], numeric={2})
    )


def _linkage_quality_section(tables: ReportTables) -> str:
    """The latest linkage run's metrics (lake/ops/linkage_metrics): rates and pair counts, never a record."""
    if not tables.exists("linkage_metrics"):
        return ""
    rows = tables.rows(
        "SELECT * FROM linkage_metrics WHERE measured_at = (SELECT max(measured_at) FROM linkage_metrics) "
        "ORDER BY metric, dimension, grp",
        tables=("linkage_metrics",),
    )

    def pick(prefix: str) -> list:
        return [r for r in rows if r.metric.startswith(prefix)]

    rate = [[r.metric, r.grp, r.value, r.numerator, r.denominator] for r in pick("link_rate") + pick("est_")]
    sizes = [[r.grp, r.numerator] for r in pick("cluster_size")]
    accuracy = {}
    for r in pick("identities_pairwise") + pick("records_pairwise"):
        unit, _, measure = r.metric.partition("_pairwise_")
        accuracy.setdefault((unit, r.dimension, r.grp), {})[measure] = r.value
    truth = [[u, d, g, m.get("precision"), m.get("recall"), m.get("f1")] for (u, d, g), m in sorted(accuracy.items())]
    mode = rows[0].mode if rows else "-"
    return (
        f"<h3 id='linkage-quality'>Linkage quality ({html.escape(mode)} link)</h3>"
        "<p class='muted'>Link rate: a source's records whose person appears in another source too. "
        "Estimated rates come from the model's own match probabilities.</p>"
        + _table(["measure", "group", "rate", "numerator", "denominator"], rate, numeric={3, 4}, pct={2})
        + "<h4>Identities per person</h4>"
        + _table(["identities", "persons"], sizes, numeric={1})
        + (
            "<h4>Against the generated place's truth (pairwise)</h4>"
            + _table(["unit", "by", "group", "precision", "recall", "F1"], truth, pct={3, 4, 5})
            if truth
            else ""
        )
    )


def _published_section(tables: ReportTables) -> str:
    published = []
    for contract in gold_contracts():
        name = f"gold_{contract.name}"
        if tables.exists(name):
            rows = tables.rows(f"SELECT count(*) AS n FROM {name}", tables=(name,))[0].n
            published.append([contract.name, tables.version(name), rows, contract.grain])
        else:
            published.append([contract.name, "not published", None, contract.grain])
    return "<h2 id='gold'>Published gold tables</h2>" + _table(
        ["table", "version", "rows", "grain"], published, numeric={2}
    )


def build_report(spark: SparkSession, settings: Settings, run_id: str) -> str:
    tables = ReportTables(spark, settings)
    try:
        return _report(tables, settings, run_id)
    finally:
        tables.close()


def _report(tables: ReportTables, settings: Settings, run_id: str) -> str:
    gates, passed = _gate_section(tables, settings, run_id)
    verdict = {
        True: ("pass", "All gates passed: gold is published."),
        False: ("fail", "A gate failed: gold keeps its previous versions."),
        None: ("fail", "Nothing validated yet."),
    }[passed]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>placelake quality report — {html.escape(run_id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>placelake data-quality report</h1><p class='muted'>Run <code>{html.escape(run_id)}</code>, "
        f"generated {generated}. Counts, rates and rule names only: no patient-level values appear here.</p>"
        f"<p id='verdict' class='verdict {verdict[0]}'>{verdict[1]}</p>"
        "<nav><a href='#gates'>Gates</a><a href='#scorecard'>Scorecard</a><a href='#files'>Files</a>"
        "<a href='#quarantine'>Quarantine</a><a href='#linkage'>Linkage</a><a href='#gold'>Gold</a>"
        "<a id='dictionary' href='dictionary.html'>Data dictionary</a></nav>"
        + gates
        + _scorecard_section(tables, run_id)
        + _landing_section(tables)
        + _linkage_section(tables)
        + _linkage_quality_section(tables)
        + _published_section(tables)
        + "</body></html>"
    )


def write_report(spark: SparkSession, settings: Settings, run_id: str) -> str:
    path = f"{settings.reports}/quality.html"
    fs.write_text(path, build_report(spark, settings, run_id))
    log.info("quality report: %s", path)
    return path
