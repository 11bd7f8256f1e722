"""The probabilistic pass: a Splink model, trained on the data it links.

Comparisons are written as Splink custom levels over the features of
jobs.linkage.features, so each level says exactly what evidence it weighs.
m probabilities come from expectation maximisation, u probabilities from
random pairs, the prior from the deterministic NHS-number rule; exact name
matches carry term-frequency adjustments (a shared SMITH is weaker evidence
than a shared ZIELINSKI).

Splink runs the same model on either of two engines: Spark (a cluster), or
DuckDB in this process (one machine, where Splink on Spark pays a Spark job's
fixed cost for each of its dozens of intermediate tables). The features come
in as a Spark DataFrame and the scored pairs go out as one either way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.faults import kill_point
from jobs.linkage.config import LinkageConfig
from jobs.linkage.features import FEATURE_COLUMNS

log = logging.getLogger(__name__)

EDGE_COLUMNS = ["unique_id_l", "unique_id_r", "match_probability"]
SPARK, DUCKDB = "spark", "duckdb"
ENGINES = (SPARK, DUCKDB)
TF_COLUMNS = ["given_name", "family_name"]
# How Splink 5 words its refusal of an m or u probability that underflows float64.
_UNDERFLOW = "below the minimum allowed value"


def _level(sql: str, label: str, **configure: Any):
    import splink.comparison_level_library as cll

    level = cll.CustomLevel(sql, label_for_charts=label)
    return level.configure(**configure) if configure else level


def _null(column: str):
    return _level(f"{column}_l IS NULL OR {column}_r IS NULL", f"{column} missing", is_null_level=True)


def _comparison(name: str, levels: list):
    import splink.comparison_library as cl

    return cl.CustomComparison(comparison_levels=[*levels, _level("ELSE", "all other")], output_column_name=name)


# The levels are written in Spark SQL; DuckDB (the benchmark's reference engine) names two functions differently.
_DUCKDB_NAMES = {"jaro_winkler(": "jaro_winkler_similarity(", "arrays_overlap(": "list_has_any("}


def comparisons(dialect: str = "spark", fixed_m: dict[str, dict[str, float]] | None = None) -> list:
    """One comparison per identity field; levels in order of decreasing strength.

    fixed_m: comparison -> level label -> an m probability set, not estimated.
    """
    if dialect == "duckdb":
        return [_translated(c) for c in comparisons("spark", fixed_m)]
    if fixed_m:
        return [_with_fixed_m(c, fixed_m.get(c.create_output_column_name(), {})) for c in comparisons(dialect)]
    swapped = "given_name_l = family_name_r AND family_name_l = given_name_r"
    return [
        _comparison(
            "given_name",
            [
                _null("given_name"),
                _level("given_name_l = given_name_r", "exact", tf_adjustment_column="given_name"),
                _level(swapped, "given and family swapped"),
                _level("arrays_overlap(given_forms_l, given_forms_r)", "nickname of the same name"),
                _level("jaro_winkler(given_name_l, given_name_r) >= 0.92", "Jaro-Winkler >= 0.92"),
                _level("given_phon_l = given_phon_r", "same Soundex"),
                _level("jaro_winkler(given_name_l, given_name_r) >= 0.8", "Jaro-Winkler >= 0.8"),
            ],
        ),
        _comparison(
            "family_name",
            [
                _null("family_name"),
                _level("family_name_l = family_name_r", "exact", tf_adjustment_column="family_name"),
                _level(swapped, "given and family swapped"),
                _level("arrays_overlap(family_tokens_l, family_tokens_r)", "shares a part (hyphenated)"),
                _level("jaro_winkler(family_name_l, family_name_r) >= 0.92", "Jaro-Winkler >= 0.92"),
                _level("family_phon_l = family_phon_r", "same Soundex"),
            ],
        ),
        _comparison(
            "date_of_birth",
            [
                _null("dob"),
                _level("dob_l = dob_r", "exact"),
                # Councils' forms swap day and month when the day is 12 or less.
                _level(
                    "dob_year_l = dob_year_r AND dob_month_l = dob_day_r AND dob_day_l = dob_month_r",
                    "day and month transposed",
                ),
                _level("levenshtein(dob_l, dob_r) <= 1", "one character differs"),
                _level("dob_year_l = dob_year_r", "same year"),
            ],
        ),
        _comparison("sex", [_null("sex"), _level("sex_l = sex_r", "exact")]),
        _comparison(
            "postcode",
            [
                _null("postcode"),
                _level("postcode_l = postcode_r", "exact"),
                _level("postcode_sector_l = postcode_sector_r", "same sector"),
                _level("postcode_district_l = postcode_district_r", "same district"),
            ],
        ),
        _comparison(
            "address",
            [
                _null("address"),
                _level("address_l = address_r", "exact"),
                _level("jaro_winkler(address_l, address_r) >= 0.9", "Jaro-Winkler >= 0.9"),
            ],
        ),
        _comparison("nhs_number", [_null("nhs_number"), _level("nhs_number_l = nhs_number_r", "exact")]),
    ]


def _with_fixed_m(comparison, fixed: dict[str, float]):
    labels = {level.create_label_for_charts(): level for level in comparison._comparison_levels}
    unknown = set(fixed) - set(labels)
    if unknown:
        raise ValueError(f"fixed_m: no level {sorted(unknown)} in comparison {comparison.create_output_column_name()}")
    for label, m in fixed.items():
        labels[label].configure(m_probability=m, fix_m_probability=True)
    return comparison


def _translated(comparison):
    for level in comparison._comparison_levels:
        for spark_name, duckdb_name in _DUCKDB_NAMES.items():
            level.sql_condition = level.sql_condition.replace(spark_name, duckdb_name)
    return comparison


def _block(columns: tuple[str, ...]):
    from splink import block_on

    return block_on(*columns)


def splink_settings(config: LinkageConfig, available: set[str] | None = None, dialect: str = "spark"):
    """The model's settings: comparisons and blocking rules restricted to the features present."""
    from splink import SettingsCreator

    usable = [
        c
        for c in comparisons(dialect, config.fixed_m)
        if available is None or c.create_output_column_name() in available
    ]
    rules = [r for r in config.blocking_rules if available is None or set(r) <= available]
    if not rules:
        # Files with too little to block on (names only): a looser block, not every pair there is.
        rules = [r for r in config.fallback_blocking_rules if available is None or set(r) <= available]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=usable,
        blocking_rules_to_generate_predictions=[_block(r) for r in rules],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        max_iterations=config.max_iterations,
    )


# Not one of Splink's break_lineage methods: the tables it would persist are localCheckpointed
# (kept by Spark's block manager), for as few identities as a delivery's. The names are those
# splink.internals.spark.database_api persists.
LOCAL_LINEAGE = "local"
_PERSISTED = re.compile(
    r"__splink__(df_comparison_vectors|df_concat_sample|df_concat_with_tf|df_predict|df_tf_.+|df_representatives.*"
    r"|representatives.*|df_neighbours|df_connected_components_df|blocked_id_pairs|marginal_exploded_ids_blocking_rule.*"
    r"|nodes_in_play|edges_in_play|clusters_at_threshold|distinct_clusters_at_threshold|clusters_at_all_thresholds"
    r"|clustering_output_final|stable_nodes_at_new_threshold|filtered_neighbours.*)"
)


def spark_api(spark: SparkSession, checkpoint_dir: str, break_lineage: str):
    """Splink's Spark backend; intermediate tables persisted in memory, or as parquet under checkpoint_dir."""
    from splink.backends.spark import SparkAPI

    class EMCountsMaterialised(SparkAPI):
        """Splink's SparkAPI, also materialising EM's agreement-pattern counts.

        Splink leaves that table lazy, so every EM iteration re-read and
        re-aggregated all the session's comparison vectors; it is a few hundred
        rows (one per pattern), computed once and kept in memory instead.
        LOCAL_LINEAGE: the tables scoring reads again are localCheckpointed, not written
        as parquet and listed and read back (2.5-3 s a delivery at 1M, for a few thousand rows).
        """

        def _break_lineage_and_repartition(self, spark_df, templated_name, physical_name):
            if templated_name == "__splink__agreement_pattern_counts":
                return spark_df.localCheckpoint()
            if self.break_lineage_method != LOCAL_LINEAGE:
                return super()._break_lineage_and_repartition(spark_df, templated_name, physical_name)
            spark_df = self._repartition_if_needed(spark_df, templated_name)
            return spark_df.localCheckpoint() if _PERSISTED.fullmatch(templated_name) else spark_df

    spark.sparkContext.setCheckpointDir(checkpoint_dir)
    return EMCountsMaterialised(spark_session=spark, break_lineage_method=break_lineage)


def training_sessions(config: LinkageConfig, features: set[str]) -> list[tuple[str, ...]]:
    """The EM training blocks to run, in order: each usable one that estimates a comparison no earlier one did.

    A session cannot estimate the comparisons of its own blocking columns. The
    purest blocks come first (a shared NHS number is nearly always one
    person); a later, noisier block (the same full name also holds a father
    and his namesake son) runs only for what the purer ones could not reach,
    so its bias is not averaged into m probabilities already well estimated.
    """
    compared = {name for name in FEATURE_COLUMNS if name in features}
    estimated: set[str] = set()
    sessions = []
    for rule in config.training_blocking_rules:
        if not set(rule) <= features:
            continue
        blocked = {name for name, columns in FEATURE_COLUMNS.items() if set(columns) & set(rule)}
        if (compared - blocked) - estimated:
            sessions.append(rule)
            estimated |= compared - blocked
    return sessions


def train(linker, config: LinkageConfig, features: set[str]) -> None:
    """Prior from the NHS-number rule, u from random pairs, m by EM on each training block."""
    if "nhs_number" in features:
        linker.training.estimate_probability_two_random_records_match(
            ["l.nhs_number = r.nhs_number"], recall=config.prior_recall
        )
    linker.training.estimate_u_using_random_sampling(max_pairs=config.u_max_pairs, seed=config.seed, num_chunks=1)
    for rule in training_sessions(config, features):
        # An EM session edits the linker's model in place as it iterates (Splink 5.0): keep a copy.
        before = linker._settings_obj.core_model_settings.copy()
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(_block(rule))
        except ValueError as exc:
            if _UNDERFLOW not in str(exc):
                raise
            # Splink refuses an m probability that EM has driven below 1e-300: too few pairs of some
            # kind in this block to estimate it (small inputs). The session's estimates are dropped
            # whole and the model is as the earlier sessions left it.
            linker._settings_obj.core_model_settings = before
            log.warning("EM on the block %s drove an m probability to underflow: its estimates are not used", rule)


class _Splink:
    """One linkage's Splink backend: register Spark frames with it, get scored pairs back as Spark frames.

    DuckDB runs in this process with at most half the machine's memory (the Spark driver shares it),
    spilling what does not fit to checkpoint_dir. small: on Spark, Splink's tables are kept in
    memory (LOCAL_LINEAGE), not written under checkpoint_dir.
    """

    def __init__(
        self, spark: SparkSession, engine: str, checkpoint_dir: str, config: LinkageConfig, small: bool = False
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown linkage engine {engine!r}: one of {', '.join(ENGINES)}")
        self.spark, self.engine = spark, engine
        if engine == SPARK:
            self.api = spark_api(spark, checkpoint_dir, LOCAL_LINEAGE if small else config.break_lineage)
            return
        import duckdb
        from splink import DuckDBAPI

        spill = checkpoint_dir
        if "://" in checkpoint_dir:
            # DuckDB spills only to a local disk; the folder goes when this backend does.
            self._spill = tempfile.TemporaryDirectory(prefix="placelake-duckdb-")
            spill = self._spill.name
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
        self.api = DuckDBAPI(
            duckdb.connect(config={"memory_limit": f"{memory >> 20}MB", "temp_directory": f"{spill}/duckdb"})
        )

    def register(self, frame: DataFrame):
        return self.api.register(frame if self.engine == SPARK else frame.toArrow())

    def edges(self, predictions) -> DataFrame:
        if self.engine == SPARK:
            return predictions.as_spark_dataframe().select(*EDGE_COLUMNS)
        table = predictions.as_pyarrow_table().select(EDGE_COLUMNS).cast(_edge_schema())
        return self.spark.createDataFrame(table)

    def linker(self, features, model):
        """A Linker over features: a Spark frame, or one this backend registered already."""
        from splink import Linker

        table = self.register(features) if isinstance(features, DataFrame) else features
        return Linker(table, model, log_level=logging.WARNING)


def _edge_schema():
    import pyarrow as pa

    return pa.schema([("unique_id_l", pa.string()), ("unique_id_r", pa.string()), ("match_probability", pa.float64())])


def in_dialect(model: dict, dialect: str) -> dict:
    """A saved Splink model with its comparison levels' SQL written for another engine.

    Models are kept in Spark's dialect (lake/ops/linkage_model/model.json), whichever engine trained them.
    """
    import sqlglot

    names = _DUCKDB_NAMES if dialect == DUCKDB else {duck: spark for spark, duck in _DUCKDB_NAMES.items()}
    translated = json.loads(json.dumps(model))
    translated["sql_dialect"] = dialect
    for rule in translated.get("blocking_rules_to_generate_predictions", []):
        if rule.get("sql_dialect", dialect) != dialect:
            rule["blocking_rule"] = sqlglot.transpile(rule["blocking_rule"], read=rule["sql_dialect"], write=dialect)[0]
            rule["sql_dialect"] = dialect
    for comparison in translated.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            for old, new in names.items():
                level["sql_condition"] = level["sql_condition"].replace(old, new)
    return translated


def train_and_predict(
    spark: SparkSession,
    features: DataFrame,
    config: LinkageConfig,
    checkpoint_dir: str,
    available: set[str],
    engine: str = SPARK,
) -> tuple[DataFrame, dict]:
    """Full link: train on every identity, score every blocked pair at or above the review floor.

    Returns (edges: unique_id_l, unique_id_r, match_probability; the trained model as a dict, in Spark's dialect).
    """
    splink = _Splink(spark, engine, checkpoint_dir, config)
    linker = splink.linker(features, splink_settings(config, available, dialect=engine))
    train(linker, config, available)
    kill_point("link.splink")
    predictions = linker.inference.predict(threshold_match_probability=config.review_floor)
    return splink.edges(predictions), in_dialect(linker.misc.save_model_to_json(), SPARK)


_EQUALITY = re.compile(r'\(?\s*l\.[`"]?(\w+)[`"]?\s*=\s*r\.[`"]?(\w+)[`"]?\s*\)?')


def prediction_blocks(model: dict) -> list[tuple[str, ...]] | None:
    """The column sets of a model's prediction blocking rules; None if any rule is more than equalities.

    Splink writes block_on(a, b) as (l.`a` = r.`a`) AND (l.`b` = r.`b`), with double quotes in DuckDB's dialect.
    """
    blocks = []
    for rule in model.get("blocking_rules_to_generate_predictions", []):
        columns = []
        for term in re.split(r"\s+AND\s+", rule["blocking_rule"].strip(), flags=re.IGNORECASE):
            found = _EQUALITY.fullmatch(term.strip())
            if not found or found[1] != found[2]:
                return None
            columns.append(found[1])
        blocks.append(tuple(columns))
    return blocks or None


def blocking_candidates(existing: DataFrame, new: DataFrame, blocks: list[tuple[str, ...]] | None) -> DataFrame:
    """The existing identities a new one shares some blocking rule's columns with: all Splink could pair it with.

    A pair is a candidate only where every column of one rule is equal (and so
    not null) on both sides, so the rest can never be compared with a new
    identity; leaving them out spares Splink a million-row table per delivery.
    Rules that are not plain equalities (None) keep every existing identity.
    """
    if not blocks:
        return existing
    # One row per (identity, rule) whose columns are all present: a hash of the rule's number and values.
    # Two keys that collide only add a candidate Splink's own blocking then pairs with nobody.
    per_rule = F.array(
        *[
            F.when(reduce(lambda a, b: a & b, [F.col(c).isNotNull() for c in columns]), F.xxhash64(F.lit(i), *columns))
            for i, columns in enumerate(blocks)
        ]
    )
    wanted = new.select(F.explode(per_rule).alias("key")).where(F.col("key").isNotNull()).distinct()
    # As few as the delivery's neighbours: found in one pass over everyone, then fetched in another
    # (found on the ids alone: carrying every column through the explode costs three times as much).
    reached = existing.select("unique_id", F.explode(per_rule).alias("key")).join(
        F.broadcast(wanted), "key", "left_semi"
    )
    reached = reached.select("unique_id").distinct().localCheckpoint()
    return existing.join(F.broadcast(reached), on="unique_id", how="left_semi").localCheckpoint()


def term_counts(identities: DataFrame) -> DataFrame:
    """(column, value, n): how many identities hold each value of each term-frequency column (TF_COLUMNS)."""
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).alias("value")) for c in TF_COLUMNS]))
    return (
        identities.select(pairs.alias("term"))
        .select("term.*")
        .where(F.col("value").isNotNull())
        .groupBy("column", "value")
        .agg(F.count("*").alias("n"))
    )


def term_frequencies(counts: DataFrame, column: str) -> DataFrame:
    """(column, tf_column): each value's share of the identities that have one, as Splink computes it."""
    share = F.col("n").cast("double") / F.sum("n").over(Window.partitionBy()).cast("double")
    return counts.where(F.col("column") == column).select(F.col("value").alias(column), share.alias(f"tf_{column}"))


# predict_new's own column on the identities it gives Splink: true for a new one.
_DELIVERED = "placelake_delivered"


def predict_new(
    spark: SparkSession,
    existing: DataFrame,
    new: DataFrame,
    model: dict,
    config: LinkageConfig,
    checkpoint_dir: str,
    engine: str = SPARK,
    counts: DataFrame | None = None,
    candidates: DataFrame | None = None,
) -> DataFrame:
    """Incremental link: score new identities against each other and against every existing one.

    existing, new: identity features (existing: every identity linked before, not new now).
    candidates: blocking_candidates(existing, new), if the caller has them already.
    The trained model is reused as it is; term frequencies come from all identities
    (counts: their term_counts, if known), counted on Spark, so Splink is given only
    the new identities and their blocking candidates.
    """
    new = new.localCheckpoint()
    if candidates is None:
        candidates = blocking_candidates(existing, new, prediction_blocks(model))
    # As few as the new identities and their candidates: Splink's tables stay in Spark's memory.
    splink = _Splink(spark, engine, checkpoint_dir, config, small=True)
    settings = in_dialect(model, engine)
    table = splink.register(
        candidates.withColumn(_DELIVERED, F.lit(False)).unionByName(new.withColumn(_DELIVERED, F.lit(True)))
    )
    linker = splink.linker(table, settings)
    if counts is None:
        counts = term_counts(existing.unionByName(new))
    for column in TF_COLUMNS:
        if f"{column}_l" in json.dumps(model):
            tf = splink.register(term_frequencies(counts, column))
            linker.table_management.register_term_frequency_lookup(tf, column)
    # One blocking and one scoring of new with new and new with candidates (predict_within and
    # predict_between would each block and score): the model's rules, for pairs with a new side.
    rules = [
        {**rule, "blocking_rule": f"({rule['blocking_rule']}) AND (l.{_DELIVERED} OR r.{_DELIVERED})"}
        for rule in settings["blocking_rules_to_generate_predictions"]
    ]
    scored = linker.inference.predict_within(
        table,
        blocking_rules_to_generate_predictions=rules,
        threshold_match_probability=config.review_floor,
        warning_mode="never",
    )
    return splink.edges(scored)


def connected_components(
    spark: SparkSession, nodes: DataFrame, edges: DataFrame, checkpoint_dir: str, config: LinkageConfig
) -> DataFrame:
    """(unique_id) nodes and (unique_id_l, unique_id_r) edges -> (unique_id, cluster_id).

    Up to config.driver_clustering_max_edges accepted edges are clustered in
    memory on the driver (seconds for millions of edges); beyond that by
    Splink's iterative connected components on Spark, which takes a dozen
    rounds of jobs whatever the size.
    """
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    pairs = edges.select("unique_id_l", "unique_id_r")
    # One pass over the edges: up to one more than the driver takes says which way to go.
    table = pairs.limit(config.driver_clustering_max_edges + 1).toArrow()
    if table.num_rows <= config.driver_clustering_max_edges:
        found = small_components(
            zip(table.column("unique_id_l").to_pylist(), table.column("unique_id_r").to_pylist(), strict=True)
        )
        import pyarrow as pa

        # Through Arrow: a list of Python tuples would be pickled row by row into the JVM.
        in_graph = spark.createDataFrame(
            pa.table(
                [pa.array([n for n, _ in found], pa.string()), pa.array([c for _, c in found], pa.string())],
                names=["unique_id", "cluster_id"],
            )
        )
        return (
            nodes.select("unique_id")
            .join(in_graph, on="unique_id", how="left")
            .select("unique_id", F.coalesce("cluster_id", "unique_id").alias("cluster_id"))
        )
    db_api = spark_api(spark, checkpoint_dir, config.break_lineage)
    clusters = cluster_pairwise_predictions_at_threshold(
        nodes.select("unique_id"),
        edges.select("unique_id_l", "unique_id_r", F.lit(1.0).alias("match_probability")),
        db_api,
        node_id_column_name="unique_id",
        threshold_match_probability=0.5,
    )
    return clusters.as_spark_dataframe().select("unique_id", "cluster_id")


def small_components(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Connected components of a small edge list, on the driver: (node, the smallest node of its component)."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in edges:
        a, b = root(left), root(right)
        if a != b:
            # The smaller root wins, so every component's root is its smallest node.
            parent[max(a, b)] = min(a, b)
    return [(node, root(node)) for node in parent]
