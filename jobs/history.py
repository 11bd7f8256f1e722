"""Records over time: every accepted version of a source record, valid from its delivery until the
next version's (a versioned record table, SCD type 2 by delivery date).

Silver holds the current version of each record; lake/silver/<source>_history holds them all, so an
analyst can ask what a record looked like on an earlier date (``as_of``). Pure transforms only: the
cleaning entry (jobs/clean.py) reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

VERSION_COLUMNS = ["_version", "_valid_from", "_valid_to", "_is_current"]
# A bronze row is one version: the file it came in (by content) and its line in that file.
VERSION_KEY = ["_file_sha256", "_line"]


def delivery_date(delivery: Column) -> Column:
    """Deliveries are named by date (landing/<source>/<YYYY-MM-DD>/...)."""
    return F.to_date(F.substring(delivery, 1, 10))


def _oldest_first(key: list[str]) -> Window:
    # The latest delivery wins; within one delivery a later file, then a later line (a duplicate sent
    # twice in one file keeps its last copy). The file name breaks ties so the order never depends on
    # how Spark happened to read the rows.
    return Window.partitionBy(*key).orderBy("_delivery", "_source_file", "_line")


def versioned(rows: DataFrame, key: list[str]) -> DataFrame:
    """Every version of every record with _version (1 = first delivered), _valid_from, _valid_to
    (the next version's _valid_from; null while current) and _is_current.

    Two versions in one delivery: the earlier is valid for no day at all (_valid_to = _valid_from).
    """
    order = _oldest_first(key)
    valid_from = delivery_date(F.col("_delivery"))
    unversioned = rows.drop(*[c for c in VERSION_COLUMNS if c in rows.columns])
    return unversioned.select(
        "*",
        F.row_number().over(order).alias("_version"),
        valid_from.alias("_valid_from"),
        F.lead(valid_from).over(order).alias("_valid_to"),
        F.lead(F.lit(True), 1, False).over(order).alias("_has_next"),
    ).select(*unversioned.columns, "_version", "_valid_from", "_valid_to", (~F.col("_has_next")).alias("_is_current"))


def current(history: DataFrame) -> DataFrame:
    """The version of each record that silver shows: the latest delivered."""
    return history.where(F.col("_is_current"))


def as_of(history: DataFrame, day: str) -> DataFrame:
    """Each record as it stood on a day (YYYY-MM-DD): the version delivered by then and not yet superseded."""
    d = F.to_date(F.lit(day))
    return history.where((F.col("_valid_from") <= d) & (F.col("_valid_to").isNull() | (F.col("_valid_to") > d)))


@dataclass(frozen=True)
class DeliveryShare:
    delivery: str
    prior_records: int  # records delivered before this delivery
    superseded: int  # of those, how many this delivery sends again

    @property
    def share(self) -> float:
        return self.superseded / self.prior_records if self.prior_records else 0.0


def superseded_shares(existing: DataFrame, new: DataFrame, key: list[str]) -> list[DeliveryShare]:
    """For each delivery among the new rows: how many records delivered earlier it supersedes.

    existing and new hold key columns and _delivery (history already cleaned, rows being cleaned);
    the figures are the same whether the deliveries arrive in one run or one run each.
    """
    keyed = existing.select(*key, "_delivery", F.lit(False).alias("_new")).unionByName(
        new.select(*key, "_delivery", F.lit(True).alias("_new"))
    )
    # One pass over the keys: each key's first delivery and the new deliveries that send it; then
    # how many keys share each such pair (a handful of rows: deliveries, not records).
    patterns = (
        keyed.groupBy(*key)
        .agg(
            F.min("_delivery").alias("first"),
            F.array_sort(F.collect_set(F.when(F.col("_new"), F.col("_delivery")))).alias("sent_by"),
        )
        .groupBy("first", "sent_by")
        .count()
        .collect()
    )
    return delivery_shares(patterns)


def delivery_shares(patterns) -> list[DeliveryShare]:
    """The shares from (first delivery, new deliveries sending it, records) triples: how many keys had
    each first delivery and were sent again by each set of new deliveries."""
    new_deliveries = sorted({d for _, sent_by, _ in patterns for d in sent_by})
    return [
        DeliveryShare(
            d,
            prior_records=sum(n for first, _, n in patterns if first < d),
            superseded=sum(n for first, sent_by, n in patterns if first < d and d in sent_by),
        )
        for d in new_deliveries
    ]
