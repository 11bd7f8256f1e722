"""How analysts reach gold: a `gold` database of read-only views, time travel, and the audit.

Analysts see gold only. Bronze and silver hold direct identifiers, so a
session made for an analyst (``placelake sql``, the Thrift server) registers a
``gold`` database whose views read the published Delta tables, switches off
queries on raw paths (``delta.`/lake/silver/...```), and runs read-only
statements only. Tables are discovered from the lake, never listed here.

``--as-of`` reproduces an earlier published state. ``gate.publish`` records
the run id in each commit's userMetadata; a run that left a table unchanged
made no commit to it, so a run's state is "every gold table at its newest
commit made no later than that run's publish" (or, for a run that changed no
table at all, no later than its gate, from ops/dq_results).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import Settings

GOLD_DATABASE = "gold"
# The published tables themselves (always their latest version); `gold` holds views over them.
TABLES_DATABASE = "gold_tables"
AUDIT_TABLE = ("ops", "sql_audit")
AUDIT_PROPERTIES = {"delta.appendOnly": "true"}  # Delta itself refuses updates and deletes
RUN_ID_KEY = "run_id"

# Statements an analyst may run: queries and catalog look-ups. Anything else
# (CREATE TABLE ... LOCATION over silver, SET, INSERT, DROP) could reach past gold.
_READ_ONLY_START = ("select", "with", "from", "values", "table", "show", "describe", "desc", "explain", "(")
_WRITE_PLANS = (
    "Insert",
    "Command",
    "Create",
    "Replace",
    "Drop",
    "Alter",
    "Append",
    "Overwrite",
    "Delete",
    "Update",
    "Merge",
)


class AccessError(ValueError):
    """A problem the analyst can fix, said in one line (no stack trace)."""


@dataclass(frozen=True)
class GoldState:
    """Which version of each gold table a session reads; version None means the latest."""

    versions: dict[str, int | None]
    as_of: str | None = None

    @property
    def tables(self) -> list[str]:
        return sorted(self.versions)


def gold_tables(settings: Settings) -> dict[str, str]:
    """Every published gold table, by name (whatever the gold contracts have produced)."""
    return lake.table_paths(settings, "gold")


def publish_metadata(run_id: str | None) -> str | None:
    """The userMetadata a publish commit carries: the run id only (history is readable by anyone)."""
    return json.dumps({RUN_ID_KEY: run_id}) if run_id else None


def _run_of(user_metadata: str | None) -> str | None:
    if not user_metadata:
        return None
    try:
        doc = json.loads(user_metadata)
    except ValueError:
        return None
    return doc.get(RUN_ID_KEY) if isinstance(doc, dict) else None


def _history(spark: SparkSession, path: str) -> list:
    return DeltaTable.forPath(spark, path).history().select("version", "timestamp", "userMetadata").collect()


def _gate_time(spark: SparkSession, settings: Settings, run_id: str):
    """When a run gated gold (ops/dq_results), for a run that published no change at all.

    Nothing it published differs from what was there, so the state at its gate is the state it left.
    """
    path = settings.table("ops", "dq_results")
    if not lake.table_exists(spark, path):
        return None
    row = (
        lake.read(spark, path)
        .where((F.col("run_id") == run_id) & (F.col("layer") == "gold"))
        .agg(F.max("validated_at").alias("at"))
        .first()
    )
    return row.at if row else None


def resolve_as_of(spark: SparkSession, settings: Settings, as_of: str | None) -> GoldState:
    """The gold state to read: the latest, a Delta version, or the state a run published.

    A number is a Delta version, applied to every table that has it (a table
    published later than that version simply is not there). Anything else is
    a run id, looked up in the publish commits' userMetadata.
    """
    tables = gold_tables(settings)
    if not tables:
        raise AccessError("no published gold tables yet: run `placelake run` first")
    if as_of is None:
        return GoldState({name: None for name in tables})
    histories = {name: _history(spark, path) for name, path in tables.items()}
    if as_of.isdigit():
        wanted = int(as_of)
        versions = {n: wanted for n, h in histories.items() if any(r.version == wanted for r in h)}
        if not versions:
            newest = max(r.version for h in histories.values() for r in h)
            raise AccessError(f"no gold table has version {wanted} (newest version: {newest})")
        return GoldState(versions, as_of)
    tagged = [r.timestamp for h in histories.values() for r in h if _run_of(r.userMetadata) == as_of]
    published_at = max(tagged) if tagged else _gate_time(spark, settings, as_of)
    if published_at is None:
        runs = sorted({run for h in histories.values() for r in h if (run := _run_of(r.userMetadata))})
        known = ", ".join(runs[-5:]) if runs else "none recorded"
        raise AccessError(f"unknown run id {as_of!r}: it neither published gold nor gated it (recent runs: {known})")
    versions = {}
    for name, history in histories.items():
        before = [r.version for r in history if r.timestamp <= published_at]
        if before:
            versions[name] = max(before)
    return GoldState(versions, as_of)


def register_gold(spark: SparkSession, settings: Settings, state: GoldState) -> None:
    """Register the `gold` database over the Delta tables, then shut the path-query door.

    Each published table is an external catalog table in `gold_tables` (the
    latest version) and a view in `gold` (that, or the version asked for), so
    one mechanism serves both the latest state and time travel. The catalog is
    in-memory: it lives as long as this session's SparkContext.
    """
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {TABLES_DATABASE}")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {GOLD_DATABASE}")
    for existing in spark.sql(f"SHOW VIEWS IN {GOLD_DATABASE}").collect():
        if not existing.isTemporary:
            spark.sql(f"DROP VIEW IF EXISTS {GOLD_DATABASE}.`{existing.viewName}`")
    paths = gold_tables(settings)
    for name, version in state.versions.items():
        # External tables: dropping one forgets the catalog entry and never touches the files.
        spark.sql(f"DROP TABLE IF EXISTS {TABLES_DATABASE}.`{name}`")
        location = paths[name].replace("'", "\\'")
        spark.sql(f"CREATE TABLE {TABLES_DATABASE}.`{name}` USING delta LOCATION '{location}'")
        travel = "" if version is None else f" VERSION AS OF {int(version)}"
        spark.sql(f"CREATE VIEW {GOLD_DATABASE}.`{name}` AS SELECT * FROM {TABLES_DATABASE}.`{name}`{travel}")
    spark.sql(f"USE {GOLD_DATABASE}")
    # Without this, `SELECT * FROM delta.`/lake/silver/person`` would read straight past gold.
    spark.conf.set("spark.sql.runSQLOnFiles", "false")


def analyst_session(spark: SparkSession, settings: Settings, as_of: str | None = None) -> GoldState:
    state = resolve_as_of(spark, settings, as_of)
    register_gold(spark, settings, state)
    return state


def end_analyst_session(spark: SparkSession) -> None:
    """Give an in-process caller (a test, a notebook) its session back as it was: paths on, default database."""
    spark.conf.unset("spark.sql.runSQLOnFiles")
    spark.sql("USE default")


def _parsed_plan(spark: SparkSession, statement: str):
    return spark._jsparkSession.sessionState().sqlParser().parsePlan(statement)


def _plan_nodes(tree: str) -> set[str]:
    """Node names of a plan's tree string (subqueries included), e.g. {'Project', 'UnresolvedRelation'}."""
    return {m.group(1) for m in re.finditer(r"^[\s:+\-|]*'?(\w+)", tree, re.MULTILINE)}


def check_read_only(spark: SparkSession, statement: str) -> None:
    """Refuse anything but a query or a catalog look-up, before Spark runs it."""
    words = statement.lstrip().split(None, 1)
    first = words[0].lower() if words else ""
    if not first.startswith(_READ_ONLY_START):
        raise AccessError(
            f"only queries are allowed here (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN), not {first.upper()!r}"
        )
    if first in ("show", "describe", "desc", "explain"):
        return  # look-ups, and EXPLAIN plans a statement without running it
    nodes = _plan_nodes(_parsed_plan(spark, statement).treeString())
    writes = sorted(n for n in nodes if any(w in n for w in _WRITE_PLANS))
    if writes:
        raise AccessError(f"only queries are allowed here: this statement writes ({', '.join(writes)})")


# A table read (UnresolvedRelation) or named by a statement (UnresolvedIdentifier, e.g. DROP VIEW).
_RELATION = re.compile(r"'Unresolved(?:Relation|Identifier|TableOrView) \[([^\]]*)\]")


def referenced_tables(spark: SparkSession, statement: str, known: list[str]) -> list[str]:
    """Gold tables a statement names (from its parsed plan, subqueries included), sorted."""
    try:
        tree = _parsed_plan(spark, statement).treeString()
    except Exception:  # noqa: BLE001 - a statement that does not parse names no table
        return []
    found = set()
    for match in _RELATION.finditer(tree):
        parts = [p.strip().strip("`").lower() for p in match.group(1).split(",")]
        name = parts[-1]
        if name in known and (len(parts) == 1 or parts[-2] == GOLD_DATABASE):
            found.add(name)
    return sorted(found)


def friendly_error(exc: Exception, known: list[str]) -> str:
    """One line for the analyst: what went wrong and what exists, never a stack trace."""
    if isinstance(exc, AccessError):
        return str(exc)
    condition = getattr(exc, "getCondition", lambda: None)()
    if condition and condition.startswith("TABLE_OR_VIEW_NOT_FOUND"):
        name = (getattr(exc, "getMessageParameters", lambda: None)() or {}).get("relationName", "?")
        return f"unknown table {name}; gold tables: {', '.join(f'{GOLD_DATABASE}.{t}' for t in known)}"
    if condition and condition.startswith(("PARSE_SYNTAX_ERROR", "PARSE_EMPTY_STATEMENT")):
        return "bad SQL: " + str(exc).strip().split("\n")[0]
    if condition and condition.startswith("UNRESOLVED_COLUMN"):
        return "unknown column: " + str(exc).strip().split("\n")[0]
    first = str(exc).strip().split("\n")[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# ---- audit -------------------------------------------------------------------------------------

AUDIT_SCHEMA = (
    "audited_at timestamp, interface string, user string, os_user string, client string, session_id string, "
    "statement_kind string, statement_sha256 string, tables array<string>, as_of string, rows long, status string"
)


def audit_row(
    *,
    interface: str,
    statement: str,
    tables: list[str],
    rows: int | None,
    status: str,
    user: str | None = None,
    client: str | None = None,
    session_id: str | None = None,
    as_of: str | None = None,
    at: datetime | None = None,
) -> dict:
    """One audited statement: who, when, which tables, how many rows. Never the SQL text or a value:
    a literal in a WHERE clause can be as identifying as the rows themselves."""
    os_user = getpass.getuser()
    words = statement.strip().split(None, 1)
    return {
        "audited_at": (at or datetime.now(UTC)).replace(tzinfo=None),
        "interface": interface,
        "user": user or os_user,
        "os_user": os_user,
        "client": client or socket.gethostname(),
        "session_id": session_id,
        "statement_kind": words[0].upper() if words else "",
        "statement_sha256": hashlib.sha256(statement.encode("utf-8")).hexdigest(),
        "tables": tables,
        "as_of": as_of,
        "rows": rows,
        "status": status,
    }


def write_audit(spark: SparkSession, settings: Settings, rows: list[dict]) -> None:
    """Append to ops/sql_audit, a table Delta itself keeps append-only (delta.appendOnly).

    On a lake on local disk by delta-rs: 0.03 s a statement, where Spark's append took 1-1.6 s warm
    (each `placelake sql` and each Thrift statement waits for its audit row before answering).
    """
    if not rows:
        return
    path, app_id = settings.table(*AUDIT_TABLE), f"sql_audit-{uuid.uuid4()}"
    if settings.is_local():
        table = pa.Table.from_pylist(rows, schema=lake.arrow_schema(AUDIT_SCHEMA))
        lake.append_once_local(table, path, app_id=app_id, properties=AUDIT_PROPERTIES)
        return
    # The audit's own write must not be refused by the analyst session's path lock.
    previous = spark.conf.get("spark.sql.runSQLOnFiles")
    spark.conf.set("spark.sql.runSQLOnFiles", "true")
    try:
        df = spark.createDataFrame(rows, AUDIT_SCHEMA)
        lake.append_once(df, path, app_id=app_id, properties=AUDIT_PROPERTIES)
    finally:
        spark.conf.set("spark.sql.runSQLOnFiles", previous)


def read_audit(spark: SparkSession, settings: Settings) -> DataFrame:
    return lake.read(spark, settings.table(*AUDIT_TABLE)).orderBy(F.col("audited_at"))
