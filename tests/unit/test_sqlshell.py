"""The pieces of analyst access that need no lake: statement splitting, output formats,
the read-only guard, which tables a statement names, and what an audit row keeps."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from jobs import access
from jobs.sqlshell import Result, split_statements, write_result

GOLD = ["care_event", "person", "place_month"]


def test_statements_end_at_semicolons_outside_quotes_and_comments():
    statements, rest = split_statements(
        "SELECT 'a;b' AS s; SELECT \"x;\" ;\n-- not; a statement\nSELECT `c;d` FROM t;\nSELECT 'O\\'Neill;'"
    )
    assert statements == ["SELECT 'a;b' AS s", 'SELECT "x;"', "SELECT `c;d` FROM t"]
    assert rest == "\nSELECT 'O\\'Neill;'"  # unfinished: waits for its ';'


def test_formats_keep_nulls_empty_and_dates_iso():
    result = Result(["name", "n", "d"], [("Zoë O'Brien", None, date(2026, 1, 5)), ("a,b", 7, None)])
    out = io.StringIO()
    write_result(result, "csv", out)
    assert out.getvalue() == 'name,n,d\nZoë O\'Brien,,2026-01-05\n"a,b",7,\n'
    out = io.StringIO()
    write_result(result, "json", out)
    assert json.loads(out.getvalue()) == [
        {"name": "Zoë O'Brien", "n": None, "d": "2026-01-05"},
        {"name": "a,b", "n": 7, "d": None},
    ]
    out = io.StringIO()
    write_result(result, "table", out)
    assert out.getvalue().splitlines() == [
        "name         n  d",
        "-----------  -  ----------",
        "Zoë O'Brien     2026-01-05",
        "a,b          7",
        "(2 rows)",
    ]


def test_publish_metadata_names_the_run_only():
    assert json.loads(access.publish_metadata("manual__2026-11-01")) == {"run_id": "manual__2026-11-01"}
    assert access.publish_metadata(None) is None
    assert access._run_of(access.publish_metadata("r1")) == "r1"
    assert access._run_of("not json") is None and access._run_of('["r1"]') is None


def test_an_audit_row_keeps_a_hash_not_the_statement():
    statement = "SELECT * FROM gold.person WHERE person_key = 'ab12'"
    row = access.audit_row(interface="cli", statement=statement, tables=["person"], rows=0, status="ok")
    assert row["statement_kind"] == "SELECT"
    assert len(row["statement_sha256"]) == 64
    assert "ab12" not in json.dumps(row, default=str)


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM gold.person",
        "with t as (select 1) select * from t",
        "FROM gold.person SELECT *",
        "VALUES (1)",
        "(SELECT 1)",
        "SHOW TABLES IN gold",
        "DESCRIBE gold.person",
        "EXPLAIN SELECT 1",
        "SELECT 'DROP TABLE x; Command' AS looks_like_a_write",
    ],
)
def test_queries_pass_the_read_only_guard(spark, statement):
    access.check_read_only(spark, statement)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE s USING delta LOCATION '/lake/silver/person'",
        "CREATE TEMPORARY VIEW v AS SELECT 1",
        "INSERT INTO gold.person SELECT * FROM gold.person",
        "WITH t AS (SELECT 1) INSERT INTO x SELECT * FROM t",
        "SET spark.sql.runSQLOnFiles=true",
        "DROP VIEW gold.person",
        "CACHE TABLE gold.person",
        "MERGE INTO gold.person t USING gold.person s ON t.person_key = s.person_key WHEN MATCHED THEN DELETE",
        "  delete from gold.person",
    ],
)
def test_writes_and_settings_are_refused(spark, statement):
    with pytest.raises(access.AccessError, match="only queries are allowed"):
        access.check_read_only(spark, statement)


def test_referenced_tables_finds_gold_names_in_joins_and_subqueries(spark):
    statement = (
        "SELECT * FROM person p JOIN gold.care_event c ON p.person_key = c.person_key "
        "WHERE p.ward_code IN (SELECT ward_code FROM gold.place_month) AND c.source IN (SELECT x FROM other.t)"
    )
    assert access.referenced_tables(spark, statement, GOLD) == ["care_event", "person", "place_month"]
    assert access.referenced_tables(spark, "SELECT * FROM silver.person", GOLD) == []
    assert access.referenced_tables(spark, "SELECT FROM (", GOLD) == []
