"""Cleaning: per-source adapters turn bronze strings into typed, standardised
silver in the common vocabulary (schemas/silver/person_event.yaml).

Each adapter is a pure transform; a row it cannot use keeps a reason and goes
to quarantine/rows. The latest delivery of a record supersedes earlier ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import lake
from jobs import standardise as std
from jobs.config import Settings
from jobs.contracts import conform, source_contract, source_contracts, table_contract

log = logging.getLogger(__name__)

REJECT = "_reject_reason"
# Lineage every adapter passes through; conform() keeps only what the silver
# contract names, and _raw (the bronze row as JSON) feeds quarantine.
_LINEAGE = ["_delivery", "_source_file", "_line", "_file_sha256", "_raw"]


def _date(contract_name: str, column: str) -> F.Column:
    return std.parse_date(F.col(column), source_contract(contract_name).format["date_format"])


def adapt_ons_postcodes(bronze: DataFrame) -> DataFrame:
    postcode = std.postcode(F.col("pcds"))
    return bronze.select(
        postcode.alias("postcode"),
        F.col("lsoa21cd").alias("lsoa_code"),
        F.col("wd24cd").alias("ward_code"),
        F.col("wd24nm").alias("ward_name"),
        F.col("imd_decile").try_cast("int").alias("imd_decile"),
        F.col("doterm").isNotNull().alias("terminated"),
        *_LINEAGE,
        F.when(postcode.isNull(), F.lit("clean.invalid_postcode"))
        .when(F.col("imd_decile").try_cast("int").isNull(), F.lit("clean.invalid_imd_decile"))
        .alias(REJECT),
    )


def adapt_gp_registrations(bronze: DataFrame) -> DataFrame:
    event_start = _date("gp_registrations", "registration_date")
    return bronze.select(
        F.lit("gp_registrations").alias("source"),
        F.col("registration_id").alias("record_id"),
        F.lit("nhs").alias("organisation"),
        F.lit(None).cast("string").alias("local_person_id"),
        std.nhs_number(F.col("nhs_number")).alias("nhs_number"),
        std.nhs_number_issue(F.col("nhs_number")).alias("nhs_number_issue"),
        std.name(F.col("family_name")).alias("family_name"),
        std.name(F.col("given_name")).alias("given_name"),
        _date("gp_registrations", "date_of_birth").alias("date_of_birth"),
        # NHS person stated gender: 1 male, 2 female, 9 indeterminate, X not known.
        std.sex_from_code(F.col("sex"), {"1": "M", "2": "F"}).alias("sex"),
        std.postcode(F.col("postcode")).alias("postcode"),
        F.lit("gp_registration").alias("event_type"),
        F.lit(None).cast("string").alias("service_type"),
        F.col("practice_code").alias("provider_code"),
        event_start.alias("event_start"),
        F.lit(None).cast("date").alias("event_end"),
        *_LINEAGE,
        F.when(F.col("registration_id").isNull(), F.lit("clean.missing_record_key"))
        .when(event_start.isNull(), F.lit("clean.invalid_registration_date"))
        .alias(REJECT),
    )


def adapt_asc_services(bronze: DataFrame) -> DataFrame:
    event_start = _date("asc_services", "start_date")
    event_end = _date("asc_services", "end_date")
    return bronze.select(
        F.lit("asc_services").alias("source"),
        F.col("service_id").alias("record_id"),
        F.lit("council").alias("organisation"),
        F.col("client_id").alias("local_person_id"),
        std.nhs_number(F.col("nhs_number")).alias("nhs_number"),
        std.nhs_number_issue(F.col("nhs_number")).alias("nhs_number_issue"),
        std.name(F.col("surname")).alias("family_name"),
        std.name(F.col("forename")).alias("given_name"),
        _date("asc_services", "dob").alias("date_of_birth"),
        std.sex_from_code(F.col("gender"), {"M": "M", "F": "F"}).alias("sex"),
        std.postcode(F.col("postcode")).alias("postcode"),
        F.lit("social_care_service").alias("event_type"),
        F.col("service_type"),
        F.lit(None).cast("string").alias("provider_code"),
        event_start.alias("event_start"),
        event_end.alias("event_end"),
        *_LINEAGE,
        F.when(F.col("service_id").isNull(), F.lit("clean.missing_record_key"))
        .when(event_start.isNull(), F.lit("clean.invalid_start_date"))
        .when(F.col("end_date").isNotNull() & event_end.isNull(), F.lit("clean.invalid_end_date"))
        .when(event_end < event_start, F.lit("clean.end_before_start"))
        .alias(REJECT),
    )


ADAPTERS: dict[str, Callable[[DataFrame], DataFrame]] = {
    "ons_postcodes": adapt_ons_postcodes,
    "gp_registrations": adapt_gp_registrations,
    "asc_services": adapt_asc_services,
}
SILVER_CONTRACT = {"ons_postcodes": "postcode"}  # every other source produces person_event


def latest_version(df: DataFrame, key: list[str]) -> DataFrame:
    """One row per record key: the latest delivery wins (corrections supersede)."""
    newest_first = Window.partitionBy(*key).orderBy(F.col("_delivery").desc(), F.col("_line").desc())
    return df.withColumn("_rank", F.row_number().over(newest_first)).where("_rank = 1").drop("_rank")


def with_geography(events: DataFrame, postcodes: DataFrame) -> DataFrame:
    """Attach LSOA, ward and IMD decile by postcode; terminated postcodes still resolve."""
    lookup = postcodes.select("postcode", "lsoa_code", "ward_code", "imd_decile")
    return events.join(lookup, on="postcode", how="left")


def _quarantine(rejects: DataFrame, source: str, batch_id: str) -> DataFrame:
    return rejects.select(
        F.lit("clean").alias("stage"),
        F.lit(source).alias("source"),
        F.col("_source_file").alias("source_file"),
        F.col("_line").alias("line"),
        F.col("_file_sha256").alias("file_sha256"),
        F.col(REJECT).alias("rule"),
        F.col(REJECT).alias("reason"),
        F.col("_raw").alias("raw"),
        F.lit(batch_id).alias("batch_id"),
    )


def clean_source(spark: SparkSession, settings: Settings, source: str, batch_id: str) -> dict[str, int]:
    contract = source_contract(source)
    bronze_path = settings.table("bronze", source)
    if not lake.table_exists(spark, bronze_path):
        log.warning("%s: no bronze table yet, nothing to clean", source)
        return {"bronze": 0, "silver": 0, "quarantined": 0}
    bronze = lake.read(spark, bronze_path)
    with_raw = bronze.withColumn("_raw", F.to_json(F.struct(*contract.column_names)))
    adapted = ADAPTERS[source](with_raw).persist()
    try:
        good = latest_version(adapted.where(F.col(REJECT).isNull()), list(contract_key(source)))
        if source != "ons_postcodes":
            good = with_geography(good, lake.read(spark, settings.table("silver", "ons_postcodes")))
        silver = conform(good, table_contract("silver", SILVER_CONTRACT.get(source, "person_event")))
        rejects = _quarantine(adapted.where(F.col(REJECT).isNotNull()), source, batch_id)
        lake.replace(silver, settings.table("silver", source))
        lake.replace(
            rejects,
            settings.path("lake", "quarantine", "rows"),
            where=f"stage = 'clean' AND source = '{source}'",
        )
        counts = {
            "bronze": bronze.count(),
            "silver": lake.read(spark, settings.table("silver", source)).count(),
            "quarantined": adapted.where(F.col(REJECT).isNotNull()).count(),
        }
    finally:
        adapted.unpersist()
    log.info("%s: %d bronze rows -> %d silver, %d quarantined", source, *counts.values())
    return counts


def contract_key(source: str) -> tuple[str, ...]:
    return ("postcode",) if source == "ons_postcodes" else ("record_id",)


def clean_all(spark: SparkSession, settings: Settings, batch_id: str) -> dict[str, dict[str, int]]:
    # The postcode directory first: every other adapter looks geography up in it.
    ordered = sorted(source_contracts(), key=lambda c: c.kind != "reference")
    return {c.name: clean_source(spark, settings, c.name, batch_id) for c in ordered}
