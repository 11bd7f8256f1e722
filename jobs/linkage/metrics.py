"""Linkage quality, every run, into lake/ops/linkage_metrics: counts and rates only.

Without truth: link rate per source, cluster sizes, methods, and the false-
and missed-match rates the model itself expects. On a generated place the
generator's truth/records.csv says who every record really is: pairwise
precision, recall and F1, overall and by age band, sex and ethnic group
(linkage that fails one group more than another is a known harm). The truth
is read here, after linking, and never by the linkage itself.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import Settings

log = logging.getLogger(__name__)

METRIC_SCHEMA = (
    "run_id string, measured_at timestamp, mode string, metric string, dimension string, "
    "grp string, value double, numerator double, denominator double"
)
_SIZE_BUCKETS = [(1, "1"), (2, "2"), (5, "3-5"), (10, "6-10"), (50, "11-50")]
_ETHNIC_GROUPS = {"A": "Asian", "B": "Black", "C": "Mixed", "D": "White", "E": "Other", "Z": "Not stated"}
_DIMENSIONS = ["sex", "age_band", "ethnic_group"]  # of accuracy against the truth


def age_band(birth_year: F.Column, year: int) -> F.Column:
    age = F.lit(year) - birth_year
    return (
        F.when(birth_year.isNull(), "unknown")
        .when(age < 18, "0-17")
        .when(age < 65, "18-64")
        .when(age < 75, "65-74")
        .when(age < 85, "75-84")
        .otherwise("85+")
    )


def _pandas(counts, ids: list[str]) -> pd.DataFrame:
    """Counts (a Spark frame, or an Arrow table) as pandas, the id columns as integer codes: what the
    counts group by, and pandas groups ints many times faster. The codes are made in Arrow, so no id
    becomes a Python string (toPandas without Arrow builds a Row per row)."""
    table = counts.toArrow() if isinstance(counts, DataFrame) else counts
    for column in ids:
        codes = pc.dictionary_encode(table[column].combine_chunks()).indices
        table = table.set_column(table.schema.get_field_index(column), column, codes)
    return table.to_pandas()


def _pairs(n):
    return n * (n - 1) / 2


def pairwise_counts(units: pd.DataFrame, group: str) -> pd.DataFrame:
    """Units (person_id, truth_id, group column, n units) -> per group: tp, predicted, actual pair counts.

    A pair is two units. tp: pairs in one person that truly are one person.
    predicted: linked pairs with at least one unit in the group (a false match
    with someone outside the group counts against the group). actual: true
    pairs of the group's people. Sums, never samples.
    """
    tp = units.groupby(["person_id", "truth_id", group])["n"].sum().pipe(_pairs).groupby(group).sum()
    actual = units.groupby(["truth_id", group])["n"].sum().pipe(_pairs).groupby(group).sum()
    size = units.groupby("person_id")["n"].sum().rename("size")
    n_g = units.groupby(["person_id", group])["n"].sum().rename("n_g").reset_index().join(size, on="person_id")
    predicted = (_pairs(n_g["size"]) - _pairs(n_g["size"] - n_g["n_g"])).groupby(n_g[group]).sum()
    return pd.DataFrame({"tp": tp, "predicted": predicted, "actual": actual}).fillna(0.0)


def truth_accuracy(links: DataFrame, truth_records: DataFrame, truth_people: DataFrame, year: int) -> list[tuple]:
    """(metric, dimension, grp, value, numerator, denominator) rows of pairwise accuracy against the truth.

    Two units: identities (a source's distinct identity tuple of one true
    person: what linkage decides) and records (what analysts count).
    """
    people = truth_people.select(
        "truth_id",
        F.coalesce("sex", F.lit("unknown")).alias("sex"),
        age_band(F.col("birth_year").cast("int"), year).alias("age_band"),
        F.coalesce(
            F.create_map(*[F.lit(x) for kv in _ETHNIC_GROUPS.items() for x in kv])[F.substring("ethnic_code", 1, 1)],
            F.lit("unknown"),
        ).alias("ethnic_group"),
    )
    counts = (
        links.join(truth_records.select("source", "record_id", "truth_id"), ["source", "record_id"], "inner")
        .join(people, on="truth_id", how="left")
        .fillna("unknown", subset=_DIMENSIONS)
        .groupBy("person_id", "truth_id", *_DIMENSIONS)
        .agg(F.count("*").alias("records"), F.countDistinct("source", "identity_id").alias("identities"))
    )
    return _accuracy_rows(_pandas(counts, ["person_id", "truth_id"]))


def truth_accuracy_local(sql, links: str, truth_records: str, truth_people: str, year: int) -> list[tuple]:
    """truth_accuracy by DuckDB: links a view or table on connection sql, the truth files read from disk."""
    ethnic = " ".join(f"WHEN '{code}' THEN '{group}'" for code, group in _ETHNIC_GROUPS.items())
    age = f"{year} - birth_year"
    counts = sql.sql(
        f"""
        WITH truth AS (
            SELECT source, record_id, truth_id FROM read_csv(?, header = true, all_varchar = true)
        ), people AS (
            SELECT truth_id, coalesce(sex, 'unknown') AS sex,
                CASE WHEN birth_year IS NULL THEN 'unknown' WHEN {age} < 18 THEN '0-17' WHEN {age} < 65 THEN '18-64'
                    WHEN {age} < 75 THEN '65-74' WHEN {age} < 85 THEN '75-84' ELSE '85+' END AS age_band,
                coalesce(CASE substring(ethnic_code, 1, 1) {ethnic} END, 'unknown') AS ethnic_group
            FROM (
                SELECT truth_id, sex, TRY_CAST(birth_year AS INTEGER) AS birth_year, ethnic_code
                FROM read_csv(?, header = true, all_varchar = true)
            )
        )
        SELECT person_id, truth_id, coalesce(sex, 'unknown') AS sex, coalesce(age_band, 'unknown') AS age_band,
            coalesce(ethnic_group, 'unknown') AS ethnic_group,
            count(*) AS records, count(DISTINCT (source, identity_id)) AS identities
        FROM {links} JOIN truth USING (source, record_id) LEFT JOIN people USING (truth_id)
        GROUP BY ALL
        """,
        params=[truth_records, truth_people],
    ).to_arrow_table()
    return _accuracy_rows(_pandas(counts, ["person_id", "truth_id"]))


def _accuracy_rows(counts: pd.DataFrame) -> list[tuple]:
    """Rows of truth_accuracy from (person_id, truth_id, dimensions..., records, identities) counts,
    the ids as integer codes."""
    counts["all"] = "all"
    rows: list[tuple] = []
    for unit in ("identities", "records"):
        units = counts.rename(columns={unit: "n"})
        for dimension in ("all", *_DIMENSIONS):
            for grp, r in pairwise_counts(units, dimension).iterrows():
                precision = r.tp / r.predicted if r.predicted else 1.0
                recall = r.tp / r.actual if r.actual else 1.0
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                rows += [
                    (f"{unit}_pairwise_precision", dimension, str(grp), precision, r.tp, r.predicted),
                    (f"{unit}_pairwise_recall", dimension, str(grp), recall, r.tp, r.actual),
                    (f"{unit}_pairwise_f1", dimension, str(grp), f1, None, None),
                ]
    return rows


def run_metrics(links: DataFrame, scored: DataFrame, threshold: float) -> list[tuple]:
    """(metric, dimension, grp, value, numerator, denominator) rows measurable without truth."""
    per_person = links.groupBy("person_id", "source", "method").agg(
        F.count("*").alias("records"), F.countDistinct("identity_id").alias("identities")
    )
    # The model's own expectation: an accepted pair at p is a false match with probability 1 - p;
    # a pair we declined at p (and that did not end up together anyway) is a missed match with probability p.
    person_of = links.select("identity_id", "person_id").distinct()
    p = F.col("match_probability")
    accepted = p >= threshold
    pairs = (
        scored.join(person_of.toDF("unique_id_l", "person_l"), "unique_id_l", "left")
        .join(person_of.toDF("unique_id_r", "person_r"), "unique_id_r", "left")
        .agg(
            F.sum(F.when(accepted, 1 - p)).alias("false"),
            F.count_if(accepted).alias("accepted"),
            F.sum(F.when(~accepted & (F.col("person_l") != F.col("person_r")), p)).alias("missed"),
            F.sum(F.when(accepted, p)).alias("true_accepted"),
        )
        .first()
    )
    return _run_rows(_pandas(per_person, ["person_id"]), pairs.asDict())


def measure_local(links, scored, threshold: float, truth: tuple[str, str] | None, year: int) -> list[tuple]:
    """run_metrics, and with a generated place's truth files (records, people) truth_accuracy, by DuckDB
    over Arrow tables of the links and scored pairs."""
    import duckdb

    with duckdb.connect() as sql:
        sql.register("links", links)
        sql.register("scored", scored)
        rows = run_metrics_local(sql, "links", "scored", threshold)
        if truth is not None:
            rows += truth_accuracy_local(sql, "links", *truth, year)
    return rows


def run_metrics_local(sql, links: str, scored: str, threshold: float) -> list[tuple]:
    """run_metrics by DuckDB: links and scored are views or tables on connection sql."""
    per_person = sql.sql(
        f"SELECT person_id, source, method, count(*) AS records, count(DISTINCT identity_id) AS identities "
        f"FROM {links} GROUP BY ALL"
    ).to_arrow_table()
    accepted = f"match_probability >= {threshold!r}"
    names = ("false", "accepted", "missed", "true_accepted")
    pairs = sql.execute(
        f"""
        WITH person_of AS (SELECT DISTINCT identity_id, person_id FROM {links})
        SELECT sum(CASE WHEN {accepted} THEN 1 - match_probability END),
            count(*) FILTER (WHERE {accepted}),
            sum(CASE WHEN NOT {accepted} AND l.person_id <> r.person_id THEN match_probability END),
            sum(CASE WHEN {accepted} THEN match_probability END)
        FROM {scored} s LEFT JOIN person_of l ON s.unique_id_l = l.identity_id
            LEFT JOIN person_of r ON s.unique_id_r = r.identity_id
        """
    ).fetchall()[0]
    return _run_rows(_pandas(per_person, ["person_id"]), dict(zip(names, pairs, strict=True)))


def _run_rows(per_person: pd.DataFrame, pairs: dict) -> list[tuple]:
    """Rows of run_metrics from (person_id, source, method, records, identities) counts and the scored
    pairs' sums (false, accepted, missed, true_accepted); person_id as integer codes."""
    rows: list[tuple] = []
    sources = per_person.groupby("person_id")["source"].nunique().rename("sources")
    per_source = per_person.join(sources, on="person_id")
    per_source["linked"] = per_source["records"].where(per_source["sources"] > 1, 0)
    for source, r in per_source.groupby("source")[["records", "linked"]].sum().iterrows():
        rows.append(("link_rate", "source", source, r.linked / r.records, float(r.linked), float(r.records)))
    total = float(per_person["records"].sum())
    persons = float(per_person["person_id"].nunique())
    rows += [("records", "all", "all", total, None, None), ("persons", "all", "all", persons, None, None)]
    identities = per_person.groupby("person_id")["identities"].sum()
    for bucket, n in identities.map(_bucket).value_counts().sort_index().items():
        rows.append(("cluster_size_identities", "persons", bucket, float(n), float(n), persons))
    for method, n in per_person.groupby("method")["records"].sum().items():
        rows.append(("method_share", "method", method, n / total, float(n), total))
    false, n_accepted = pairs["false"] or 0.0, pairs["accepted"] or 0
    missed, found = pairs["missed"] or 0.0, (pairs["true_accepted"] or 0.0) + (pairs["missed"] or 0.0)
    rows.append(
        (
            "est_false_match_rate",
            "scored_pairs",
            "all",
            false / n_accepted if n_accepted else 0.0,
            false,
            float(n_accepted),
        )
    )
    rows.append(("est_missed_match_rate", "scored_pairs", "all", missed / found if found else 0.0, missed, found))
    return rows


def _bucket(size: int) -> str:
    for upper, label in _SIZE_BUCKETS:
        if size <= upper:
            return label
    return "51+"


def _truth(spark: SparkSession, settings: Settings, name: str) -> DataFrame | None:
    """A truth file of a generated place; None for a real place (which has none)."""
    path = settings.path("truth", name)
    if settings.is_local() and not Path(path).exists():
        return None
    return spark.read.option("header", True).schema(_TRUTH_SCHEMAS[name]).csv(path)


_TRUTH_SCHEMAS = {
    "records.csv": "source string, record_id string, truth_id string, delivery string, file string, line long",
    "people.csv": "truth_id string, household_id string, sex string, birth_year int, ethnic_code string",
}


def truth_paths(settings: Settings) -> tuple[str, str] | None:
    """The truth files of a generated place on local disk (records, people); None for a real place."""
    paths = tuple(settings.path("truth", name) for name in ("records.csv", "people.csv"))
    return paths if all(Path(p).exists() for p in paths) else None


def write_metrics(spark, settings: Settings, run_id: str, measured_at: datetime, linked, records, config) -> dict:
    """Measure this run's linkage, replace its rows in lake/ops/linkage_metrics, return the headline figures."""
    rows = run_metrics(linked.links, linked.scored, config.match_threshold)
    truth_records, truth_people = _truth(spark, settings, "records.csv"), _truth(spark, settings, "people.csv")
    if truth_records is not None and truth_people is not None:
        rows += truth_accuracy(linked.links, truth_records, truth_people, measured_at.year)
    return record_metrics(spark, settings, run_id, measured_at, linked.mode, rows)


def record_metrics(spark, settings: Settings, run_id: str, measured_at: datetime, mode: str, rows: list[tuple]) -> dict:
    """Replace the run's rows in lake/ops/linkage_metrics with these; return the headline figures."""
    frame = spark.createDataFrame(
        [
            (
                run_id,
                measured_at,
                mode,
                m,
                d,
                g,
                float(v),
                None if n is None else float(n),
                None if t is None else float(t),
            )
            for m, d, g, v, n, t in rows
        ],
        METRIC_SCHEMA,
    )
    safe_run = run_id.replace("'", "''")
    lake.replace(frame, settings.table("ops", "linkage_metrics"), where=f"run_id = '{safe_run}'")
    headline = {(m, g): v for m, d, g, v, _, _ in rows if d == "all"}
    summary = {"records": int(headline[("records", "all")]), "persons": int(headline[("persons", "all")])}
    for metric in (
        "identities_pairwise_precision",
        "identities_pairwise_recall",
        "identities_pairwise_f1",
        "records_pairwise_precision",
        "records_pairwise_recall",
        "records_pairwise_f1",
    ):
        if (metric, "all") in headline:
            summary[metric] = round(float(headline[(metric, "all")]), 5)
    log.info("linkage metrics: %s", summary)
    return summary
