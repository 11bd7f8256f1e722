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


def _person_event(fields: dict[str, F.Column], reject: F.Column) -> list[F.Column]:
    """The silver person_event columns in contract order: what the adapter gives, typed nulls for the rest.

    Driven by the contract, so a column added to schemas/silver/person_event.yaml
    reaches every adapter without restating it here.
    """
    contract = table_contract("silver", "person_event")
    # Geography is not the adapter's: with_geography adds it from the postcode directory.
    lineage = {*_LINEAGE, "lsoa_code", "ward_code", "imd_decile"}
    columns = [
        fields.get(c.name, F.lit(None).cast(c.spark_type)).alias(c.name)
        for c in contract.columns
        if c.name not in lineage
    ]
    return [*columns, *_LINEAGE, reject.alias(REJECT)]


def _rejects(
    source: str, start_column: str, end_column: str | None = None, optional_dates: tuple[str, ...] = ()
) -> F.Column:
    """Why a row cannot reach silver, or null: a missing key, a bad or missing event date, an end
    before its start, or an event code outside the contract's allowed list (identity codes such as
    sex map to unknown instead: losing the whole row for them would lose the event)."""
    contract = source_contract(source)
    start = _date(source, start_column)
    reason = F.when(F.col(contract.record_key[0]).isNull(), F.lit("clean.missing_record_key")).when(
        start.isNull(), F.lit(f"clean.invalid_{start_column}")
    )
    for column in (*optional_dates, *([end_column] if end_column else [])):
        reason = reason.when(
            F.col(column).isNotNull() & _date(source, column).isNull(), F.lit(f"clean.invalid_{column}")
        )
    if end_column:
        reason = reason.when(_date(source, end_column) < start, F.lit("clean.end_before_start"))
    for col in contract.columns:
        if col.allowed and col.pii == "none":
            reason = reason.when(
                F.col(col.name).isNotNull() & ~F.trim(F.col(col.name)).isin(*col.allowed),
                F.lit(f"clean.invalid_{col.name}"),
            )
    return reason


def _identity(source: str, nhs: str, family: str | None, given: str | None, dob: str, postcode: str) -> dict:
    return {
        "source": F.lit(source),
        "organisation": F.lit(source_contract(source).organisation),
        "nhs_number": std.nhs_number(F.col(nhs)),
        "nhs_number_issue": std.nhs_number_issue(F.col(nhs)),
        "family_name": std.name(F.col(family)) if family else F.lit(None).cast("string"),
        "given_name": std.name(F.col(given)) if given else F.lit(None).cast("string"),
        "date_of_birth": _date(source, dob),
        "postcode": std.postcode(F.col(postcode)),
    }


# NHS person stated gender: 1 male, 2 female, 9 indeterminate, X not known.
_NHS_SEX = {"1": "M", "2": "F"}
_LETTER_SEX = {"M": "M", "F": "F"}


def _ethnicity(column: str) -> F.Column:
    return F.when(F.trim(F.col(column)).rlike(r"^([A-E][1-5]|Z)$"), F.trim(F.col(column)))


def adapt_gp_registrations(bronze: DataFrame) -> DataFrame:
    source = "gp_registrations"
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "family_name", "given_name", "date_of_birth", "postcode"),
                "record_id": F.col("registration_id"),
                "sex": std.sex_from_code(F.col("sex"), _NHS_SEX),
                "event_type": F.lit("gp_registration"),
                "provider_code": F.col("practice_code"),
                "event_start": _date(source, "registration_date"),
                # Death, a move away or a transfer to another practice ends the registration.
                "event_end": _date(source, "deregistration_date"),
            },
            _rejects(source, "registration_date", "deregistration_date"),
        )
    )


def adapt_asc_services(bronze: DataFrame) -> DataFrame:
    source = "asc_services"
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "surname", "forename", "dob", "postcode"),
                "record_id": F.col("service_id"),
                "local_person_id": F.col("client_id"),
                "sex": std.sex_from_code(F.col("gender"), _LETTER_SEX),
                "event_type": F.lit("social_care_service"),
                "service_type": F.col("service_type"),
                "event_start": _date(source, "start_date"),
                "event_end": _date(source, "end_date"),
            },
            _rejects(source, "start_date", "end_date"),
        )
    )


# ASC Client Level Data event types in the common vocabulary; services come from asc_services.
_ASC_EVENT_TYPES = {
    "REQUEST": "social_care_request",
    "ASSESSMENT": "social_care_assessment",
    "REVIEW": "social_care_review",
}


def _mapped(column: F.Column, mapping: dict[str, str]) -> F.Column:
    """A code mapped through a fixed table; unknown codes give null (_rejects has already named them)."""
    return F.create_map(*[F.lit(v) for pair in mapping.items() for v in pair])[F.trim(column)]


def adapt_asc_events(bronze: DataFrame) -> DataFrame:
    source = "asc_events"
    day = _date(source, "event_date")
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "surname", "forename", "dob", "postcode"),
                "record_id": F.col("event_id"),
                "local_person_id": F.col("client_id"),
                "sex": std.sex_from_code(F.col("gender"), _LETTER_SEX),
                "event_type": _mapped(F.col("event_type"), _ASC_EVENT_TYPES),
                # The outcome is the detail analysts ask of an event: what the request or assessment led to.
                "service_type": F.trim(F.col("event_outcome")),
                "event_start": day,
                "event_end": day,  # CLD dates a request, a completed assessment or a review by one day
            },
            # A blank event type has no allowed value to fail, yet silver requires one.
            F.coalesce(
                _rejects(source, "event_date"),
                F.when(F.col("event_type").isNull(), F.lit("clean.missing_event_type")),
            ),
        )
    )


def _admission_group(method: F.Column) -> F.Column:
    # NHS Data Dictionary admission method: 1x elective, 2x emergency, 3x maternity.
    return (
        F.when(method.startswith("1"), F.lit("ELECTIVE"))
        .when(method.startswith("2"), F.lit("EMERGENCY"))
        .when(method.startswith("3"), F.lit("MATERNITY"))
    )


def adapt_apc_episodes(bronze: DataFrame) -> DataFrame:
    source = "apc_episodes"
    # SUS carries no names: identity is the NHS number, date of birth and postcode.
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", None, None, "date_of_birth", "postcode"),
                "record_id": F.col("episode_id"),
                "sex": std.sex_from_code(F.col("sex"), _NHS_SEX),
                "ethnic_category": _ethnicity("ethnic_category"),
                "event_type": F.lit("hospital_episode"),
                "service_type": _admission_group(F.col("admission_method")),
                "provider_code": F.col("provider_code"),
                "event_start": _date(source, "admission_date"),
                "event_end": _date(source, "discharge_date"),
                "admission_method": F.col("admission_method"),
                "primary_diagnosis": F.upper(F.trim(F.col("primary_diagnosis"))),
                "discharge_ready_date": _date(source, "discharge_ready_date"),
                "discharge_destination": F.col("discharge_destination"),
            },
            _rejects(source, "admission_date", "discharge_date", optional_dates=("discharge_ready_date",)),
        )
    )


def adapt_ae_attendances(bronze: DataFrame) -> DataFrame:
    source = "ae_attendances"
    arrived = _date(source, "arrival_date")
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "family_name", "given_name", "date_of_birth", "postcode"),
                "record_id": F.col("attendance_id"),
                "sex": std.sex_from_code(F.col("sex"), _NHS_SEX),
                "ethnic_category": _ethnicity("ethnic_category"),
                "event_type": F.lit("ae_attendance"),
                "service_type": F.concat(F.lit("ACUITY_"), F.col("acuity")),
                "provider_code": F.col("provider_code"),
                "event_start": arrived,
                "event_end": arrived,  # an attendance ends the day it starts, near enough for a timeline
                "discharge_destination": F.col("discharge_destination"),
            },
            _rejects(source, "arrival_date"),
        )
    )


def adapt_community_contacts(bronze: DataFrame) -> DataFrame:
    source = "community_contacts"
    contact = _date(source, "contact_date")
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "surname", "forename", "dob", "postcode"),
                "record_id": F.col("contact_id"),
                "sex": std.sex_from_code(F.col("gender"), _LETTER_SEX),
                "event_type": F.lit("community_contact"),
                "service_type": F.col("team_type"),
                "event_start": contact,
                "event_end": contact,
            },
            _rejects(source, "contact_date"),
        )
    )


def adapt_housing_cases(bronze: DataFrame) -> DataFrame:
    source = "housing_cases"
    return bronze.select(
        *_person_event(
            {
                **_identity(source, "nhs_number", "surname", "forename", "dob", "postcode"),
                "record_id": F.col("case_id"),
                "sex": std.sex_from_code(F.col("gender"), _LETTER_SEX),
                "ethnic_category": _ethnicity("ethnicity"),
                "event_type": F.lit("housing_case"),
                "service_type": F.col("duty_type"),
                "event_start": _date(source, "approach_date"),
                "event_end": _date(source, "duty_end_date"),
            },
            _rejects(source, "approach_date", "duty_end_date"),
        )
    )


def adapt_opt_outs(bronze: DataFrame) -> DataFrame:
    """The national data opt-out list: one valid NHS number per row."""
    number = std.nhs_number(F.col("nhs_number"))
    return bronze.select(
        number.alias("nhs_number"),
        number.alias("record_id"),  # the list's key is the number itself
        F.lit(None).cast("string").alias("postcode"),  # no address: with_geography finds nothing
        *_LINEAGE,
        F.when(number.isNull(), F.concat(F.lit("clean.nhs_number_"), std.nhs_number_issue(F.col("nhs_number")))).alias(
            REJECT
        ),
    )


ADAPTERS: dict[str, Callable[[DataFrame], DataFrame]] = {
    "ons_postcodes": adapt_ons_postcodes,
    "gp_registrations": adapt_gp_registrations,
    "asc_services": adapt_asc_services,
    "asc_events": adapt_asc_events,
    "apc_episodes": adapt_apc_episodes,
    "ae_attendances": adapt_ae_attendances,
    "community_contacts": adapt_community_contacts,
    "housing_cases": adapt_housing_cases,
    "opt_outs": adapt_opt_outs,
}
SILVER_CONTRACT = {"ons_postcodes": "postcode", "opt_outs": "opt_out"}  # every other source produces person_event


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
