from datetime import date, datetime

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import clean_local, history, lake
from jobs.clean import (
    ADAPTERS,
    SupersedeGuardError,
    _write_history,
    adapt_apc_episodes,
    adapt_asc_events,
    adapt_gp_registrations,
    adapt_housing_cases,
    check_supersede_guard,
    delivery_metrics,
    history_path,
    latest_version,
    with_geography,
)
from jobs.config import Settings
from jobs.contracts import conform, source_contract, source_contracts, table_contract
from jobs.scorecard import field_scores, scores_from_metrics

_LINEAGE = {
    "_delivery": "2026-11-01",
    "_source_file": "f",
    "_line": 2,
    "_raw": "{}",
    "_file_sha256": "x",
    "_landed_at": datetime(2026, 11, 2, 8, 0),
    "_batch_id": "b1",
}


def _bronze(spark, source: str, rows: list[dict]):
    columns = source_contract(source).column_names
    full = [{**dict.fromkeys(columns), **_LINEAGE, **row} for row in rows]
    schema = ", ".join(f"{c} string" for c in columns) + ", _delivery string, _source_file string, _line long"
    schema += ", _raw string, _file_sha256 string, _landed_at timestamp, _batch_id string"
    return spark.createDataFrame([tuple(r[c] for c in [*columns, *_LINEAGE]) for r in full], schema)


def test_every_person_source_has_an_adapter_that_meets_person_event(spark):
    silver = table_contract("silver", "person_event")
    for contract in source_contracts():
        assert contract.name in ADAPTERS, contract.name
        if contract.kind != "person_events":
            continue
        adapted = ADAPTERS[contract.name](_bronze(spark, contract.name, []))
        geography = adapted.select(
            "*",
            F.lit(None).cast("string").alias("lsoa_code"),
            F.lit(None).cast("string").alias("ward_code"),
            F.lit(None).cast("int").alias("imd_decile"),
        )
        assert conform(geography, silver).columns == silver.column_names


def test_apc_episodes_keep_hospital_detail_and_reject_impossible_rows(spark):
    base = {
        "nhs_number": "999 000 0026",
        "date_of_birth": "1931-02-28",
        "sex": "2",
        "postcode": "lk1 0ab",
        "ethnic_category": "D2",
        "provider_code": "RLK01",
        "admission_method": "21",
        "primary_diagnosis": "s7200",
        "admission_date": "2026-01-03",
        "discharge_ready_date": "2026-01-10",
        "discharge_date": "2026-01-24",
        "discharge_destination": "85",
    }
    bronze = _bronze(
        spark,
        "apc_episodes",
        [
            {**base, "episode_id": "E1"},  # a delayed discharge to a care home
            {**base, "episode_id": "E2", "admission_date": "2026-02-30"},  # 30 February
            {**base, "episode_id": "E3", "admission_method": "77"},  # in no national list: kept, flagged
            {**base, "episode_id": "E4", "discharge_date": "2025-12-31"},  # discharged before admitted
            {**base, "episode_id": "E5", "discharge_date": None, "discharge_destination": None, "sex": "7"},
        ],
    )
    result = adapt_apc_episodes(bronze).select(
        "record_id",
        "nhs_number",
        "postcode",
        "sex",
        "service_type",
        "primary_diagnosis",
        "discharge_ready_date",
        "event_end",
        "_reject_reason",
    )
    expected = spark.createDataFrame(
        [
            ("E1", "9990000026", "LK1 0AB", "F", "EMERGENCY", "S7200", date(2026, 1, 10), date(2026, 1, 24), None),
            ("E2", "9990000026", "LK1 0AB", "F", "EMERGENCY", "S7200", date(2026, 1, 10), date(2026, 1, 24),
             "clean.invalid_admission_date"),
            ("E3", "9990000026", "LK1 0AB", "F", None, "S7200", date(2026, 1, 10), date(2026, 1, 24), None),
            ("E4", "9990000026", "LK1 0AB", "F", "EMERGENCY", "S7200", date(2026, 1, 10), date(2025, 12, 31),
             "clean.end_before_start"),
            # Still in hospital: no end yet; an unknown sex code is unknown, not a reason to lose the stay.
            ("E5", "9990000026", "LK1 0AB", "U", "EMERGENCY", "S7200", date(2026, 1, 10), None, None),
        ],
        "record_id string, nhs_number string, postcode string, sex string, service_type string, "
        "primary_diagnosis string, discharge_ready_date date, event_end date, _reject_reason string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_housing_cases_read_uk_dates_and_keep_accented_names(spark):
    bronze = _bronze(
        spark,
        "housing_cases",
        [
            {
                "case_id": "H1",
                "surname": " o'brien ",
                "forename": "Siobhán",
                "dob": "07/03/1990",
                "household_size": "3",
                "approach_date": "01/02/2026",
                "duty_type": "RELIEF",
                "duty_end_date": "29/03/2026",
            },
            {"case_id": "H2", "surname": "Nowak", "forename": "Zoë", "dob": "13/13/1990", "approach_date": "01/02/2026",
             "duty_type": "HOUSING"},
        ],
    )  # fmt: skip
    result = adapt_housing_cases(bronze).select(
        "record_id", "organisation", "family_name", "given_name", "date_of_birth", "event_end", "_reject_reason"
    )
    expected = spark.createDataFrame(
        [
            ("H1", "council", "O'BRIEN", "SIOBHÁN", date(1990, 3, 7), date(2026, 3, 29), None),
            ("H2", "council", "NOWAK", "ZOË", None, None, "clean.invalid_duty_type"),
        ],
        "record_id string, organisation string, family_name string, given_name string, date_of_birth date, "
        "event_end date, _reject_reason string",
    )
    assertDataFrameEqual(result, expected)


def test_gp_registrations_end_at_deregistration_and_reject_impossible_ends(spark):
    base = {
        "nhs_number": "9990000026",
        "family_name": "O'Neill",
        "given_name": "Seán",
        "date_of_birth": "1931-02-28",
        "sex": "1",
        "practice_code": "Y90101",
        "registration_date": "2010-05-04",
    }
    bronze = _bronze(
        spark,
        "gp_registrations",
        [
            {**base, "registration_id": "R1", "deregistration_date": "2026-03-09", "deregistration_reason": "death"},
            {**base, "registration_id": "R2"},  # still registered
            {**base, "registration_id": "R3", "deregistration_date": "2009-01-01", "deregistration_reason": "other"},
            {**base, "registration_id": "R4", "deregistration_date": "2026-02-30", "deregistration_reason": "moved_away"},
            {**base, "registration_id": "R5", "deregistration_date": "2026-03-09", "deregistration_reason": "99"},
            # A formula where an ODS code belongs: it would run in the spreadsheet an analyst exports gold to.
            {**base, "registration_id": "R6", "practice_code": "+cmd|' /C calc'!A0"},
            {**base, "registration_id": "R7", "practice_code": " Y90101 "},  # padded: still the code
        ],
    )  # fmt: skip
    result = adapt_gp_registrations(bronze).select(
        "record_id", "event_type", "provider_code", "event_start", "event_end", "_reject_reason"
    )
    start = date(2010, 5, 4)
    expected = spark.createDataFrame(
        [
            ("R1", "gp_registration", "Y90101", start, date(2026, 3, 9), None),
            ("R2", "gp_registration", "Y90101", start, None, None),
            ("R3", "gp_registration", "Y90101", start, date(2009, 1, 1), "clean.end_before_start"),
            ("R4", "gp_registration", "Y90101", start, None, "clean.invalid_deregistration_date"),
            ("R5", "gp_registration", "Y90101", start, date(2026, 3, 9), "clean.invalid_deregistration_reason"),
            ("R6", "gp_registration", "+cmd|' /C calc'!A0", start, None, "clean.invalid_practice_code"),
            ("R7", "gp_registration", "Y90101", start, None, None),
        ],
        "record_id string, event_type string, provider_code string, event_start date, event_end date, "
        "_reject_reason string",
    )
    assertDataFrameEqual(result, expected)


def test_asc_events_map_cld_event_types_and_keep_the_outcome(spark):
    base = {"client_id": "C00000019", "surname": "Ní Bhriain", "forename": "Zoë", "dob": "03/06/1934", "gender": "F"}
    bronze = _bronze(
        spark,
        "asc_events",
        [
            {**base, "event_id": "Q1", "event_type": "REQUEST", "event_date": "09/01/2026",
             "route_of_access": "HOSPITAL_DISCHARGE", "event_outcome": "ASSESSMENT", "nhs_number": "999 000 0026"},
            {**base, "event_id": "Q2", "event_type": "ASSESSMENT", "event_date": "12/01/2026",
             "event_outcome": "SHORT_TERM_SUPPORT"},
            {**base, "event_id": "Q3", "event_type": " REVIEW ", "event_date": "01/07/2026", "event_outcome": "NO_CHANGE"},
            {**base, "event_id": "Q4", "event_type": "99", "event_date": "01/07/2026", "event_outcome": "NO_CHANGE"},
            {**base, "event_id": "Q5", "event_type": "REQUEST", "event_date": "30/02/2026",
             "event_outcome": "NO_FURTHER_ACTION"},
            {**base, "event_id": "Q6", "event_date": "01/07/2026", "event_outcome": "NO_CHANGE"},
        ],
    )  # fmt: skip
    result = adapt_asc_events(bronze).select(
        "record_id",
        "organisation",
        "local_person_id",
        "nhs_number",
        "nhs_number_issue",
        "family_name",
        "event_type",
        "service_type",
        "event_start",
        "event_end",
        "_reject_reason",
    )
    jan9, jan12, jul1 = date(2026, 1, 9), date(2026, 1, 12), date(2026, 7, 1)
    expected = spark.createDataFrame(
        [
            ("Q1", "council", "C00000019", "9990000026", None, "NÍ BHRIAIN", "social_care_request", "ASSESSMENT",
             jan9, jan9, None),
            ("Q2", "council", "C00000019", None, "missing", "NÍ BHRIAIN", "social_care_assessment",
             "SHORT_TERM_SUPPORT", jan12, jan12, None),
            ("Q3", "council", "C00000019", None, "missing", "NÍ BHRIAIN", "social_care_review", "NO_CHANGE",
             jul1, jul1, None),
            ("Q4", "council", "C00000019", None, "missing", "NÍ BHRIAIN", None, "NO_CHANGE", jul1, jul1,
             "clean.invalid_event_type"),
            ("Q5", "council", "C00000019", None, "missing", "NÍ BHRIAIN", "social_care_request", "NO_FURTHER_ACTION",
             None, None, "clean.invalid_event_date"),
            ("Q6", "council", "C00000019", None, "missing", "NÍ BHRIAIN", None, "NO_CHANGE", jul1, jul1,
             "clean.missing_event_type"),
        ],
        "record_id string, organisation string, local_person_id string, nhs_number string, "
        "nhs_number_issue string, family_name string, event_type string, service_type string, "
        "event_start date, event_end date, _reject_reason string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def test_apc_codes_map_to_national_lists_and_unknown_codes_are_kept_and_flagged(spark):
    base = {
        "episode_id": "E1",
        "nhs_number": "9990000026",
        "date_of_birth": "1931-02-28",
        "sex": "2",
        "postcode": "LK1 0AB",
        "provider_code": "RLK01",
        "admission_method": "21",
        "admission_date": "2026-01-03",
    }
    bronze = _bronze(
        spark,
        "apc_episodes",
        [
            {**base, "ethnic_category": "D2", "primary_diagnosis": "S72.0", "discharge_destination": "85"},
            {**base, "episode_id": "E2", "admission_method": "2B", "ethnic_category": "Q9", "sex": "7",
             "primary_diagnosis": "D49", "discharge_destination": "12", "postcode": "NOT A PC"},
            # Admitted after the extract was delivered, to a patient born after that too.
            {**base, "episode_id": "E3", "admission_date": "2026-12-01", "date_of_birth": "2026-11-15"},
            {**base, "episode_id": "E4", "admission_date": "1930-01-01"},  # before birth
        ],
    )  # fmt: skip
    result = adapt_apc_episodes(bronze).select(
        "record_id",
        "sex",
        "ethnic_category",
        "admission_method",
        "service_type",
        "primary_diagnosis",
        "diagnosis_chapter",
        "discharge_destination",
        "discharge_destination_group",
        "clean_flags",
        "_reject_reason",
    )
    expected = spark.createDataFrame(
        [
            ("E1", "F", "D2", "21", "EMERGENCY", "S720", "XIX", "85", "CARE_HOME", None, None),
            ("E2", "U", "Q9", "2B", "EMERGENCY", "D49", None, "12", None,
             "unknown_code:sex;postcode_invalid;unknown_code:ethnic_category;unknown_code:discharge_destination;"
             "unknown_code:primary_diagnosis", None),
            ("E3", "F", None, "21", "EMERGENCY", None, None, None, None,
             "event_start_in_future;date_of_birth_in_future", None),
            ("E4", "F", None, "21", "EMERGENCY", None, None, None, None, "event_before_birth", None),
        ],
        "record_id string, sex string, ethnic_category string, admission_method string, service_type string, "
        "primary_diagnosis string, diagnosis_chapter string, discharge_destination string, "
        "discharge_destination_group string, clean_flags string, _reject_reason string",
    )  # fmt: skip
    assertDataFrameEqual(result, expected)


def _versions(spark, rows):
    return spark.createDataFrame(
        rows, "record_id string, value string, _delivery string, _source_file string, _line long"
    )


def test_history_dates_each_version_until_the_next_and_as_of_answers_for_an_earlier_day(spark):
    rows = _versions(
        spark,
        [
            ("R1", "first", "2026-01-01", "a.csv", 2),
            ("R1", "corrected", "2026-03-01", "b.csv", 5),
            ("R1", "closed", "2026-06-01", "c.csv", 9),
            ("R2", "sent twice, first copy", "2026-03-01", "b.csv", 3),
            ("R2", "sent twice, last copy", "2026-03-01", "b.csv", 7),
            ("R3", "only", "2026-06-01", "c.csv", 2),
        ],
    )
    versions = history.versioned(rows, ["record_id"]).select(
        "record_id", "value", "_version", "_valid_from", "_valid_to", "_is_current"
    )
    jan, mar, jun = date(2026, 1, 1), date(2026, 3, 1), date(2026, 6, 1)
    expected = spark.createDataFrame(
        [
            ("R1", "first", 1, jan, mar, False),
            ("R1", "corrected", 2, mar, jun, False),
            ("R1", "closed", 3, jun, None, True),
            ("R2", "sent twice, first copy", 1, mar, mar, False),
            ("R2", "sent twice, last copy", 2, mar, None, True),
            ("R3", "only", 1, jun, None, True),
        ],
        "record_id string, value string, _version int, _valid_from date, _valid_to date, _is_current boolean",
    )
    assertDataFrameEqual(versions, expected)
    on = {r.record_id: r.value for r in history.as_of(history.versioned(rows, ["record_id"]), "2026-04-15").collect()}
    assert on == {"R1": "corrected", "R2": "sent twice, last copy"}
    assert [r.value for r in latest_version(rows, ["record_id"]).where("record_id = 'R1'").collect()] == ["closed"]


def test_superseded_shares_are_per_delivery_and_the_guard_stops_an_implausible_one(spark):
    earlier = _versions(spark, [(f"R{i}", "v", "2026-01-01", "a.csv", i) for i in range(10)])
    new = _versions(
        spark,
        [
            ("R1", "v", "2026-02-01", "b.csv", 2),
            ("R2", "v", "2026-02-01", "b.csv", 3),
            ("R10", "v", "2026-02-01", "b.csv", 4),
        ]
        + [(f"R{i}", "v", "2026-03-01", "c.csv", i) for i in range(9)],
    )
    shares = history.superseded_shares(earlier, new, ["record_id"])
    assert shares == [
        history.DeliveryShare("2026-02-01", prior_records=10, superseded=2),
        history.DeliveryShare("2026-03-01", prior_records=11, superseded=9),
    ]
    env = {"PLACELAKE_CLEAN_MAX_SUPERSEDED_SHARE": "0.5", "PLACELAKE_CLEAN_GUARD_MIN_RECORDS": "5"}
    check_supersede_guard("asc_services", shares[:1], env)  # 20%: an ordinary increment
    with pytest.raises(SupersedeGuardError, match=r"2026-03-01 would supersede 9 of the 11 records .*82%"):
        check_supersede_guard("asc_services", shares, env)
    # Too few earlier records for a share to mean anything.
    check_supersede_guard("asc_services", shares, {**env, "PLACELAKE_CLEAN_GUARD_MIN_RECORDS": "20"})


def test_a_local_history_dates_versions_and_counts_what_is_superseded_as_spark_does(spark, tmp_path):
    """jobs.clean_local's twins of versioned and superseded_shares: a history of the first delivery,
    then the rest added to it, is what versioning every row at once gives; adding them again (a
    build that died before marking its files cleaned) replaces their versions, never doubles them,
    by DuckDB and delta-rs as by Spark's MERGE."""
    rows = _versions(
        spark,
        [
            ("R1", "first", "2026-01-01", "a.csv", 2),
            ("R2", "first", "2026-01-01", "a.csv", 3),
            ("R1", "corrected", "2026-03-01", "b.csv", 5),
            ("R3", "sent twice, first copy", "2026-03-01", "b.csv", 3),
            ("R3", "sent twice, last copy", "2026-03-01", "b.csv", 7),
            ("R1", "closed", "2026-06-01", "c.csv", 9),
            ("R4", "only", "2026-06-01", "c.csv", 2),
        ],
    ).withColumn("_file_sha256", F.col("_source_file"))
    key, path = ["record_id"], str(tmp_path / "history")
    first, later = rows.where("_delivery = '2026-01-01'"), rows.where("_delivery > '2026-01-01'")
    lake.replace_local(history.versioned(first, key).toArrow(), path)
    assert clean_local.superseded_shares(path, later.toArrow(), key) == history.superseded_shares(first, later, key)
    assert [s.superseded for s in history.superseded_shares(first, later, key)] == [1, 1]

    def versions(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["record_id"], r["_version"]))

    expected = versions([r.asDict() for r in history.versioned(rows, key).collect()])
    for _ in range(2):
        clean_local.write_history(path, later.toArrow(), key)
        assert versions(lake.read_local(path).to_pylist()) == expected
    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path / "on-spark")})
    lake.replace(history.versioned(first, key), history_path(settings, "housing_cases"))
    for _ in range(2):
        _write_history(spark, settings, "housing_cases", later)
        assert versions(lake.read_local(history_path(settings, "housing_cases")).to_pylist()) == expected


def test_geography_resolves_terminated_postcodes_and_flags_what_does_not_resolve(spark):
    events = spark.createDataFrame(
        [("E1", "LK1 1AA", None), ("E2", "LK9 9ZZ", "event_before_birth"), ("E3", "LK1 2BB", None), ("E4", None, None)],
        "record_id string, postcode string, clean_flags string",
    )
    postcodes = spark.createDataFrame(
        [("LK1 1AA", "E01000001", "E05000001", 3, False), ("LK1 2BB", "E01000002", "E05000001", 7, True)],
        "postcode string, lsoa_code string, ward_code string, imd_decile int, terminated boolean",
    )
    result = with_geography(events, postcodes).select("record_id", "lsoa_code", "clean_flags")
    expected = spark.createDataFrame(
        [
            ("E1", "E01000001", None),
            ("E2", None, "event_before_birth;postcode_not_in_directory"),
            ("E3", "E01000002", "postcode_terminated"),
            ("E4", None, None),
        ],
        "record_id string, lsoa_code string, clean_flags string",
    )
    assertDataFrameEqual(result, expected)


def test_delivery_metrics_count_fields_outcomes_coverage_and_flags_per_delivery(spark):
    base = {
        "service_id": "S1",
        "client_id": "C1",
        "surname": "O'Brien",
        "forename": "Zoë",
        "dob": "01/02/1940",
        "gender": "F",
        "service_type": "HOME_CARE",
        "start_date": "01/01/2026",
    }
    bronze = _bronze(
        spark,
        "asc_services",
        [
            {**base, "nhs_number": "9990000026"},
            {**base, "service_id": "S2", "nhs_number": "9990000027", "gender": "Q"},  # fails Modulus 11
            {**base, "service_id": "S3", "start_date": "31/02/2026"},  # quarantined
            {**base, "service_id": "S4", "nhs_number": "9990000050", "_delivery": "2026-12-01"},
        ],
    )
    adapted = ADAPTERS["asc_services"](bronze)
    metrics = {
        (r.delivery, r.field, r.measure): (r.numerator, r.denominator, r.rate)
        for r in delivery_metrics(bronze, adapted, "asc_services").collect()
    }
    nov = "2026-11-01"
    assert metrics[(nov, "nhs_number", "completeness")] == (2, 3, 0.6667)
    assert metrics[(nov, "nhs_number", "validity")] == (1, 2, 0.5)
    assert metrics[(nov, "_row", "nhs_number_coverage")] == (1, 3, 0.3333)
    assert metrics[(nov, "_row", "accepted")] == (2, 3, 0.6667)
    assert metrics[(nov, "_row", "quarantined")] == (1, 3, 0.3333)
    assert metrics[(nov, "_row", "flag:unknown_code:sex")] == (1, 3, 0.3333)
    assert metrics[(nov, "gender", "validity")] == (2, 3, 0.6667)
    assert metrics[("2026-12-01", "_row", "nhs_number_coverage")] == (1, 1, 1.0)
    assert ("2026-12-01", "_row", "flag:unknown_code:sex") not in metrics


def test_the_scorecard_summed_from_clean_metrics_equals_scoring_bronze_itself(spark):
    base = {
        "service_id": "S1",
        "client_id": "C1",
        "nhs_number": "9990000026",
        "surname": "Ng",
        "forename": "Mei",
        "dob": "01/02/1940",
        "gender": "F",
        "postcode": "LK1 1AA",
        "service_type": "HOME_CARE",
        "start_date": "01/01/2026",
    }
    # Two deliveries in one month (their counts must add up), one in the next; defaults, gaps, bad values.
    bronze = _bronze(
        spark,
        "asc_services",
        [
            base,
            {**base, "service_id": "S2", "nhs_number": "9990000027", "gender": "Q", "postcode": "not a pc"},
            {**base, "service_id": "S3", "dob": "01/01/1900", "postcode": None, "_delivery": "2026-11-15"},
            {**base, "service_id": "S4", "gender": "U", "end_date": "", "_delivery": "2026-11-15"},
            {**base, "service_id": "S5", "nhs_number": None, "_delivery": "2026-12-01"},
        ],
    )
    contract = source_contract("asc_services")
    metrics = delivery_metrics(bronze, ADAPTERS["asc_services"](bronze), "asc_services")
    derived = scores_from_metrics(spark, metrics, [contract])
    assert derived.count() == 2 * len(contract.columns)
    assertDataFrameEqual(derived, field_scores(bronze, contract))


def test_the_build_dag_takes_a_rebuild_source_and_date():
    import importlib.util

    from jobs.config import REPO_ROOT

    spec = importlib.util.spec_from_file_location("placelake_dag_for_clean_test", REPO_ROOT / "dags" / "placelake.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = module.placelake_dag.params
    # Unset by default: a scheduled run cleans incrementally.
    assert (params["rebuild_source"], params["rebuild_from"]) == (None, None)
