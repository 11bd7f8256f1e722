"""Quality gates: Great Expectations suites for every silver and gold table.

A suite = the rules generated from the table's contract (schemas/) + the
hand-written business rules in expectations/<layer>/<table>.yaml. Each rule
has a severity:
- warn: reported only;
- drop: offending rows leave the table for quarantine/rows with the rule id;
- fail: blocks publication (gold) or the build (silver).
Gold tables are built to staging, validated, and published in one Delta
commit only if no fail rule failed. Results keep counts and rates only (no
sample values) and are written to ops/dq_results.

Both layers are validated on Spark unless the lake is on local disk and the
tables fit settings.gate_memory_bytes (gates_locally): there each table is
read into memory by delta-rs and validated by GX's pandas engine, row rules
counted by DuckDB. The suites are the same either way; tests hold both
engines to the same result for every rule, on silver and on gold.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import re
import types
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache, reduce
from numbers import Number
from pathlib import Path

import pandas as pd
import pyarrow as pa
import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import data_docs, lake
from jobs.config import REPO_ROOT, Settings
from jobs.contracts import Contract, gold_contracts, source_contracts, table_contract
from jobs.faults import kill_point
from jobs.spark import releases_what_it_cached

log = logging.getLogger(__name__)

SEVERITIES = ("warn", "drop", "fail")
# Counts only: no partial_unexpected_list, no unexpected index, no sample rows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}


def expectations_dir() -> Path:
    # A place can keep its own hand-written rules elsewhere (and tests use this to break a suite).
    return Path(os.environ.get("PLACELAKE_EXPECTATIONS_DIR", REPO_ROOT / "expectations"))


def docs_dir(settings: Settings) -> str:
    """Where each table's latest GX Data Docs page is written, beside the quality report."""
    return f"{settings.reports}/data_docs"


class GateFailed(RuntimeError):
    """A table failed a 'fail' rule; the published version is untouched."""


@dataclass(frozen=True)
class Rule:
    id: str
    expectation: str
    kwargs: dict
    severity: str
    description: str
    # SQL predicate true for an offending row: how a 'drop' rule finds its rows,
    # and the whole definition of an 'unexpected_rows' rule.
    where: str | None = None


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    expectation: str
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: float | None


def _quoted(value) -> str:
    return str(value) if isinstance(value, int | float) else "'" + str(value).replace("'", "\\'") + "'"


def contract_rules(contract: Contract) -> list[Rule]:
    """The rules a contract implies: required, unique, allowed values, patterns, key uniqueness."""
    name = contract.name
    rules = []
    for col in contract.columns:
        c = f"`{col.name}`"
        if col.required:
            rules.append(
                Rule(
                    f"{name}.{col.name}.not_null",
                    "expect_column_values_to_not_be_null",
                    {"column": col.name},
                    "fail",
                    f"{col.name} is required",
                    f"{c} IS NULL",
                )
            )
        if col.unique:
            rules.append(
                Rule(
                    f"{name}.{col.name}.unique",
                    "expect_column_values_to_be_unique",
                    {"column": col.name},
                    "fail",
                    f"{col.name} is unique",
                )
            )
        if col.allowed is not None:
            values = [int(v) if col.type in ("integer", "long") else v for v in col.allowed]
            rules.append(
                Rule(
                    f"{name}.{col.name}.allowed",
                    "expect_column_values_to_be_in_set",
                    {"column": col.name, "value_set": values},
                    "fail",
                    f"{col.name} is in its code list",
                    f"{c} IS NOT NULL AND {c} NOT IN ({', '.join(_quoted(v) for v in values)})",
                )
            )
        if col.pattern is not None:
            rules.append(
                Rule(
                    f"{name}.{col.name}.pattern",
                    "expect_column_values_to_match_regex",
                    {"column": col.name, "regex": col.pattern},
                    "fail",
                    f"{col.name} matches {col.pattern}",
                    f"{c} IS NOT NULL AND NOT {c} RLIKE {_quoted(col.pattern)}",
                )
            )
    if len(contract.record_key) > 1:
        rules.append(
            Rule(
                f"{name}.record_key.unique",
                "expect_compound_columns_to_be_unique",
                {"column_list": list(contract.record_key)},
                "fail",
                "the grain's key is unique",
            )
        )
    return rules


def _rule_files(contract: Contract) -> list[Path]:
    """Rules for the contract (e.g. silver/person_event.yaml, shared by every source), then the table's own."""
    names = [contract.path.stem] if contract.path is not None else []
    names += [contract.name] if contract.name not in names else []
    return [p for n in names if (p := expectations_dir() / contract.layer / f"{n}.yaml").exists()]


def handwritten_rules(contract: Contract) -> list[Rule]:
    entries = []
    for path in _rule_files(contract):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        entries += [(path, entry) for entry in doc.get("rules", [])]
    rules = []
    for path, entry in entries:
        where = f"{path}: rule {entry.get('id')}"
        if entry.get("severity") not in SEVERITIES:
            raise ValueError(f"{where} has severity {entry.get('severity')!r}; expected one of {SEVERITIES}")
        kwargs = dict(entry.get("kwargs", {}))
        expectation = entry["expectation"]
        if expectation == "unexpected_rows" and "where" not in entry:
            raise ValueError(f"{where}: an unexpected_rows rule needs a `where` predicate")
        if entry["severity"] == "drop" and "where" not in entry:
            raise ValueError(f"{where}: a drop rule needs a `where` predicate naming the rows to drop")
        rules.append(
            Rule(entry["id"], expectation, kwargs, entry["severity"], entry.get("description", ""), entry.get("where"))
        )
    return rules


def suite_rules(contract: Contract) -> list[Rule]:
    return contract_rules(contract) + handwritten_rules(contract)


@cache
def _rows_where_expectation():
    """A rule that counts the rows its predicate holds for, inside the batch's one aggregate pass.

    GX's UnexpectedRowsExpectation runs its query as Spark jobs of its own, twice (a count, then up
    to 200 offending rows fetched for its result, which we would never keep). A plain predicate
    needs no query: as an aggregate metric it joins the single select GX makes for every aggregate
    metric of the batch (row count, null counts, set and pattern counts). Spark evaluates a
    predicate subquery (`IN (SELECT ...)`, a rule that looks at another table) only in a filter,
    so such a rule counts its rows in an uncorrelated scalar subquery over the batch's view
    instead: Spark runs it beside the aggregate, in parallel with the table's other such rules,
    and folds its count in, rather than as one validation step after another.
    """
    from great_expectations.core.metric_domain_types import MetricDomainTypes
    from great_expectations.core.metric_function_types import MetricPartialFunctionTypes
    from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
    from great_expectations.expectations.expectation import BatchExpectation
    from great_expectations.expectations.metrics.metric_provider import metric_partial, metric_value
    from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

    class TableRowsWhereCount(TableMetricProvider):
        metric_name = "placelake.rows_where.count"
        value_keys = ("where", "batch_view")

        @metric_partial(
            engine=SparkDFExecutionEngine,
            partial_fn_type=MetricPartialFunctionTypes.AGGREGATE_FN,
            domain_type=MetricDomainTypes.TABLE,
        )
        def _spark(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
            where, view = metric_value_kwargs["where"], metric_value_kwargs["batch_view"]
            if view is None:
                return F.count_if(F.coalesce(F.expr(where), F.lit(False))), metric_domain_kwargs, {}
            # Every row carries the same count; an empty batch has none to carry, and no offending rows.
            counted = F.expr(f"(SELECT count(*) FROM {view} WHERE {where})")
            return F.coalesce(F.max(counted), F.lit(0)), metric_domain_kwargs, {}

        @metric_value(engine=PandasExecutionEngine)
        def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
            # validate_local registered the batch under its view beside its sibling tables.
            return _local_rows_where(metric_value_kwargs["batch_view"], metric_value_kwargs["where"])

    class ExpectNoRowsWhere(BatchExpectation):
        where: str
        # The batch as a view, for a predicate with a subquery (and for every rule of a local gate);
        # None for a plain predicate on Spark.
        batch_view: str | None = None
        metric_dependencies = ("placelake.rows_where.count",)
        success_keys = ("where", "batch_view")

        def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
            count = metrics["placelake.rows_where.count"]
            return {"success": count == 0, "result": {"observed_value": count}}

    return ExpectNoRowsWhere


def _is_text(arrow_type) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


@cache
def _arrow_regex_metric() -> str:
    """column_values.match_regex, with Arrow's regex engine for an in-memory batch's Arrow strings.

    GX's pandas condition is column.astype(str).str.contains(regex): every value becomes a Python
    string searched by Python's re (15.6 s of a 1M place's 44 s in-memory gold gate). On an
    ArrowDtype string column, pandas' str.contains runs Arrow's RE2 over the buffer instead. RE2
    and Python's re can disagree only where a value holds a line break (Python's $ matches before
    a final newline), another control character or a non-ASCII one (Python's \\d and \\w are
    Unicode): such values, and a pattern RE2 cannot compile (a backreference, a lookaround), and
    any other column still go GX's way, so the counts are exactly GX's. On Spark: GX's own rlike.
    """
    from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesMatchRegexArrow(ColumnMapMetricProvider):
        condition_metric_name = "placelake.column_values.match_regex"
        condition_value_keys = ("regex",)

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, regex, **kwargs):
            # pandas warns that a pattern with groups is a regex: only whether it matches counts here.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "This pattern is interpreted as a regular expression")
                return cls._matches(column, regex)

        @staticmethod
        def _matches(column, regex):
            if isinstance(column.dtype, pd.ArrowDtype) and _is_text(column.dtype.pyarrow_dtype):
                try:
                    found = column.str.contains(regex, regex=True).to_numpy(dtype=bool)
                except (pa.ArrowInvalid, NotImplementedError):
                    found = None
                if found is not None:
                    odd = column.str.contains(r"[^ -~]", regex=True).to_numpy(dtype=bool)
                    if odd.any():
                        found[odd] = column[odd].astype(str).str.contains(regex).to_numpy(dtype=bool)
                    return pd.Series(found, index=column.index)
            return column.astype(str).str.contains(regex)

        @column_condition_partial(engine=SparkDFExecutionEngine)
        def _spark(cls, column, regex, **kwargs):
            return column.rlike(regex)

    return ColumnValuesMatchRegexArrow.condition_metric_name


@cache
def _counting(expectation_class):
    """The stock column expectation without the sample of offending values it fetches.

    A map expectation's BASIC result asks for the first unexpected values as well as
    their count. With partial_unexpected_count 0 the sample is empty, yet GX still plans
    and runs a query for it, one per rule. We never keep values (no patient-level data in
    results): this subclass drops the dependency, so a rule costs only its share of the
    batch's aggregate pass. A pattern rule also counts by _arrow_regex_metric. Everything
    else, renderers included, is the stock class's.
    """
    map_metric = getattr(expectation_class, "map_metric", None)
    if not map_metric:
        return expectation_class
    if map_metric == "column_values.match_regex":
        map_metric = _arrow_regex_metric()
    sample = f"{map_metric}.unexpected_values"

    def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None, **kwargs):
        dependencies = expectation_class.get_validation_dependencies(
            self, execution_engine=execution_engine, runtime_configuration=runtime_configuration, **kwargs
        )
        if dependencies.get_metric_configuration(sample) is not None:
            dependencies.remove_metric_configuration(sample)
        return dependencies

    # A name of its own: GX registers expectation classes by name, and the stock one stays as it is.
    return types.new_class(
        f"{expectation_class.__name__}Counted",
        (expectation_class,),
        exec_body=lambda ns: ns.update(
            get_validation_dependencies=get_validation_dependencies, map_metric=map_metric, __module__=__name__
        ),
    )


_SUBQUERY = re.compile(r"\bselect\b", re.IGNORECASE)


def _queries_a_table(rule: Rule) -> bool:
    return rule.expectation == "unexpected_rows" and bool(_SUBQUERY.search(rule.where))


def _expectation(rule: Rule, batch_view: str | None = None, every_row_rule_in_view: bool = False):
    """The GX expectation for a rule.

    batch_view names the batch for a rule whose predicate has a subquery, or for every row rule
    when every_row_rule_in_view (a local gate counts them all in DuckDB).
    """
    import great_expectations as gx

    meta = {"rule_id": rule.id, "severity": rule.severity}
    if rule.expectation == "unexpected_rows":
        view = batch_view if every_row_rule_in_view or _queries_a_table(rule) else None
        return _rows_where_expectation()(where=rule.where, batch_view=view, meta=meta)
    class_name = "".join(part.capitalize() for part in rule.expectation.split("_"))
    return _counting(getattr(gx.expectations, class_name))(**rule.kwargs, meta=meta)


@cache
def _gx_context():
    # GX would otherwise phone home and draw progress bars into the task log.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every in-memory batch under 1 GB by hashing all its values, for a batch
    # marker nothing of ours reads: 21.5 s of a 1M place's 44 s in-memory gold gate.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _count(value) -> int | None:
    number = _numeric(value)
    return None if number is None else int(number)


def _numeric(value) -> float | None:
    return float(value) if isinstance(value, Number) and not isinstance(value, bool) else None


def validate(
    df: DataFrame, contract: Contract, rules: list[Rule] | None = None, docs_dir: str | None = None
) -> list[RuleResult]:
    """Run the table's suite on df in one GX validation; results carry counts only.

    With docs_dir, the outcome is also rendered as an offline GX Data Docs page there.
    """
    rules = suite_rules(contract) if rules is None else rules
    name = f"{contract.layer}_{contract.name}"
    view = f"placelake_batch_{name}"
    if any(_queries_a_table(r) for r in rules):
        df.createOrReplaceTempView(view)
    datasource = _gx_context().data_sources.add_or_update_spark(name=f"placelake_{name}")
    return _validate_batch(datasource, df, contract, rules, [_expectation(r, view) for r in rules], docs_dir)


def validate_local(
    table: pa.Table, contract: Contract, sql, rules: list[Rule] | None = None, docs_dir: str | None = None
) -> list[RuleResult]:
    """validate() for a table in memory, by GX's pandas engine: no Spark job.

    sql is a DuckDB connection holding the tables row rules may query (staging_<name>); the
    batch joins them under its own view, and every row rule counts its rows there, in
    DuckDB (GX's pandas engine has no SQL). Rules are written in Spark SQL, the dialect of
    every other lake: sqlglot translates each to DuckDB's.
    """
    rules = suite_rules(contract) if rules is None else rules
    name = f"{contract.layer}_{contract.name}"
    view = f"placelake_batch_{name}"
    sql.register(view, table)
    datasource = _gx_context().data_sources.add_or_update_pandas(name=f"placelake_local_{name}")
    expectations = [_expectation(r, view, every_row_rule_in_view=True) for r in rules]
    token = _LOCAL_SQL.set(sql)
    try:
        # Columns stay in Arrow's memory (no Python object per string): a care_event of millions of rows fits.
        data = table.to_pandas(types_mapper=pd.ArrowDtype)
        return _validate_batch(datasource, data, contract, rules, expectations, docs_dir)
    finally:
        _LOCAL_SQL.reset(token)
        sql.unregister(view)
        # GX's validation leaves the table in reference cycles: broken now, so the table is freed on
        # return, not whenever Python's collector next runs (a 1M place's silver held 1.3 GiB).
        gc.collect()


# The DuckDB connection of the local validation in progress (GX calls a metric with no context of ours).
_LOCAL_SQL: ContextVar = ContextVar("placelake_local_sql")


@cache
def _duckdb_count(view: str, where: str) -> str:
    import sqlglot

    return sqlglot.transpile(f"SELECT count(*) FROM {view} WHERE {where}", read="spark", write="duckdb")[0]


def _local_rows_where(view: str, where: str) -> int:
    return _local_rows_where_in(_LOCAL_SQL.get(), view, where)


def _local_rows_where_in(sql, view: str, where: str) -> int:
    return int(sql.execute(_duckdb_count(view, where)).fetchall()[0][0])


def _validate_batch(
    datasource, data, contract: Contract, rules: list[Rule], expectations, docs_dir
) -> list[RuleResult]:
    import great_expectations as gx

    name = f"{contract.layer}_{contract.name}"
    try:
        asset = datasource.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(name).get_batch(batch_parameters={"dataframe": data})
        suite = gx.ExpectationSuite(name=name, expectations=expectations)
        outcome = batch.validate(suite, result_format=RESULT_FORMAT)
    finally:
        # The context outlives the validation and its data sources keep their last batch's data:
        # 1.9 GiB of a 1M place's silver after one check, twice that after two.
        _gx_context().data_sources.delete(datasource.name)
    if docs_dir is not None:
        data_docs.write(docs_dir, contract.layer, contract.name, outcome)
    by_id = {r.expectation_config.meta["rule_id"]: r for r in outcome.results}
    results = []
    for rule in rules:
        res = by_id[rule.id]
        detail = res.result or {}
        if res.exception_info and res.exception_info.get("raised_exception"):
            # The message names the rule and GX's error, never row values.
            log.error("rule %s could not be evaluated: %s", rule.id, res.exception_info.get("exception_message"))
        results.append(
            RuleResult(
                rule_id=rule.id,
                expectation=rule.expectation,
                severity=rule.severity,
                success=bool(res.success),
                element_count=detail.get("element_count"),
                # A row rule reports how many rows it found as its observed value.
                unexpected_count=detail.get("unexpected_count")
                if rule.expectation != "unexpected_rows"
                else _count(detail.get("observed_value")),
                unexpected_percent=_numeric(detail.get("unexpected_percent")),
                observed_value=_numeric(detail.get("observed_value")),
            )
        )
    return results


@dataclass(frozen=True)
class Verdict:
    table: str
    layer: str
    passed: bool
    kept: DataFrame | None  # None from a local gate, which validates the staged table as it is
    dropped: int
    results: list[RuleResult]

    @property
    def failed_rules(self) -> list[str]:
        return [r.rule_id for r in self.results if not r.success and r.severity == "fail"]

    @property
    def warned_rules(self) -> list[str]:
        return [r.rule_id for r in self.results if not r.success and r.severity in ("warn", "drop")]


def _offending(rule: Rule) -> F.Column:
    return F.coalesce(F.expr(rule.where), F.lit(False))


def check(
    df: DataFrame, contract: Contract, quarantine_batch: str, docs_dir: str | None = None
) -> tuple[Verdict, DataFrame | None]:
    """Apply drop rules, then validate what is left with the whole suite.

    Returns the verdict and the dropped rows (shaped for quarantine/rows), or None.
    """
    rules = suite_rules(contract)
    kept, dropped_counts, quarantined = _apply_drops(df, contract, rules, quarantine_batch)
    # GX computes its metrics in many Spark jobs: read the table once, not once per metric.
    cached_here = not kept.is_cached
    if cached_here:
        kept = kept.persist()
    try:
        results = validate(kept, contract, rules, docs_dir=docs_dir)
    finally:
        if cached_here:
            kept.unpersist()
    return _verdict(contract, kept, results, dropped_counts), quarantined


def _apply_drops(
    df: DataFrame, contract: Contract, rules: list[Rule], quarantine_batch: str
) -> tuple[DataFrame, dict[str, int], DataFrame | None]:
    """(the rows no drop rule removes, rows each drop rule found, the removed rows shaped for quarantine/rows)."""
    drops = [r for r in rules if r.severity == "drop"]
    if not drops:
        return df, {}, None
    flagged = df.select("*", *[_offending(r).alias(f"_drop_{i}") for i, r in enumerate(drops)]).persist()
    counts = flagged.agg(*[F.sum(F.col(f"_drop_{i}").cast("long")).alias(r.id) for i, r in enumerate(drops)]).first()
    dropped_counts = {r.id: int(counts[r.id] or 0) for r in drops}
    if not any(dropped_counts.values()):
        flagged.unpersist()
        return df, dropped_counts, None
    # The first drop rule that a row breaks is the reason it is quarantined.
    rule_of_row = F.coalesce(*[F.when(F.col(f"_drop_{i}"), F.lit(r.id)) for i, r in enumerate(drops)])
    any_drop = reduce(lambda a, b: a | b, [F.col(f"_drop_{i}") for i in range(len(drops))])
    quarantined = flagged.where(any_drop).select(
        F.lit(f"gate.{contract.layer}").alias("stage"),
        F.lit(contract.name).alias("source"),
        F.lit(None).cast("string").alias("source_file"),
        F.lit(None).cast("long").alias("line"),
        F.lit(None).cast("string").alias("file_sha256"),
        rule_of_row.alias("rule"),
        F.concat(F.lit("dropped by rule "), rule_of_row).alias("reason"),
        F.to_json(F.struct(*df.columns)).alias("raw"),
        F.lit(quarantine_batch).alias("batch_id"),
    )
    return flagged.where(~any_drop).select(*df.columns), dropped_counts, quarantined


def _verdict(
    contract: Contract, kept: DataFrame | None, results: list[RuleResult], dropped_counts: dict[str, int]
) -> Verdict:
    # A drop rule's outcome is what it removed, counted before the removal.
    results = [
        replace(r, success=dropped_counts[r.rule_id] == 0, unexpected_count=dropped_counts[r.rule_id])
        if r.rule_id in dropped_counts
        else r
        for r in results
    ]
    passed = all(r.success for r in results if r.severity == "fail")
    return Verdict(contract.name, contract.layer, passed, kept, sum(dropped_counts.values()), results)


def record_all_results(
    spark: SparkSession,
    settings: Settings,
    run_id: str,
    outcomes: list[tuple[str, str, list[RuleResult]]],
    user_metadata: str | None = None,
) -> None:
    """Write (layer, table, results) of one run to ops/dq_results in one commit (user_metadata on it).

    spark None: the commit is made by delta-rs (a lake on local disk), with no Spark job.
    """
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {**r.__dict__, "run_id": run_id, "layer": layer, "table": table, "validated_at": validated_at}
        for layer, table, results in outcomes
        for r in results
    ]
    if not rows:
        return
    schema = (
        "rule_id string, expectation string, severity string, success boolean, element_count long, "
        "unexpected_count long, unexpected_percent double, observed_value double, run_id string, layer string, "
        "table string, validated_at timestamp"
    )
    # Re-validating a table in the same run replaces that run's results for it, never duplicates
    # them: one overwrite of just those rows (replaceWhere), not a MERGE joining the whole history.
    tables = sorted({(layer, table) for layer, table, _ in outcomes})
    path = settings.table("ops", "dq_results")
    if spark is None:
        these = " OR ".join(f'(layer = {_sql_text(layer)} AND "table" = {_sql_text(table)})' for layer, table in tables)
        where = f"run_id = {_sql_text(run_id)} AND ({these})"
        lake.replace_local(pa.Table.from_pylist(rows, schema=lake.arrow_schema(schema)), path, where, user_metadata)
        return
    these = " OR ".join(f"(layer = {_quoted(layer)} AND `table` = {_quoted(table)})" for layer, table in tables)
    where = f"run_id = {_quoted(run_id)} AND ({these})"
    lake.replace(spark.createDataFrame(rows, schema), path, where=where, user_metadata=user_metadata)


def _sql_text(value: str) -> str:
    """A string literal in standard SQL (delta-rs's predicates): quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _quarantine_dropped(spark: SparkSession, settings: Settings, dropped: DataFrame, contract: Contract) -> None:
    lake.replace(
        dropped,
        settings.path("lake", "quarantine", "rows"),
        where=f"stage = 'gate.{contract.layer}' AND source = '{contract.name}'",
    )


def content_fingerprint(df: DataFrame) -> tuple[int, int]:
    """(rows, order-independent hash of every row): equal fingerprints, same table content."""
    row_hash = F.xxhash64(*[F.col(c) for c in df.columns])
    first = df.agg(F.count("*").alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("h")).first()
    return int(first["n"]), int(first["h"] or 0)


def publish(spark: SparkSession, settings: Settings, table: str, run_id: str | None = None) -> int | None:
    """Copy staging to gold in one Delta commit; readers see the old or the new version, never half.

    Returns the gold version, without a new commit when the content is unchanged.
    The commit's userMetadata names the run (from Airflow's task context unless
    given), so `placelake sql --as-of <run id>` can find the state it published.
    """
    from jobs.access import publish_metadata

    run_id = run_id or os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")
    if gates_locally(settings, [settings.table("staging/gold", table)]):
        return _publish_local(settings, table, publish_metadata(run_id))
    staged = lake.read(spark, settings.table("staging/gold", table))
    gold_path = settings.table("gold", table)
    if lake.table_exists(spark, gold_path) and content_fingerprint(lake.read(spark, gold_path)) == content_fingerprint(
        staged
    ):
        log.info("gold.%s unchanged: stays at version %s", table, lake.version(spark, gold_path))
        return lake.version(spark, gold_path)
    # On the write itself, not the session's conf: nothing else committing meanwhile can pick it up.
    lake.replace(staged, gold_path, user_metadata=publish_metadata(run_id))
    return lake.version(spark, gold_path)


def content_fingerprint_local(data) -> tuple[int, int]:
    """content_fingerprint of an Arrow table or dataset (scanned, not read whole), by DuckDB: (rows,
    order-independent hash of every row).

    Not comparable with content_fingerprint's (another hash): compare two of the same kind.
    """
    import duckdb

    with duckdb.connect() as sql:
        sql.register("fingerprinted", data)
        rows, total = sql.execute("SELECT count(*), sum(hash(t)::HUGEINT) FROM fingerprinted AS t").fetchone()
    return int(rows), int(total or 0)


def _publish_local(settings: Settings, table: str, user_metadata: str | None) -> int:
    """publish() for a lake on local disk, by delta-rs and DuckDB: no Spark job.

    On Spark the two fingerprints and the copy are a dozen small jobs a table (1.3-2.3 s each at
    100,000 people, whatever the rows); here the copy costs about what reading and writing the
    table's bytes does. The commit is the same: one overwrite carrying the run in its userMetadata.
    """
    from deltalake import DeltaTable

    # Both sides are streamed, never whole in memory: a 1M place's care_event is 4.85M rows.
    staged = lake.dataset_local(settings.table("staging/gold", table))
    gold_path = settings.table("gold", table)
    if DeltaTable.is_deltatable(gold_path):
        gold = DeltaTable(gold_path)
        if content_fingerprint_local(gold.to_pyarrow_dataset()) == content_fingerprint_local(staged):
            log.info("gold.%s unchanged: stays at version %s", table, gold.version())
            return gold.version()
    lake.replace_local(staged.scanner().to_reader(), gold_path, user_metadata=user_metadata)
    return DeltaTable(gold_path).version()


def _gate_tables(
    spark: SparkSession,
    settings: Settings,
    run_id: str,
    contracts: list[Contract],
    path_of,
    view_prefix: str,
    stamp=None,
) -> dict[str, dict]:
    """Check each table; rewrite it without dropped rows; raise GateFailed naming every failed rule."""
    # Cross-table rules (a foreign key, a reconciliation) query sibling tables by view name. Each
    # table is read once and cached for the whole gate: its own suite and its siblings' rules reuse it.
    frames = {c.name: lake.read(spark, path_of(c)).persist() for c in contracts}
    for name, frame in frames.items():
        frame.createOrReplaceTempView(f"{view_prefix}{name}")

    def check_one(contract: Contract) -> Verdict:
        verdict, dropped = check(frames[contract.name], contract, quarantine_batch=run_id, docs_dir=docs_dir(settings))
        if dropped is not None:
            _drop(spark, settings, contract, path_of(contract), verdict.kept, dropped)
        return verdict

    try:
        return _check_tables(spark, settings, run_id, contracts, check_one, stamp)
    finally:
        for frame in frames.values():
            frame.unpersist()


def _drop(spark, settings, contract: Contract, path: str, kept: DataFrame, dropped: DataFrame) -> None:
    """Quarantine the dropped rows, then rewrite the table with the rest."""
    _quarantine_dropped(spark, settings, dropped, contract)
    lake.replace(kept.localCheckpoint(), path)  # cut the lineage to the table being overwritten


def _gate_tables_locally(
    spark: SparkSession,
    settings: Settings,
    run_id: str,
    contracts: list[Contract],
    path_of,
    view_prefix: str,
    stamp=None,
) -> dict[str, dict]:
    """_gate_tables for a lake on local disk: the tables in memory, GX's pandas engine, DuckDB for row rules.

    Validating on Spark costs about a hundred small Spark jobs whatever the tables' size (0.1 s
    each on two cores), more than building gold; in memory the same suites take seconds. Every
    table is registered in DuckDB as view_prefix + name, as a delta-rs dataset scanned only by
    the rules that look across tables; the table being validated is read into memory once, for
    GX, and dropped before the next, so silver's tables are never all in memory at once. A drop
    rule that finds rows hands the table to Spark for the drop, the quarantine and the rewrite,
    exactly as on any other lake; the kept rows are read back and validated here.
    """
    import duckdb

    sql = duckdb.connect()

    def register(contract: Contract) -> None:
        sql.register(f"{view_prefix}{contract.name}", lake.dataset_local(path_of(contract)))

    for contract in contracts:
        register(contract)

    def check_one(contract: Contract) -> Verdict:
        rules = suite_rules(contract)
        view = f"{view_prefix}{contract.name}"
        drops = {r.id: _local_rows_where_in(sql, view, r.where) for r in rules if r.severity == "drop"}
        if any(drops.values()):
            kept, drops, dropped = _apply_drops(lake.read(spark, path_of(contract)), contract, rules, run_id)
            if dropped is not None:
                _drop(spark, settings, contract, path_of(contract), kept, dropped)
            register(contract)
        results = validate_local(lake.read_local(path_of(contract)), contract, sql, rules, docs_dir=docs_dir(settings))
        return _verdict(contract, None, results, drops)

    try:
        return _check_tables(None, settings, run_id, contracts, check_one, stamp)
    finally:
        sql.close()
        pa.default_memory_pool().release_unused()  # back to the system for the stages after this one


def _check_tables(spark, settings, run_id, contracts, check_one, stamp=None) -> dict[str, dict]:
    """check_one(contract) -> Verdict for each table. stamp(summary), when given, makes the
    results' commit metadata once every table is checked. spark None: results written by delta-rs."""
    summary, failures, outcomes = {}, [], []
    for contract in contracts:
        verdict = check_one(contract)
        outcomes.append((contract.layer, contract.name, verdict.results))
        summary[contract.name] = {
            "passed": verdict.passed,
            "failed_rules": verdict.failed_rules,
            "warned_rules": verdict.warned_rules,
            "dropped_rows": verdict.dropped,
            "rules": len(verdict.results),
        }
        log.info(
            "gate %s.%s: %s (%d rules, %d failed, %d warnings, %d rows dropped)",
            contract.layer,
            contract.name,
            "PASS" if verdict.passed else "FAIL",
            len(verdict.results),
            len(verdict.failed_rules),
            len(verdict.warned_rules),
            verdict.dropped,
        )
        if not verdict.passed:
            failures.append(f"{contract.layer}.{contract.name}: {', '.join(verdict.failed_rules)}")
    record_all_results(spark, settings, run_id, outcomes, user_metadata=stamp(summary) if stamp else None)
    if failures:
        raise GateFailed("; ".join(failures))
    return summary


def gates_locally(settings: Settings, paths: list[str]) -> bool:
    """Whether tables are validated (and gold published) in memory rather than on Spark: a lake on
    local disk whose tables' files add up to no more than settings.gate_memory_bytes."""
    return settings.is_local() and lake.size_local(paths) <= settings.gate_memory_bytes


@releases_what_it_cached
def gate_all(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, dict]:
    """Validate every staged gold table; raise GateFailed naming each failed table and rule.

    Nothing is published when any table fails: gold stays at its previous, consistent set of versions.
    """
    contracts = list(gold_contracts())
    path_of = lambda c: settings.table("staging/gold", c.name)  # noqa: E731
    try:
        if gates_locally(settings, [path_of(c) for c in contracts]):
            return _gate_tables_locally(spark, settings, run_id, contracts, path_of, "staging_")
        return _gate_tables(spark, settings, run_id, contracts, path_of, "staging_")
    except GateFailed as exc:
        raise GateFailed(
            f"gate failed, nothing published this run; previous gold versions stay readable. {exc}"
        ) from None


def silver_contracts(spark: SparkSession, settings: Settings) -> list[Contract]:
    """The contract of every silver table that exists; person_event sources under their own names."""
    found = []
    for source in source_contracts():
        produced = {"reference": "postcode", "opt_outs": "opt_out"}.get(source.kind, "person_event")
        if lake.table_exists(spark, settings.table("silver", source.name)):
            found.append(replace(table_contract("silver", produced), name=source.name))
    for name in ("person_link", "person"):
        if lake.table_exists(spark, settings.table("silver", name)):
            found.append(table_contract("silver", name))
    return found


@releases_what_it_cached
def check_silver(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, dict]:
    """Validate every silver table; a fail rule stops the build before anything is curated.

    When every silver table and every rule is as the last check found them, and that check
    passed without dropping a row, checking again would find the same: its results are
    recorded for this run instead (one read and one commit, no pass over the data).
    """
    contracts = silver_contracts(spark, settings)
    inputs = _silver_inputs(spark, settings, contracts)
    last = _last_silver_check(spark, settings)
    if last is not None and last["inputs"] == inputs and last["passed"] and not last["dropped"]:
        return _repeat_silver_check(spark, settings, run_id, last, inputs)

    def stamp(summary: dict[str, dict]) -> str:
        # Versions after the check: a drop rule rewrites its table before the results are recorded.
        return _silver_stamp(run_id, _silver_inputs(spark, settings, contracts), summary)

    path_of = lambda c: settings.table("silver", c.name)  # noqa: E731
    if gates_locally(settings, [path_of(c) for c in contracts]):
        return _gate_tables_locally(spark, settings, run_id, contracts, path_of, "silver_", stamp)
    return _gate_tables(spark, settings, run_id, contracts, path_of, "silver_", stamp)


def _silver_inputs(spark: SparkSession, settings: Settings, contracts: list[Contract]) -> dict:
    """What a silver check reads: each table's Delta version, and its rules (contracts and suites)."""
    rules = hashlib.sha256()
    for folder in (expectations_dir() / "silver", REPO_ROOT / "schemas"):
        for path in sorted(folder.rglob("*.yaml")):
            rules.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return {
        "versions": {c.name: lake.version(spark, settings.table("silver", c.name)) for c in contracts},
        "rules_sha256": rules.hexdigest(),
    }


def _silver_stamp(run_id: str, inputs: dict, summary: dict[str, dict]) -> str:
    return json.dumps(
        {
            "silver_check": run_id,
            "inputs": inputs,
            "passed": all(t["passed"] for t in summary.values()),
            "dropped": sum(t["dropped_rows"] for t in summary.values()),
        },
        sort_keys=True,
    )


def _last_silver_check(spark: SparkSession, settings: Settings) -> dict | None:
    """The stamp of the latest silver check among dq_results' recent commits (a gold gate's have none)."""
    for note in lake.recent_user_metadata(spark, settings.table("ops", "dq_results")):
        try:
            stamp = json.loads(note)
        except ValueError:
            continue
        if isinstance(stamp, dict) and "silver_check" in stamp:
            return stamp
    return None


def _repeat_silver_check(
    spark: SparkSession, settings: Settings, run_id: str, last: dict, inputs: dict
) -> dict[str, dict]:
    last_run = last["silver_check"]
    rows = (
        lake.read(spark, settings.table("ops", "dq_results"))
        .where((F.col("run_id") == last_run) & (F.col("layer") == "silver"))
        .collect()
    )
    names = [f.name for f in fields(RuleResult)]
    outcomes: dict[str, list[RuleResult]] = {}
    for row in rows:
        outcomes.setdefault(row["table"], []).append(RuleResult(**{f: row[f] for f in names}))
    summary = {
        table: {
            "passed": True,
            "failed_rules": [],
            "warned_rules": [r.rule_id for r in results if not r.success],
            "dropped_rows": 0,
            "rules": len(results),
        }
        for table, results in outcomes.items()
    }
    record_all_results(
        spark,
        settings,
        run_id,
        [("silver", table, results) for table, results in outcomes.items()],
        user_metadata=_silver_stamp(run_id, inputs, summary),
    )
    log.info(
        "silver checks: the %d tables and their rules are as run %s checked them (it passed): its %d results "
        "are recorded for this run",
        len(outcomes),
        last_run,
        len(rows),
    )
    return summary


@releases_what_it_cached
def publish_all(spark: SparkSession, settings: Settings) -> dict[str, int | None]:
    """Each table in its own commit: a reader sees a table whole, old or new, never half of it."""
    kill_point("publish.before")
    versions = {}
    for contract in gold_contracts():
        versions[contract.name] = publish(spark, settings, contract.name)
        kill_point("publish.midway")
    return versions
