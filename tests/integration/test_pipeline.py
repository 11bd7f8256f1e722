"""End to end: `placelake run` on a tiny generated place, with real Spark,
Delta, Great Expectations and Airflow (dag.test in a subprocess), then
assertions on what it published."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import gate, lake
from jobs.config import REPO_ROOT, Settings
from jobs.contracts import gold_contracts, source_contracts, table_contract
from jobs.gate import GateFailed, gate_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def place(pipeline_run):
    """Settings for the lake the shared first run built (tests/integration/conftest.py)."""
    return pipeline_run.settings


def test_run_succeeds_and_summarises_every_gold_table(pipeline_run):
    assert pipeline_run.result.returncode == 0
    out = pipeline_run.result.stdout
    assert "land=success" in out and "report=success" in out
    for contract in gold_contracts():
        # name, gate PASS, row count, Delta version 0 (first publication)
        assert re.search(rf"^\s+{contract.name}\s+PASS\s+[1-9]\d*\s+0\s*$", out, re.MULTILINE), contract.name
    assert "quality report:" in out
    # Each stage releases what it cached without a warning per checkpoint (jobs.spark.releases_what_it_cached).
    assert "locally checkpointed" not in out + pipeline_run.result.stderr


def _pseudonym(value: str) -> str:
    """person_key / event_key as gold should have made them, with the key the run was given."""
    return hmac.new(os.environ["PLACELAKE_PSEUDONYM_KEY"].encode(), value.encode(), hashlib.sha256).hexdigest()


def _opted_out_person_ids(spark, place) -> set[str]:
    """Linked people with any record (or best-known record) carrying a number on the silver opt-out list."""
    listed = {r.nhs_number for r in lake.read(spark, place.table("silver", "opt_outs")).collect()}
    links = lake.read(spark, place.table("silver", "person_link"))
    found = {r.person_id for r in lake.read(spark, place.table("silver", "person")).collect() if r.nhs_number in listed}
    for contract in source_contracts():
        if contract.kind == "person_events":
            records = lake.read(spark, place.table("silver", contract.name)).where(F.col("nhs_number").isin(*listed))
            found |= {r.person_id for r in records.join(links, ["source", "record_id"], "inner").collect()}
    return found


def test_gold_tables_are_published_at_their_grain(pipeline_run, spark, place):
    person = lake.read(spark, place.table("gold", "person"))
    silver_person = lake.read(spark, place.table("silver", "person"))
    opted_out = _opted_out_person_ids(spark, place)
    assert opted_out, "the generated place has people on the opt-out list"
    assert person.count() == silver_person.count() - len(opted_out) > 0
    assert person.select("person_key").distinct().count() == person.count()

    care_event = lake.read(spark, place.table("gold", "care_event"))
    links = lake.read(spark, place.table("silver", "person_link"))
    assert care_event.count() == links.where(~F.col("person_id").isin(*opted_out)).count()
    orphans = care_event.join(person, on="person_key", how="left_anti").count()
    assert orphans == 0

    place_month = lake.read(spark, place.table("gold", "place_month"))
    wards = place_month.where(F.col("area_level") == "ward")
    assert wards.select("area_code").distinct().count() == 10
    assert place_month.where(F.col("area_level") == "place").count() == 24  # one place row per month
    counts = [c.name for c in table_contract("gold", "place_month").columns if c.type == "long"]
    for name in ("place_month", "cohort_area"):
        table = lake.read(spark, place.table("gold", name))
        for column in [c for c in counts if c in table.columns] + (["people"] if name == "cohort_area" else []):
            assert table.where(F.col(column).between(1, 7) | (F.col(column) % 5 != 0)).count() == 0, (name, column)
    # Every cohort member is a published person.
    for name in ("cohort_hiu", "cohort_delay", "cohort_risk"):
        cohort = lake.read(spark, place.table("gold", name))
        assert cohort.join(person, on="person_key", how="left_anti").count() == 0, name


def test_people_on_the_opt_out_list_are_in_no_gold_table(pipeline_run, spark, place):
    """The generator's truth names who opted out: none of their people or records reach gold."""
    opted = {r["truth_id"] for r in _truth(place, "opt_outs.csv")}
    assert opted
    records = [r for r in _truth(place, "records.csv") if r["truth_id"] in opted]
    event_keys = {_pseudonym(f"{r['source']}:{r['record_id']}") for r in records}
    linked = (
        lake.read(spark, place.table("silver", "person_link"))
        .where(F.concat_ws(":", "source", "record_id").isin(*{f"{r['source']}:{r['record_id']}" for r in records}))
        .select("person_id")
        .distinct()
        .collect()
    )
    person_keys = {_pseudonym(r.person_id) for r in linked}
    assert event_keys and person_keys
    for contract in gold_contracts():
        table = lake.read(spark, place.table("gold", contract.name))
        for column in ("person_key", "event_key"):
            if column in table.columns:
                keys = event_keys if column == "event_key" else person_keys
                assert table.where(F.col(column).isin(*keys)).count() == 0, (contract.name, column)


def _truth(place, name: str) -> list[dict[str, str]]:
    with open(Path(place.path("truth", name)), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_delivered_file_meets_the_fate_the_truth_expects(pipeline_run, spark, place):
    manifest = {
        Path(m.path).relative_to(place.landing).as_posix(): m
        for m in lake.read(spark, place.table("ops", "landing_manifest")).collect()
    }
    assert {m.source for m in manifest.values()} == {c.name for c in source_contracts()}
    files = _truth(place, "files.csv")
    assert set(manifest) == {f["file"] for f in files}
    for f in files:
        m = manifest[f["file"]]
        status, _, rule = f["expected"].partition(":")
        # A duplicate names its rule; a file with a BOM lands with the BOM noted.
        rule = rule or {"duplicate": "file.duplicate"}.get(status) or ("file.bom" if f["damage"] == "bom" else "")
        assert (m.status, m.rule or "") == (status, rule), f
        if m.status == "landed":
            assert m.rows_in_file == m.rows_landed + m.rows_quarantined == int(f["rows"]) > 0
            landed = lake.read(spark, place.table("bronze", m.source)).where(F.col("_file_sha256") == m.sha256)
            assert landed.count() == m.rows_landed
    assert {f["damage"] for f in files} >= {"bom", "latin1", "header_order", "empty", "sent_twice"}


def test_every_damaged_row_is_quarantined_where_the_truth_says(pipeline_run, spark, place):
    landed_files = {f["file"] for f in _truth(place, "files.csv") if f["expected"] == "landed"}
    damage = [d for d in _truth(place, "damage.csv") if d["file"] in landed_files]
    quarantine = lake.read(spark, place.path("lake", "quarantine", "rows"))

    def placed(stage: str) -> set[tuple[str, int]]:
        rows = quarantine.where(F.col("stage") == stage).select("source_file", "line").collect()
        return {(Path(r.source_file).relative_to(place.landing).as_posix(), r.line) for r in rows}

    expected_land = {(d["file"], int(d["line"])) for d in damage if d["kind"] == "ragged_row"}
    # Admission method and discharge destination go through national code lists: kept (and flagged when the
    # list does not know them), never quarantined (issue #5).
    national = {"admission_method", "discharge_destination"}
    expected_clean = {
        (d["file"], int(d["line"]))
        for d in damage
        if d["kind"] == "impossible_date" or (d["kind"] == "out_of_range_code" and d["field"] not in national)
    } - expected_land
    assert placed("land") == expected_land
    assert placed("clean") == expected_clean
    assert expected_clean, "a 300-person place should carry at least one bad row"

    # Every bronze row reaches silver, quarantine, or is superseded by a later version of its record.
    for contract in source_contracts():
        if contract.kind != "person_events":
            continue
        key = contract.record_key[0]
        bronze = lake.read(spark, place.table("bronze", contract.name))
        rejected = quarantine.where((F.col("stage") == "clean") & (F.col("source") == contract.name)).select(
            F.col("source_file").alias("_source_file"), F.col("line").alias("_line")
        )
        usable = bronze.join(rejected, on=["_source_file", "_line"], how="left_anti")
        silver = lake.read(spark, place.table("silver", contract.name))
        assert silver.count() == usable.select(key).distinct().count(), contract.name


def _landing_identifiers(place) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"nhs": set(), "name": set(), "dob": set(), "postcode": set()}
    encodings = {f["file"]: f["encoding"] for f in _truth(place, "files.csv")}
    for contract in source_contracts():
        for path in Path(place.landing, contract.name).rglob("*.*"):
            encoding = encodings.get(path.relative_to(place.landing).as_posix(), "utf-8")
            with open(path, encoding=encoding, newline="") as handle:
                if contract.format["type"] == "jsonl":
                    rows = []
                    for line in handle:
                        try:
                            rows.append(json.loads(line))
                        except ValueError:
                            continue
                else:
                    rows = csv.DictReader(handle, delimiter=contract.format["delimiter"])
                for row in rows:
                    for column in contract.direct_identifiers:
                        value = (row.get(column) or "").strip()
                        if not value:
                            continue
                        if "nhs" in column:
                            found["nhs"].add(re.sub(r"\D", "", value))
                        elif column in ("family_name", "given_name", "surname", "forename"):
                            found["name"].add(value.upper())
                        elif column in ("date_of_birth", "dob"):
                            # A birthday on the 1st is indistinguishable from gold's month buckets.
                            if not re.match(r"^(01/|\d{4}-\d{2}-01$)", value):
                                found["dob"].add(value)
                        elif column == "postcode":
                            found["postcode"].add(re.sub(r"\s", "", value.upper()))
    return found


def test_no_direct_identifier_reaches_gold_or_the_report(pipeline_run, spark, place):
    ids = _landing_identifiers(place)
    assert all(ids.values()), "the generated place should carry every kind of identifier"
    for contract in gold_contracts():
        table = lake.read(spark, place.table("gold", contract.name))
        for column, _dtype in table.dtypes:
            values = {str(r[0]) for r in table.select(column).distinct().collect() if r[0] is not None}
            upper = {v.upper() for v in values}
            compact = {re.sub(r"\s", "", v) for v in upper}
            # A closed code list is not a name, even where a code is spelt like one (White, the surname).
            codes = {a.upper() for a in contract.column(column).allowed or ()}
            assert not ((upper - codes) & ids["name"]), f"gold.{contract.name}.{column} holds a name"
            assert not (compact & ids["nhs"]), f"gold.{contract.name}.{column} holds an NHS number"
            assert not (compact & ids["postcode"]), f"gold.{contract.name}.{column} holds a postcode"
            assert not (values & ids["dob"]), f"gold.{contract.name}.{column} holds a date of birth"

    stored = " ".join(str(v) for row in lake.read(spark, place.table("ops", "dq_results")).collect() for v in row)
    stored += " ".join(str(v) for row in lake.read(spark, place.table("ops", "scorecard")).collect() for v in row)
    assert not set(re.findall(r"\d{10}", stored)) & ids["nhs"]
    assert not {p for p in ids["postcode"] if p in re.sub(r"\s", "", stored.upper())}
    assert not {d for d in ids["dob"] if d in stored}

    report = Path(place.reports, "quality.html").read_text(encoding="utf-8")
    report += " ".join(p.read_text(encoding="utf-8") for p in Path(place.reports).glob("data_docs/*.html"))
    digits = set(re.findall(r"\d{10}", re.sub(r"(\d) (\d)", r"\1\2", report)))
    assert not digits & ids["nhs"]
    assert not {p for p in ids["postcode"] if p in re.sub(r"\s", "", report)}
    assert not {d for d in ids["dob"] if d in report}


def test_deterministic_links_agree_with_the_truth(pipeline_run, spark, place):
    truth = (
        spark.read.option("header", True)
        .csv(place.path("truth", "records.csv"))
        .select("source", "record_id", "truth_id")
    )
    all_links = lake.read(spark, place.table("silver", "person_link"))
    links = all_links.join(truth, ["source", "record_id"], "inner").persist()
    assert links.count() == all_links.count()  # every linked record is one the generator made
    # Precision: records sitting with their person's majority truth. Identity noise (a wrong NHS number
    # that is still valid, a shared name and birthday) costs a little; more than 1% is a linkage bug.
    per_cluster = links.groupBy("person_id", "truth_id").count()
    majority = per_cluster.groupBy("person_id").agg(F.max("count").alias("n"), F.sum("count").alias("total"))
    agreed, total = majority.agg(F.sum("n"), F.sum("total")).first()
    assert agreed / total >= 0.99, agreed / total
    # Recall of the NHS-number pass: a person's NHS-linked records sit together, except for people
    # deliberately registered twice under a second number.
    twice = {d["record_id"] for d in _truth(place, "damage.csv") if d["kind"] == "registered_twice"}
    nhs_linked = links.where((F.col("method") == "nhs_number") & ~F.col("record_id").isin(*twice or {""}))
    people = nhs_linked.groupBy("truth_id").agg(F.countDistinct("person_id").alias("n"))
    split, whole = people.where("n > 1").count(), people.count()
    assert split / whole <= 0.01, (split, whole)
    links.unpersist()


def test_gate_blocks_a_broken_table_and_the_published_version_stays_readable(pipeline_run, spark, place):
    gold_path = place.table("gold", "person")
    staging_path = place.table("staging/gold", "person")
    version_before = lake.version(spark, gold_path)
    rows_before = lake.read(spark, gold_path).count()
    # Restored by version afterwards: a cached frame of the path would be refreshed by the overwrite.
    good_version = lake.version(spark, staging_path)
    good_staging = lake.read(spark, staging_path).localCheckpoint()

    broken = good_staging.unionByName(good_staging.limit(3))  # duplicate person_keys
    lake.replace(broken, staging_path)
    try:
        with pytest.raises(GateFailed, match=r"person: .*person\.person_key\.unique"):
            gate_all(spark, place, run_id="test-broken-gate")
        assert lake.version(spark, gold_path) == version_before
        assert lake.read(spark, gold_path).count() == rows_before
        failed = (
            lake.read(spark, place.table("ops", "dq_results"))
            .where((F.col("run_id") == "test-broken-gate") & ~F.col("success"))
            .select("table", "rule_id", "unexpected_count")
            .collect()
        )
        assert [(r.table, r.rule_id) for r in failed] == [("person", "person.person_key.unique")]
        assert failed[0].unexpected_count == 6
    finally:
        lake.replace(lake.read(spark, staging_path, version=good_version).localCheckpoint(), staging_path)
        assert lake.read(spark, staging_path).select("person_key").distinct().count() == good_staging.count()


def _homes_gated_in_memory(monkeypatch) -> list[str]:
    """The lake homes whose gate runs in memory from now on in this test, in order."""
    homes, in_memory = [], gate._gate_tables_locally

    def spied(spark, settings, *args):
        homes.append(settings.home)
        return in_memory(spark, settings, *args)

    monkeypatch.setattr(gate, "_gate_tables_locally", spied)
    return homes


def _damaged_staging(spark, place, home: Path, **env: str) -> Settings:
    """The run's gold (what its gate passed) staged again under home, broken so that rules of every kind
    fail or drop rows."""
    settings = Settings.from_env({"PLACELAKE_HOME": str(home), **env})
    shutil.copytree(place.path("lake", "gold"), settings.path("lake", "staging", "gold"))
    person = lake.read(spark, settings.table("staging/gold", "person")).orderBy("person_key").localCheckpoint()
    gone = [r.person_key for r in person.limit(5).collect()]
    # Five people missing (every table's person_exists, the cohort and place recounts), three twice (unique).
    lake.replace(
        person.where(~F.col("person_key").isin(gone)).unionByName(person.limit(8).offset(5)),
        settings.table("staging/gold", "person"),
    )
    events = lake.read(spark, settings.table("staging/gold", "care_event")).orderBy("event_key").localCheckpoint()
    numbered = events.withColumn("n", F.monotonically_increasing_id())
    damaged = numbered.select(
        F.when(F.col("n") < 2, F.lit("not-a-key")).otherwise(F.col("event_key")).alias("event_key"),  # pattern
        *[c for c in events.columns if c not in ("event_key", "duration_days", "organisation")],
        F.when(F.col("n").between(2, 4), F.lit(-1)).otherwise(F.col("duration_days")).alias("duration_days"),  # drop
        F.when(F.col("n") == 5, F.lit("nowhere")).otherwise(F.col("organisation")).alias("organisation"),  # allowed
    )
    lake.replace(damaged.select(*events.columns), settings.table("staging/gold", "care_event"))
    months = lake.read(spark, settings.table("staging/gold", "place_month")).orderBy("area_code", "month")
    disclosed = months.limit(1).withColumn("residents", F.lit(3))  # a count in 1-7
    lake.replace(
        disclosed.unionByName(months.offset(1)).localCheckpoint(), settings.table("staging/gold", "place_month")
    )
    return settings


@pytest.mark.engines
def test_the_gold_gate_finds_the_same_in_memory_as_on_spark(pipeline_run, spark, place, tmp_path, monkeypatch):
    """On local disk the gold gate validates with GX's pandas engine and DuckDB; elsewhere on Spark.
    Both must reach the same verdict on every rule, with the same counts, and drop the same rows."""

    def gated(settings: Settings) -> tuple[str, list, list[tuple], int]:
        with pytest.raises(GateFailed) as failed:
            gate_all(spark, settings, run_id="both-ways")
        results = lake.read(spark, settings.table("ops", "dq_results")).drop("validated_at").collect()
        quarantined = lake.read(spark, settings.path("lake", "quarantine", "rows")).select("stage", "source", "rule")
        kept = lake.read(spark, settings.table("staging/gold", "care_event")).count()
        return str(failed.value), sorted(results), sorted(tuple(r) for r in quarantined.collect()), kept

    in_memory = _homes_gated_in_memory(monkeypatch)
    local = _damaged_staging(spark, place, tmp_path / "local")
    locally = gated(local)
    # With more staged gold than PLACELAKE_GATE_MEMORY_BYTES (here 0: any) it is validated on Spark, as on an
    # object store.
    by_spark = gated(_damaged_staging(spark, place, tmp_path / "spark", PLACELAKE_GATE_MEMORY_BYTES="0"))
    assert in_memory == [local.home]
    assert by_spark == locally
    message, results, quarantined, _ = locally
    failed = {(r.table, r.rule_id): r.unexpected_count for r in results if not r.success}
    assert {
        ("care_event", "care_event.person_exists"),
        ("care_event", "care_event.event_key.pattern"),
        ("care_event", "care_event.organisation.allowed"),
        ("care_event", "care_event.end_not_before_start"),
        ("person", "person.person_key.unique"),
        ("place_month", "place_month.disclosure_control"),
        ("place_month", "place_month.agrees_with_care_event"),
    } <= set(failed), sorted(failed)
    assert failed[("care_event", "care_event.event_key.pattern")] == 2
    assert failed[("care_event", "care_event.end_not_before_start")] == 3
    assert failed[("person", "person.person_key.unique")] == 6
    assert quarantined == [("gate.gold", "care_event", "care_event.end_not_before_start")] * 3
    assert "care_event.person_exists" in message


def _damaged_silver(spark, place, home: Path, **env: str) -> Settings:
    """The run's silver copied under home and broken so that silver rules of every kind fail or warn:
    within a table, against its contract, and across tables (person_link and person)."""
    settings = Settings.from_env({"PLACELAKE_HOME": str(home), **env})
    shutil.copytree(place.path("lake", "silver"), settings.path("lake", "silver"))

    def damage(table: str, order: str, change) -> None:
        rows = lake.read(spark, settings.table("silver", table)).orderBy(order).localCheckpoint()
        numbered = rows.withColumn("n", F.monotonically_increasing_id())
        lake.replace(change(numbered).select(*rows.columns).localCheckpoint(), settings.table("silver", table))

    # Three records linked to nobody in person (every_record_linked), two probabilities over 1 (between).
    damage(
        "person_link",
        "record_id",
        lambda t: t.withColumn(
            "person_id", F.when(F.col("n") < 3, F.lit("nobody")).otherwise(F.col("person_id"))
        ).withColumn(
            "match_probability", F.when(F.col("n").between(3, 4), F.lit(1.5)).otherwise(F.col("match_probability"))
        ),
    )
    # Two events before their person was born (a warning), one record twice (its key's uniqueness).
    damage(
        "ae_attendances",
        "record_id",
        lambda t: t.withColumn(
            "event_start", F.when(F.col("n") < 2, F.date_sub(F.col("date_of_birth"), 1)).otherwise(F.col("event_start"))
        ).unionByName(t.where(F.col("n") == 5)),
    )
    return settings


@pytest.mark.engines
def test_the_silver_checks_find_the_same_in_memory_as_on_spark(pipeline_run, spark, place, tmp_path, monkeypatch):
    """On local disk the silver checks validate in memory (delta-rs, GX's pandas engine, DuckDB); elsewhere
    on Spark. Both must fail the build on the same rules with the same counts, and record the same results."""

    def checked(settings: Settings) -> tuple[str, list]:
        with pytest.raises(GateFailed) as failed:
            gate.check_silver(spark, settings, run_id="both-ways")
        results = lake.read(spark, settings.table("ops", "dq_results")).drop("validated_at").collect()
        return str(failed.value), sorted(results)

    in_memory = _homes_gated_in_memory(monkeypatch)
    local = _damaged_silver(spark, place, tmp_path / "local")
    locally = checked(local)
    by_spark = checked(_damaged_silver(spark, place, tmp_path / "spark", PLACELAKE_GATE_MEMORY_BYTES="0"))
    assert in_memory == [local.home]
    assert by_spark == locally
    message, results = locally
    unexpected = {(r.table, r.rule_id): r.unexpected_count for r in results if not r.success}
    assert unexpected[("person_link", "person_link.every_record_linked")] == 3
    assert unexpected[("person_link", "person_link.match_probability_is_a_probability")] == 2
    assert unexpected[("ae_attendances", "person_event.start_not_before_birth")] == 2
    assert unexpected[("ae_attendances", "ae_attendances.record_key.unique")] == 2
    assert "person_link.every_record_linked" in message and "ae_attendances.record_key.unique" in message
    # Every silver table the run made was checked, each rule once.
    assert {r.table for r in results} == {c.name for c in gate.silver_contracts(spark, local)}
    assert len({(r.table, r.rule_id) for r in results}) == len(results)


@pytest.mark.engines
def test_curate_builds_the_same_gold_in_duckdb_as_on_spark(pipeline_run, spark, place):
    """On a lake on local disk curate runs in DuckDB over delta-rs (jobs.curate_local); elsewhere on Spark
    (jobs.curate). From the run's silver both build the same rows in every gold table."""
    import collections
    from datetime import date

    from jobs import curate, curate_local
    from jobs.privacy import pseudonym_key

    as_of, key = date(2026, 11, 1), pseudonym_key()
    assert curate_local.curates_locally(place)
    assert not curate_local.curates_locally(dataclasses.replace(place, gate_memory_bytes=0))
    persons = lake.read(spark, place.table("silver", "person"))
    events = curate.linked_events(spark, place)
    by_spark = {
        name: df.toArrow()
        for name, df in curate.build_gold(persons, events, curate.opt_out_list(spark, place), key, as_of).items()
    }
    with lake.local_sql() as sql:
        curate_local.register_silver(sql, place)
        tables = curate_local.build_gold(sql, key, as_of)
        by_duckdb = {name: sql.sql(f"SELECT * FROM {table}").to_arrow_table() for name, table in tables.items()}
    assert set(by_duckdb) == set(by_spark) == {c.name for c in gold_contracts()}
    for name, table in by_spark.items():
        rows = collections.Counter(tuple(r.items()) for r in table.to_pylist())
        assert rows, name
        assert collections.Counter(tuple(r.items()) for r in by_duckdb[name].cast(table.schema).to_pylist()) == rows, (
            name
        )


@pytest.mark.engines
def test_the_report_reads_the_same_by_duckdb_as_by_spark(pipeline_run, spark, place):
    """On a lake on local disk the report's queries run in DuckDB over delta-rs, with no Spark job;
    the page is the one Spark's reads of the same tables make (a lake over the gate's memory)."""
    from jobs.report import ReportTables, build_report

    # The pipeline's run: dq_results also holds the gate test's run ("test-broken-gate"), linkage_metrics only runs'.
    (run_id,) = {r.run_id for r in lake.read(spark, place.table("ops", "linkage_metrics")).select("run_id").collect()}
    on_spark = dataclasses.replace(place, gate_memory_bytes=0)
    assert ReportTables(spark, place).local and not ReportTables(spark, on_spark).local

    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("report-by-duckdb", "the local report")
    try:
        local = build_report(spark, place, run_id)
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert tracker.getJobIdsForGroup("report-by-duckdb") == []
    by_spark = build_report(spark, on_spark, run_id)

    def undated(page: str) -> str:
        return re.sub(r"generated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", "generated -", page)

    assert "records linked into" in local and "months expected" in local
    assert undated(local) == undated(by_spark)


def test_report_renders_offline_in_a_real_browser(pipeline_run, place):
    chromium = shutil.which("chromium")
    assert chromium, "make test installs Debian's chromium; run the suite through make"
    report = Path(place.reports, "quality.html")
    page = report.read_text(encoding="utf-8")
    # Offline: nothing to fetch; links go to in-page anchors, the data dictionary and the Data Docs pages beside it.
    links = re.findall(r"""(?:src|href)=["'](?!#)([^"']+)""", page)
    assert "dictionary.html" in links
    assert all(link == "dictionary.html" or link.startswith("data_docs/") for link in links), links
    assert all((report.parent / link).is_file() for link in links)
    docs = sorted(report.parent.glob("data_docs/*.html"))
    assert {d.name for d in docs} >= {f"gold.{c.name}.html" for c in gold_contracts()}
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        assert not re.findall(r"""<(?:script|img|link)\b[^>]*(?:src|href)=["']https?:""", text), doc.name
        assert "<script" not in text

    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    flags = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={place.path('chromium-profile')}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    assert 'id="verdict"' in dom.stdout and "All gates passed" in dom.stdout
    assert [line for line in dom.stderr.splitlines() if ":CONSOLE" in line] == []
    # GX's own page for a gold table, rendered offline: loads clean and shows the suite's outcome.
    doc = report.parent / "data_docs" / "gold.person.html"
    dom = subprocess.run([*flags, "--dump-dom", doc.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0 and "gold_person" in dom.stdout
    assert [line for line in dom.stderr.splitlines() if ":CONSOLE" in line] == []

    screenshot = artifacts / "quality-report.png"
    shot = subprocess.run(
        [*flags, "--window-size=1200,2000", f"--screenshot={screenshot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0
    assert screenshot.stat().st_size > 20_000


def test_a_failing_gate_fails_its_task_and_the_run_and_gold_stays_as_it_was(pipeline_run, failed_gate_run, spark):
    """The second run (on a copy of the first run's lake) breaks a gold rule: its task, and the run, fail."""
    first, second = pipeline_run.settings, failed_gate_run.settings
    gold = {c.name: (first.table("gold", c.name), second.table("gold", c.name)) for c in gold_contracts()}

    result, rule = failed_gate_run.result, failed_gate_run.broken_rule
    assert result.returncode == 1
    # Airflow's failure callback alerted once, for the gate task, naming the rule (the watcher stays quiet).
    alerts = failed_gate_run.alerts
    assert [(a["dag_id"], a["task_id"]) for a in alerts] == [("placelake", "gate")]
    assert rule in alerts[0]["text"]
    out = result.stdout
    assert "gate=failed" in out and "publish=upstream_failed" in out and "report=success" in out
    assert re.search(rf"^\s+person\s+FAIL\s+.*{re.escape(rule)}", out, re.MULTILINE)
    # Gold is as the first run published it: same versions, same rows.
    for name, (before, after) in gold.items():
        assert lake.version(spark, after) == lake.version(spark, before), name
        assert lake.read(spark, after).count() == lake.read(spark, before).count(), name
    assert "A gate failed" in Path(second.reports, "quality.html").read_text(encoding="utf-8")


def test_a_run_with_nothing_new_to_link_leaves_the_links_as_the_last_link_left_them(
    pipeline_run, failed_gate_run, spark
):
    """The second run landed nothing new (every file a duplicate), so silver is as the first run
    left it: its link stage has nothing to read that the first did not, and writes nothing."""
    first, second = pipeline_run.settings, failed_gate_run.settings
    for table in ("person_link", "person", "person_id_history"):
        assert lake.version(spark, second.table("silver", table)) == lake.version(spark, first.table("silver", table))
    metrics_runs = [
        {r[0] for r in lake.read(spark, s.table("ops", "linkage_metrics")).select("run_id").distinct().collect()}
        for s in (first, second)
    ]
    assert metrics_runs[0] == metrics_runs[1] and len(metrics_runs[0]) == 1
    assert "person_link and person unchanged" in failed_gate_run.result.stdout


def test_silver_as_the_last_check_found_it_is_not_checked_again_but_its_results_are_recorded_for_the_run(
    failed_gate_run, spark
):
    """The second run's silver is the first run's: the same results, recorded under the second run."""
    settings = failed_gate_run.settings
    results = lake.read(spark, settings.table("ops", "dq_results")).where(F.col("layer") == "silver")
    by_run: dict[str, set] = {}
    for r in results.collect():
        by_run.setdefault(r.run_id, set()).add(
            (r.table, r.rule_id, r.severity, r.success, r.element_count, r.unexpected_count, r.observed_value)
        )
    assert len(by_run) == 2, sorted(by_run)
    first, second = by_run.values()
    assert first == second and first
    assert {t for t, *_ in first} >= {"person_link", "person", "gp_registrations"}
    assert re.search(
        r"silver checks: the \d+ tables and their rules are as run \S+ checked them", failed_gate_run.result.stdout
    )
    # What the check read is on its commit, so any later write to silver (or a changed rule) checks again.
    stamps = [json.loads(m) for m in lake.recent_user_metadata(spark, settings.table("ops", "dq_results"), limit=3)]
    silver = next(s for s in stamps if "silver_check" in s)
    assert silver["inputs"]["versions"] == {
        name: lake.version(spark, settings.table("silver", name)) for name in silver["inputs"]["versions"]
    }


def test_placelake_sql_sees_gold_only(pipeline_run, spark, place, monkeypatch, capsys):
    from jobs.cli import main

    monkeypatch.setenv("PLACELAKE_HOME", place.home)
    assert main(["sql", "SELECT count(*) AS people FROM gold.person", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["people", str(lake.read(spark, place.table("gold", "person")).count())]
    # Silver holds identifiers: it is not a table an analyst can name.
    assert main(["sql", "SELECT * FROM person_link"]) == 1
    assert "unknown table `person_link`" in capsys.readouterr().err


def test_placelake_status_lists_every_layer(pipeline_run, place, monkeypatch, capsys):
    from jobs.cli import main

    monkeypatch.setenv("PLACELAKE_HOME", place.home)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    for layer in ("bronze:", "silver:", "gold:", "ops:", "quarantine:"):
        assert layer in out
    assert re.search(r"^\s+person\s+version\s+\d+\s+\d+ rows$", out, re.MULTILINE)
