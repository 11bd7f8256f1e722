"""Persistent person_ids: clusters found this run inherit the ids records had before.

Each previous person_id goes to the cluster now holding most of its records
(ties to the smaller cluster_id). A cluster inherits the id, of those sent to
it, that brings it most records (ties to the smaller id). An id its cluster
did not take is sent again, in a second round, to the cluster holding most of
its records among those that took none; a cluster that inherits none gets a
new id. So a re-run on the same records changes no id; a new record joins its
person's id; two persons merged keep the larger one's id; a person split
keeps its id on its larger part, and on what is left when its larger part
(or, in a tie, the part first in order) joins a person keeping its own id. Every record whose id
changes is accounted for in the history: (old id -> new id, when, why).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

HISTORY_COLUMNS = ["old_person_id", "new_person_id", "reason", "records", "run_id", "changed_at"]


def new_person_id(anchor: F.Column) -> F.Column:
    """An id for a person first seen now: a hash of its smallest source:record_id."""
    return F.concat(F.lit("P"), F.substring(F.sha2(anchor, 256), 1, 16))


def assign_person_ids(clustered: DataFrame, previous: DataFrame | None, run_id: str) -> DataFrame:
    """(source, record_id, cluster_id) + previous (source, record_id, person_id) -> adds person_id, previous_id."""
    if previous is None:
        # Nothing to inherit: every cluster is a new person, named by its anchor (one pass, no joins).
        return clustered.select(
            "*",
            F.lit(None).cast("string").alias("previous_id"),
            new_person_id(_anchor().over(Window.partitionBy("cluster_id"))).alias("person_id"),
        )
    # Checkpointed: _inherit reads the records three times, and each read would redo the joins behind them.
    return _inherit(with_previous(clustered, previous).localCheckpoint(), previous, run_id)


def _record_key() -> F.Column:
    """A record as source:record_id."""
    return F.concat_ws(":", "source", "record_id")


def _anchor() -> F.Column:
    """Of a cluster's records, the smallest source:record_id: what a new person's id is made from."""
    return F.min(_record_key())


# In an incremental link every person the delivery did not touch is one cluster, named so.
PERSON_CLUSTER = "person:"


def assign_incremental(records: DataFrame, previous: DataFrame, run_id: str) -> DataFrame:
    """assign_person_ids for an incremental link's clusters: the same ids, worked out only where they can change.

    records: (source, record_id, cluster_id, previous_id, ...), with_previous's shape, read three times.

    A cluster person:X whose records all had X, while every record that had X
    sits in it, can only keep X: it is the heir of X and X is all it is sent.
    Every other cluster (those the delivery's graph made, those holding a new
    record, and person:X for each X one of their records had) goes through
    assign_person_ids' rules, with all the records of every previous id it is sent:
    as few as a delivery's, so applied on the driver (_name_few).
    """
    own_cluster = F.col("cluster_id") == F.concat(F.lit(PERSON_CLUSTER), F.col("previous_id"))
    odd = records.where(~F.coalesce(own_cluster, F.lit(False)))
    in_play = (
        odd.select("cluster_id")
        .unionByName(
            odd.where(F.col("previous_id").isNotNull()).select(
                F.concat(F.lit(PERSON_CLUSTER), F.col("previous_id")).alias("cluster_id")
            )
        )
        .distinct()
        .localCheckpoint()  # as small as the delivery
    )
    playing = records.join(F.broadcast(in_play), "cluster_id", "left_semi")
    changed = playing.join(F.broadcast(_name_few(playing, previous, run_id)), "cluster_id", "inner")
    kept = records.join(F.broadcast(in_play), "cluster_id", "left_anti").withColumn(
        "person_id", F.substring("cluster_id", len(PERSON_CLUSTER) + 1, 1 << 16)
    )
    return changed.unionByName(kept)


def _name_few(records: DataFrame, previous: DataFrame, run_id: str) -> DataFrame:
    """_inherit's rules on the driver, for as few clusters as a delivery makes: (cluster_id, person_id).

    records: (source, record_id, cluster_id, previous_id) of every record of those clusters and of the
    previous ids they hold. The only pass over previous is the lookup of the fresh ids already given out.
    A handful of Spark jobs, where _inherit's shuffles and windows take a dozen for a few hundred rows.
    """
    overlap: Counter[tuple[str, str]] = Counter()
    anchors: dict[str, str] = {}
    for cluster, previous_id, key in records.select("cluster_id", "previous_id", _record_key()).collect():
        if previous_id is not None:
            overlap[previous_id, cluster] += 1
        if cluster not in anchors or key < anchors[cluster]:
            anchors[cluster] = key
    inherited = _heirs_of(overlap)
    sent = set(inherited.values())
    inherited |= _heirs_of(
        Counter({(p, c): n for (p, c), n in overlap.items() if p not in sent and c not in inherited})
    )
    candidates = {cluster: _new_id(anchor) for cluster, anchor in anchors.items() if cluster not in inherited}
    spark = records.sparkSession
    wanted = spark.createDataFrame([(c,) for c in sorted(set(candidates.values()))], "person_id string")
    taken = {
        r.person_id for r in previous.select("person_id").join(F.broadcast(wanted), "person_id", "left_semi").collect()
    }
    named = dict(inherited)
    for cluster, candidate in candidates.items():
        named[cluster] = _new_id(f"{anchors[cluster]}|{run_id}") if candidate in taken else candidate
    return spark.createDataFrame(list(named.items()), "cluster_id string, person_id string")


def _heirs_of(overlap: Counter[tuple[str, str]]) -> dict[str, str]:
    """_heirs on the driver: {(previous_id, cluster_id): n} -> {cluster_id: previous_id}."""
    best: dict[str, tuple[str, int]] = {}  # each id's cluster holding most of its records, ties to the smaller
    for (previous_id, cluster), n in overlap.items():
        if previous_id not in best or (-n, cluster) < (-best[previous_id][1], best[previous_id][0]):
            best[previous_id] = (cluster, n)
    heirs: dict[str, tuple[str, int]] = {}  # each cluster's id bringing it most, ties to the smaller
    for previous_id, (cluster, n) in best.items():
        if cluster not in heirs or (-n, previous_id) < (-heirs[cluster][1], heirs[cluster][0]):
            heirs[cluster] = (previous_id, n)
    return {cluster: previous_id for cluster, (previous_id, _) in heirs.items()}


def _new_id(anchor: str) -> str:
    """new_person_id, on the driver."""
    return "P" + hashlib.sha256(anchor.encode("utf-8")).hexdigest()[:16]


def with_previous(clustered: DataFrame, previous: DataFrame) -> DataFrame:
    """Adds previous_id: the person_id each record had, if it was linked before."""
    return clustered.join(
        previous.select("source", "record_id", F.col("person_id").alias("previous_id")),
        on=["source", "record_id"],
        how="left",
    )


def _heirs(overlap: DataFrame) -> DataFrame:
    """(previous_id, cluster_id, n) -> (cluster_id, previous_id): each id to the cluster holding most
    of its records (ties to the smaller cluster_id), each cluster the id bringing it most (ties to the smaller id)."""
    by_previous = Window.partitionBy("previous_id").orderBy(F.col("n").desc(), "cluster_id")
    heirs = overlap.withColumn("rank", F.row_number().over(by_previous)).where("rank = 1")
    by_cluster = Window.partitionBy("cluster_id").orderBy(F.col("n").desc(), "previous_id")
    return (
        heirs.withColumn("rank", F.row_number().over(by_cluster)).where("rank = 1").select("cluster_id", "previous_id")
    )


def _inherit(records: DataFrame, previous: DataFrame, run_id: str) -> DataFrame:
    """Records with cluster_id and previous_id -> adds person_id: inherited, or fresh for a cluster inheriting none.

    _name_few applies the same rules on the driver, for a delivery's clusters.
    """
    overlap = (
        records.where(F.col("previous_id").isNotNull())
        .groupBy("previous_id", "cluster_id")
        .agg(F.count("*").alias("n"))
    )
    first = _heirs(overlap)
    # An id its cluster did not take goes, of the clusters that took none, to the one holding most of its records.
    unclaimed = overlap.join(first.select("previous_id"), "previous_id", "left_anti").join(
        first.select("cluster_id"), "cluster_id", "left_anti"
    )
    inherited = first.unionByName(_heirs(unclaimed)).select("cluster_id", F.col("previous_id").alias("inherited_id"))
    anchors = records.groupBy("cluster_id").agg(_anchor().alias("anchor"))
    candidates = anchors.withColumn("candidate", new_person_id(F.col("anchor")))
    # A fresh id must not reuse one already given out (a split's anchor may once have named the whole person).
    taken = previous.select(F.col("person_id").alias("candidate")).distinct().withColumn("taken", F.lit(True))
    fresh = candidates.join(taken, on="candidate", how="left").select(
        "cluster_id",
        F.when(F.col("taken"), new_person_id(F.concat_ws("|", "anchor", F.lit(run_id))))
        .otherwise(F.col("candidate"))
        .alias("fresh_id"),
    )
    ids = fresh.join(inherited, on="cluster_id", how="left").select(
        "cluster_id", F.coalesce("inherited_id", "fresh_id").alias("person_id")
    )
    return records.join(ids, on="cluster_id", how="inner")


def id_history(assigned: DataFrame, run_id: str, changed_at: datetime) -> DataFrame:
    """Every previous id whose records now sit under another id: merge if the old id is gone, else split."""
    moved = (
        assigned.where(F.col("previous_id").isNotNull() & (F.col("previous_id") != F.col("person_id")))
        .groupBy(F.col("previous_id").alias("old_person_id"), F.col("person_id").alias("new_person_id"))
        .agg(F.count("*").alias("records"))
    )
    surviving = assigned.select(F.col("person_id").alias("old_person_id")).distinct().withColumn("alive", F.lit(True))
    return moved.join(surviving, on="old_person_id", how="left").select(
        "old_person_id",
        "new_person_id",
        F.when(F.col("alive"), F.lit("split")).otherwise(F.lit("merge")).alias("reason"),
        F.col("records").cast("long").alias("records"),
        F.lit(run_id).alias("run_id"),
        F.lit(changed_at).cast("timestamp").alias("changed_at"),
    )
