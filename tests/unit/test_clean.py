from datetime import date

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.clean import ADAPTERS, adapt_apc_episodes, adapt_housing_cases
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
