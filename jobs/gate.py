"""Quality gates: validate each staged gold table with Great Expectations and
publish it only if no rule of severity 'fail' failed.

Suites = rules generated from the table's contract (schemas/gold/) + the
hand-written business rules in expectations/gold/<table>.yaml. Results keep
counts and rates only (no sample values) and are appended to ops/dq_results.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from numbers import Number

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import REPO_ROOT, Settings
from jobs.contracts import Contract, gold_contracts

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = REPO_ROOT / "expectations"
SEVERITIES = ("warn", "fail")
# Counts only: no partial_unexpected_list, no unexpected index, no sample rows.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}


class GateFailed(RuntimeError):
    """A staged table failed a 'fail' rule; the published version is untouched."""


@dataclass(frozen=True)
class Rule:
    id: str
    expectation: str
    kwargs: dict
    severity: str
    description: str


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


def contract_rules(contract: Contract) -> list[Rule]:
    """The rules a contract implies: required, unique, allowed values, patterns, key uniqueness."""
    rules = []
    for col in contract.columns:
        if col.required:
            rules.append(
                Rule(
                    f"{contract.name}.{col.name}.not_null",
                    "expect_column_values_to_not_be_null",
                    {"column": col.name},
                    "fail",
                    f"{col.name} is required",
                )
            )
        if col.unique:
            rules.append(
                Rule(
                    f"{contract.name}.{col.name}.unique",
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
                    f"{contract.name}.{col.name}.allowed",
                    "expect_column_values_to_be_in_set",
                    {"column": col.name, "value_set": values},
                    "fail",
                    f"{col.name} in its code list",
                )
            )
        if col.pattern is not None:
            rules.append(
                Rule(
                    f"{contract.name}.{col.name}.pattern",
                    "expect_column_values_to_match_regex",
                    {"column": col.name, "regex": col.pattern},
                    "fail",
                    f"{col.name} matches {col.pattern}",
                )
            )
    if len(contract.record_key) > 1:
        rules.append(
            Rule(
                f"{contract.name}.record_key.unique",
                "expect_compound_columns_to_be_unique",
                {"column_list": list(contract.record_key)},
                "fail",
                "the grain's key is unique",
            )
        )
    return rules


def handwritten_rules(table: str) -> list[Rule]:
    path = EXPECTATIONS_DIR / "gold" / f"{table}.yaml"
    if not path.exists():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for entry in doc.get("rules", []):
        if entry["severity"] not in SEVERITIES:
            raise ValueError(f"{path}: rule {entry['id']} has unknown severity {entry['severity']!r}")
        rules.append(
            Rule(
                entry["id"],
                entry["expectation"],
                entry.get("kwargs", {}),
                entry["severity"],
                entry.get("description", ""),
            )
        )
    return rules


def suite_rules(contract: Contract) -> list[Rule]:
    return contract_rules(contract) + handwritten_rules(contract.name)


def _expectation(rule: Rule):
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in rule.expectation.split("_"))
    if rule.expectation == "unexpected_rows":
        class_name = "UnexpectedRowsExpectation"
    expectation_class = getattr(gx.expectations, class_name)
    return expectation_class(**rule.kwargs, meta={"rule_id": rule.id, "severity": rule.severity})


@cache
def _gx_context():
    # GX would otherwise phone home and draw progress bars into the task log.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _numeric(value) -> float | None:
    return float(value) if isinstance(value, Number) and not isinstance(value, bool) else None


def validate(df: DataFrame, contract: Contract) -> list[RuleResult]:
    """Run the table's suite on df; results carry counts only."""
    import great_expectations as gx

    context = _gx_context()
    name = f"{contract.layer}_{contract.name}"
    datasource = context.data_sources.add_or_update_spark(name=f"placelake_{name}")
    asset = datasource.add_dataframe_asset(name=name)
    batch = asset.add_batch_definition_whole_dataframe(name).get_batch(batch_parameters={"dataframe": df})
    rules = suite_rules(contract)
    suite = gx.ExpectationSuite(name=name, expectations=[_expectation(r) for r in rules])
    outcome = batch.validate(suite, result_format=RESULT_FORMAT)
    by_id = {r.expectation_config.meta["rule_id"]: r for r in outcome.results}
    results = []
    for rule in rules:
        res = by_id[rule.id]
        detail = res.result or {}
        if res.exception_info and res.exception_info.get("raised_exception"):
            log.error("rule %s could not be evaluated: %s", rule.id, res.exception_info.get("exception_message"))
        results.append(
            RuleResult(
                rule_id=rule.id,
                expectation=rule.expectation,
                severity=rule.severity,
                success=bool(res.success),
                element_count=detail.get("element_count"),
                unexpected_count=detail.get("unexpected_count"),
                unexpected_percent=_numeric(detail.get("unexpected_percent")),
                observed_value=_numeric(detail.get("observed_value")),
            )
        )
    return results


def gate_passes(results: list[RuleResult]) -> bool:
    return all(r.success for r in results if r.severity == "fail")


def record_results(spark: SparkSession, settings: Settings, run_id: str, table: str, results: list[RuleResult]) -> None:
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    rows = [{**r.__dict__, "run_id": run_id, "table": table, "validated_at": validated_at} for r in results]
    schema = (
        "rule_id string, expectation string, severity string, success boolean, element_count long, "
        "unexpected_count long, unexpected_percent double, observed_value double, run_id string, "
        "table string, validated_at timestamp"
    )
    df = spark.createDataFrame(rows, schema)
    # Re-validating in the same run replaces that run's results, never duplicates them.
    lake.upsert(spark, df, settings.table("ops", "dq_results"), keys=["run_id", "table", "rule_id"])


def content_fingerprint(df: DataFrame) -> tuple[int, int]:
    """(rows, order-independent hash of every row): equal fingerprints, same table content."""
    row_hash = F.xxhash64(*[F.col(c) for c in df.columns])
    first = df.agg(F.count("*").alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("h")).first()
    return int(first["n"]), int(first["h"] or 0)


def publish(spark: SparkSession, settings: Settings, table: str) -> int | None:
    """Copy staging to gold in one Delta commit; readers see the old or the new version, never half.

    Returns the gold version, without a new commit when the content is unchanged.
    """
    staged = lake.read(spark, settings.table("staging/gold", table))
    gold_path = settings.table("gold", table)
    if lake.table_exists(spark, gold_path) and content_fingerprint(lake.read(spark, gold_path)) == content_fingerprint(
        staged
    ):
        log.info("gold.%s unchanged: stays at version %s", table, lake.version(spark, gold_path))
        return lake.version(spark, gold_path)
    lake.replace(staged, gold_path)
    return lake.version(spark, gold_path)


def gate_all(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, dict]:
    """Validate every staged gold table; raise GateFailed naming each failed table and rule."""
    summary, failures = {}, []
    for contract in gold_contracts():
        staged = lake.read(spark, settings.table("staging/gold", contract.name))
        results = validate(staged, contract)
        record_results(spark, settings, run_id, contract.name, results)
        failed = [r.rule_id for r in results if not r.success and r.severity == "fail"]
        warned = [r.rule_id for r in results if not r.success and r.severity == "warn"]
        summary[contract.name] = {
            "passed": not failed,
            "failed_rules": failed,
            "warned_rules": warned,
            "rules": len(results),
        }
        log.info(
            "gate %s: %s (%d rules, %d failed, %d warnings)",
            contract.name,
            "PASS" if not failed else "FAIL",
            len(results),
            len(failed),
            len(warned),
        )
        if failed:
            failures.append(f"{contract.name}: {', '.join(failed)}")
    if failures:
        raise GateFailed(
            "gate failed, nothing published this run; previous gold versions stay readable. " + "; ".join(failures)
        )
    return summary


def publish_all(spark: SparkSession, settings: Settings) -> dict[str, int | None]:
    return {c.name: publish(spark, settings, c.name) for c in gold_contracts()}
