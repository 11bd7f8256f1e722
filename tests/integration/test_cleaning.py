"""Cleaning with real Spark and Delta on a tiny generated place, delivered in two
runs: incremental cleaning gives the same silver as a rebuild from bronze, every
build conserves rows, history answers for an earlier date, a delivery that
supersedes most of a source is stopped, and `placelake rebuild` cleans again
from bronze."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import pytest
from delta.tables import DeltaTable
from deltalake import DeltaTable as DeltaLake
from pyspark.sql import functions as F

from jobs import clean, history, lake, land
from jobs.cli import main as placelake
from jobs.config import Settings
from jobs.contracts import source_contract
from jobs.generate import NoiseRates, generate_place

pytestmark = pytest.mark.integration

# Three person sources (ISO and UK dates, CSV and pipes, names and none) and the postcode directory
# they are located by: enough to show the behaviour, few enough to stay quick.
PERSON_SOURCES = ["gp_registrations", "apc_episodes", "community_contacts"]
SOURCES = ["ons_postcodes", *PERSON_SOURCES]
# Columns a run stamps (which run, when): everything else must match between incremental and rebuild.
RUN_STAMPS = {"batch_id", "cleaned_run_id", "cleaned_at", "run_id", "measured_at"}


def _deliveries(landing: Path) -> list[str]:
    return sorted({p.name for p in landing.glob("*/*") if p.is_dir()})


@pytest.fixture(scope="module")
def place(tmp_path_factory, spark):
    """A 120-person place landed and cleaned in two runs: the first delivery, then the rest."""
    home = tmp_path_factory.mktemp("clean-home")
    settings = Settings.from_env({"PLACELAKE_HOME": str(home)})
    # Impossible dates raised so that even a small place quarantines some rows at clean.
    generate_place(settings, people=120, months=12, every=6, noise=NoiseRates(impossible_date=0.03))
    landing, held = Path(settings.landing), home / "held"
    # Only the sources this module cleans are delivered: landing would reject the others' folders.
    (home / "not-delivered").mkdir()
    for folder in landing.iterdir():
        if folder.is_dir() and folder.name not in SOURCES:
            shutil.move(folder, home / "not-delivered" / folder.name)
    first, *later = _deliveries(landing)
    for folder in landing.glob("*/*"):
        if folder.name != first:
            target = held / folder.relative_to(landing)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(folder, target)
    run1 = _land_and_clean(spark, settings, "land-1", "clean-1")
    for folder in held.glob("*/*"):
        shutil.move(folder, landing / folder.relative_to(held))
    run2 = _land_and_clean(spark, settings, "land-2", "clean-2")
    return settings, first, later, run1, run2


def _land_and_clean(spark, settings: Settings, land_batch: str, clean_batch: str) -> dict[str, dict]:
    # As jobs.pipeline.run_land lands: sources side by side, the manifest and quarantine written once for all.
    land.land_all(spark, settings, land_batch, [source_contract(s) for s in SOURCES])
    # As the pipeline cleans: every source, the ops tables written once for all (the rest have no bronze).
    cleaned = clean.clean_all(spark, settings, clean_batch)
    return {s: cleaned[s] for s in SOURCES}


def _content(spark, path: str, where: str | None = None) -> list[tuple]:
    df = lake.read(spark, path)
    if where:
        df = df.where(where)
    columns = sorted(c for c in df.columns if c not in RUN_STAMPS)
    return sorted(tuple(r) for r in df.select(*columns).collect())


def _snapshot(spark, settings: Settings) -> dict[str, list[tuple]]:
    tables = {}
    for source in SOURCES:
        tables[f"silver.{source}"] = _content(spark, settings.table("silver", source))
        tables[f"history.{source}"] = _content(spark, clean.history_path(settings, source))
        tables[f"quarantine.{source}"] = _content(
            spark, settings.path("lake", "quarantine", "rows"), f"stage = 'clean' AND source = '{source}'"
        )
        tables[f"metrics.{source}"] = _content(spark, settings.table("ops", "clean_metrics"), f"source = '{source}'")
    return tables


def test_the_second_run_cleans_only_the_rows_landed_since_the_first(place, spark):
    settings, first, later, run1, run2 = place
    assert later, "the place should have increments after its full extract"
    for source in PERSON_SOURCES:
        bronze = lake.read(spark, settings.table("bronze", source))
        landed_second = bronze.where(F.col("_batch_id") == "land-2").count()
        assert run1[source]["new"] == bronze.where(F.col("_batch_id") == "land-1").count() > 0, source
        assert run2[source]["new"] == landed_second, source
        assert run2[source]["bronze"] == bronze.count(), source
    watermark = lake.read(spark, settings.table("ops", "clean_watermark"))
    assert {r.delivery for r in watermark.where(F.col("cleaned_run_id") == "clean-2").collect()} <= set(later)


def test_every_build_conserves_rows_and_records_the_figures(place, spark):
    settings, *_ = place
    figures = lake.read(spark, settings.table("ops", "conservation")).collect()
    assert {(r.run_id, r.source) for r in figures} == {
        (run, source) for run in ("clean-1", "clean-2") for source in SOURCES
    }
    for r in figures:
        assert r.holds and r.bronze_rows == r.silver_rows + r.superseded_rows + r.quarantined_rows, r
    latest = {r.source: r for r in figures if r.run_id == "clean-2"}
    assert sum(r.superseded_rows for r in latest.values()) > 0, "increments re-send closed records"
    assert sum(r.quarantined_rows for r in latest.values()) > 0, "the place carries impossible dates"


def test_history_answers_what_a_record_looked_like_on_an_earlier_date(place, spark):
    settings, *_ = place
    versions = lake.read(spark, clean.history_path(settings, "gp_registrations"))
    by_record: dict[str, list] = {}
    for r in versions.where(
        F.col("record_id").isin(
            [r.record_id for r in versions.where(F.col("_version") == 2).select("record_id").collect()]
        )
    ).collect():
        by_record.setdefault(r.record_id, []).append(r)
    # A registration that ended after the delivery that first sent it: two versions on two dates.
    pairs = [sorted(v, key=lambda r: r._version) for v in by_record.values()]
    pairs = [(v1, v2) for v1, v2, *_ in pairs if v1._valid_from < v2._valid_from]
    assert pairs, "some registration should end after the delivery that first sent it"
    v1, v2 = pairs[0]
    assert (v1._valid_to, v2._is_current, v1._is_current) == (v2._valid_from, True, False)
    record = versions.where(F.col("record_id") == v1.record_id)
    then = history.as_of(record, v1._valid_from.isoformat()).collect()
    assert [(r._file_sha256, r._line) for r in then] == [(v1._file_sha256, v1._line)]
    now = history.as_of(record, v2._valid_from.isoformat()).collect()
    assert [(r._file_sha256, r._line) for r in now] == [(v2._file_sha256, v2._line)]
    silver = lake.read(spark, settings.table("silver", "gp_registrations")).where(F.col("record_id") == v1.record_id)
    assert [(r._source_file, r._line) for r in silver.collect()] == [(v2._source_file, v2._line)]


def test_clean_metrics_hold_counts_and_rates_per_delivery(place, spark):
    settings, first, later, *_ = place
    metrics = lake.read(spark, settings.table("ops", "clean_metrics"))
    assert {r.delivery for r in metrics.where(F.col("source") == "gp_registrations").collect()} == {first, *later}
    coverage = metrics.where(
        (F.col("source") == "apc_episodes") & (F.col("field") == "_row") & (F.col("measure") == "nhs_number_coverage")
    ).collect()
    assert coverage and all(0.5 < r.rate <= 1.0 for r in coverage)
    # Counts and rates only: no value from a row ever reaches the metrics.
    assert {f.dataType.simpleString() for f in metrics.schema.fields} <= {"string", "bigint", "double", "timestamp"}
    assert {r.field for r in metrics.collect()} <= {c for s in SOURCES for c in source_contract(s).column_names} | {
        "_row"
    }


def test_a_delivery_landed_across_two_runs_is_measured_whole(place, spark):
    settings, first, later, *_ = place
    source, delivery = "community_contacts", later[-1]
    # A late second file of an already cleaned delivery: two new records, in the delivery's folder.
    original = next(Path(settings.landing, source, delivery).iterdir())
    header, *rows = original.read_text().splitlines()
    late = original.with_name(f"{original.stem}_late{original.suffix}")
    late.write_text("\n".join([header, *("X" + row for row in rows[:2])]) + "\n")
    land.land_source(spark, settings, source_contract(source), batch_id="land-late")
    assert clean.clean_source(spark, settings, source, "clean-late")["new"] == 2
    delivered = lake.read(spark, settings.table("bronze", source)).where(F.col("_delivery") == delivery).count()
    assert delivered > 2
    row_measures = {
        r.measure: (r.numerator, r.denominator)
        for r in lake.read(spark, settings.table("ops", "clean_metrics"))
        .where((F.col("source") == source) & (F.col("delivery") == delivery) & (F.col("field") == "_row"))
        .collect()
    }
    accepted, quarantined = row_measures["accepted"], row_measures["quarantined"]
    assert accepted[1] == quarantined[1] == accepted[0] + quarantined[0] == delivered


def test_incremental_cleaning_equals_a_rebuild_from_bronze(place, spark):
    settings, *_ = place
    incremental = _snapshot(spark, settings)
    clean.clean_all(spark, settings, "rebuild-all", rebuild_source="all")
    rebuilt = _snapshot(spark, settings)
    assert rebuilt.keys() == incremental.keys()
    for table in incremental:
        assert rebuilt[table] == incremental[table], table
    assert any(incremental[f"history.{s}"] for s in PERSON_SOURCES)


@pytest.mark.engines
def test_a_local_lake_cleans_a_delivery_as_spark_does(place, spark):
    """Once each source had a history and silver on local disk, its cleans were DuckDB's and
    delta-rs's. The later deliveries cleaned again on Spark (a memory gate of 0: the guard's join,
    a MERGE into the history, silver rewritten, counted by Spark) give the same tables and figures."""
    settings, _, later, *_ = place
    tables = [p for s in PERSON_SOURCES for p in (clean.history_path(settings, s), settings.table("silver", s))]
    assert {_written_by(p) for p in tables} == {"delta-rs"}
    incremental, counted_locally = _snapshot(spark, settings), _latest_figures(spark, settings)
    on_spark = dataclasses.replace(settings, gate_memory_bytes=0)
    again = clean.clean_all(spark, on_spark, "spark-again", rebuild_source="all", rebuild_from=later[0])
    assert all(again[s]["new"] for s in PERSON_SOURCES), again
    assert {_written_by(p) for p in tables} == {"Apache-Spark"}
    assert _snapshot(spark, settings) == incremental
    assert _latest_figures(spark, settings) == counted_locally
    assert sum(f[2] for f in counted_locally.values()) > 0, "the deliveries supersede records"


def _latest_figures(spark, settings: Settings) -> dict[str, tuple]:
    """Each source's latest conservation check: bronze, silver, superseded and quarantined rows."""
    checks = lake.read(spark, settings.table("ops", "conservation")).orderBy("checked_at").collect()
    return {r.source: (r.bronze_rows, r.silver_rows, r.superseded_rows, r.quarantined_rows) for r in checks}


def _written_by(path: str) -> str:
    """The engine that made a table's latest commit: delta-rs or Apache-Spark."""
    return DeltaLake(path).history(1)[0]["engineInfo"].split(":")[0].split("/")[0]


def test_a_source_nothing_was_written_to_is_not_counted_again_but_a_lost_quarantined_row_is_caught(
    place, spark, caplog
):
    """A build that finds a source's tables as its last check left them records that check's figures
    for this run without counting; quarantined rows removed since are still found."""
    settings, *_ = place
    checks = settings.table("ops", "conservation")
    latest = {r.source: r for r in lake.read(spark, checks).orderBy("checked_at").collect()}
    source = max(PERSON_SOURCES, key=lambda s: latest[s].quarantined_rows)
    last = latest[source]
    assert last.quarantined_rows > 0

    caplog.set_level(logging.INFO, logger="jobs.clean")
    counts = clean.clean_source(spark, settings, source, "idle")
    assert f"{source}: nothing written to it since the last build checked it" in caplog.text
    assert counts == {
        "bronze": last.bronze_rows,
        "new": 0,
        "silver": last.silver_rows,
        "superseded": last.superseded_rows,
        "quarantined": last.quarantined_rows,
    }
    idle = lake.read(spark, checks).where((F.col("run_id") == "idle") & (F.col("source") == source)).collect()
    assert [(r.holds, r.bronze_rows, r.inputs) for r in idle] == [(True, last.bronze_rows, last.inputs)]

    rows_path = settings.path("lake", "quarantine", "rows")
    before = lake.version(spark, rows_path)
    DeltaTable.forPath(spark, rows_path).delete(
        (F.col("stage") == "clean")
        & (F.col("source") == source)
        & (F.col("line") == _a_quarantined_line(spark, rows_path, source))
    )
    caplog.clear()
    with pytest.raises(clean.ConservationError, match=rf"{source}: conservation failed .* \(difference 1\)"):
        clean.clean_source(spark, settings, source, "lost-row")
    assert "nothing written to it" not in caplog.text
    DeltaTable.forPath(spark, rows_path).restoreToVersion(before)
    assert clean.clean_source(spark, settings, source, "restored") == counts


def _a_quarantined_line(spark, rows_path: str, source: str) -> int:
    rows = lake.read(spark, rows_path).where((F.col("stage") == "clean") & (F.col("source") == source))
    lines = [r.line for r in rows.groupBy("line").count().where(F.col("count") == 1).collect()]
    return min(lines)


def test_a_broken_history_fails_the_conservation_check_and_a_rebuild_repairs_it(place, spark):
    settings, *_ = place
    source = "community_contacts"
    path = clean.history_path(settings, source)
    victim = lake.read(spark, path).where(F.col("_is_current")).select("_file_sha256", "_line").first()
    DeltaTable.forPath(spark, path).delete(
        (F.col("_file_sha256") == victim._file_sha256) & (F.col("_line") == victim._line)
    )
    with pytest.raises(clean.ConservationError, match=rf"{source}: conservation failed .* \(difference 1\)"):
        clean.clean_source(spark, settings, source, batch_id="broken")
    recorded = lake.read(spark, settings.table("ops", "conservation")).where("run_id = 'broken'").first()
    assert not recorded.holds
    assert clean.clean_source(spark, settings, source, batch_id="repair", rebuild=True)["new"] > 0


def test_placelake_rebuild_cleans_a_source_again_from_a_delivery_date(place, spark, monkeypatch, capsys):
    settings, first, later, *_ = place
    # In process, so the CLI finds the test's session; the same settings keep it tuned for tiny data.
    monkeypatch.setenv("PLACELAKE_HOME", settings.home)
    monkeypatch.setenv("PLACELAKE_SHUFFLE_PARTITIONS", "1")
    assert placelake(["rebuild", "--source", "apc_episodes", "--from", later[0]]) == 0
    out = capsys.readouterr().out
    assert "silver.apc_episodes" in out and "downstream must re-run: link -> curate" in out
    watermark = lake.read(spark, settings.table("ops", "clean_watermark")).where(F.col("source") == "apc_episodes")
    by_delivery = {r.delivery: r.cleaned_run_id for r in watermark.collect()}
    assert by_delivery[first] != by_delivery[later[0]] and by_delivery[later[0]].startswith("rebuild__")
    assert placelake(["rebuild", "--source", "nowhere"]) == 2


def test_a_delivery_superseding_most_of_a_source_is_stopped_not_applied(place, spark, monkeypatch):
    settings, first, *_ = place
    source = "gp_registrations"
    # A mis-keyed re-extract: the full extract sent again (one byte changed, so it is a new file).
    original = next(Path(settings.landing, source, first).iterdir())
    resend = Path(settings.landing, source, "2026-11-20", original.name)
    resend.parent.mkdir(parents=True)
    resend.write_bytes(original.read_bytes().rstrip(b"\n"))
    land.land_source(spark, settings, source_contract(source), batch_id="land-3")
    silver_version = lake.version(spark, settings.table("silver", source))
    with pytest.raises(clean.CleanError, match=rf"{source}: delivery 2026-11-20 would supersede \d+ of the \d+"):
        clean.clean_source(spark, settings, source, "clean-3")
    assert lake.version(spark, settings.table("silver", source)) == silver_version
    cleaned = lake.read(spark, settings.table("ops", "clean_watermark")).where(F.col("delivery") == "2026-11-20")
    assert cleaned.count() == 0
    # A genuine one goes through once the limit is raised for the run.
    monkeypatch.setenv("PLACELAKE_CLEAN_MAX_SUPERSEDED_SHARE", "1.0")
    counts = clean.clean_source(spark, settings, source, "clean-4")
    assert counts["new"] > 0 and counts["superseded"] >= counts["new"]
