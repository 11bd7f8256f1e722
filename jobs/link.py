"""Linkage, the stage: every person-level silver source in, person_link and person out.

The method (jobs/linkage/ holds the parts, jobs/linkage/linkage.yaml the settings):
1. identities, not events: identical identity tuples a source repeats are
   collapsed before anything is compared;
2. deterministic pass: identities sharing a valid NHS number link, unless
   their date of birth contradicts the number's usual one;
3. probabilistic pass: a Splink model scores blocked pairs; pairs at or above
   the configured threshold link. Splink runs on DuckDB in this process when
   Spark is local, on Spark when it is a cluster (Settings.link_engine);
4. connected components of both passes are persons, and persons keep the
   person_id they had (jobs/linkage/ids.py): merges and splits go to
   silver/person_id_history.
A full link re-estimates the model; a delivery that adds few new identities
is scored against the persisted model and joins existing persons, without
re-clustering everyone. link_records takes every record (as the link stage
reads whole silver tables); link_delivery takes only a delivery's records and
the last link's LinkState, and gives the same ids for a fraction of the cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import fs, lake
from jobs.config import Settings
from jobs.contracts import conform, source_contracts, table_contract
from jobs.linkage import features as feat
from jobs.linkage import ids, local, metrics, model
from jobs.linkage.config import CONFIG_PATH, LinkageConfig
from jobs.spark import releases_what_it_cached

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

FEATURES = {"given_name", "family_name", "date_of_birth", "sex", "postcode", "nhs_number", "address"}
# Silver sources carry no address.
SILVER_FEATURES = FEATURES - {"address"}
FEATURE_COLUMNS = feat.FEATURE_COLUMNS


def available_features(present: set[str]) -> set[str]:
    """Comparison names and blocking columns usable when only these identity fields are present."""
    usable = set()
    for field in present & FEATURES:
        usable |= {field, *FEATURE_COLUMNS[field]}
    return usable


def _edges(ids_l: DataFrame, left: str, right: str, probability: F.Column) -> DataFrame:
    return ids_l.select(
        F.col(left).alias("unique_id_l"), F.col(right).alias("unique_id_r"), probability.alias("match_probability")
    )


def _nhs_edges(nhs: DataFrame) -> DataFrame:
    """The deterministic pass as edges: each member of an NHS-number group to its anchor."""
    return _edges(nhs.where(F.col("identity_id") != F.col("nhs_anchor")), "identity_id", "nhs_anchor", F.lit(1.0))


def _no_nhs_groups(nodes: DataFrame) -> DataFrame:
    """nhs_groups' shape with no rows: the deterministic pass is off, or there are no NHS numbers to link on."""
    return nodes.limit(0).select("identity_id", F.col("identity_id").alias("nhs_anchor"))


# Stored probabilities are rounded: Spark adds EM's floating-point sums in whatever order rows
# reach it, so two links of the same records can differ in a probability's last bit.
PROBABILITY_DECIMALS = 9


def node_methods(nodes: DataFrame, nhs: DataFrame, scored: DataFrame, threshold: float) -> DataFrame:
    """(identity_id, records) -> (identity_id, method, match_probability), before clustering.

    nhs_number for nodes in an NHS-number group; probabilistic for nodes with
    an accepted Splink match (its best); otherwise same_identity if the node
    stands for several records, or singleton with one minus its best rejected match.
    The probability is rounded to PROBABILITY_DECIMALS places (methods are decided unrounded).
    """
    ends = scored.select(F.col("unique_id_l").alias("identity_id"), "match_probability").unionByName(
        scored.select(F.col("unique_id_r").alias("identity_id"), "match_probability")
    )
    best = ends.groupBy("identity_id").agg(
        F.max(F.when(F.col("match_probability") >= threshold, F.col("match_probability"))).alias("accepted"),
        F.max(F.when(F.col("match_probability") < threshold, F.col("match_probability"))).alias("rejected"),
    )
    in_nhs = nhs.select("identity_id", F.lit(True).alias("in_nhs"))
    joined = (
        nodes.select("identity_id", "records").join(in_nhs, "identity_id", "left").join(best, "identity_id", "left")
    )
    return joined.select(
        "identity_id",
        F.when(F.col("in_nhs"), F.lit("nhs_number"))
        .when(F.col("accepted").isNotNull(), F.lit("probabilistic"))
        .when(F.col("records") > 1, F.lit("same_identity"))
        .otherwise(F.lit("singleton"))
        .alias("method"),
        F.round(
            F.when(F.col("in_nhs"), F.lit(1.0))
            .when(F.col("accepted").isNotNull(), F.col("accepted"))
            .when(F.col("records") > 1, F.lit(1.0))
            .otherwise(1.0 - F.coalesce(F.col("rejected"), F.lit(0.0)))
            .cast("double"),
            PROBABILITY_DECIMALS,
        ).alias("match_probability"),
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


def silver_records(spark: SparkSession, settings: Settings, sources: list[str]) -> DataFrame | None:
    """The records a link stage links: every silver person source's IDENTITY columns (no address)."""
    frames = [
        lake.read(spark, settings.table("silver", s)).select(*IDENTITY, F.lit(None).cast("string").alias("address"))
        for s in sources
    ]
    return reduce(DataFrame.unionByName, frames) if frames else None


def person_sources(spark: SparkSession, settings: Settings) -> list[str]:
    return [
        c.name
        for c in source_contracts()
        if c.kind == "person_events" and lake.table_exists(spark, settings.table("silver", c.name))
    ]


@dataclass
class Linked:
    """What one linkage produced: per-record links, the scored pairs, and how it was done."""

    links: DataFrame  # source, record_id, identity_id, person_id, previous_id, method, match_probability
    scored: DataFrame  # unique_id_l, unique_id_r, match_probability (at or above the review floor)
    mode: str  # full or incremental
    model: dict | None  # the Splink model used: trained now, or the persisted one
    counts: dict
    seconds: dict[str, float]  # wall seconds by phase, in the order they ran
    identities: DataFrame  # identity_features' columns and records (how many records carry it): every identity
    term_counts: DataFrame  # model.term_counts of identities
    touched: DataFrame | None = None  # a delivery's: the links of every record of every person it touched
    # A delivery's: every identity it touched, with its records after it (none left: gone from identities).
    changed_identities: DataFrame | None = None

    def state(self) -> LinkState:
        """What the next delivery is linked against."""
        return LinkState(self.links, self.identities, self.model, self.counts["identities"], self.term_counts)


@dataclass
class LinkState:
    """A link, as a delivery is linked against it (link_delivery): no record needs reading again."""

    links: DataFrame  # source, record_id, identity_id, person_id, method, match_probability: every record
    identities: DataFrame  # identity_features' columns and records: every identity some record carries
    model: dict
    identity_count: int
    term_counts: DataFrame  # model.term_counts of identities: Splink's term frequencies, kept up to date


class _Phases:
    """Wall time of each phase of a link; a phase ends where the next begins (each ends in a Spark action)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark = time.monotonic()

    def done(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = round(self.seconds.get(phase, 0.0) + now - self._mark, 1)
        self._mark = now

    def total(self) -> float:
        return sum(self.seconds.values())


def link_records(
    spark: SparkSession,
    records: DataFrame,
    config: LinkageConfig,
    checkpoint_dir: str,
    run_id: str,
    previous: DataFrame | None = None,
    previous_model: dict | None = None,
    present: set[str] = FEATURES,
    engine: str = model.SPARK,
) -> Linked:
    """Link (source, record_id, identity fields) records; with a previous linkage, keep its person_ids.

    previous: (source, record_id, person_id, identity_id, method, match_probability) of the last run.
    engine: where Splink trains and scores (model.ENGINES); everything else runs on Spark.
    Incremental when there is a previous linkage and model and the new identities are few enough.
    """
    phases = _Phases()
    record_ids = feat.record_identities(records)
    # Checkpointed, not just cached: Splink's SQL stacks many projections on these, and the
    # optimiser must not re-derive every feature expression inside each of them.
    nodes = feat.identities(records).localCheckpoint()
    identities = feat.identity_features(nodes, config.nicknames, keep=("records",)).localCheckpoint()
    features = identities.drop("records")
    available = available_features(present)
    n_nodes = nodes.count()
    phases.done("identities")
    new_ids = None
    n_new = n_nodes
    mode = "full"
    if previous is not None and previous_model is not None:
        known = previous.select(F.col("identity_id").alias("unique_id")).distinct()
        new_ids = features.select("unique_id").join(known, on="unique_id", how="left_anti").localCheckpoint()
        n_new = new_ids.count()
        if n_new <= config.max_new_fraction * max(n_nodes - n_new, 1):
            mode = "incremental"
        phases.done("new_identities")
    nhs_nodes = nodes
    if mode == "incremental":
        # Only the NHS-number groups a new identity joins can change: every other group is linked already.
        new_numbers = nodes.join(new_ids.select(F.col("unique_id").alias("identity_id")), "identity_id", "left_semi")
        nhs_nodes = nodes.join(new_numbers.select("nhs_number").distinct(), on="nhs_number", how="left_semi")
    # Checkpointed: clustering and the methods both read the groups, which take three shuffles to find.
    nhs = (
        feat.nhs_groups(nhs_nodes) if config.nhs_deterministic and "nhs_number" in present else _no_nhs_groups(nodes)
    ).localCheckpoint()
    phases.done("nhs_number")
    nhs_edges = _nhs_edges(nhs)
    empty_edges = nhs_edges.limit(0)
    if mode == "full":
        if n_nodes > 1 and len(available) > 1:
            scored, used_model = model.train_and_predict(spark, features, config, checkpoint_dir, available, engine)
        else:
            scored, used_model = empty_edges, previous_model
        scored = scored.persist()
        phases.done("splink")
        graph_edges = nhs_edges.unionByName(scored.where(F.col("match_probability") >= config.match_threshold))
        clusters = model.connected_components(spark, features.select("unique_id"), graph_edges, checkpoint_dir, config)
        # How each identity was linked joins its cluster before the records do: one join per record, not two.
        identity_links = clusters.select(F.col("unique_id").alias("identity_id"), "cluster_id").join(
            node_methods(nodes, nhs, scored, config.match_threshold), on="identity_id", how="inner"
        )
        links = ids.assign_person_ids(record_ids.join(identity_links, on="identity_id", how="inner"), previous, run_id)
        phases.done("clusters")
    else:
        used_model = previous_model
        new = F.broadcast(new_ids)
        scored = (
            model.predict_new(
                spark,
                features.join(new, "unique_id", "left_anti"),
                features.join(new, "unique_id", "left_semi"),
                previous_model,
                config,
                checkpoint_dir,
                engine,
            )
            if n_new
            else empty_edges
        ).persist()
        phases.done("splink")
        records = _with_last(record_ids, _last(previous)).localCheckpoint()
        links, _ = _incremental_links(
            spark, records, nodes, nhs, previous, new_ids, nhs_edges, scored, config, run_id, complete=True
        )
        phases.done("clusters")
    log.info(
        "%s link: %d identities (%d new) scored by Splink on %s and clustered in %.0fs",
        mode,
        n_nodes,
        n_new,
        engine,
        phases.total(),
    )
    links = links.select(
        "source", "record_id", "identity_id", "person_id", "previous_id", "method", "match_probability"
    ).localCheckpoint()
    phases.done("person_ids")
    log.info("%s link phases (s): %s", mode, ", ".join(f"{k} {v}" for k, v in phases.seconds.items()))
    counts = {"identities": n_nodes, "new_identities": n_new}
    # For the next delivery: how common each name is, counted while everything is at hand.
    term_counts = model.term_counts(identities).localCheckpoint()
    return Linked(links, scored, mode, used_model, counts, phases.seconds, identities, term_counts)


def link_delivery(
    spark: SparkSession,
    delivery: DataFrame,
    state: LinkState,
    config: LinkageConfig,
    checkpoint_dir: str,
    run_id: str,
    present: set[str] = FEATURES,
    engine: str = model.SPARK,
) -> Linked:
    """Link a delivery against the last link's state, reading none of the records linked before.

    delivery: records new since that link, or re-sent (a re-sent record is linked
    as it is now). The links returned are every record's: the delivery's, and the
    last link's for every record it did not re-send, so a record is never lost by
    being left out of a delivery. The ids and methods are link_records' incremental
    ones for the same records; the cost is the delivery's, plus a few passes over
    the state, each a lookup with the delivery's keys broadcast (features are computed,
    and Splink's tables built, for the delivery and its blocking candidates alone).
    """
    phases = _Phases()
    record_ids = feat.record_identities(delivery)
    keys = F.broadcast(record_ids.select("source", "record_id"))
    records = _with_last(record_ids, F.broadcast(_last(state.links.join(keys, ["source", "record_id"], "left_semi"))))
    records = records.localCheckpoint()
    moved = records.where(~F.col("kept"))
    # The records each identity gains or loses: nhs_groups' votes and node_methods' same_identity count them.
    shift = (
        moved.select("identity_id", F.lit(1).alias("shift"))
        .unionByName(
            moved.where(F.col("last_identity").isNotNull()).select(
                F.col("last_identity").alias("identity_id"), F.lit(-1).alias("shift")
            )
        )
        .groupBy(F.col("identity_id").alias("unique_id"))
        .agg(F.sum("shift").alias("shift"))
        .localCheckpoint()
    )
    delivered = feat.identities(delivery).localCheckpoint()
    # One pass over every identity for what the delivery can change: the identities it carries or
    # takes records from (with their counts after it), and those sharing an NHS number with it.
    seen = records.select(F.col("identity_id").alias("unique_id")).unionByName(shift.select("unique_id")).distinct()
    numbers = delivered.where(F.col("nhs_number").isNotNull()).select("nhs_number").distinct()
    near = (
        state.identities.join(F.broadcast(seen.withColumn("seen", F.lit(True))), "unique_id", "left")
        .join(F.broadcast(numbers.withColumn("shares_number", F.lit(True))), "nhs_number", "left")
        .where(F.col("seen") | F.col("shares_number"))
        .join(F.broadcast(shift), "unique_id", "left")
        .withColumn("records", F.col("records") + F.coalesce(F.col("shift"), F.lit(0)))
        .drop("shift", "shares_number")
        .localCheckpoint()
    )
    known = near.where(F.col("seen")).drop("seen")
    new_nodes = delivered.join(
        F.broadcast(known.select(F.col("unique_id").alias("identity_id"))), "identity_id", "left_anti"
    )
    new_features = feat.identity_features(new_nodes, config.nicknames, keep=("records",)).localCheckpoint()
    new_ids = new_features.select("unique_id")
    n_new = new_features.count()
    changed = known.unionByName(new_features)
    gone = known.where(F.col("records") <= 0)
    identities = state.identities.join(F.broadcast(changed.select("unique_id")), "unique_id", "left_anti").unionByName(
        changed.where(F.col("records") > 0)
    )
    n_nodes = state.identity_count + n_new - gone.count()
    counts = (
        state.term_counts.unionByName(model.term_counts(new_features))
        .unionByName(model.term_counts(gone).withColumn("n", -F.col("n")))
        .groupBy("column", "value")
        .agg(F.sum("n").alias("n"))
        .where(F.col("n") > 0)
        .localCheckpoint()
    )
    phases.done("identities")
    if n_new > config.max_new_fraction * max(n_nodes - n_new, 1):
        log.warning(
            "delivery: %d new identities against %d linked, more than incremental.max_new_fraction %s: "
            "scored with the last model, which a full link would re-estimate",
            n_new,
            n_nodes - n_new,
            config.max_new_fraction,
        )
    nodes = changed.select(F.col("unique_id").alias("identity_id"), "records")
    if config.nhs_deterministic and "nhs_number" in present:
        # Only the NHS-number groups a new identity joins can change.
        new_numbers = new_features.where(F.col("nhs_number").isNotNull()).select("nhs_number").distinct()
        members = (
            near.drop("seen")
            .unionByName(new_features)
            .where(F.col("records") > 0)
            .join(F.broadcast(new_numbers), "nhs_number", "left_semi")
            .select(
                F.col("unique_id").alias("identity_id"),
                "nhs_number",
                F.to_date("dob").alias("date_of_birth"),
                "records",
            )
        )
        nhs = feat.nhs_groups(members).localCheckpoint()
    else:
        nhs = _no_nhs_groups(nodes)
    phases.done("nhs_number")
    nhs_edges = _nhs_edges(nhs)
    existing = identities.join(F.broadcast(new_ids), "unique_id", "left_anti").drop("records")
    # Found in the state as it was (materialised; what the delivery changed is lazy): an identity it
    # carries has the same features there, and of the rest only those it emptied are no longer there.
    new_only = new_features.drop("records")
    candidates = model.blocking_candidates(
        state.identities.drop("records"), new_only, model.prediction_blocks(state.model)
    ).join(F.broadcast(gone.select("unique_id")), "unique_id", "left_anti")
    scored = (
        model.predict_new(spark, existing, new_only, state.model, config, checkpoint_dir, engine, counts, candidates)
        if n_new
        else nhs_edges.limit(0)
    ).persist()
    phases.done("splink")
    touched, rest = _incremental_links(
        spark, records, nodes, nhs, state.links, new_ids, nhs_edges, scored, config, run_id, complete=False
    )
    phases.done("clusters")
    touched = touched.localCheckpoint()
    phases.done("person_ids")
    log.info("delivery link phases (s): %s", ", ".join(f"{k} {v}" for k, v in phases.seconds.items()))
    return Linked(
        touched.unionByName(rest),
        scored,
        "incremental",
        state.model,
        {"identities": n_nodes, "new_identities": n_new},
        phases.seconds,
        identities,
        counts,
        touched,
        changed,
    )


def _last(previous: DataFrame) -> DataFrame:
    """The last link's links, named as a record's link this time is compared with them."""
    return previous.select(
        "source",
        "record_id",
        F.col("identity_id").alias("last_identity"),
        F.col("person_id").alias("previous_id"),
        F.col("method").alias("kept_method"),
        F.col("match_probability").alias("kept_p"),
    )


def _with_last(record_ids: DataFrame, last: DataFrame) -> DataFrame:
    """Records with their last link; kept: linked before under the identity they carry now."""
    return record_ids.join(last, on=["source", "record_id"], how="left").withColumn(
        "kept", F.coalesce(F.col("last_identity") == F.col("identity_id"), F.lit(False))
    )


def _person_node(person_id: F.Column) -> F.Column:
    """An existing person, as one node of an incremental link's graph."""
    return F.concat(F.lit(ids.PERSON_CLUSTER), person_id)


def _person_of_node(node: F.Column) -> F.Column:
    """The person_id a person node stands for; null for a node that is a new identity."""
    return F.when(node.startswith(ids.PERSON_CLUSTER), F.substring(node, len(ids.PERSON_CLUSTER) + 1, 1 << 16))


def _incremental_links(
    spark: SparkSession,
    records: DataFrame,
    nodes: DataFrame,
    nhs: DataFrame,
    previous: DataFrame,
    new_ids: DataFrame,
    nhs_edges: DataFrame,
    scored: DataFrame,
    config: LinkageConfig,
    run_id: str,
    complete: bool,
) -> tuple[DataFrame, DataFrame | None]:
    """The links of an incremental link, in which only new identities were scored: (clustered, rest).

    records: _with_last's records, checkpointed: every record (complete), or a delivery's.
    nodes: (identity_id, records) of at least the identities of records that are not kept.

    Only what the new identities touch is clustered: each new identity, and
    each previous person one of them matched (as a single pseudo-node
    person:<id>). Every other person keeps its cluster untouched, and a record
    linked before under the identity it carries now keeps how it was linked.
    All but the records themselves is as small as the delivery (new records,
    records re-sent with another identity, the graph), so it is broadcast.
    Not complete: the previous records of every person the delivery touches are
    brought in to be clustered with it, and every other record keeps its link as it
    was (rest; None when complete).
    """
    moved = records.where(~F.col("kept"))
    new = F.broadcast(new_ids.select(F.col("unique_id").alias("identity_id"), F.lit(True).alias("is_new")))
    accepted = nhs_edges.unionByName(scored.where(F.col("match_probability") >= config.match_threshold))
    touched = (
        moved.select("identity_id")
        .unionByName(accepted.select(F.col("unique_id_l").alias("identity_id")))
        .unionByName(accepted.select(F.col("unique_id_r").alias("identity_id")))
        .distinct()
        .localCheckpoint()
    )
    # The person each touched identity was part of (an identity is in one person: persons are clusters of them).
    person_of = F.broadcast(
        previous.join(F.broadcast(touched), "identity_id", "left_semi")
        .select("identity_id", "person_id")
        .distinct()
        .localCheckpoint()
    )

    def end(side: str) -> F.Column:
        # An existing identity stands in the graph as its person.
        return F.when(F.col(f"new_{side}"), F.col(f"unique_id_{side}")).otherwise(_person_node(F.col(f"person_{side}")))

    sides = (
        accepted.join(new.toDF("unique_id_l", "new_l"), "unique_id_l", "left")
        .join(new.toDF("unique_id_r", "new_r"), "unique_id_r", "left")
        .join(person_of.toDF("unique_id_l", "person_l"), "unique_id_l", "left")
        .join(person_of.toDF("unique_id_r", "person_r"), "unique_id_r", "left")
        .fillna(False, subset=["new_l", "new_r"])
        .where(F.col("new_l") | F.col("new_r"))
    )
    # The graph a delivery touches is as small as the delivery: solved on the driver, not in
    # Splink's iterative Spark clustering (a dozen jobs, each writing parquet, for a few hundred edges).
    edges = sides.select(end("l"), end("r")).collect()
    in_play = spark.createDataFrame(model.small_components(edges), "unique_id string, cluster_id string")
    placed = records.where("kept").withColumn("unique_id", _person_node(F.col("previous_id")))
    placed = placed.unionByName(
        moved.join(new, on="identity_id", how="left")
        .join(person_of, on="identity_id", how="left")
        .withColumn("unique_id", F.when(F.col("is_new"), F.col("identity_id")).otherwise(_person_node("person_id")))
        .drop("is_new", "person_id")
    )
    rest = None
    if not complete:
        # Every person whose records may now sit elsewhere or share a cluster: those in the graph,
        # those a moved record left or joined. Their other records join the clustering as they were.
        persons = {
            node[len(ids.PERSON_CLUSTER) :] for edge in edges for node in edge if node.startswith(ids.PERSON_CLUSTER)
        }
        persons |= {
            r.person
            for r in placed.where(~F.col("kept"))
            .select(F.explode(F.array("previous_id", _person_of_node(F.col("unique_id")))).alias("person"))
            .where(F.col("person").isNotNull())
            .distinct()
            .collect()
        }
        keys = F.broadcast(records.select("source", "record_id"))
        theirs = F.broadcast(spark.createDataFrame([(p,) for p in sorted(persons)], "person_id string"))
        others = (
            _last(previous.join(theirs, "person_id", "left_semi").join(keys, ["source", "record_id"], "left_anti"))
            .withColumn("identity_id", F.col("last_identity"))
            .withColumn("kept", F.lit(True))
            .withColumn("unique_id", _person_node(F.col("previous_id")))
            .localCheckpoint()
        )
        placed = placed.unionByName(others)
        rest = (
            previous.join(keys, ["source", "record_id"], "left_anti")
            .join(F.broadcast(others.select("source", "record_id")), ["source", "record_id"], "left_anti")
            .select(
                "source",
                "record_id",
                "identity_id",
                "person_id",
                F.col("person_id").alias("previous_id"),
                "method",
                "match_probability",
            )
        )
    clustered = placed.join(F.broadcast(in_play), on="unique_id", how="left").withColumn(
        "cluster_id", F.coalesce("cluster_id", "unique_id")
    )
    if not complete:
        # As few as the delivery's records and their persons', and read three times to name them.
        clustered = clustered.localCheckpoint()
    moved_nodes = nodes.join(F.broadcast(moved.select("identity_id").distinct()), "identity_id", "left_semi")
    methods = F.broadcast(node_methods(moved_nodes, nhs, scored, config.match_threshold))
    links = (
        ids.assign_incremental(clustered, previous, run_id)
        .join(methods, on="identity_id", how="left")
        .select(
            "source",
            "record_id",
            "identity_id",
            "person_id",
            "previous_id",
            F.when(F.col("kept"), F.col("kept_method")).otherwise(F.col("method")).alias("method"),
            F.when(F.col("kept"), F.col("kept_p")).otherwise(F.col("match_probability")).alias("match_probability"),
        )
    )
    return links, rest


def _previous_links(spark: SparkSession, settings: Settings) -> DataFrame | None:
    """Last run's links, if they carry identity_ids (a lake linked before persistent ids starts afresh)."""
    path = settings.table("silver", "person_link")
    if not lake.table_exists(spark, path):
        return None
    previous = lake.read(spark, path)
    if "identity_id" not in previous.columns:
        return None
    # Frozen for this run: we are about to overwrite the table we read from.
    return previous.select(
        "source", "record_id", "person_id", "identity_id", "method", "match_probability"
    ).localCheckpoint()


def model_path(settings: Settings) -> str:
    return settings.path("lake", "ops", "linkage_model", "model.json")


def _read_model(settings: Settings) -> dict | None:
    path = model_path(settings)
    try:
        with fs.open_text(path, "utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def _link_inputs(spark: SparkSession, settings: Settings, sources: list[str]) -> dict:
    """What a link reads: each silver person source's Delta version, and the linkage settings."""
    return {
        "silver_versions": {s: lake.version(spark, settings.table("silver", s)) for s in sources},
        "config_sha256": hashlib.sha256(CONFIG_PATH.read_bytes()).hexdigest(),
    }


def _last_link(spark: SparkSession, settings: Settings) -> dict | None:
    """The inputs and run of the link that wrote person_link last, if its latest commit is one
    (erasure, for one, rewrites person_link without them: the next link then runs)."""
    stamps = lake.recent_user_metadata(spark, settings.table("silver", "person_link"), limit=1)
    try:
        stamp = json.loads(stamps[0]) if stamps else None
    except ValueError:
        return None
    return stamp if isinstance(stamp, dict) and "inputs" in stamp else None


# What the next link stage links a delivery against (LinkState), kept beside person_link and
# stamped with the run that wrote it: every identity's features and how many records carry it,
# and Splink's term counts. Identifiers, so in silver; erasure removes both tables (jobs/forget.py).
STATE_TABLES = {"identities": "link_identities", "term_counts": "link_term_counts"}


def state_paths(settings: Settings) -> dict[str, str]:
    return {part: settings.table("silver", name) for part, name in STATE_TABLES.items()}


def _state_stamp(linked: Linked, run_id: str) -> str:
    return json.dumps({"run_id": run_id, "identities": linked.counts["identities"]}, sort_keys=True)


def _run_stamp(run_id: str) -> str:
    return json.dumps({"run_id": run_id})


def _save_state(linked: Linked, settings: Settings, run_id: str) -> None:
    for part, path in state_paths(settings).items():
        lake.replace(getattr(linked, part), path, user_metadata=_state_stamp(linked, run_id))


def _saved_state(
    spark: SparkSession,
    settings: Settings,
    last: dict | None,
    previous: DataFrame | None,
    trained: dict | None,
    on_local_disk: bool = False,
):
    """The LinkState the last link saved, if person_link is still that link's (its stamp's run), else None.

    A link that died between saving the state and writing person_link, an erasure (which removes
    the state and rewrites person_link unstamped), a lake older than the state: None, and the
    stage relinks every record against the last links instead. on_local_disk: the stamps are read
    by delta-rs, not a Spark job each."""
    if last is None or previous is None or trained is None:
        return None
    paths = state_paths(settings)
    stamps = []
    for path in paths.values():
        if not (lake.exists_local(path) if on_local_disk else lake.table_exists(spark, path)):
            return None
        try:
            recent = (
                lake.recent_user_metadata_local(path, 1) if on_local_disk else lake.recent_user_metadata(spark, path, 1)
            )
            stamps += [json.loads(s) for s in recent]
        except ValueError:
            return None
    if len(stamps) != len(STATE_TABLES) or any(s.get("run_id") != last.get("run_id") for s in stamps):
        return None
    return LinkState(
        previous,
        lake.read(spark, paths["identities"]),
        trained,
        stamps[0]["identities"],
        lake.read(spark, paths["term_counts"]).localCheckpoint(),
    )


def changed_records(records: DataFrame, previous: DataFrame) -> tuple[DataFrame, int, int]:
    """(the records new, or carrying another identity, since the last link; how many; how many of the
    last link's records are gone). One join of every record's key and identity with the last links."""
    diff = (
        feat.record_identities(records)
        .join(
            previous.select("source", "record_id", F.col("identity_id").alias("was")), ["source", "record_id"], "full"
        )
        .where(~F.col("identity_id").eqNullSafe(F.col("was")))
        .localCheckpoint()
    )
    counted = diff.agg(
        F.count_if(F.col("identity_id").isNull()).alias("gone"), F.count("identity_id").alias("changed")
    ).first()
    gone, n_changed = counted["gone"], counted["changed"]
    keys = diff.where(F.col("identity_id").isNotNull()).select("source", "record_id")
    delivery = records.join(F.broadcast(keys), ["source", "record_id"], "left_semi").localCheckpoint()
    return delivery, n_changed, gone


def _link_changes(
    spark: SparkSession,
    records: DataFrame,
    state: LinkState,
    config: LinkageConfig,
    scratch: str,
    run_id: str,
    engine: str,
) -> Linked | None:
    """link_delivery of what changed in silver since the last link, or None where link_records must
    run instead: a record the last link linked is gone (persons may split), or the new identities are
    more than incremental.max_new_fraction (link_records then re-estimates the model)."""
    delivery, n_changed, gone = changed_records(records, state.links)
    # New identities are at most the changed records: under the fraction, so is the delivery's key list.
    if gone or n_changed > config.max_new_fraction * max(state.identity_count, 1):
        log.info("link: %d records changed and %d gone since the last link: every record is relinked", n_changed, gone)
        return None
    linked = link_delivery(spark, delivery, state, config, scratch, run_id, present=SILVER_FEATURES, engine=engine)
    n_new, n_nodes = linked.counts["new_identities"], linked.counts["identities"]
    if n_new > config.max_new_fraction * max(n_nodes - n_new, 1):
        linked.scored.unpersist()
        log.info("link: %d new identities against %d: every record is relinked, the model re-estimated", n_new, n_nodes)
        return None
    log.info("link: %d records changed since the last link, linked as a delivery (%d new identities)", n_changed, n_new)
    linked.counts["delivered_records"] = n_changed
    return linked


@releases_what_it_cached
def link_all(
    spark: SparkSession, settings: Settings, run_id: str, full: bool = False, relink: bool = False
) -> dict[str, int]:
    """The link stage: silver sources -> silver person_link, person, person_id_history; ops linkage_metrics.

    When every silver person source is at the version the last link read, with the same settings,
    there is nothing to link: the tables stay as that link left them (and the report shows its metrics).
    Otherwise the records new or changed since the last link are linked as a delivery against the
    state it saved (link_delivery); every record is relinked (link_records) when that cannot be done.

    relink: every record is linked again and the model re-estimated (after a change to linkage.yaml,
    which a delivery would apply only to what it brings), keeping the last links' person_ids where
    the new clusters allow; merges and splits go to person_id_history. full: as if nothing had ever
    been linked (fresh person_ids; the benchmark's full link).
    """
    started = datetime.now(UTC)
    sources = person_sources(spark, settings)
    inputs = _link_inputs(spark, settings, sources)
    last = None if full or relink else _last_link(spark, settings)
    if last is not None and last["inputs"] == inputs:
        log.info(
            "link: the %d silver person sources are as run %s linked them; person_link and person unchanged",
            len(sources),
            last.get("run_id"),
        )
        # The figures that link measured, so a caller reads the same keys whether or not it ran.
        headline = (
            lake.read(spark, settings.table("ops", "linkage_metrics"))
            .where((F.col("run_id") == last.get("run_id")) & (F.col("dimension") == "all"))
            .where(F.col("metric").isin("records", "persons"))
            .select("metric", "value")
            .collect()
        )
        return {"mode": "unchanged", "linked_by_run": last.get("run_id"), **{m: int(v) for m, v in headline}}
    config = LinkageConfig.load()
    scratch = settings.path("tmp", "splink", run_id.replace(":", "_").replace("+", "_"))
    last_model = None if full or relink else _read_model(settings)
    if last is not None and last_model is not None and _links_locally(settings, sources):
        done = _link_delivery_locally(
            spark, settings, sources, last, last_model, config, scratch, run_id, started, inputs
        )
        if done is not None:
            return done
    records = silver_records(spark, settings, sources)
    if records is None:
        raise RuntimeError("no silver person sources to link: did clean run?")
    records = records.persist()
    stage = _Phases()
    previous = None if full else _previous_links(spark, settings)
    stage.done("last_links")
    state = None if full or relink else _saved_state(spark, settings, last, previous, last_model)
    linked = (
        None if state is None else _link_changes(spark, records, state, config, scratch, run_id, settings.link_engine)
    )
    if linked is None:
        linked = link_records(
            spark,
            records,
            config,
            scratch,
            run_id,
            previous=previous,
            previous_model=last_model,
            present=SILVER_FEATURES,
            engine=settings.link_engine,
        )
    # Read five times below (history, person, two measures, the write): one pass, not five.
    linked.links = linked.links.localCheckpoint()
    stage.done("link")
    try:
        if linked.mode == "full" and linked.model is not None:
            fs.write_text(model_path(settings), json.dumps(linked.model, indent=1))
        links = conform(linked.links.withColumn("run_id", F.lit(run_id)), table_contract("silver", "person_link"))
        history = conform(ids.id_history(linked.links, run_id, started), table_contract("silver", "person_id_history"))
        lake.append_once(history, settings.table("silver", "person_id_history"), app_id=f"link:{run_id}")
        stage.done("id_history")
        with_ids = records.join(
            linked.links.select("source", "record_id", "person_id"), ["source", "record_id"], "inner"
        )
        persons = conform(best_demographics(with_ids), table_contract("silver", "person"))
        # Stamped: a delivery linked on a local lake rewrites only the persons it changed, of this table.
        lake.replace(persons, settings.table("silver", "person"), user_metadata=_run_stamp(run_id))
        stage.done("person")
        summary = metrics.write_metrics(spark, settings, run_id, started, linked, records, config)
        stage.done("metrics")
        _save_state(linked, settings, run_id)
        stage.done("state")
        # Last, carrying what was read: a link that dies before this line is not taken as done.
        stamp = json.dumps({"run_id": run_id, "inputs": inputs}, sort_keys=True)
        lake.replace(links, settings.table("silver", "person_link"), user_metadata=stamp)
        stage.done("person_link")
        log.info("link stage steps (s): %s", ", ".join(f"{k} {v}" for k, v in stage.seconds.items()))
    finally:
        linked.scored.unpersist()
        records.unpersist()
        fs.remove_tree(scratch)  # Splink's intermediate parquet: nothing in it outlives the run
    log.info(
        "linked %d records (%d identities, %d new; %s link) into %d persons",
        summary["records"],
        linked.counts["identities"],
        linked.counts["new_identities"],
        linked.mode,
        summary["persons"],
    )
    # delivered_records: the records linked as new (a delivery's, or every record when all were relinked).
    delivered_records = linked.counts.get("delivered_records", summary["records"])
    return {**summary, **linked.counts, "mode": linked.mode, "delivered_records": delivered_records}


def _links_locally(settings: Settings, sources: list[str]) -> bool:
    """Whether the link stage's whole-table work runs in DuckDB and delta-rs (jobs/linkage/local.py):
    a lake on local disk whose silver sources and link tables fit settings.gate_memory_bytes."""
    tables = [*sources, "person_link", "person", *STATE_TABLES.values()]
    return settings.is_local() and lake.size_local([settings.table("silver", t) for t in tables]) <= (
        settings.gate_memory_bytes
    )


def _link_delivery_locally(
    spark: SparkSession,
    settings: Settings,
    sources: list[str],
    last: dict,
    trained: dict,
    config: LinkageConfig,
    scratch: str,
    run_id: str,
    started: datetime,
    inputs: dict,
) -> dict | None:
    """link_all for a delivery on a local lake: what changed in silver since the last link is read from
    Delta's versions, link_delivery links it, and every table the stage writes is the last link's with
    what the delivery changed (jobs/linkage/local.py). None when every record must be relinked, or the
    last link's tables are not all its own: link_all then links on Spark as before."""
    stage = _Phases()
    link_path, person_path = settings.table("silver", "person_link"), settings.table("silver", "person")
    link_version = lake.version(spark, link_path)
    # The last link's links as that commit holds them: person_link is rewritten at the end.
    previous = lake.read(spark, link_path, version=link_version).select(
        "source", "record_id", "person_id", "identity_id", "method", "match_probability"
    )
    state = _saved_state(spark, settings, last, previous, trained, on_local_disk=True)
    if state is None or local.stamped_run(person_path) != last.get("run_id"):
        return None
    paths = {s: settings.table("silver", s) for s in sources}
    changes = local.silver_changes(paths, last["inputs"]["silver_versions"], IDENTITY)
    if changes is None or changes.gone:
        if changes is not None:
            log.info("link: %d records gone from silver since the last link: every record is relinked", changes.gone)
        return None
    # Of the changed records, those new or carrying another identity are linked; the rest only
    # change their persons' best demographics.
    with_last = local.with_last_identity(changes.rows, link_path, link_version)
    changed = spark.createDataFrame(with_last).withColumn("address", F.lit(None).cast("string"))
    moved = ~feat.identity_id(F.col("source")).eqNullSafe(F.col(local.LAST_IDENTITY))
    delivery = changed.where(moved).drop(local.LAST_IDENTITY).localCheckpoint()
    n_changed = delivery.count()
    stage.done("changes")
    if n_changed > config.max_new_fraction * max(state.identity_count, 1):
        log.info("link: %d records changed since the last link: every record is relinked", n_changed)
        return None
    linked = link_delivery(
        spark, delivery, state, config, scratch, run_id, present=SILVER_FEATURES, engine=settings.link_engine
    )
    n_new, n_nodes = linked.counts["new_identities"], linked.counts["identities"]
    if n_new > config.max_new_fraction * max(n_nodes - n_new, 1):
        linked.scored.unpersist()
        log.info("link: %d new identities against %d: every record is relinked, the model re-estimated", n_new, n_nodes)
        return None
    log.info(
        "link: %d records changed since the last link, %d of them linked as a delivery (%d new identities)",
        changes.rows.num_rows,
        n_changed,
        n_new,
    )
    linked.counts["delivered_records"] = n_changed
    stage.done("link")
    try:
        touched = linked.touched
        history = conform(ids.id_history(touched, run_id, started), table_contract("silver", "person_id_history"))
        lake.append_once(history, settings.table("silver", "person_id_history"), app_id=f"link:{run_id}")
        stage.done("id_history")
        touched = touched.toArrow()
        links = local.links_after(
            link_path, link_version, touched, run_id, table_contract("silver", "person_link").column_names
        )
        affected, their_records = local.persons_records(links, touched, changes.rows, paths, IDENTITY)
        with_ids = spark.createDataFrame(their_records).withColumn("address", F.lit(None).cast("string"))
        persons = conform(best_demographics(with_ids), table_contract("silver", "person")).toArrow()
        local.replace_rows(person_path, persons, affected, ["person_id"], _run_stamp(run_id))
        stage.done("person")
        rows = metrics.measure_local(
            links, linked.scored.toArrow(), config.match_threshold, metrics.truth_paths(settings), started.year
        )
        summary = metrics.record_metrics(spark, settings, run_id, started, linked.mode, rows)
        stage.done("metrics")
        stamp = _state_stamp(linked, run_id)
        changed_identities = linked.changed_identities.toArrow()
        local.replace_rows(
            settings.table("silver", STATE_TABLES["identities"]),
            changed_identities.filter(pc.greater(changed_identities["records"], 0)),
            changed_identities.select(["unique_id"]),
            ["unique_id"],
            stamp,
        )
        lake.replace_local(
            linked.term_counts.toArrow(), settings.table("silver", STATE_TABLES["term_counts"]), user_metadata=stamp
        )
        stage.done("state")
        # Last, carrying what was read: a link that dies before this line is not taken as done.
        lake.replace_local(
            links, link_path, user_metadata=json.dumps({"run_id": run_id, "inputs": inputs}, sort_keys=True)
        )
        stage.done("person_link")
        log.info("link stage steps, on a local lake (s): %s", ", ".join(f"{k} {v}" for k, v in stage.seconds.items()))
    finally:
        linked.scored.unpersist()
        fs.remove_tree(scratch)
    log.info(
        "linked %d records (%d identities, %d new; delivery on a local lake) into %d persons",
        summary["records"],
        n_nodes,
        n_new,
        summary["persons"],
    )
    return {**summary, **linked.counts, "mode": linked.mode}
