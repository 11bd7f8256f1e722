"""End to end: `placelake run` on a tiny generated place, with real Spark,
Delta, Great Expectations and Airflow (dag.test in a subprocess), then
assertions on what it published."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import REPO_ROOT
from jobs.contracts import gold_contracts, source_contract
from jobs.gate import GateFailed, gate_all

pytestmark = pytest.mark.integration

PEOPLE = 300


def run_pipeline(settings, run_date: str, **extra_env: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PLACELAKE_HOME": settings.home,
        "PLACELAKE_SPARK_MASTER": "local[2]",
        "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        "PLACELAKE_DRIVER_MEMORY": "2g",
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", "run", "--people", str(PEOPLE), "--date", run_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def pipeline_run(settings):
    result = run_pipeline(settings, "2026-11-01")
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-10000:] + result.stderr[-10000:])
    return result


def test_run_succeeds_and_summarises_every_gold_table(pipeline_run):
    assert pipeline_run.returncode == 0
    out = pipeline_run.stdout
    assert "land=success" in out and "report=success" in out
    for contract in gold_contracts():
        # name, gate PASS, row count, Delta version 0 (first publication)
        assert re.search(rf"^\s+{contract.name}\s+PASS\s+[1-9]\d*\s+0\s*$", out, re.MULTILINE), contract.name
    assert "quality report:" in out


def test_gold_tables_are_published_at_their_grain(pipeline_run, spark, settings):
    person = lake.read(spark, settings.table("gold", "person"))
    silver_person = lake.read(spark, settings.table("silver", "person"))
    assert person.count() == silver_person.count() > 0
    assert person.select("person_key").distinct().count() == person.count()

    care_event = lake.read(spark, settings.table("gold", "care_event"))
    links = lake.read(spark, settings.table("silver", "person_link"))
    assert care_event.count() == links.count()
    orphans = care_event.join(person, on="person_key", how="left_anti").count()
    assert orphans == 0

    place_month = lake.read(spark, settings.table("gold", "place_month"))
    assert place_month.select("ward_code").distinct().count() == 10
    assert place_month.where((F.col("residents") > 0) & (F.col("residents") < 8)).count() == 0


def test_every_delivered_row_is_accounted_for(pipeline_run, spark, settings):
    manifest = lake.read(spark, settings.table("ops", "landing_manifest")).collect()
    assert {m.source for m in manifest} == {"gp_registrations", "asc_services", "ons_postcodes"}
    for m in manifest:
        assert m.status == "landed"
        assert m.rows_in_file == m.rows_landed + m.rows_quarantined > 0
        assert (
            lake.read(spark, settings.table("bronze", m.source)).where(F.col("_file_sha256") == m.sha256).count()
            == m.rows_landed
        )

    quarantine = lake.read(spark, settings.path("lake", "quarantine", "rows"))
    ragged = quarantine.where((F.col("stage") == "land") & (F.col("rule") == "row.ragged")).collect()
    asc_lines = sum(1 for _ in open(ragged[0].source_file, encoding="utf-8"))
    assert [(r.source, r.line) for r in ragged] == [("asc_services", asc_lines)]  # the generator appends it last
    bad_date = quarantine.where((F.col("stage") == "clean") & (F.col("rule") == "clean.invalid_start_date")).count()
    assert bad_date == 1

    for source in ("gp_registrations", "asc_services"):
        bronze = lake.read(spark, settings.table("bronze", source)).count()
        silver = lake.read(spark, settings.table("silver", source)).count()
        cleaned_out = quarantine.where((F.col("stage") == "clean") & (F.col("source") == source)).count()
        assert bronze == silver + cleaned_out


def _landing_identifiers(settings) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"nhs": set(), "name": set(), "dob": set(), "postcode": set()}
    for source in ("gp_registrations", "asc_services"):
        contract = source_contract(source)
        for path in Path(settings.landing, source).rglob("*.*"):
            with open(path, encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle, delimiter=contract.format["delimiter"]):
                    for column in contract.direct_identifiers:
                        value = (row.get(column) or "").strip()
                        if not value:
                            continue
                        if "nhs" in column:
                            found["nhs"].add(re.sub(r"\D", "", value))
                        elif "name" in column or column in ("forename",):
                            found["name"].add(value.upper())
                        elif column in ("date_of_birth", "dob"):
                            found["dob"].add(value)
                        elif column == "postcode":
                            found["postcode"].add(re.sub(r"\s", "", value.upper()))
    return found


def test_no_direct_identifier_reaches_gold_or_the_report(pipeline_run, spark, settings):
    ids = _landing_identifiers(settings)
    assert all(ids.values()), "the generated place should carry every kind of identifier"
    for contract in gold_contracts():
        table = lake.read(spark, settings.table("gold", contract.name))
        for column, _dtype in table.dtypes:
            values = {str(r[0]) for r in table.select(column).distinct().collect() if r[0] is not None}
            upper = {v.upper() for v in values}
            compact = {re.sub(r"\s", "", v) for v in upper}
            assert not (upper & ids["name"]), f"gold.{contract.name}.{column} holds a name"
            assert not (compact & ids["nhs"]), f"gold.{contract.name}.{column} holds an NHS number"
            assert not (compact & ids["postcode"]), f"gold.{contract.name}.{column} holds a postcode"
            assert not (values & ids["dob"]), f"gold.{contract.name}.{column} holds a date of birth"

    stored = " ".join(str(v) for row in lake.read(spark, settings.table("ops", "dq_results")).collect() for v in row)
    stored += " ".join(str(v) for row in lake.read(spark, settings.table("ops", "scorecard")).collect() for v in row)
    assert not set(re.findall(r"\d{10}", stored)) & ids["nhs"]
    assert not {p for p in ids["postcode"] if p in re.sub(r"\s", "", stored.upper())}
    assert not {d for d in ids["dob"] if d in stored}

    report = Path(settings.reports, "quality.html").read_text(encoding="utf-8")
    digits = set(re.findall(r"\d{10}", re.sub(r"(\d) (\d)", r"\1\2", report)))
    assert not digits & ids["nhs"]
    assert not {p for p in ids["postcode"] if p in re.sub(r"\s", "", report)}
    assert not {d for d in ids["dob"] if d in report}


def test_deterministic_links_agree_with_the_truth(pipeline_run, spark, settings):
    truth = spark.read.option("header", True).csv(settings.path("truth", "records.csv"))
    links = lake.read(spark, settings.table("silver", "person_link")).join(truth, ["source", "record_id"], "inner")
    assert links.count() == lake.read(spark, settings.table("silver", "person_link")).count()
    # Precision: no person_id spans two true people.
    impure = links.groupBy("person_id").agg(F.countDistinct("truth_id").alias("n")).where("n > 1").count()
    assert impure == 0
    # Every record carrying a valid NHS number sits with all its true person's other NHS-bearing records.
    split = (
        links.where(F.col("method") == "nhs_number")
        .groupBy("truth_id")
        .agg(F.countDistinct("person_id").alias("n"))
        .where("n > 1")
        .count()
    )
    assert split == 0


def test_gate_blocks_a_broken_table_and_the_published_version_stays_readable(pipeline_run, spark, settings):
    gold_path = settings.table("gold", "person")
    staging_path = settings.table("staging/gold", "person")
    version_before = lake.version(spark, gold_path)
    rows_before = lake.read(spark, gold_path).count()
    good_staging = lake.read(spark, staging_path).cache()
    good_staging.count()

    broken = good_staging.unionByName(good_staging.limit(3))  # duplicate person_keys
    lake.replace(broken, staging_path)
    try:
        with pytest.raises(GateFailed, match=r"person: .*person\.person_key\.unique"):
            gate_all(spark, settings, run_id="test-broken-gate")
        assert lake.version(spark, gold_path) == version_before
        assert lake.read(spark, gold_path).count() == rows_before
        failed = (
            lake.read(spark, settings.table("ops", "dq_results"))
            .where((F.col("run_id") == "test-broken-gate") & ~F.col("success"))
            .select("table", "rule_id", "unexpected_count")
            .collect()
        )
        assert [(r.table, r.rule_id) for r in failed] == [("person", "person.person_key.unique")]
        assert failed[0].unexpected_count == 6
    finally:
        lake.replace(good_staging, staging_path)


def test_report_renders_offline_in_a_real_browser(pipeline_run, settings):
    chromium = shutil.which("chromium")
    assert chromium, "make test installs Debian's chromium; run the suite through make"
    report = Path(settings.reports, "quality.html")
    page = report.read_text(encoding="utf-8")
    # Offline: nothing to fetch, only in-page anchors.
    assert re.findall(r"""(?:src|href)=["'](?!#)([^"']+)""", page) == []

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
        f"--user-data-dir={settings.path('chromium-profile')}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    assert 'id="verdict"' in dom.stdout and "All gates passed" in dom.stdout
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


def test_a_failing_gate_fails_its_task_and_the_run_and_gold_stays_as_it_was(pipeline_run, spark, settings, tmp_path):
    gold = {c.name: settings.table("gold", c.name) for c in gold_contracts()}
    versions_before = {name: lake.version(spark, path) for name, path in gold.items()}
    rows_before = {name: lake.read(spark, path).count() for name, path in gold.items()}

    rules = tmp_path / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", rules)
    with open(rules / "gold" / "person.yaml", "a", encoding="utf-8") as handle:
        handle.write(
            "  - id: person.impossible_for_this_test\n"
            "    expectation: expect_table_row_count_to_be_between\n"
            "    kwargs: {max_value: 0}\n"
            "    severity: fail\n"
            "    description: A rule no real table can pass.\n"
        )
    result = run_pipeline(settings, "2026-11-02", PLACELAKE_EXPECTATIONS_DIR=str(rules))

    assert result.returncode == 1
    out = result.stdout
    assert "gate=failed" in out and "publish=upstream_failed" in out and "report=success" in out
    assert re.search(r"^\s+person\s+FAIL\s+.*person\.impossible_for_this_test", out, re.MULTILINE)
    assert {name: lake.version(spark, path) for name, path in gold.items()} == versions_before
    assert {name: lake.read(spark, path).count() for name, path in gold.items()} == rows_before
    assert "A gate failed" in Path(settings.reports, "quality.html").read_text(encoding="utf-8")
