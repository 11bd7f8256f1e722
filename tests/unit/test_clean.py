from datetime import date

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.clean import ADAPTERS, adapt_apc_episodes, adapt_asc_events, adapt_gp_registrations, adapt_housing_cases
from jobs.contracts import conform, source_contract, source_contracts, table_contract

_LINEAGE = {"_delivery": "2026-11-01", "_source_file": "f", "_line": 2, "_raw": "{}", "_file_sha256": "x"}


def _bronze(spark, source: str, rows: list[dict]):
    columns = source_contract(source).column_names
    full = [{**dict.fromkeys(columns), **row, **_LINEAGE} for row in rows]
    schema = ", ".join(f"{c} string" for c in columns) + ", _delivery string, _source_file string, _line long"
    schema += ", _raw string, _file_sha256 string"
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
            {**base, "episode_id": "E3", "admission_method": "99"},  # out of range
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
            ("E3", "9990000026", "LK1 0AB", "F", None, "S7200", date(2026, 1, 10), date(2026, 1, 24),
             "clean.invalid_admission_method"),
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
