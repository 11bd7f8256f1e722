"""SIGKILL at several points, then run again: the same gold as an uninterrupted run, nothing lost or doubled.

Kill points (jobs/faults.py, PLACELAKE_TEST_KILL_AT): mid-landing (a source in
bronze, its manifest not written), mid-link (Splink has trained its model, on
whichever engine the run uses, and scored nothing) and mid-publish (one gold
table published, the rest not). Each crash is a SIGKILL: no finally, no atexit,
no JVM shutdown.
"""

from __future__ import annotations

import pytest
from lakes import (
    duplicate_keys,
    gold_versions,
    lake_state,
    person_ids,
    person_keys,
    table_state,
)

from jobs import lake
from jobs.contracts import gold_contracts

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_every_crash_was_a_sigkill_at_its_point(recovered):
    land, link, publish, final = recovered.results
    assert [r.killed for r in (land, link, publish)] == [True, True, True], [r.tail() for r in recovered.results]
    assert final.returncode == 0
    # Mid-landing: some source reached bronze, the manifest that records its files did not.
    in_bronze = recovered.after["land.after_bronze"]["bronze"]
    assert in_bronze, "the first source's rows were in bronze"
    assert not set(in_bronze) & set(recovered.after["land.after_bronze"]["manifest"])
    # Mid-link: silver was cleaned, no link was written yet.
    assert recovered.after["link"]["person_link"] is False
    assert "gp_registrations" in recovered.after["link"]["silver"]


def test_a_reader_never_sees_a_half_published_table(recovered, baseline, spark, baseline_state):
    """After the kill mid-publish, each gold table is absent or whole: exactly what a complete run publishes."""
    seen = recovered.after["publish.midway"]
    first = next(iter(gold_contracts())).name
    assert list(seen) == [first], "killed after the first table's commit, before the second"
    for name, state in seen.items():
        assert state == baseline_state[f"gold/{name}"], name


def test_after_the_crashes_gold_is_what_an_uninterrupted_run_publishes(recovered, baseline, spark, baseline_state):
    after = lake_state(spark, recovered.settings, layers=("gold",))
    expected = {k: v for k, v in baseline_state.items() if k.startswith("gold/")}
    assert after == expected
    assert person_keys(spark, recovered.settings) == person_keys(spark, baseline.settings)


def test_after_the_crashes_bronze_silver_quarantine_and_person_ids_match_too(
    recovered, baseline, spark, baseline_state
):
    after = lake_state(spark, recovered.settings, layers=("bronze", "silver", "quarantine"))
    expected = {k: v for k, v in baseline_state.items() if k.split("/")[0] in ("bronze", "silver", "quarantine")}
    assert after.keys() == expected.keys()
    different = {k for k in after if after[k] != expected[k]}
    assert not different, {k: (expected[k], after[k]) for k in different}
    assert person_ids(spark, recovered.settings) == person_ids(spark, baseline.settings)


def test_nothing_landed_twice_and_no_row_was_lost(recovered, spark):
    settings = recovered.settings
    manifest = settings.table("ops", "landing_manifest")
    assert duplicate_keys(spark, manifest, ["path", "sha256"]) == 0
    rows = settings.path("lake", "quarantine", "rows")
    assert duplicate_keys(spark, rows, ["stage", "source", "source_file", "line", "rule"]) == 0
    for name, path in lake.table_paths(settings, "bronze").items():
        assert duplicate_keys(spark, path, ["_file_sha256", "_line"]) == 0, name
    lost = (
        lake.read(spark, manifest)
        .where("status = 'landed'")
        .selectExpr("sum(rows_in_file - rows_landed - rows_quarantined) AS lost", "sum(rows_landed) AS landed")
        .first()
    )
    bronze_rows = sum(lake.read(spark, p).count() for p in lake.table_paths(settings, "bronze").values())
    assert (lost.lost, lost.landed) == (0, bronze_rows)


def test_publishing_again_after_recovery_commits_nothing(recovered, spark):
    """Every gold table is at the version the final run left; states derived from versions stay consistent."""
    versions = gold_versions(spark, recovered.settings)
    assert set(versions) == {c.name for c in gold_contracts()}
    first = next(iter(gold_contracts())).name
    # The table published before the kill was already right: the final run left it at version 0.
    assert versions[first] == 0
    assert table_state(spark, recovered.settings.table("gold", first)) == table_state(
        spark, recovered.settings.table("staging/gold", first)
    )
