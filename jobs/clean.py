"""Cleaning: per-source adapters turn bronze strings into typed, standardised
silver in the common vocabulary (schemas/silver/person_event.yaml).

Each adapter is a pure transform; a row it cannot use keeps a reason and goes
to quarantine/rows, and a doubtful value it keeps (a future date, an unknown
code) is named in clean_flags. The IO entry (``clean_source``) is incremental:

- only bronze rows from files not yet cleaned are adapted (the per-file
  watermark in lake/ops/clean_watermark);
- every accepted row is a version in lake/silver/<source>_history
  (jobs/history.py); silver is the current version of each record (the latest
  delivery wins) with geography looked up from the postcode directory;
- a delivery that would supersede an implausible share of the records
  delivered before it is stopped before anything is written;
- conservation (bronze = silver + superseded + quarantined) is checked and
  recorded in lake/ops/conservation on every build; a miss fails the build;
- per delivery, completeness, validity, NHS number coverage, unknown/default
  and flag rates go to lake/ops/clean_metrics (counts and rates only).

``rebuild_source`` forgets a source's cleaning from a delivery date on and
cleans those bronze rows again: bronze is never re-landed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import reduce

import pyarrow as pa
from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from jobs import clean_local, codes, fanout, history, lake, scorecard
from jobs import standardise as std
from jobs.config import Settings
from jobs.contracts import conform, source_contract, source_contracts, table_contract
from jobs.spark import releases_what_it_cached

log = logging.getLogger(__name__)

REJECT = "_reject_reason"
FLAGS = "clean_flags"
# Lineage every adapter passes through; conform() keeps only what the silver
# contract names, history keeps the rest, and _raw (the bronze row as JSON) feeds quarantine.
_LINEAGE = ["_delivery", "_source_file", "_line", "_file_sha256", "_landed_at", "_batch_id", "_raw"]


class CleanError(RuntimeError):
    """A source's cleaning was stopped: the message names the source, the rule and the figures."""


class SupersedeGuardError(CleanError):
    pass


class ConservationError(CleanError):
    pass


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
        # Terminated postcodes stay in the directory: an old address still resolves to its LSOA.
        F.col("doterm").isNotNull().alias("terminated"),
        *_LINEAGE,
        F.when(postcode.isNull(), F.lit("clean.invalid_postcode"))
        .when(F.col("imd_decile").try_cast("int").isNull(), F.lit("clean.invalid_imd_decile"))
        .alias(REJECT),
    )


# Geography is not the adapter's: with_geography adds it from the postcode directory.
_GEOGRAPHY = ("lsoa_code", "ward_code", "imd_decile")


def _person_event(fields: dict[str, F.Column], reject: F.Column, flags: dict[str, F.Column]) -> list[F.Column]:
    """The silver person_event columns in contract order: what the adapter gives, typed nulls for the rest.

    Driven by the contract, so a column added to schemas/silver/person_event.yaml
    reaches every adapter without restating it here. Date flags are the same for
    every source and are added here.
    """
    contract = table_contract("silver", "person_event")
    skip = {*_LINEAGE, *_GEOGRAPHY, FLAGS}
    columns = [
        fields.get(c.name, F.lit(None).cast(c.spark_type)).alias(c.name) for c in contract.columns if c.name not in skip
    ]
    delivered = history.delivery_date(F.col("_delivery"))
    start, born = fields["event_start"], fields["date_of_birth"]
    every_flag = {
        # "Future" is after the extract was delivered: deterministic, unlike today's date.
        "event_start_in_future": std.is_future(start, delivered),
        "date_of_birth_in_future": std.is_future(born, delivered),
        "event_before_birth": std.is_before_birth(start, born),
        **flags,
    }
    return [*columns, std.flag_list(every_flag).alias(FLAGS), *_LINEAGE, reject.alias(REJECT)]


def _rejects(
    source: str,
    start_column: str,
    end_column: str | None = None,
    optional_dates: tuple[str, ...] = (),
    flagged_codes: tuple[str, ...] = (),
) -> F.Column:
    """Why a row cannot reach silver, or null: a missing key, a bad or missing event date, an end
    before its start, or an event code (pii: none) outside the contract's allowed list or pattern.

    Identity codes (sex, ethnicity) and the national code lists in flagged_codes (admission
    method, discharge destination, diagnosis) are kept and flagged instead: losing the whole
    row for them would lose the event.
    """
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
        if col.pii != "none" or col.name in flagged_codes:
            continue
        delivered, value = F.col(col.name).isNotNull(), F.trim(F.col(col.name))
        if col.allowed:
            reason = reason.when(delivered & ~value.isin(*col.allowed), F.lit(f"clean.invalid_{col.name}"))
        if col.pattern:
            # An ODS code such as '+cmd|...' would reach gold and run as a formula where an analyst opens a CSV.
            reason = reason.when(delivered & ~value.rlike(col.pattern), F.lit(f"clean.invalid_{col.name}"))
    return reason


def _identity(
    source: str,
    nhs: str,
    family: str | None,
    given: str | None,
    dob: str,
    postcode: str,
    sex: str,
    sex_system: str,
) -> tuple[dict[str, Column], dict[str, Column]]:
    """The identity fields every person source has, and the flags they raise."""
    fields = {
        "source": F.lit(source),
        "organisation": F.lit(source_contract(source).organisation),
        "nhs_number": std.nhs_number(F.col(nhs)),
        "nhs_number_issue": std.nhs_number_issue(F.col(nhs)),
        "family_name": std.name(F.col(family)) if family else F.lit(None).cast("string"),
        "given_name": std.name(F.col(given)) if given else F.lit(None).cast("string"),
        "date_of_birth": _date(source, dob),
        "sex": std.sex(F.col(sex), sex_system),
        "postcode": std.postcode(F.col(postcode)),
    }
    flags = {
        "unknown_code:sex": codes.is_unknown(F.col(sex), "sex", sex_system),
        # A postcode that was sent but is not one: the address is lost, the row is not.
        "postcode_invalid": codes.normalised_code(F.col(postcode)).isNotNull() & std.postcode(F.col(postcode)).isNull(),
    }
    return fields, flags


def _ethnicity(column: str) -> tuple[Column, dict[str, Column]]:
    """ONS 2021 code through the national list; an unknown code is kept as delivered, and flagged."""
    raw = F.col(column)
    value = F.coalesce(codes.lookup(raw, "ethnicity", "ons_2021"), codes.normalised_code(raw))
    return value, {"unknown_code:ethnic_category": codes.is_unknown(raw, "ethnicity", "ons_2021")}


def _discharge(column: str, system: str) -> tuple[dict[str, Column], dict[str, Column]]:
    raw = F.col(column)
    fields = {
        "discharge_destination": codes.normalised_code(raw),
        "discharge_destination_group": codes.lookup(raw, "discharge_destination", system, "group"),
    }
    return fields, {"unknown_code:discharge_destination": codes.is_unknown(raw, "discharge_destination", system)}


def adapt_gp_registrations(bronze: DataFrame) -> DataFrame:
    source = "gp_registrations"
    identity, flags = _identity(
        source, "nhs_number", "family_name", "given_name", "date_of_birth", "postcode", "sex", "nhs_stated_gender"
    )
    return bronze.select(
        *_person_event(
            {
                **identity,
                "record_id": F.col("registration_id"),
                "event_type": F.lit("gp_registration"),
                "provider_code": F.trim(F.col("practice_code")),
                "event_start": _date(source, "registration_date"),
                # Death, a move away or a transfer to another practice ends the registration.
                "event_end": _date(source, "deregistration_date"),
            },
            _rejects(source, "registration_date", "deregistration_date"),
            flags,
        )
    )


def adapt_asc_services(bronze: DataFrame) -> DataFrame:
    source = "asc_services"
    identity, flags = _identity(source, "nhs_number", "surname", "forename", "dob", "postcode", "gender", "letters")
    return bronze.select(
        *_person_event(
            {
                **identity,
                "record_id": F.col("service_id"),
                "local_person_id": F.col("client_id"),
                "event_type": F.lit("social_care_service"),
                "service_type": F.col("service_type"),
                "event_start": _date(source, "start_date"),
                "event_end": _date(source, "end_date"),
            },
            _rejects(source, "start_date", "end_date"),
            flags,
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
    identity, flags = _identity(source, "nhs_number", "surname", "forename", "dob", "postcode", "gender", "letters")
    return bronze.select(
        *_person_event(
            {
                **identity,
                "record_id": F.col("event_id"),
                "local_person_id": F.col("client_id"),
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
            flags,
        )
    )


def adapt_apc_episodes(bronze: DataFrame) -> DataFrame:
    source = "apc_episodes"
    # SUS carries no names: identity is the NHS number, date of birth and postcode.
    identity, flags = _identity(
        source, "nhs_number", None, None, "date_of_birth", "postcode", "sex", "nhs_stated_gender"
    )
    ethnicity, ethnicity_flags = _ethnicity("ethnic_category")
    discharge, discharge_flags = _discharge("discharge_destination", "nhs_dd")
    method, diagnosis = F.col("admission_method"), F.col("primary_diagnosis")
    chapter = codes.icd10_chapter(diagnosis)
    return bronze.select(
        *_person_event(
            {
                **identity,
                **discharge,
                "record_id": F.col("episode_id"),
                "ethnic_category": ethnicity,
                "event_type": F.lit("hospital_episode"),
                # NHS Data Dictionary admission method groups: ELECTIVE, EMERGENCY, MATERNITY, OTHER.
                "service_type": codes.lookup(method, "admission_method", "nhs_dd", "group"),
                "provider_code": F.trim(F.col("provider_code")),
                "event_start": _date(source, "admission_date"),
                "event_end": _date(source, "discharge_date"),
                "admission_method": codes.normalised_code(method),
                "primary_diagnosis": F.regexp_replace(F.upper(F.trim(diagnosis)), r"\.", ""),
                "diagnosis_chapter": chapter,
                "discharge_ready_date": _date(source, "discharge_ready_date"),
            },
            _rejects(
                source,
                "admission_date",
                "discharge_date",
                optional_dates=("discharge_ready_date",),
                # A diagnosis outside ICD-10's shape is flagged (unknown_code:primary_diagnosis), not lost.
                flagged_codes=("admission_method", "discharge_destination", "primary_diagnosis"),
            ),
            {
                **flags,
                **ethnicity_flags,
                **discharge_flags,
                "unknown_code:admission_method": codes.is_unknown(method, "admission_method", "nhs_dd"),
                "unknown_code:primary_diagnosis": codes.normalised_code(diagnosis).isNotNull() & chapter.isNull(),
            },
        )
    )


def adapt_ae_attendances(bronze: DataFrame) -> DataFrame:
    source = "ae_attendances"
    arrived = _date(source, "arrival_date")
    identity, flags = _identity(
        source, "nhs_number", "family_name", "given_name", "date_of_birth", "postcode", "sex", "nhs_stated_gender"
    )
    ethnicity, ethnicity_flags = _ethnicity("ethnic_category")
    discharge, discharge_flags = _discharge("discharge_destination", "snomed_ecds")
    return bronze.select(
        *_person_event(
            {
                **identity,
                **discharge,
                "record_id": F.col("attendance_id"),
                "ethnic_category": ethnicity,
                "event_type": F.lit("ae_attendance"),
                "service_type": F.concat(F.lit("ACUITY_"), F.col("acuity")),
                "provider_code": F.trim(F.col("provider_code")),
                "event_start": arrived,
                "event_end": arrived,  # an attendance ends the day it starts, near enough for a timeline
            },
            _rejects(source, "arrival_date", flagged_codes=("discharge_destination",)),
            {**flags, **ethnicity_flags, **discharge_flags},
        )
    )


def adapt_community_contacts(bronze: DataFrame) -> DataFrame:
    source = "community_contacts"
    contact = _date(source, "contact_date")
    identity, flags = _identity(source, "nhs_number", "surname", "forename", "dob", "postcode", "gender", "letters")
    return bronze.select(
        *_person_event(
            {
                **identity,
                "record_id": F.col("contact_id"),
                "event_type": F.lit("community_contact"),
                "service_type": F.col("team_type"),
                "event_start": contact,
                "event_end": contact,
            },
            _rejects(source, "contact_date"),
            flags,
        )
    )


def adapt_housing_cases(bronze: DataFrame) -> DataFrame:
    source = "housing_cases"
    identity, flags = _identity(source, "nhs_number", "surname", "forename", "dob", "postcode", "gender", "letters")
    ethnicity, ethnicity_flags = _ethnicity("ethnicity")
    return bronze.select(
        *_person_event(
            {
                **identity,
                "record_id": F.col("case_id"),
                "ethnic_category": ethnicity,
                "event_type": F.lit("housing_case"),
                "service_type": F.col("duty_type"),
                "event_start": _date(source, "approach_date"),
                "event_end": _date(source, "duty_end_date"),
            },
            _rejects(source, "approach_date", "duty_end_date"),
            {**flags, **ethnicity_flags},
        )
    )


def adapt_opt_outs(bronze: DataFrame) -> DataFrame:
    """The national data opt-out list: one valid NHS number per row."""
    number = std.nhs_number(F.col("nhs_number"))
    return bronze.select(
        number.alias("nhs_number"),
        number.alias("record_id"),  # the list's key is the number itself
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


def contract_key(source: str) -> tuple[str, ...]:
    return ("postcode",) if source == "ons_postcodes" else ("record_id",)


def latest_version(df: DataFrame, key: list[str]) -> DataFrame:
    """One row per record key: the latest delivery wins (corrections supersede)."""
    return history.current(history.versioned(df, key)).drop(*history.VERSION_COLUMNS)


def _append_flags(existing: Column, flags: dict[str, Column]) -> Column:
    joined = F.concat_ws(";", existing, *[F.when(c, F.lit(f)) for f, c in flags.items()])
    return F.nullif(joined, F.lit(""))


def with_geography(events: DataFrame, postcodes: DataFrame) -> DataFrame:
    """Attach LSOA, ward and IMD decile by postcode; terminated postcodes still resolve (and are flagged,
    as is a valid postcode the directory does not hold)."""
    lookup = postcodes.select("postcode", "lsoa_code", "ward_code", "imd_decile", "terminated")
    located = events.join(lookup, on="postcode", how="left")
    flags = {
        "postcode_not_in_directory": F.col("postcode").isNotNull() & F.col("lsoa_code").isNull(),
        "postcode_terminated": F.coalesce(F.col("terminated"), F.lit(False)),
    }
    return located.withColumn(FLAGS, _append_flags(F.col(FLAGS), flags)).drop("terminated")


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


# --- configuration --------------------------------------------------------------------------------


def max_superseded_share(environ: dict[str, str] | None = None) -> float:
    """Share of a source's earlier records one delivery may supersede before it is stopped.

    Increments re-send records that closed (a discharge, an ended package): a fair share, never most.
    A truncated or mis-keyed extract re-sent over everything is stopped before it is applied.
    """
    env = os.environ if environ is None else environ
    return float(env.get("PLACELAKE_CLEAN_MAX_SUPERSEDED_SHARE", "0.6"))


def guard_min_records(environ: dict[str, str] | None = None) -> int:
    """Below this many earlier records a share means little: the guard lets small sources through."""
    env = os.environ if environ is None else environ
    return int(env.get("PLACELAKE_CLEAN_GUARD_MIN_RECORDS", "50"))


# --- paths ----------------------------------------------------------------------------------------


def history_path(settings: Settings, source: str) -> str:
    return settings.table("silver", f"{source}_history")


def _watermark_path(settings: Settings) -> str:
    return settings.table("ops", "clean_watermark")


def _quarantine_path(settings: Settings) -> str:
    return settings.path("lake", "quarantine", "rows")


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# --- the IO entry ---------------------------------------------------------------------------------


def check_supersede_guard(source: str, shares: list[history.DeliveryShare], environ=None) -> None:
    """Raise, naming the delivery and its figures, when a delivery supersedes an implausible share."""
    limit, floor = max_superseded_share(environ), guard_min_records(environ)
    for s in shares:
        if s.prior_records >= floor and s.share > limit:
            raise SupersedeGuardError(
                f"{source}: delivery {s.delivery} would supersede {s.superseded} of the {s.prior_records} records "
                f"delivered before it ({s.share:.0%}, limit {limit:.0%}; rule clean.supersede_guard). A truncated or "
                "mis-keyed extract? Nothing of this source was applied. If the delivery is genuine, run again with "
                "PLACELAKE_CLEAN_MAX_SUPERSEDED_SHARE raised."
            )


def _cleaned_files(spark: SparkSession, settings: Settings, source: str, local: bool = False) -> dict[str, str]:
    """The source's files cleaned before (sha256 -> delivery), from the watermark: one row per file.
    local: read by delta-rs."""
    path = _watermark_path(settings)
    if local and lake.exists_local(path):
        return clean_local.cleaned_files(path, source)
    if not lake.table_exists(spark, path):
        return {}
    rows = lake.read(spark, path).where(F.col("source") == source).select("file_sha256", "delivery").collect()
    return {r.file_sha256: r.delivery for r in rows}


def _new_rows(
    bronze: DataFrame, cleaned: dict[str, str], landed: set[str] | None = None
) -> tuple[DataFrame, int, list[str]]:
    """Bronze rows of the files not cleaned yet, materialised; their count; their deliveries.

    New files are found from the one column naming each row's file (landed, when the caller has
    read it already), so a source with nothing new costs a narrow scan, not a join of every
    bronze column.
    """
    if cleaned:
        if landed is None:
            landed = {r[0] for r in bronze.select("_file_sha256").distinct().collect()}
        new_files = sorted(landed - cleaned.keys())
        if not new_files:
            return bronze.where(F.lit(False)), 0, []
        bronze = bronze.where(F.col("_file_sha256").isin(new_files))
    # Materialised now: the watermark written later would otherwise re-filter these rows to nothing.
    new = bronze.localCheckpoint()
    per_delivery = new.groupBy("_delivery").count().collect()
    return new, sum(r["count"] for r in per_delivery), sorted(r["_delivery"] for r in per_delivery)


def _write_history(spark: SparkSession, settings: Settings, source: str, good: DataFrame) -> None:
    """Add the new versions and re-date the versions of every record they touch (one MERGE)."""
    key = list(contract_key(source))
    path = history_path(settings, source)
    if not lake.table_exists(spark, path):
        lake.replace(history.versioned(good, key), path)
        return
    existing = lake.read(spark, path)
    touched = good.select(*key).distinct()
    # A version cleaned before (the same file and line: a build died after this MERGE and before
    # marking its file cleaned) gives way to its new copy; kept, it would match the MERGE twice.
    cleaned_again = good.select(*history.VERSION_KEY)
    earlier = (
        existing.join(touched, on=key, how="left_semi")
        .join(cleaned_again, on=history.VERSION_KEY, how="left_anti")
        .drop(*history.VERSION_COLUMNS)
    )
    # Cut the lineage: the MERGE below writes the table these versions were read from.
    versions = history.versioned(earlier.unionByName(good), key).localCheckpoint()
    lake.upsert(spark, versions, path, keys=history.VERSION_KEY)


def _ledger(source: str, new: DataFrame, bronze_version: int, run_id: str) -> DataFrame:
    """The watermark's rows for the files of the new rows: one per file."""
    files = new.groupBy("_file_sha256", "_source_file", "_delivery").agg(
        F.count("*").alias("rows"), F.max("_landed_at").alias("landed_at"), F.max("_batch_id").alias("landed_batch_id")
    )
    return files.select(
        F.lit(source).alias("source"),
        F.col("_file_sha256").alias("file_sha256"),
        F.col("_source_file").alias("source_file"),
        F.col("_delivery").alias("delivery"),
        "rows",
        "landed_at",
        "landed_batch_id",
        F.lit(bronze_version).cast("long").alias("bronze_version"),
        F.lit(run_id).alias("cleaned_run_id"),
        F.lit(datetime.now(UTC).replace(tzinfo=None)).cast("timestamp").alias("cleaned_at"),
    )


def _silver_is_stale(spark: SparkSession, settings: Settings, source: str) -> bool:
    """Silver needs writing when it is missing, older than its history, older than the postcode
    directory it was located by, or no longer the history's current versions (a gate dropped rows)."""
    silver_path, versions_path = settings.table("silver", source), history_path(settings, source)
    if not lake.table_exists(spark, silver_path):
        return True
    written = lake.committed_at(spark, silver_path)
    located = SILVER_CONTRACT.get(source, "person_event") == "person_event"
    inputs = [versions_path] + ([settings.table("silver", "ons_postcodes")] if located else [])
    if any(lake.committed_at(spark, p) >= written for p in inputs if lake.table_exists(spark, p)):
        return True
    current = history.current(lake.read(spark, versions_path)).count()
    return lake.read(spark, silver_path).count() != current


def _write_silver(spark: SparkSession, settings: Settings, source: str, local: bool = False) -> None:
    """Silver is the current version of every record, located by the postcode directory as it is now
    (so a new directory re-locates every record, incremental or not). local: by DuckDB and delta-rs."""
    if not _silver_is_stale(spark, settings, source):
        return
    # Only person events are located; the postcode directory and the opt-out list carry no address.
    located = SILVER_CONTRACT.get(source, "person_event") == "person_event"
    contract = table_contract("silver", SILVER_CONTRACT.get(source, "person_event"))
    postcodes = settings.table("silver", "ons_postcodes")
    if local:
        clean_local.write_silver(
            history_path(settings, source), settings.table("silver", source), contract, postcodes if located else None
        )
        return
    current = history.current(lake.read(spark, history_path(settings, source)))
    if located:
        current = with_geography(current, lake.read(spark, postcodes))
    lake.replace(conform(current, contract), settings.table("silver", source))


def _cleans_locally(settings: Settings, source: str) -> bool:
    """Whether a source's whole-table work runs in DuckDB and delta-rs (jobs/clean_local.py): a lake
    on local disk where the source's history and silver exist and fit settings.gate_memory_bytes."""
    tables = [history_path(settings, source), settings.table("silver", source)]
    if not settings.is_local() or not all(lake.exists_local(p) for p in tables):
        return False
    return lake.size_local(tables) <= settings.gate_memory_bytes


def _inputs(spark: SparkSession, settings: Settings, source: str, bronze_version: int) -> str:
    """The Delta versions of the source's tables that conservation counts, or silver is made from, as JSON.

    Not the quarantine's: every source and landing write to it, so its version says little about one source.
    """
    tables = {"silver": settings.table("silver", source), "history": history_path(settings, source)}
    if SILVER_CONTRACT.get(source, "person_event") == "person_event":
        tables["postcodes"] = settings.table("silver", "ons_postcodes")
    versions = {"bronze": bronze_version, **{name: lake.version(spark, path) for name, path in tables.items()}}
    return json.dumps(versions, sort_keys=True)


CONSERVATION_SCHEMA = (
    "run_id string, source string, bronze_rows long, silver_rows long, superseded_rows long, "
    "quarantined_rows long, holds boolean, checked_at timestamp, inputs string"
)
_FIGURES = ("bronze_rows", "silver_rows", "superseded_rows", "quarantined_rows")


def _quarantined_at_clean(spark: SparkSession, settings: Settings, source: str | None = None) -> DataFrame | None:
    path = _quarantine_path(settings)
    if not lake.table_exists(spark, path):
        return None
    rows = lake.read(spark, path).where(F.col("stage") == "clean")
    return rows if source is None else rows.where(F.col("source") == source)


class Bookkeeping:
    """What one build of clean records in the ops tables, each table in one commit at the end:
    every source's delivery metrics, the files it cleaned (the watermark) and its conservation
    check. The last checks and the rows quarantined at clean are read once, for all sources.

    The watermark is written after every source's history, and the checks after it: a build
    that dies before record() has marked no file cleaned, and the next cleans them again
    (every write before it is keyed by file or delivery, so again replaces, never doubles).
    """

    def __init__(self, spark: SparkSession, settings: Settings, run_id: str):
        self.spark, self.settings, self.run_id = spark, settings, run_id
        self.rows: list[tuple] = []  # conservation checks
        self.metrics: list[tuple[str, list[str], DataFrame]] = []  # (source, deliveries, their metrics)
        self.files: list[tuple[str, list[str], DataFrame]] = []  # (source, file sha256s, their ledger)
        self._last: dict[str, Row] | None = None
        self._quarantined: dict[str, int] | None = None
        self._reading = threading.Lock()  # sources cleaned side by side read the last checks once
        # These tables hold a few rows a file or delivery: on a local lake within the memory gate,
        # delta-rs reads and rewrites them (each in one commit, as Spark would).
        tables = [_watermark_path(settings), _quarantine_path(settings)]
        tables += [settings.table("ops", t) for t in ("conservation", "clean_metrics")]
        self.local = settings.is_local() and lake.size_local(tables) <= settings.gate_memory_bytes

    def on_local_disk(self, path: str) -> bool:
        """Whether delta-rs reads and writes this table (it exists: Spark creates it)."""
        return self.local and lake.exists_local(path)

    def measured(self, source: str, deliveries: list[str], metrics: DataFrame) -> None:
        """The deliveries' metrics, replacing what was measured of them before (computed now: the
        rows they come from may not outlive the source's cleaning)."""
        self.metrics.append((source, sorted(deliveries), metrics.localCheckpoint()))

    def cleaned(self, source: str, ledger: DataFrame) -> None:
        """Files whose rows are cleaned: later builds do not clean them again."""
        ledger = ledger.localCheckpoint()
        shas = sorted(r[0] for r in ledger.select("file_sha256").collect())
        self.files.append((source, shas, ledger))

    def last(self, source: str) -> Row | None:
        with self._reading:
            if self._last is None:
                last = {}
                path = self.settings.table("ops", "conservation")
                checks = None
                if self.on_local_disk(path):
                    last = {r["source"]: Row(**r) for r in clean_local.last_checks(path)}
                elif lake.table_exists(self.spark, path):
                    checks = lake.read(self.spark, path)
                if checks is not None and "inputs" in checks.columns:  # not a check recorded before inputs were
                    newest = Window.partitionBy("source").orderBy(F.col("checked_at").desc())
                    latest = checks.withColumn("_n", F.row_number().over(newest)).where(F.col("_n") == 1)
                    last = {r.source: r for r in latest.drop("_n").collect()}
                self._last = last
        return self._last.get(source)

    def quarantined(self, source: str) -> int:
        """As the build found them: a source's own cleaning is the only writer of its rows here."""
        with self._reading:
            if self._quarantined is None and self.on_local_disk(_quarantine_path(self.settings)):
                self._quarantined = clean_local.quarantined_at_clean(_quarantine_path(self.settings))
            if self._quarantined is None:
                rows = _quarantined_at_clean(self.spark, self.settings)
                self._quarantined = {} if rows is None else dict(rows.groupBy("source").count().collect())
        return self._quarantined.get(source, 0)

    def unchanged(self, source: str, inputs: str) -> dict | None:
        """The last check's counts, if it held and nothing it counted has been written since.

        Then nothing is new in bronze, silver is current and a check would count the same:
        a source with no new delivery costs a look at the Delta logs; the last checks and the
        quarantined rows are read once per build, for every source.
        """
        last = self.last(source)
        if last is None or last.inputs != inputs or not last.holds:
            return None
        if last.quarantined_rows != self.quarantined(source):
            return None
        return {k: last[k] for k in _FIGURES}

    def record(self) -> None:
        """Metrics, then the watermark, then the checks: one commit each, replacing the rows of
        the same deliveries, files and run (a build recorded again doubles nothing)."""
        _replace_keyed(self.metrics, self.settings.table("ops", "clean_metrics"), "delivery", self)
        _replace_keyed(self.files, _watermark_path(self.settings), "file_sha256", self)
        self.metrics, self.files = [], []
        if not self.rows:
            return
        sources = _sql_list(sorted({r[1] for r in self.rows}))
        path = self.settings.table("ops", "conservation")
        if self.on_local_disk(path) and "inputs" in lake.dataset_local(path).schema.names:
            schema = lake.arrow_schema(CONSERVATION_SCHEMA)
            checks = [dict(zip(schema.names, r, strict=True)) for r in self.rows]
            for check in checks:
                check["checked_at"] = check["checked_at"].replace(tzinfo=UTC)
            rows = pa.Table.from_pylist(checks, schema=schema)
            clean_local.replace_where(path, rows, f"run_id = {_sql_list([self.run_id])} AND source IN ({sources})")
            self.rows = []
            return
        lake.replace(
            self.spark.createDataFrame(self.rows, CONSERVATION_SCHEMA),
            self.settings.table("ops", "conservation"),
            where=f"run_id = '{self.run_id}' AND source IN ({sources})",
            merge_schema=True,  # inputs was added to a table lakes already have
        )
        self.rows = []


# Sources are cleaned side by side (clean_all). Each writes its own history and silver; the
# tables they share (quarantine rows, and the watermark a rebuild forgets from) take one
# writer at a time, so two sources' commits never race for the same table version.
_SHARED_WRITE = threading.Lock()


def _replace_keyed(pending: list[tuple[str, list[str], DataFrame]], path: str, column: str, books: Bookkeeping) -> None:
    """Every source's rows in one commit, replacing the rows of the same source and key values."""
    if not pending:
        return
    rows = reduce(DataFrame.unionByName, [frame for _, _, frame in pending])
    where = " OR ".join(f"(source = '{source}' AND {column} IN ({_sql_list(keys)}))" for source, keys, _ in pending)
    if books.on_local_disk(path):
        clean_local.replace_where(path, rows.toArrow(), where)
    else:
        lake.replace(rows, path, where=where)


def conservation(
    spark: SparkSession,
    settings: Settings,
    source: str,
    bronze: DataFrame,
    run_id: str,
    inputs: str | None = None,
    figures: dict | None = None,
    books: Bookkeeping | None = None,
    bronze_version: int | None = None,
) -> dict:
    """Bronze rows = silver rows + superseded versions + rows quarantined at clean; recorded every build,
    raised (with the figures) when it does not hold.

    figures, when given, are the last check's, whose tables are at the versions in inputs
    again (nothing was written since): the same counts, so they are recorded, not counted.
    With books, the row waits for books.record(); without, it is recorded now. With bronze_version
    (bronze as the build read it), the counts are delta-rs's (a lake on local disk).
    """
    if inputs is None:
        inputs = _inputs(spark, settings, source, lake.version(spark, settings.table("bronze", source)))
    if figures is None and bronze_version is not None and settings.is_local():
        figures = clean_local.conservation_figures(
            source,
            settings.table("bronze", source),
            bronze_version,
            settings.table("silver", source),
            history_path(settings, source),
            _quarantine_path(settings),
        )
    if figures is None:
        versions = lake.read(spark, history_path(settings, source))
        quarantined = _quarantined_at_clean(spark, settings, source)
        figures = {
            "bronze_rows": bronze.count(),
            "silver_rows": lake.read(spark, settings.table("silver", source)).count(),
            "superseded_rows": versions.where(~F.col("_is_current")).count(),
            "quarantined_rows": 0 if quarantined is None else quarantined.count(),
        }
    accounted = figures["silver_rows"] + figures["superseded_rows"] + figures["quarantined_rows"]
    holds = figures["bronze_rows"] == accounted
    row = (run_id, source, *(figures[k] for k in _FIGURES), holds, datetime.now(UTC).replace(tzinfo=None), inputs)
    if books is not None:
        books.rows.append(row)
    else:
        alone = Bookkeeping(spark, settings, run_id)
        alone.rows.append(row)
        alone.record()
    if not holds:
        raise ConservationError(
            f"{source}: conservation failed (rule clean.conservation): {figures['bronze_rows']} bronze rows != "
            f"{figures['silver_rows']} silver + {figures['superseded_rows']} superseded + "
            f"{figures['quarantined_rows']} quarantined = {accounted} (difference {figures['bronze_rows'] - accounted})"
        )
    return figures


def delivery_metrics(bronze: DataFrame, adapted: DataFrame, source: str) -> DataFrame:
    """Per delivery: each delivered field's completeness, validity and default rate (scorecard rules, from
    the values as delivered), then what cleaning made of the rows: accepted, quarantined, NHS number
    coverage and each flag's rate. Long format: source, delivery, field, measure, numerator, denominator,
    rate. Counts and rates only."""
    contract = source_contract(source)
    fields = scorecard.field_rates(bronze, contract, {"delivery": F.col("_delivery")})
    per_field = fields.select(
        "delivery",
        "field",
        F.explode(
            F.array(
                *[
                    F.struct(F.lit(m).alias("measure"), F.col(n).alias("numerator"), F.col(d).alias("denominator"))
                    for m, n, d in (
                        ("completeness", "present", "rows"),
                        ("validity", "valid", "present"),
                        ("default_rate", "defaults", "rows"),
                    )
                ]
            )
        ).alias("m"),
    ).select("delivery", "field", "m.*")
    outcome = {
        "accepted": F.col(REJECT).isNull(),
        "quarantined": F.col(REJECT).isNotNull(),
    }
    if "nhs_number" in adapted.columns:
        # Coverage: a valid NHS number on the row, the key that links it without probabilistic matching.
        outcome["nhs_number_coverage"] = F.col("nhs_number").isNotNull()
    counts = adapted.groupBy(F.col("_delivery").alias("delivery")).agg(
        F.count("*").alias("rows"), *[F.count_if(c).alias(m) for m, c in outcome.items()]
    )
    per_row = counts.select(
        "delivery",
        F.lit("_row").alias("field"),
        F.explode(F.array(*[F.struct(F.lit(m).alias("measure"), F.col(m).alias("numerator")) for m in outcome])).alias(
            "m"
        ),
        F.col("rows").alias("denominator"),
    ).select("delivery", "field", "m.*", "denominator")
    parts = [per_field, per_row]
    if FLAGS in adapted.columns:
        rows = adapted.groupBy(F.col("_delivery").alias("delivery")).agg(F.count("*").alias("denominator"))
        flagged = (
            adapted.select(F.col("_delivery").alias("delivery"), F.explode(F.split(F.col(FLAGS), ";")).alias("flag"))
            .groupBy("delivery", "flag")
            .agg(F.count("*").alias("numerator"))
            .join(rows, on="delivery", how="inner")
            .select(
                "delivery",
                F.lit("_row").alias("field"),
                F.concat(F.lit("flag:"), F.col("flag")).alias("measure"),
                "numerator",
                "denominator",
            )
        )
        parts.append(flagged)
    metrics = parts[0]
    for part in parts[1:]:
        metrics = metrics.unionByName(part)
    return metrics.select(
        F.lit(source).alias("source"),
        "delivery",
        "field",
        "measure",
        F.col("numerator").cast("long").alias("numerator"),
        F.col("denominator").cast("long").alias("denominator"),
        F.round(F.col("numerator") / F.greatest(F.col("denominator"), F.lit(1)), 4).alias("rate"),
    )


def _metrics(source: str, rows: DataFrame, adapted: DataFrame, run_id: str) -> DataFrame:
    """Metrics of the deliveries in rows, from all their bronze rows and those rows adapted."""
    return delivery_metrics(rows, adapted, source).select(
        "*",
        F.lit(run_id).alias("run_id"),
        F.lit(datetime.now(UTC).replace(tzinfo=None)).cast("timestamp").alias("measured_at"),
    )


def forget(spark: SparkSession, settings: Settings, source: str, bronze: DataFrame, from_delivery: str | None) -> int:
    """Undo the cleaning of a source's bronze rows delivered on or after from_delivery (all when None):
    their versions, their clean quarantine rows and their watermark. Returns the files forgotten.

    Bronze is untouched: the next clean of the source adapts those rows again.
    """
    since = F.lit(True) if from_delivery is None else F.col("_delivery") >= from_delivery
    shas = [r[0] for r in bronze.where(since).select("_file_sha256").distinct().collect()]
    if not shas:
        return 0
    in_files = f"file_sha256 IN ({_sql_list(shas)})"
    with _SHARED_WRITE:
        if lake.table_exists(spark, _watermark_path(settings)):
            DeltaTable.forPath(spark, _watermark_path(settings)).delete(f"source = '{source}' AND {in_files}")
        if lake.table_exists(spark, _quarantine_path(settings)):
            DeltaTable.forPath(spark, _quarantine_path(settings)).delete(
                f"stage = 'clean' AND source = '{source}' AND {in_files}"
            )
    path = history_path(settings, source)
    if lake.table_exists(spark, path):
        kept = lake.read(spark, path).where(~F.col("_file_sha256").isin(shas))
        # Versions left behind are re-dated: a record whose later versions went is current again.
        lake.replace(history.versioned(kept, list(contract_key(source))).localCheckpoint(), path)
    return len(shas)


def clean_source(
    spark: SparkSession,
    settings: Settings,
    source: str,
    batch_id: str,
    rebuild: bool = False,
    rebuild_from: str | None = None,
    books: Bookkeeping | None = None,
) -> dict[str, int]:
    """Clean a source's bronze rows not cleaned before (all of them from rebuild_from on, when rebuild).

    With books (clean_all's), its metrics, files and conservation check are recorded with every
    other source's; without, at its end.
    """
    own = books is None
    books = Bookkeeping(spark, settings, batch_id) if own else books
    try:
        return _clean_source(spark, settings, source, batch_id, rebuild, rebuild_from, books)
    finally:
        if own:
            books.record()


def _clean_source(
    spark: SparkSession,
    settings: Settings,
    source: str,
    batch_id: str,
    rebuild: bool,
    rebuild_from: str | None,
    books: Bookkeeping,
) -> dict[str, int]:
    contract = source_contract(source)
    bronze_path = settings.table("bronze", source)
    if not lake.table_exists(spark, bronze_path):
        log.warning("%s: no bronze table yet, nothing to clean", source)
        return {"bronze": 0, "new": 0, "silver": 0, "superseded": 0, "quarantined": 0}
    # One snapshot for the whole run: rows landing meanwhile wait for the next run, and the
    # conservation check counts exactly the rows this run accounted for.
    bronze_version = lake.version(spark, bronze_path)
    bronze = lake.read(spark, bronze_path, version=bronze_version)
    if rebuild:
        forgotten = forget(spark, settings, source, bronze, rebuild_from)
        log.info("%s: rebuilding from %s: %d file(s) to clean again", source, rebuild_from or "the start", forgotten)
    else:
        inputs = _inputs(spark, settings, source, bronze_version)
        figures = books.unchanged(source, inputs)
        if figures is not None:
            conservation(spark, settings, source, bronze, batch_id, inputs, figures, books)
            log.info(
                "%s: nothing written to it since the last build checked it (bronze version %d)", source, bronze_version
            )
            return _counts(figures, 0)
    # Once the source has a history and silver, their whole-table work is DuckDB's on a local lake.
    local = _cleans_locally(settings, source)
    cleaned = _cleaned_files(spark, settings, source, books.local)
    landed = clean_local.landed_files(bronze_path, bronze_version) if local and cleaned else None
    new, new_rows, deliveries = _new_rows(bronze, cleaned, landed)
    # Metrics are per delivery, over all its rows. A delivery whose files are all new is measured
    # from the rows adapted for cleaning; one landed partly in an earlier run is read again whole.
    measured_whole = not set(deliveries) & set(cleaned.values())
    if new_rows or not lake.table_exists(spark, history_path(settings, source)):
        # An empty bronze table still gets (empty) history and silver, so downstream finds them.
        _clean_new_rows(
            spark,
            settings,
            source,
            contract,
            new,
            bronze_version,
            batch_id,
            books,
            measure=tuple(deliveries) if measured_whole else (),
            local=local,
        )
    _write_silver(spark, settings, source, local)
    inputs = _inputs(spark, settings, source, bronze_version)
    figures = conservation(
        spark, settings, source, bronze, batch_id, inputs, books=books, bronze_version=bronze_version if local else None
    )
    if deliveries and not measured_whole:
        rows = bronze.where(F.col("_delivery").isin(deliveries))
        adapted = ADAPTERS[source](rows.withColumn("_raw", F.lit(None).cast("string")))
        books.measured(source, deliveries, _metrics(source, rows, adapted, batch_id))
    counts = _counts(figures, new_rows)
    log.info(
        "%s: %d bronze rows (%d new) -> %d silver, %d superseded, %d quarantined",
        source,
        *counts.values(),
    )
    return counts


def _counts(figures: dict, new_rows: int) -> dict[str, int]:
    return {
        "bronze": figures["bronze_rows"],
        "new": new_rows,
        "silver": figures["silver_rows"],
        "superseded": figures["superseded_rows"],
        "quarantined": figures["quarantined_rows"],
    }


def _clean_new_rows(
    spark: SparkSession,
    settings: Settings,
    source: str,
    contract,
    new: DataFrame,
    bronze_version: int,
    batch_id: str,
    books: Bookkeeping,
    measure: tuple[str, ...] = (),
    local: bool = False,
) -> None:
    """Adapt, quarantine and version the new rows; their files go to books to be marked cleaned.
    The deliveries in measure (every row of which is among the new rows) are measured from the
    same adapted rows. local: the guard's figures and the history by DuckDB and delta-rs."""
    with_raw = new.withColumn("_raw", F.to_json(F.struct(*contract.column_names)))
    adapted = ADAPTERS[source](with_raw).persist()
    try:
        good = adapted.where(F.col(REJECT).isNull()).drop(REJECT, "_raw")
        path = history_path(settings, source)
        key = list(contract_key(source))
        if local:
            good_rows = good.toArrow()  # the new rows: a delivery's, not the source's
            shares = clean_local.superseded_shares(path, good_rows, key)
        else:
            earlier = lake.read(spark, path) if lake.table_exists(spark, path) else good.limit(0)
            shares = history.superseded_shares(earlier, good, key)
        # Stop before writing anything: a stopped delivery leaves the source as it was.
        check_supersede_guard(source, shares)
        rejects = adapted.where(F.col(REJECT).isNotNull())
        if rejects.limit(1).count():
            # Keyed by file: a retried run replaces these files' rows, never quarantines a row twice.
            shas = [r[0] for r in new.select("_file_sha256").distinct().collect()]
            where = f"stage = 'clean' AND source = '{source}' AND file_sha256 IN ({_sql_list(shas)})"
            quarantine = _quarantine(rejects, source, batch_id)
            if books.on_local_disk(_quarantine_path(settings)):
                rows = quarantine.toArrow()  # computed outside the lock
                with _SHARED_WRITE:
                    clean_local.replace_where(_quarantine_path(settings), rows, where)
            else:
                quarantine = quarantine.localCheckpoint()  # computed outside the lock
                with _SHARED_WRITE:
                    lake.replace(quarantine, _quarantine_path(settings), where=where)
        if local:
            clean_local.write_history(path, good_rows, key)
        else:
            _write_history(spark, settings, source, good)
        if measure:
            books.measured(source, list(measure), _metrics(source, new, adapted, batch_id))
        # Marked cleaned when books are recorded, after every source's history: see Bookkeeping.
        books.cleaned(source, _ledger(source, new, bronze_version, batch_id))
    finally:
        adapted.unpersist()


@releases_what_it_cached
def clean_all(
    spark: SparkSession,
    settings: Settings,
    batch_id: str,
    rebuild_source: str | None = None,
    rebuild_from: str | None = None,
) -> dict[str, dict[str, int]]:
    """Clean every source; rebuild_source (a source name, or 'all') is first forgotten from rebuild_from on.

    A source that is stopped (supersede guard, conservation) does not stop the others; the run
    raises at the end naming every stopped source, so nothing downstream runs on a partial silver.
    The reference sources are cleaned first (every adapter looks geography up in them), then the
    others side by side (settings.table_threads).
    """
    contracts = source_contracts()
    names = {c.name for c in contracts}
    if rebuild_source not in (None, "all") and rebuild_source not in names:
        raise CleanError(f"no source named {rebuild_source!r} to rebuild (sources: {', '.join(sorted(names))})")
    # The postcode directory first: every other adapter looks geography up in it.
    reference = [c for c in contracts if c.kind == "reference"]
    others = [c for c in contracts if c.kind != "reference"]
    books = Bookkeeping(spark, settings, batch_id)

    def one(contract) -> dict[str, int] | CleanError:
        rebuild = rebuild_source in ("all", contract.name)
        try:
            return clean_source(
                spark, settings, contract.name, batch_id, rebuild=rebuild, rebuild_from=rebuild_from, books=books
            )
        except CleanError as exc:
            log.error("%s", exc)
            return exc

    outcomes = [one(c) for c in reference] + fanout.each(one, others, settings.table_threads, "clean")
    results = {c.name: r for c, r in zip(reference + others, outcomes, strict=True) if not isinstance(r, CleanError)}
    stopped = [str(r) for r in outcomes if isinstance(r, CleanError)]
    books.record()  # every source's metrics, files and check, the failed ones' too, one commit each
    if stopped:
        raise CleanError(f"cleaning stopped for {len(stopped)} source(s): " + " | ".join(stopped))
    return results
