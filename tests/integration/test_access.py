"""How analysts reach gold, each path with a real client: `placelake sql` (one query and the
shell over stdin), time travel, the Thrift server with beeline, and Python with `deltalake`.

The lake here is built by the real publish step (gate.publish, real Delta) from rows shaped
by every gold contract, twice (two runs), so time travel has something to travel to; and a
silver table sits beside it that no analyst path may reach.
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyspark
import pytest
from delta.tables import DeltaTable

from jobs import access, cli, lake
from jobs.config import REPO_ROOT, Settings
from jobs.contracts import gold_contracts
from jobs.gate import RuleResult, publish, record_all_results

pytestmark = pytest.mark.integration

RUNS = {"manual__2026-10-01T00:00:00+00:00": 3, "manual__2026-11-01T00:00:00+00:00": 5}
SECRET_NAME = "Siobhán O'Neill"  # in silver only: no analyst path may return it


def _value(column, i: int):
    if column.allowed:
        return column.allowed[i % len(column.allowed)] if column.type == "string" else int(column.allowed[0])
    return {
        "string": f"{column.name}-{i:02d}",
        "integer": i,
        "long": i,
        "double": i / 2,
        "boolean": i % 2 == 0,
        "date": date(2026, 1, 1) + timedelta(days=i),
        "timestamp": datetime(2026, 1, 1, 9, 30) + timedelta(hours=i),
    }[column.type]


def _contract_values(contract, n: int) -> list[tuple]:
    return [tuple(_value(c, i) for c in contract.columns) for i in range(n)]


def _contract_rows(spark, contract, n: int):
    return spark.createDataFrame(_contract_values(contract, n), contract.typed_schema())


def _contract_table(contract, n: int) -> pa.Table:
    schema = lake.arrow_schema(contract.typed_schema())
    return pa.Table.from_pylist(
        [dict(zip(schema.names, row, strict=True)) for row in _contract_values(contract, n)], schema=schema
    )


@pytest.fixture(scope="module")
def gold_lake(spark, tmp_path_factory):
    """Every gold contract's table published by two runs (3 rows, then 5), and a silver table.

    Staged by delta-rs (Delta as much as Spark's writes, and no Spark job: 16 s against 46-64 s); published as a
    local lake publishes (test_publish_on_spark_and_in_memory_make_the_same_commits: both engines)."""
    settings = Settings.from_env(
        {
            "PLACELAKE_HOME": str(tmp_path_factory.mktemp("access-home")),
            "PLACELAKE_SPARK_MASTER": "local[2]",
            "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        }
    )
    for run_id, n in RUNS.items():
        for contract in gold_contracts():
            lake.replace_local(_contract_table(contract, n), settings.table("staging/gold", contract.name))
            assert publish(spark, settings, contract.name, run_id=run_id) is not None
    lake.replace_local(pa.table({"family_name": [SECRET_NAME]}), settings.table("silver", "person"))
    return settings


@pytest.fixture
def analyst(spark, gold_lake, monkeypatch):
    """`placelake sql` in this process (this test session's Spark), pointed at the gold lake."""
    monkeypatch.setenv("PLACELAKE_HOME", gold_lake.home)
    # get_spark applies these to the shared test session: keep them as the test fixture set them.
    monkeypatch.setenv("PLACELAKE_SHUFFLE_PARTITIONS", "1")
    yield gold_lake
    # `placelake sql` hands the shared session back as it found it.
    assert spark.conf.get("spark.sql.runSQLOnFiles") == "true"
    assert spark.catalog.currentDatabase() == "default"


def _sql(capsys, monkeypatch, *argv, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(["sql", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _audit(spark, settings):
    return access.read_audit(spark, settings).collect()


def test_sql_sees_every_gold_table_by_its_gold_name(analyst, capsys, monkeypatch):
    code, out, _ = _sql(capsys, monkeypatch, "SHOW TABLES IN gold", "--format", "csv")
    assert code == 0
    names = {line.split(",")[1] for line in out.strip().splitlines()[1:]}
    assert names == {c.name for c in gold_contracts()}

    code, out, _ = _sql(capsys, monkeypatch, "SELECT count(*) AS n FROM gold.person", "--format", "json")
    assert code == 0
    assert json.loads(out) == [{"n": 5}]


def test_formats_table_csv_json(analyst, capsys, monkeypatch):
    query = "SELECT 'O''Brien, Ciarán' AS name, CAST(NULL AS INT) AS missing, DATE'2026-11-01' AS d FROM gold.person LIMIT 2"
    code, out, _ = _sql(capsys, monkeypatch, query, "--format", "csv")
    assert code == 0
    assert out == 'name,missing,d\n"O\'Brien, Ciarán",,2026-11-01\n"O\'Brien, Ciarán",,2026-11-01\n'

    code, out, _ = _sql(capsys, monkeypatch, query, "--format", "json", "--limit", "1")
    assert json.loads(out) == [{"name": "O'Brien, Ciarán", "missing": None, "d": "2026-11-01"}]

    code, out, _ = _sql(capsys, monkeypatch, query, "--format", "table")
    assert out.splitlines() == [
        "name             missing  d",
        "---------------  -------  ----------",
        "O'Brien, Ciarán           2026-11-01",
        "O'Brien, Ciarán           2026-11-01",
        "(2 rows)",
    ]


def test_silver_bronze_and_writes_are_out_of_reach(analyst, capsys, monkeypatch):
    silver_path = analyst.table("silver", "person")
    for query, expected in [
        (f"SELECT * FROM delta.`{silver_path}`", "unknown table"),
        (f"SELECT * FROM parquet.`{silver_path}`", "unknown table"),
        ("SELECT * FROM silver.person", "unknown table"),
        (f"CREATE TABLE s USING delta LOCATION '{silver_path}'", "only queries are allowed"),
        ("WITH t AS (SELECT * FROM gold.person) INSERT INTO gold.person SELECT * FROM t", "only queries"),
        ("SET spark.sql.runSQLOnFiles=true", "only queries are allowed"),
        ("DROP VIEW gold.person", "only queries are allowed"),
    ]:
        code, out, err = _sql(capsys, monkeypatch, query)
        assert code == 1, query
        assert expected in err, (query, err)
        assert SECRET_NAME not in out + err
        assert "Traceback" not in err and "at org.apache" not in err


def test_clear_errors_for_unknown_table_bad_sql_and_unknown_run(analyst, capsys, monkeypatch):
    code, _, err = _sql(capsys, monkeypatch, "SELECT * FROM gold.nonesuch")
    assert code == 1
    assert err.startswith("placelake sql: unknown table `gold`.`nonesuch`; gold tables: gold.")

    code, _, err = _sql(capsys, monkeypatch, "SELECT count(* FROM gold.person")
    assert code == 1
    assert err.startswith("placelake sql: bad SQL: [PARSE_SYNTAX_ERROR]")

    code, _, err = _sql(capsys, monkeypatch, "SELECT 1", "--as-of", "manual__1999-01-01")
    assert code == 2
    assert "unknown run id 'manual__1999-01-01'" in err
    assert "manual__2026-11-01T00:00:00+00:00" in err  # names runs that do exist

    code, _, err = _sql(capsys, monkeypatch, "SELECT 1", "--as-of", "42")
    assert code == 2
    assert "no gold table has version 42 (newest version: 1)" in err


def test_as_of_reproduces_what_each_run_published(analyst, capsys, monkeypatch):
    (first_run, first_rows), (second_run, second_rows) = RUNS.items()
    counts = ", ".join(f"(SELECT count(*) FROM gold.{c.name}) AS {c.name}" for c in gold_contracts())
    for as_of, rows in [(first_run, first_rows), ("0", first_rows), (second_run, second_rows), ("1", second_rows)]:
        code, out, err = _sql(capsys, monkeypatch, f"SELECT {counts}", "--as-of", as_of, "--format", "json")
        assert code == 0, err
        assert json.loads(out) == [{c.name: rows for c in gold_contracts()}], as_of


def test_a_run_that_changed_nothing_reads_the_state_it_left(spark, analyst):
    """publish makes no commit when the content is unchanged; that run's state is still found (by its gate)."""
    run_id = "manual__2026-11-02T00:00:00+00:00"
    with pytest.raises(access.AccessError, match=re.escape(f"unknown run id '{run_id}'")):
        access.resolve_as_of(spark, analyst, run_id)
    for contract in gold_contracts():
        result = RuleResult(
            f"{contract.name}.rows", "expect_table_row_count_to_be_between", "fail", True, 5, 0, 0.0, None
        )
        record_all_results(spark, analyst, run_id, [("gold", contract.name, [result])])
        lake.replace(
            lake.read(spark, analyst.table("gold", contract.name)), analyst.table("staging/gold", contract.name)
        )
        assert publish(spark, analyst, contract.name, run_id=run_id) == 1  # unchanged: no new commit
    state = access.resolve_as_of(spark, analyst, run_id)
    assert state.versions == {c.name: 1 for c in gold_contracts()}


@pytest.mark.engines
def test_publish_on_spark_and_in_memory_make_the_same_commits(spark, tmp_path):
    """A local lake publishes by delta-rs (in memory), any other by Spark; either may follow the other on
    the same gold table. Each commit carries its run, the same content reads back whichever wrote it, and
    content already published is not committed again, whichever engine published it."""
    local = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    on_spark = Settings.from_env({"PLACELAKE_HOME": str(tmp_path), "PLACELAKE_GATE_MEMORY_BYTES": "0"})
    contract = next(c for c in gold_contracts() if c.name == "person")
    staging, gold = local.table("staging/gold", "person"), local.table("gold", "person")
    rows = _contract_rows(spark, contract, 6)
    published = [
        (on_spark, "run-a", rows.limit(4)),
        (local, "run-b", rows),  # in memory after Spark
        (local, "run-c", rows),  # unchanged: no commit
        (on_spark, "run-d", rows),  # unchanged, though delta-rs wrote it: no commit
        (on_spark, "run-e", rows.limit(2)),  # Spark after delta-rs
        (local, "run-f", rows.limit(2)),  # unchanged, though Spark wrote it: no commit
    ]
    versions = []
    for settings, run_id, staged in published:
        lake.replace(staged, staging)
        versions.append(publish(spark, settings, "person", run_id=run_id))
        assert sorted(lake.read(spark, gold).collect()) == sorted(staged.collect()), run_id
    assert versions == [0, 1, 1, 1, 2, 2]
    assert [access._run_of(m) for m in lake.recent_user_metadata(spark, gold)] == ["run-e", "run-b", "run-a"]


def test_every_query_is_audited_without_sql_text_or_values(spark, analyst, capsys, monkeypatch):
    before = len(_audit(spark, analyst)) if lake.table_exists(spark, analyst.table(*access.AUDIT_TABLE)) else 0
    marker = "zz-literal-7431"
    _sql(capsys, monkeypatch, f"SELECT count(*) AS n FROM gold.person WHERE person_key <> '{marker}'")
    _sql(capsys, monkeypatch, "SELECT * FROM gold.nonesuch")
    _sql(capsys, monkeypatch, "DROP VIEW gold.person")
    rows = _audit(spark, analyst)[before:]
    assert [(r.interface, r.status, r.tables, r.rows) for r in rows] == [
        ("cli", "ok", ["person"], 1),
        ("cli", "error", [], None),
        ("cli", "refused", ["person"], None),
    ]
    assert {r.user for r in rows} == {getpass.getuser()}
    assert all(r.audited_at is not None and len(r.statement_sha256) == 64 for r in rows)
    stored = json.dumps([r.asDict() for r in rows], default=str)
    assert marker not in stored  # the statement's literals are not kept

    # Delta itself refuses to rewrite the audit (delta.appendOnly).
    with pytest.raises(Exception, match="(?i)append"):
        DeltaTable.forPath(spark, analyst.table(*access.AUDIT_TABLE)).delete()


@pytest.mark.engines
def test_the_audit_is_one_append_only_table_whether_spark_or_delta_rs_appends(spark, tmp_path):
    """A lake on local disk audits by delta-rs, any other by Spark (here: the same folder as a file:// URI);
    either may append after the other, and Delta refuses a rewrite of what either wrote."""
    local = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    by_uri = Settings.from_env({"PLACELAKE_HOME": f"file://{tmp_path}"})
    assert local.is_local() and not by_uri.is_local()
    statements = [(local, "SELECT 1"), (by_uri, "SELECT 2"), (local, "SELECT 3")]
    for settings, statement in statements:
        row = access.audit_row(interface="cli", statement=statement, tables=["gold.person"], rows=1, status="ok")
        access.write_audit(spark, settings, [row])
    rows = _audit(spark, local)
    assert [r.statement_sha256 for r in rows] == [hashlib.sha256(s.encode()).hexdigest() for _, s in statements]
    assert all(r.tables == ["gold.person"] and r.rows == 1 and r.audited_at is not None for r in rows)
    commits = DeltaTable.forPath(spark, local.table(*access.AUDIT_TABLE)).history().orderBy("version").collect()
    assert ["Spark" in (c.engineInfo or "") for c in commits] == [False, True, False]
    with pytest.raises(Exception, match="(?i)append"):
        DeltaTable.forPath(spark, local.table(*access.AUDIT_TABLE)).delete()


def test_the_shell_reads_statements_from_stdin(analyst, capsys, monkeypatch):
    script = (
        ".tables\n"
        "SELECT count(*) AS n\n"
        "  FROM gold.person;  SELECT 'a;b' AS s;\n"
        "-- a comment; not a statement\n"
        ".schema gold.person\n"
        "SELECT * FROM gold.nonesuch;\n"
        "help\n"
        ".quit\n"
        "SELECT 'never run';\n"
    )
    code, out, err = _sql(capsys, monkeypatch, "--format", "csv", stdin=script)
    assert code == 1  # one statement failed: a piped script can be checked
    lines = out.splitlines()
    assert [f"gold.{c.name}  (version latest)" for c in gold_contracts()] == lines[: len(gold_contracts())]
    assert "n\n5\ns\na;b\n" in out
    assert "  person_key                   string" in out
    assert "Statements end with ';'" in out
    assert "never run" not in out
    assert "unknown table `gold`.`nonesuch`" in err


def test_the_report_links_the_dictionary(spark, analyst):
    from jobs.dictionary import write_dictionary
    from jobs.report import build_report

    html_path, md_path = write_dictionary(analyst)
    assert Path(html_path).parent == Path(analyst.reports)
    assert "href='dictionary.html'" in build_report(spark, analyst, "manual__2026-11-01T00:00:00+00:00")


def test_python_reads_every_gold_table_with_deltalake_without_spark(spark, gold_lake):
    """delta-rs, not Spark: the tables use no reader or writer feature that shuts other readers out."""
    from deltalake import DeltaTable as RsDeltaTable

    tables = access.gold_tables(gold_lake)
    assert set(tables) == {c.name for c in gold_contracts()}
    for contract in gold_contracts():
        table = RsDeltaTable(tables[contract.name])
        protocol = table.protocol()
        assert (
            protocol.min_reader_version == 1 and not protocol.reader_features
        )  # no deletion vectors, no column mapping
        assert "delta.columnMapping.mode" not in table.metadata().configuration
        frame = table.to_pandas()
        assert list(frame.columns) == contract.column_names
        assert len(frame) == RUNS["manual__2026-11-01T00:00:00+00:00"]
        assert table.to_pyarrow_table().num_rows == len(frame)
        old = RsDeltaTable(tables[contract.name], version=0).to_pandas()
        assert len(old) == RUNS["manual__2026-10-01T00:00:00+00:00"]
        runs = [json.loads(h["userMetadata"])["run_id"] for h in table.history() if h.get("userMetadata")]
        assert runs == list(reversed(RUNS))  # newest first: each publish names its run


# ---- the Thrift (JDBC/ODBC) server, with beeline as the client ------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _beeline(url: str, sql: str) -> subprocess.CompletedProcess:
    jars = Path(pyspark.__file__).parent / "jars" / "*"
    return subprocess.run(
        ["java", "-cp", str(jars), "org.apache.hive.beeline.BeeLine", "-u", url, "-n", "analyst1"]
        + ["--silent=true", "--showHeader=true", "--outputformat=csv2", "-e", sql],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def thrift_server(gold_lake):
    port = _free_port()
    log_path = Path(gold_lake.home) / "thrift.log"
    env = {
        **os.environ,
        "PLACELAKE_HOME": gold_lake.home,
        "PLACELAKE_SPARK_MASTER": "local[1]",
        "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        "PLACELAKE_DRIVER_MEMORY": "1g",
        "PLACELAKE_SQL_PORT": str(port),
    }
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jobs.thrift"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 300
    while "listening" not in log_path.read_text() and server.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if "listening" not in log_path.read_text():
        server.kill()
        pytest.fail("the Thrift server did not start:\n" + log_path.read_text()[-5000:])
    yield f"jdbc:hive2://127.0.0.1:{port}/gold", server, log_path
    if server.poll() is None:
        server.terminate()
        server.wait(timeout=120)


def test_beeline_queries_gold_over_jdbc_and_the_session_is_audited(spark, gold_lake, thrift_server):
    url, server, log_path = thrift_server
    silver_path = gold_lake.table("silver", "person")
    result = _beeline(
        url, f"SELECT count(*) AS n FROM gold.person; SHOW TABLES IN gold; SELECT * FROM delta.`{silver_path}`;"
    )
    out = result.stdout
    assert out.splitlines()[:2] == ["n", "5"], result.stdout + result.stderr[-3000:]
    for contract in gold_contracts():
        assert f"gold,{contract.name},false" in out
    assert SECRET_NAME not in out  # raw paths are off in every JDBC session
    assert "TABLE_OR_VIEW_NOT_FOUND" in result.stderr

    # Stopping the server flushes its audit; then the lake says who connected and what they read.
    server.terminate()
    assert server.wait(timeout=120) == 0, log_path.read_text()[-3000:]
    rows = [r for r in _audit(spark, gold_lake) if r.interface == "thrift"]
    assert {r.user for r in rows} == {"analyst1"}
    assert {r.client for r in rows} == {"127.0.0.1"}
    assert [r.statement_kind for r in rows if r.statement_kind == "CONNECT"] == ["CONNECT"]
    by_kind = sorted((r.statement_kind, r.tables, r.status) for r in rows if r.statement_kind != "CONNECT")
    assert by_kind == [("SELECT", [], "error"), ("SELECT", ["person"], "ok"), ("SHOW", [], "ok")]
    assert len({r.session_id for r in rows}) == 1
