"""Curation: gold marts keyed by a pseudonymous person_key, no direct identifiers.

Each builder is a pure transform from silver frames to a frame matching its
contract in schemas/gold/. The gate decides whether it is published.
"""

from __future__ import annotations

import logging
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import Settings
from jobs.contracts import conform, gold_contracts, table_contract
from jobs.link import person_sources
from jobs.privacy import hmac_sha256, pseudonym_key, rate_per_1000, rounded_count

log = logging.getLogger(__name__)


def age_band(date_of_birth: F.Column, as_of: date) -> F.Column:
    age = F.floor(F.months_between(F.lit(as_of), date_of_birth) / 12)
    return (
        F.when(date_of_birth.isNull() | (age < 0), F.lit("unknown"))
        .when(age < 18, F.lit("0-17"))
        .when(age < 65, F.lit("18-64"))
        .when(age < 75, F.lit("65-74"))
        .when(age < 85, F.lit("75-84"))
        .otherwise(F.lit("85+"))
    )


def build_person(persons: DataFrame, events: DataFrame, key: str, as_of: date) -> DataFrame:
    social_care = (
        events.where(F.col("event_type") == "social_care_service")
        .select("person_id")
        .distinct()
        .withColumn("is_social_care_client", F.lit(True))
    )
    return persons.join(social_care, on="person_id", how="left").select(
        hmac_sha256(F.col("person_id"), key).alias("person_key"),
        age_band(F.col("date_of_birth"), as_of).alias("age_band"),
        "sex",
        "lsoa_code",
        "ward_code",
        "imd_decile",
        "practice_code",
        F.coalesce("is_social_care_client", F.lit(False)).alias("is_social_care_client"),
        "source_count",
    )


def build_care_event(events: DataFrame, key: str) -> DataFrame:
    # Exact dates are quasi-identifying; gold carries months and durations.
    return events.select(
        hmac_sha256(F.concat_ws(":", "source", "record_id"), key).alias("event_key"),
        hmac_sha256(F.col("person_id"), key).alias("person_key"),
        "source",
        "organisation",
        "event_type",
        "service_type",
        "provider_code",
        F.trunc("event_start", "month").alias("event_start_month"),
        F.trunc("event_end", "month").alias("event_end_month"),
        F.datediff("event_end", "event_start").alias("duration_days"),
    )


def build_place_month(person: DataFrame, care_event: DataFrame, as_of: date, months: int = 24) -> DataFrame:
    """Ward x month counts over the months up to as_of, disclosure-controlled."""
    last = as_of.replace(day=1)
    month_grid = person.sparkSession.sql(
        f"SELECT explode(sequence(add_months(DATE'{last.isoformat()}', {1 - months}), "
        f"DATE'{last.isoformat()}', INTERVAL 1 MONTH)) AS month"
    )
    wards = person.where(F.col("ward_code").isNotNull()).select("ward_code").distinct()
    grid = wards.crossJoin(month_grid)

    residents = person.where(F.col("ward_code").isNotNull()).groupBy("ward_code").agg(F.count("*").alias("residents"))
    located = care_event.join(person.select("person_key", "ward_code"), on="person_key", how="inner")
    new_regs = (
        located.where(F.col("event_type") == "gp_registration")
        .groupBy("ward_code", F.col("event_start_month").alias("month"))
        .agg(F.count("*").alias("new_gp_registrations"))
    )
    new_packages = (
        located.where(F.col("event_type") == "social_care_service")
        .groupBy("ward_code", F.col("event_start_month").alias("month"))
        .agg(F.count("*").alias("new_care_packages"))
    )
    active = (
        located.where(F.col("event_type") == "social_care_service")
        .join(
            month_grid,
            on=(F.col("event_start_month") <= F.col("month"))
            & (F.col("event_end_month").isNull() | (F.col("event_end_month") >= F.col("month"))),
            how="inner",
        )
        .groupBy("ward_code", "month")
        .agg(F.countDistinct("person_key").alias("social_care_clients"))
    )
    raw = (
        grid.join(residents, on="ward_code", how="left")
        .join(new_regs, on=["ward_code", "month"], how="left")
        .join(new_packages, on=["ward_code", "month"], how="left")
        .join(active, on=["ward_code", "month"], how="left")
        .fillna(0, subset=["residents", "new_gp_registrations", "new_care_packages", "social_care_clients"])
    )
    controlled = raw.select(
        "ward_code",
        "month",
        *[
            rounded_count(F.col(c)).alias(c)
            for c in ("residents", "new_gp_registrations", "social_care_clients", "new_care_packages")
        ],
    )
    return controlled.withColumn(
        "social_care_clients_per_1000", rate_per_1000(F.col("social_care_clients"), F.col("residents"))
    )


def linked_events(spark: SparkSession, settings: Settings) -> DataFrame:
    links = lake.read(spark, settings.table("silver", "person_link")).select("source", "record_id", "person_id")
    frames = [lake.read(spark, settings.table("silver", s)) for s in person_sources(spark, settings)]
    events = frames[0]
    for frame in frames[1:]:
        events = events.unionByName(frame)
    return events.join(links, on=["source", "record_id"], how="inner")


def build_gold(spark: SparkSession, settings: Settings, as_of: date) -> dict[str, DataFrame]:
    """Every gold table as a frame conforming to its contract (nothing written)."""
    key = pseudonym_key()
    events = linked_events(spark, settings)
    persons = lake.read(spark, settings.table("silver", "person"))
    person = build_person(persons, events, key, as_of)
    care_event = build_care_event(events, key)
    tables = {
        "person": person,
        "care_event": care_event,
        "place_month": build_place_month(person, care_event, as_of),
    }
    return {name: conform(df, table_contract("gold", name)) for name, df in tables.items()}


def curate_all(spark: SparkSession, settings: Settings, as_of: date) -> dict[str, int]:
    """Build every gold table into staging (lake/staging/gold/<table>)."""
    expected = {c.name for c in gold_contracts()}
    built = build_gold(spark, settings, as_of)
    if set(built) != expected:
        raise RuntimeError(f"gold builders {sorted(built)} do not match gold contracts {sorted(expected)}")
    counts = {}
    for name, df in built.items():
        staging = settings.table("staging/gold", name)
        lake.replace(df, staging)
        counts[name] = lake.read(spark, staging).count()
        log.info("staged gold.%s: %d rows", name, counts[name])
    return counts
