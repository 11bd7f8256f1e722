"""The hostile corpus (hostile.py) delivered beside a place's good extracts, through a whole `placelake run`.

Each kind gets its named outcome in the manifest, with a rule, a reason that
names no value from the file, and the line where one applies; rejected files
are listed in quarantine/files, bad rows in quarantine/rows with file and line;
every other file lands, every gold table publishes, conservation holds and no
row is lost. Formula and SQL-looking strings are data: bronze keeps them exactly
as delivered (nothing evaluates them), and none reaches gold.
"""

from __future__ import annotations

import pytest
from hostile import FORMULA, SQL
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import lake
from jobs.contracts import gold_contracts, source_contracts

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _manifest(spark, settings) -> dict:
    rows = lake.read(spark, settings.table("ops", "landing_manifest")).collect()
    return {r.path[len(settings.landing) + 1 :]: r for r in rows}


def test_the_corpus_holds_at_least_20_kinds(baseline):
    assert len({k.name for k in baseline.kinds}) >= 20


def test_every_hostile_file_gets_its_named_outcome(baseline, spark):
    manifest = _manifest(spark, baseline.settings)
    got = {k.name: (manifest[k.path].status, manifest[k.path].rule) for k in baseline.kinds if k.path in manifest}
    assert got == {k.name: (k.status, k.rule) for k in baseline.kinds}
    for kind in baseline.kinds:
        row = manifest[kind.path]
        if kind.status == "rejected":
            assert row.reason and row.rows_landed == 0, kind.name
        if kind.rows_landed is not None:
            assert row.rows_landed == kind.rows_landed, kind.name
        if kind.rule in ("file.encoding", "file.header", "file.header_order", "file.extra_column"):
            assert row.line is not None, kind.name


def test_rejected_files_are_quarantined_and_bad_rows_kept_with_file_line_and_rule(baseline, spark):
    settings = baseline.settings
    files = lake.read(spark, settings.path("lake", "quarantine", "files")).collect()
    quarantined_files = {r.path[len(settings.landing) + 1 :]: r.rule for r in files}
    rows = lake.read(spark, settings.path("lake", "quarantine", "rows")).where(F.col("stage") == "land").collect()
    for kind in baseline.kinds:
        if kind.status == "rejected":
            assert quarantined_files.get(kind.path) == kind.rule, kind.name
        mine = sorted((r.line, r.rule) for r in rows if r.source_file == f"{settings.landing}/{kind.path}")
        assert mine == [(line, kind.row_rule) for line in kind.bad_lines], kind.name


def test_no_reason_repeats_a_value_from_the_file(baseline, spark):
    """Reasons go to logs and the report: rule names, counts and positions only."""
    settings = baseline.settings
    reasons = [r.reason or "" for r in lake.read(spark, settings.table("ops", "landing_manifest")).collect()]
    reasons += [r.reason for r in lake.read(spark, settings.path("lake", "quarantine", "rows")).collect()]
    assert reasons
    for reason in reasons:
        assert len(reason) < 600
        for value in ("Hostile", "RH00", "LK2 9QD", "9990000018", "1970-01-01", "HYPERLINK", "DROP TABLE"):
            assert value not in reason, (value, reason[:200])


def test_formula_sql_and_odd_values_land_exactly_as_delivered_and_inert(baseline, spark):
    settings = baseline.settings
    bronze = lake.read(spark, settings.table("bronze", "gp_registrations"))
    for kind in baseline.kinds:
        for column, value in kind.values.items():
            held = bronze.where(F.col("_source_file") == f"{settings.landing}/{kind.path}").select(column).collect()
            assert [r[0] for r in held][:1] == [value], kind.name
    # The symlink's target was never read.
    assert bronze.where(F.col("registration_id") == "RH0000050").count() == 0
    # Every table a SQL string names is still there.
    assert lake.table_exists(spark, settings.table("gold", "person"))


def test_a_formula_where_a_code_belongs_is_quarantined_at_clean_with_file_and_line(baseline, spark):
    """practice_code '+cmd|...' fails its contract pattern: clean rejects the row, which stays in quarantine."""
    settings = baseline.settings
    formula = next(k for k in baseline.kinds if k.name == "spreadsheet formula cells")
    rows = lake.read(spark, settings.path("lake", "quarantine", "rows")).where(
        (F.col("stage") == "clean") & (F.col("source_file") == f"{settings.landing}/{formula.path}")
    )
    assert sorted((r.line, r.rule, r.reason) for r in rows.collect()) == [
        (2, "clean.invalid_practice_code", "clean.invalid_practice_code")
    ]


def test_nothing_a_spreadsheet_would_evaluate_reaches_gold(baseline, spark):
    """Analysts export gold to CSV and open it in Excel: no string cell may start with = + - @ or a tab."""
    settings = baseline.settings
    for contract in gold_contracts():
        gold = lake.read(spark, settings.table("gold", contract.name))
        strings = [f.name for f in gold.schema.fields if isinstance(f.dataType, T.StringType)]
        for column in strings:
            risky = gold.where(F.col(column).rlike(r"^[=+\-@\t\r]")).count()
            assert risky == 0, (contract.name, column)
        for column in strings:
            assert gold.where(F.col(column).isin(FORMULA, SQL)).count() == 0, (contract.name, column)


def test_the_other_sources_still_land_and_every_gold_table_publishes(baseline, spark):
    out = baseline.results[0].stdout
    assert "land=success" in out and "publish=success" in out, baseline.results[0].tail()
    manifest = _manifest(spark, baseline.settings)
    landed = {r.source for r in manifest.values() if r.status == "landed"}
    assert landed == {c.name for c in source_contracts()}
    for contract in gold_contracts():
        assert f"  {contract.name:<14}PASS" in out, contract.name


def test_conservation_holds_and_no_row_is_lost(baseline, spark):
    settings = baseline.settings
    conservation = lake.read(spark, settings.table("ops", "conservation")).collect()
    assert {r.source for r in conservation} == {c.name for c in source_contracts()}
    assert all(r.holds for r in conservation)
    manifest = lake.read(spark, settings.table("ops", "landing_manifest")).where(F.col("status") == "landed")
    totals = manifest.selectExpr(
        "sum(rows_in_file - rows_landed - rows_quarantined) AS lost",
        "sum(rows_landed) AS landed",
        "sum(rows_quarantined) AS quarantined",
    ).first()
    bronze = sum(lake.read(spark, p).count() for p in lake.table_paths(settings, "bronze").values())
    rows = lake.read(spark, settings.path("lake", "quarantine", "rows")).where(F.col("stage") == "land").count()
    assert (totals.lost, totals.landed, totals.quarantined) == (0, bronze, rows)
