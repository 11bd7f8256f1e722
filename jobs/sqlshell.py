"""`placelake sql`: one query, or an interactive shell, over the gold database.

Every statement, answered or refused, is audited (jobs.access); results go to
the analyst's terminal only. Errors are one line, never a stack trace.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TextIO

from pyspark.sql import SparkSession

from jobs import access
from jobs.config import Settings

FORMATS = ("table", "csv", "json")

HELP = """Statements end with ';' and may span lines. Tables live in the `gold` database
(gold.person, gold.care_event, ...; the `gold.` prefix is optional). Queries only.
  .tables            the gold tables and the version this session reads
  .schema TABLE      a table's columns and types
  .help              this text
  .quit              leave (or end of input)"""


def quiet_spark_errors() -> None:
    """PySpark logs every failed query with its JVM stack trace; the analyst gets our one line instead."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False


@dataclass
class Shell:
    """One analyst session: the registered gold state, and where output goes."""

    spark: SparkSession
    settings: Settings
    state: access.GoldState
    fmt: str = "table"
    limit: int = 100
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)

    def execute(self, statement: str) -> Result:
        """Run one statement; audit it whatever happens; raise AccessError or Spark's error."""
        tables = access.referenced_tables(self.spark, statement, self.state.tables)
        rows, status = None, "error"
        try:
            access.check_read_only(self.spark, statement)
            df = self.spark.sql(statement)
            fetched = df.limit(self.limit + 1).collect() if self.limit > 0 else df.collect()
            truncated = self.limit > 0 and len(fetched) > self.limit
            result = Result(df.columns, [tuple(r) for r in fetched[: self.limit or None]], truncated)
            rows, status = len(result.rows), "ok"
            return result
        except access.AccessError:
            status = "refused"
            raise
        finally:
            access.write_audit(
                self.spark,
                self.settings,
                [
                    access.audit_row(
                        interface="cli",
                        statement=statement,
                        tables=tables,
                        rows=rows,
                        status=status,
                        as_of=self.state.as_of,
                    )
                ],
            )

    def run_and_print(self, statement: str) -> bool:
        try:
            result = self.execute(statement)
        except Exception as exc:  # noqa: BLE001 - an analyst gets one clear line, not a JVM stack trace
            print(f"placelake sql: {access.friendly_error(exc, self.state.tables)}", file=self.err)
            return False
        write_result(result, self.fmt, self.out)
        if result.truncated:
            print(f"... more rows than --limit {self.limit} (use --limit 0 for all)", file=self.err)
        return True

    def command(self, line: str) -> bool:
        """A dot-command; False if unknown."""
        words = line.strip().rstrip(";").split()
        name = words[0].lower().lstrip(".")
        if name == "tables":
            for table in self.state.tables:
                version = self.state.versions[table]
                print(
                    f"{access.GOLD_DATABASE}.{table}  (version {'latest' if version is None else version})",
                    file=self.out,
                )
            return True
        if name == "schema" and len(words) == 2:
            table = words[1].split(".")[-1]
            if table not in self.state.tables:
                print(
                    f"placelake sql: unknown table {words[1]}; gold tables: {', '.join(self.state.tables)}",
                    file=self.err,
                )
                return False
            for f in self.spark.table(f"{access.GOLD_DATABASE}.{table}").schema.fields:
                print(f"  {f.name:<28} {f.dataType.simpleString()}", file=self.out)
            return True
        if name == "help":
            print(HELP, file=self.out)
            return True
        print(f"placelake sql: unknown command {words[0]!r} (try .help)", file=self.err)
        return False


def split_statements(buffer: str) -> tuple[list[str], str]:
    """Complete statements (ended by ';' outside quotes and comments) and the unfinished rest."""
    statements, current, quote, i = [], [], None, 0
    while i < len(buffer):
        ch = buffer[i]
        if quote:
            current.append(ch)
            if ch == "\\" and i + 1 < len(buffer):
                current.append(buffer[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in ("'", '"', "`"):
            quote = ch
            current.append(ch)
        elif buffer.startswith("--", i):
            end = buffer.find("\n", i)
            i = len(buffer) if end < 0 else end
            continue
        elif ch == ";":
            text = "".join(current).strip()
            if text:
                statements.append(text)
            current = []
        else:
            current.append(ch)
        i += 1
    return statements, "".join(current)


def repl(shell: Shell, lines: TextIO, interactive: bool) -> int:
    """Read statements ending in ';' (and dot-commands) until .quit or end of input.

    Returns 1 if any statement failed, so a script piped in can be checked.
    """
    failures = 0
    pending = ""
    if interactive:
        print(
            f"placelake sql over {len(shell.state.tables)} gold tables; .help for help, .quit to leave", file=shell.err
        )
    while True:
        if interactive:
            print("gold> " if not pending.strip() else "  ..> ", end="", file=shell.err, flush=True)
        line = lines.readline()
        if not line:
            break
        stripped = line.strip()
        if not pending.strip() and stripped.lower().rstrip(";") in (".quit", ".exit", "quit", "exit"):
            break
        if not pending.strip() and (stripped.startswith(".") or stripped.lower().rstrip(";") == "help"):
            failures += not shell.command(stripped)
            continue
        statements, pending = split_statements(pending + line)
        for statement in statements:
            failures += not shell.run_and_print(statement)
    if pending.strip():
        failures += not shell.run_and_print(pending.strip())
    return 1 if failures else 0


def _jsonable(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "asDict"):
        return _jsonable(value.asDict())
    return value


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def write_result(result: Result, fmt: str, out: TextIO) -> None:
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_text(v) for v in row] for row in result.rows])
    elif fmt == "json":
        json.dump(
            [dict(zip(result.columns, map(_jsonable, row), strict=True)) for row in result.rows], out, indent=None
        )
        out.write("\n")
    else:
        cells = [[_text(v) for v in row] for row in result.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
        print("  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)).rstrip(), file=out)
        print("  ".join("-" * w for w in widths), file=out)
        for row in cells:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)
        print(f"({len(cells)} row{'s' if len(cells) != 1 else ''})", file=out)
