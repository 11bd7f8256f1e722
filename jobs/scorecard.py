"""The data-quality scorecard ops act on, in the spirit of NHS England's Data
Quality Maturity Index: per source, submitting organisation, delivery month
and field — completeness, validity and default-value rates — plus coverage
(deliveries received against the months expected).

Counted from bronze (values as delivered), so it judges what organisations
send, not what cleaning made of it: cleaning counts each delivery's fields as
it cleans them (ops/clean_metrics), and the scorecard sums those counts by
month. Rates only: no values leave this module.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs import standardise as std
from jobs.config import Settings
from jobs.contracts import Column as ContractColumn
from jobs.contracts import Contract, source_contracts

log = logging.getLogger(__name__)

# Values organisations send when they do not know: valid-looking, but empty of meaning.
DEFAULT_VALUES = (
    "9",
    "X",
    "U",
    "Z",
    "UNKNOWN",
    "NOT KNOWN",
    "N/A",
    "NA",
    "NULL",
    "1900-01-01",
    "01/01/1900",
    "19000101",
    "ZZ99 3VZ",
    "0000000000",
)


def value_is_valid(col: ContractColumn, contract: Contract) -> Column:
    """True when a delivered (string) value is valid for its column's contract; null when absent."""
    raw = F.col(col.name)
    checks = []
    if col.name == "nhs_number":
        checks.append(std.nhs_number_issue(raw).isNull())
    if col.name in ("postcode", "pcds"):
        checks.append(std.postcode(raw).isNotNull())
    if col.type == "date":
        checks.append(std.parse_date(raw, contract.format.get("date_format", "yyyy-MM-dd")).isNotNull())
    if col.type in ("integer", "long"):
        checks.append(raw.try_cast("long").isNotNull())
    if col.allowed is not None:
        checks.append(F.trim(raw).isin(list(col.allowed)))
    if col.pattern is not None:
        checks.append(raw.rlike(col.pattern))
    valid = F.lit(True)
    for check in checks:
        valid = valid & F.coalesce(check, F.lit(False))
    return F.when(raw.isNotNull() & (F.trim(raw) != ""), valid)


def field_rates(bronze: DataFrame, contract: Contract, by: dict[str, Column]) -> DataFrame:
    """One row per group (by: output name -> column) and field: rows, present, valid and default counts,
    with completeness (present/rows), validity (valid/present) and default rate (defaults/rows).

    Shared by the scorecard (per delivery month) and the cleaning metrics (per delivery).
    """
    aggregates = [F.count("*").alias("rows")]
    for col in contract.columns:
        present = F.col(col.name).isNotNull() & (F.trim(F.col(col.name)) != "")
        aggregates += [
            F.sum(present.cast("long")).alias(f"{col.name}__present"),
            F.sum(F.coalesce(value_is_valid(col, contract), F.lit(False)).cast("long")).alias(f"{col.name}__valid"),
            F.sum(F.upper(F.trim(F.col(col.name))).isin(list(DEFAULT_VALUES)).cast("long")).alias(
                f"{col.name}__default"
            ),
        ]
    wide = bronze.groupBy(*[c.alias(n) for n, c in by.items()]).agg(*aggregates)
    per_field = [
        F.struct(
            F.lit(col.name).alias("field"),
            F.lit(col.pii).alias("pii"),
            F.col(f"{col.name}__present").alias("present"),
            F.col(f"{col.name}__valid").alias("valid"),
            F.col(f"{col.name}__default").alias("defaults"),
        )
        for col in contract.columns
    ]
    return (
        wide.select(*by, "rows", F.explode(F.array(*per_field)).alias("f"))
        .select(*by, "rows", "f.*")
        .select("*", *_rates())
    )


def _rates() -> list[Column]:
    """Completeness, validity and default rate from the counts rows, present, valid and defaults."""
    return [
        (F.col("present") / F.col("rows")).alias("completeness"),
        (F.col("valid") / F.greatest(F.col("present"), F.lit(1))).alias("validity"),
        (F.col("defaults") / F.col("rows")).alias("default_rate"),
    ]


def _delivery_month(delivery: str) -> Column:
    return F.date_format(F.to_date(F.substring(delivery, 1, 10)), "yyyy-MM")


def _scores(rates: DataFrame) -> DataFrame:
    """The scorecard's columns, rates rounded."""
    return rates.select(
        "source",
        "organisation",
        "delivery_month",
        "field",
        "pii",
        "rows",
        *[F.round(r, 4).alias(r) for r in ("completeness", "validity", "default_rate")],
    )


def field_scores(bronze: DataFrame, contract: Contract) -> DataFrame:
    """One row per delivery month and field: rows, completeness, validity, default rate."""
    rates = field_rates(bronze, contract, {"delivery_month": _delivery_month("_delivery")})
    return _scores(
        rates.select(F.lit(contract.name).alias("source"), F.lit(contract.organisation).alias("organisation"), "*")
    )


def coverage(source: str, received: list[str]) -> dict:
    """Deliveries received (YYYY-MM) against the months expected between the first and the last (monthly feeds)."""
    months = sorted(set(received))
    if not months:
        return {"source": source, "expected": 0, "received": 0, "missing": []}
    first_y, first_m = map(int, months[0].split("-"))
    last_y, last_m = map(int, months[-1].split("-"))
    expected = [
        f"{y:04d}-{m:02d}"
        for y in range(first_y, last_y + 1)
        for m in range(1, 13)
        if (y, m) >= (first_y, first_m) and (y, m) <= (last_y, last_m)
    ]
    return {
        "source": source,
        "expected": len(expected),
        "received": len(months),
        "missing": [m for m in expected if m not in months],
    }


def scores_from_metrics(spark: SparkSession, metrics: DataFrame, contracts: list[Contract]) -> DataFrame:
    """field_scores of every source, from the cleaning metrics (ops/clean_metrics) instead of bronze.

    Cleaning counts each delivery's fields with field_rates, over all of the delivery's bronze rows;
    summing those counts by month gives the same scores without reading bronze again.
    """
    fields = spark.createDataFrame(
        [(c.name, c.organisation, col.name, col.pii) for c in contracts for col in c.columns],
        "source string, organisation string, field string, pii string",
    )

    def counted(measure: str, part: str) -> Column:
        return F.sum(F.when(F.col("measure") == measure, F.col(part)))

    counts = metrics.groupBy("source", _delivery_month("delivery").alias("delivery_month"), "field").agg(
        counted("completeness", "denominator").alias("rows"),
        counted("completeness", "numerator").alias("present"),
        counted("validity", "numerator").alias("valid"),
        counted("default_rate", "numerator").alias("defaults"),
    )
    return _scores(counts.join(F.broadcast(fields), on=["source", "field"], how="inner").select("*", *_rates()))


def build_scorecard(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, int]:
    """Score every cleaned source and keep the result per run in ops/scorecard (one commit a run).

    From the counts cleaning made of each delivery as delivered (ops/clean_metrics), not from a
    second pass over bronze: a run scores every month of every source at the cost of a small table.
    """
    metrics_path = settings.table("ops", "clean_metrics")
    if not lake.table_exists(spark, metrics_path):
        return {}
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    scores = scores_from_metrics(spark, lake.read(spark, metrics_path), list(source_contracts())).select(
        F.lit(run_id).alias("run_id"), "*", F.lit(scored_at).cast("timestamp").alias("scored_at")
    )
    target = settings.table("ops", "scorecard")
    lake.replace(scores, target, where=f"run_id = '{run_id}'")
    written = {
        r.source: r["count"]
        for r in lake.read(spark, target).where(F.col("run_id") == run_id).groupBy("source").count().collect()
    }
    log.info("scorecard: %s", written)
    return written
