"""Linkage: which records, across every organisation, belong to one person.

This is the deterministic first pass of the method (the probabilistic Splink
pass comes with issue #6):
1. records sharing a valid NHS number are one person;
2. a record without one joins the NHS-number person whose standardised
   family name, given name and date of birth it matches exactly, when exactly
   one such person exists;
3. the rest cluster on that exact demographic key, or stand alone.
A person_id is derived from the smallest (source, record_id) in its cluster,
so re-running on the same records yields the same ids.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import Settings
from jobs.contracts import conform, source_contracts, table_contract

log = logging.getLogger(__name__)

IDENTITY = [
    "source",
    "record_id",
    "nhs_number",
    "family_name",
    "given_name",
    "date_of_birth",
    "sex",
    "postcode",
    "lsoa_code",
    "ward_code",
    "imd_decile",
    "provider_code",
    "event_start",
]


def demographic_key(df: DataFrame) -> F.Column:
    complete = F.col("family_name").isNotNull() & F.col("given_name").isNotNull() & F.col("date_of_birth").isNotNull()
    key = F.concat_ws("|", "family_name", "given_name", F.col("date_of_birth").cast("string"))
    return F.when(complete, key)


def assign_clusters(records: DataFrame) -> DataFrame:
    """(source, record_id, identity...) -> the same rows plus cluster_key and method."""
    keyed = records.withColumn("demo_key", demographic_key(records))
    # Demographic keys that point at exactly one NHS number can lend it.
    nhs_by_demo = (
        keyed.where(F.col("nhs_number").isNotNull() & F.col("demo_key").isNotNull())
        .groupBy("demo_key")
        .agg(F.countDistinct("nhs_number").alias("n_nhs"), F.min("nhs_number").alias("borrowed_nhs"))
        .where("n_nhs = 1")
        .select("demo_key", "borrowed_nhs")
    )
    joined = keyed.join(nhs_by_demo, on="demo_key", how="left")
    method = (
        F.when(F.col("nhs_number").isNotNull(), F.lit("nhs_number"))
        .when(F.col("borrowed_nhs").isNotNull(), F.lit("demographic_exact"))
        .when(F.col("demo_key").isNotNull(), F.lit("demographic_cluster"))
        .otherwise(F.lit("singleton"))
    )
    cluster_key = (
        F.when(F.col("nhs_number").isNotNull(), F.concat(F.lit("N|"), "nhs_number"))
        .when(F.col("borrowed_nhs").isNotNull(), F.concat(F.lit("N|"), "borrowed_nhs"))
        .when(F.col("demo_key").isNotNull(), F.concat(F.lit("D|"), "demo_key"))
        .otherwise(F.concat_ws("|", F.lit("R"), "source", "record_id"))
    )
    return joined.withColumn("method", method).withColumn("cluster_key", cluster_key).drop("borrowed_nhs", "demo_key")


def person_ids(clustered: DataFrame) -> DataFrame:
    """A stable person_id per cluster: a hash of its smallest (source, record_id)."""
    cluster = Window.partitionBy("cluster_key")
    anchor = F.min(F.concat_ws(":", "source", "record_id")).over(cluster)
    return clustered.withColumn("person_id", F.concat(F.lit("P"), F.substring(F.sha2(anchor, 256), 1, 16)))


def person_links(clustered_with_ids: DataFrame, run_id: str) -> DataFrame:
    return clustered_with_ids.select(
        "source",
        "record_id",
        "person_id",
        "method",
        F.lit(1.0).alias("match_probability"),
        F.lit(run_id).alias("run_id"),
    )


def best_demographics(linked: DataFrame) -> DataFrame:
    """Survivorship: the GP record wins, then the most recent record with a value."""
    preference = (
        Window.partitionBy("person_id")
        .orderBy(
            (F.col("source") == "gp_registrations").desc(),
            F.col("event_start").desc_nulls_last(),
            "source",
            "record_id",
        )
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )

    def best(column: str) -> F.Column:
        return F.first(column, ignorenulls=True).over(preference).alias(column)

    current_gp = (
        Window.partitionBy("person_id")
        .orderBy(F.col("event_start").desc_nulls_last(), "record_id")
        .rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    with_best = linked.select(
        "person_id",
        best("nhs_number"),
        best("date_of_birth"),
        F.coalesce(
            F.first(F.when(F.col("sex") != "U", F.col("sex")), ignorenulls=True).over(preference), F.lit("U")
        ).alias("sex"),
        best("postcode"),
        best("lsoa_code"),
        best("ward_code"),
        best("imd_decile"),
        F.first(F.when(F.col("source") == "gp_registrations", F.col("provider_code")), ignorenulls=True)
        .over(current_gp)
        .alias("practice_code"),
        F.size(F.collect_set("source").over(preference)).alias("source_count"),
    )
    return with_best.dropDuplicates(["person_id"])


def person_sources(spark: SparkSession, settings: Settings) -> list[str]:
    return [
        c.name
        for c in source_contracts()
        if c.kind == "person_events" and lake.table_exists(spark, settings.table("silver", c.name))
    ]


def link_all(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, int]:
    sources = person_sources(spark, settings)
    records = None
    for source in sources:
        frame = lake.read(spark, settings.table("silver", source)).select(*IDENTITY)
        records = frame if records is None else records.unionByName(frame)
    if records is None:
        raise RuntimeError("no silver person sources to link: did clean run?")
    linked = person_ids(assign_clusters(records)).persist()
    try:
        links = conform(person_links(linked, run_id), table_contract("silver", "person_link"))
        persons = conform(best_demographics(linked), table_contract("silver", "person"))
        lake.replace(links, settings.table("silver", "person_link"))
        lake.replace(persons, settings.table("silver", "person"))
        by_method = {r["method"]: r["count"] for r in linked.groupBy("method").count().collect()}
    finally:
        linked.unpersist()
    persons_n = lake.read(spark, settings.table("silver", "person")).count()
    log.info("linked %d records into %d persons: %s", sum(by_method.values()), persons_n, by_method)
    return {"records": sum(by_method.values()), "persons": persons_n, **by_method}
