from dataclasses import replace

import duckdb
import pytest

from jobs import lake
from jobs.config import Settings
from jobs.contracts import table_contract
from jobs.gate import (
    RuleResult,
    check,
    contract_rules,
    gates_locally,
    handwritten_rules,
    record_all_results,
    validate_local,
)


@pytest.fixture
def place_month():
    return table_contract("gold", "place_month")


@pytest.fixture
def postcode_rules(tmp_path, monkeypatch):
    """Hand-written rules for silver.postcode, in place of the repository's."""
    (tmp_path / "silver").mkdir()
    monkeypatch.setenv("PLACELAKE_EXPECTATIONS_DIR", str(tmp_path))
    return lambda text: (tmp_path / "silver" / "postcode.yaml").write_text(text, encoding="utf-8")


def test_contract_rules_come_from_the_contract(place_month):
    ids = {r.id for r in contract_rules(place_month)}
    assert {
        "place_month.area_code.not_null",
        "place_month.area_code.pattern",
        "place_month.month.not_null",
        "place_month.record_key.unique",
    } <= ids
    assert all(r.severity == "fail" for r in contract_rules(place_month))


def test_a_drop_rule_moves_offending_rows_to_quarantine_and_the_rest_is_validated(spark, postcode_rules):
    postcode_rules(
        """
rules:
  - id: postcode.imd_in_range
    expectation: unexpected_rows
    where: imd_decile NOT BETWEEN 1 AND 10
    severity: drop
    description: IMD deciles run 1-10.
  - id: postcode.mostly_live
    expectation: expect_column_values_to_be_in_set
    kwargs: {column: terminated, value_set: [false], mostly: 0.9}
    severity: warn
    description: Most postcodes are live.
  - id: postcode.terminated_rows
    expectation: unexpected_rows
    where: terminated
    severity: warn
    description: Terminated postcodes, counted.
"""
    )
    contract = table_contract("silver", "postcode")
    frame = spark.createDataFrame(
        [
            ("LK1 1AA", "E01090000", "E05009000", "St Anne's", 3, False),
            ("LK1 1AB", "E01090000", "E05009000", "St Anne's", 11, False),  # out of range: dropped
            ("LK1 1AD", "E01090001", "E05009000", "St Anne's", 4, True),
        ],
        "postcode string, lsoa_code string, ward_code string, ward_name string, imd_decile int, terminated boolean",
    )
    verdict, dropped = check(frame, contract, quarantine_batch="run-1")

    assert verdict.passed
    assert sorted(r.postcode for r in verdict.kept.collect()) == ["LK1 1AA", "LK1 1AD"]
    assert verdict.dropped == 1
    quarantined = dropped.collect()
    assert [(q.stage, q.source, q.rule, q.batch_id) for q in quarantined] == [
        ("gate.silver", "postcode", "postcode.imd_in_range", "run-1")
    ]
    by_rule = {r.rule_id: r for r in verdict.results}
    assert (by_rule["postcode.imd_in_range"].success, by_rule["postcode.imd_in_range"].unexpected_count) == (False, 1)
    # One of the two kept postcodes is terminated: 50% live is below mostly=0.9, a warning only.
    assert by_rule["postcode.mostly_live"].success is False
    # A row-query rule records how many rows it found, like any other rule.
    assert (by_rule["postcode.terminated_rows"].success, by_rule["postcode.terminated_rows"].unexpected_count) == (
        False,
        1,
    )
    assert verdict.warned_rules == ["postcode.imd_in_range", "postcode.mostly_live", "postcode.terminated_rows"]


def test_a_failed_fail_rule_fails_the_verdict_and_names_the_rule(spark):
    contract = table_contract("silver", "postcode")
    frame = spark.createDataFrame(
        [("LK1 1AA", None, "E05009000", "Castle", 3, False)],
        "postcode string, lsoa_code string, ward_code string, ward_name string, imd_decile int, terminated boolean",
    )
    verdict, dropped = check(frame, contract, quarantine_batch="run-1")
    assert not verdict.passed
    assert verdict.failed_rules == ["postcode.lsoa_code.not_null"]
    assert dropped is None


def test_rule_files_are_checked_when_read(tmp_path, monkeypatch):
    (tmp_path / "gold").mkdir()
    monkeypatch.setenv("PLACELAKE_EXPECTATIONS_DIR", str(tmp_path))
    contract = table_contract("gold", "person")
    rule_file = tmp_path / "gold" / "person.yaml"

    rule_file.write_text("rules: [{id: r1, expectation: unexpected_rows, where: 'true', severity: fatal}]")
    with pytest.raises(ValueError, match="r1 has severity 'fatal'"):
        handwritten_rules(contract)
    rule_file.write_text("rules: [{id: r2, expectation: expect_column_values_to_not_be_null, severity: drop}]")
    with pytest.raises(ValueError, match="r2: a drop rule needs a `where`"):
        handwritten_rules(contract)


def test_generated_predicates_find_exactly_the_rows_the_expectation_flags(spark):
    contract = replace(table_contract("gold", "care_event"), name="care_event")
    rules = {r.id: r for r in contract_rules(contract) if r.where}
    frame = spark.createDataFrame(
        [("a" * 64, "b" * 64, "gp", "nhs", "gp_registration"), ("x", None, "gp", "trust", "gp_registration")],
        "event_key string, person_key string, source string, organisation string, event_type string",
    )
    flagged = {
        rid: frame.where(rule.where).count()
        for rid, rule in rules.items()
        if "month" not in rid and rule.kwargs.get("column") in frame.columns
    }
    assert flagged["care_event.event_key.pattern"] == 1
    assert flagged["care_event.person_key.not_null"] == 1
    assert flagged["care_event.organisation.allowed"] == 1
    assert flagged["care_event.event_type.allowed"] == 0


@pytest.mark.parametrize("engine", ["spark", "in memory"])
def test_row_rules_count_their_rows_whether_or_not_they_query_another_table(spark, postcode_rules, engine):
    """On Spark a plain predicate and one with a subquery both count their rows in GX's shared
    aggregate pass; in memory (GX's pandas engine) each counts them in DuckDB, in Spark's SQL."""
    postcode_rules(
        """
rules:
  - id: postcode.deprived
    expectation: unexpected_rows
    where: imd_decile <= 2
    severity: warn
  - id: postcode.closed_lsoa
    expectation: unexpected_rows
    where: lsoa_code IN (SELECT lsoa_code FROM test_closed_lsoas)
    severity: fail
"""
    )
    closed = spark.createDataFrame([("E01090001",)], "lsoa_code string")
    frame = spark.createDataFrame(
        [
            ("LK1 1AA", "E01090000", "E05009000", "Castle", 1, False),
            ("LK1 1AB", "E01090001", "E05009000", "Castle", 2, False),
            ("LK1 1AD", "E01090001", "E05009000", "Castle", 5, False),
            ("LK1 1AE", "E01090002", "E05009000", "Castle", 9, False),
        ],
        "postcode string, lsoa_code string, ward_code string, ward_name string, imd_decile int, terminated boolean",
    )
    contract = table_contract("silver", "postcode")
    if engine == "spark":
        closed.createOrReplaceTempView("test_closed_lsoas")
        results = check(frame, contract, quarantine_batch="run-1")[0].results
    else:
        sql = duckdb.connect()
        sql.register("test_closed_lsoas", closed.toArrow())
        results = validate_local(frame.toArrow(), contract, sql)

    by_rule = {r.rule_id: r for r in results}
    assert (by_rule["postcode.deprived"].success, by_rule["postcode.deprived"].unexpected_count) == (False, 2)
    assert (by_rule["postcode.closed_lsoa"].success, by_rule["postcode.closed_lsoa"].unexpected_count) == (False, 2)
    assert [r.rule_id for r in results if not r.success and r.severity == "fail"] == ["postcode.closed_lsoa"]


@pytest.mark.parametrize("writers", [("spark",) * 4, ("delta-rs",) * 4, ("spark", "delta-rs", "spark", "delta-rs")])
def test_validating_a_table_again_in_the_same_run_replaces_its_results_and_nothing_else(spark, tmp_path, writers):
    """Spark writes the results of a silver check; on a local lake delta-rs writes a gold gate's."""
    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    sessions = iter(spark if writer == "spark" else None for writer in writers)

    def result(rule_id, success):
        return RuleResult(rule_id, "unexpected_rows", "fail", success, 10, 0 if success else 1, None, None)

    record_all_results(next(sessions), settings, "run-1", [("gold", "person", [result("a", True)])])
    record_all_results(next(sessions), settings, "run-2", [("gold", "person", [result("a", False)])])
    record_all_results(next(sessions), settings, "run-2", [("gold", "care_event", [result("b", True)])])
    # The person gate is run again in run-2: its rows for run-2 are replaced, whatever rules they had.
    record_all_results(next(sessions), settings, "run-2", [("gold", "person", [result("c", True)])])

    stored = lake.read(spark, settings.table("ops", "dq_results")).select("run_id", "table", "rule_id", "success")
    assert sorted(tuple(r) for r in stored.collect()) == [
        ("run-1", "person", "a", True),
        ("run-2", "care_event", "b", True),
        ("run-2", "person", "c", True),
    ]


def test_gold_is_validated_in_memory_only_on_local_disk_and_within_its_memory_budget(spark, tmp_path):
    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})
    path = settings.table("staging/gold", "person")
    spark.range(1000).write.format("delta").save(path)
    size = lake.size_local([path])
    assert size > 1000
    assert gates_locally(settings, [path])
    assert not gates_locally(replace(settings, gate_memory_bytes=size - 1), [path])
    assert not gates_locally(replace(settings, home="s3a://bucket/place"), [])


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[0-9a-f]{4}$",
        r"^([A-Z][0-9]{2}|R[A-Z0-9]{3})$",
        r"^(?!zz)[a-z]{2}[0-9]$",  # a lookahead: RE2 cannot compile it
    ],
)
def test_a_pattern_rule_counts_the_rows_python_and_spark_find_whether_in_memory_or_on_spark(spark, pattern):
    """In memory a pattern runs on Arrow's RE2 where it finds what Python's re would, and on re where not."""
    import re

    from jobs.gate import Rule, validate

    values = ["ab12", "00ff", "zz1", "ab1", "A12", "RX1Z", "RX1", "ÅB1", "éé1", "", "0a1b\n", "ab1\n", "a\tb1", None]
    rule = Rule(
        "t.code.pattern", "expect_column_values_to_match_regex", {"column": "code", "regex": pattern}, "fail", ""
    )
    contract = replace(table_contract("gold", "place_month"), name="t")
    frame = spark.createDataFrame([(v,) for v in values], "code string")
    unmatched = sum(1 for v in values if v is not None and not re.search(pattern, v))
    assert 0 < unmatched < len(values) - 1
    on_spark = validate(frame, contract, [rule])[0]
    in_memory = validate_local(frame.toArrow(), contract, duckdb.connect(), [rule])[0]
    assert in_memory.unexpected_count == on_spark.unexpected_count == unmatched
    assert in_memory.element_count == on_spark.element_count == len(values)


def test_no_rule_asks_gx_for_offending_values_only_for_counts():
    """GX's BASIC result fetches a sample of offending values per column rule; we keep none
    (no patient-level values in results), so no rule of any suite may ask for them: each
    such request was a query of its own, 61 of them per gold gate."""
    from jobs.contracts import gold_contracts, source_contracts
    from jobs.gate import RESULT_FORMAT, _expectation, suite_rules

    silver = ["person_event", "person", "person_link", "postcode", "opt_out"]
    contracts = [*gold_contracts(), *(table_contract("silver", name) for name in silver)]
    contracts += [replace(table_contract("silver", "person_event"), name=c.name) for c in source_contracts()]
    asked = {}
    for contract in contracts:
        for rule in suite_rules(contract):
            config = {"result_format": RESULT_FORMAT}
            metrics = _expectation(rule).get_validation_dependencies(runtime_configuration=config).get_metric_names()
            asked[rule.id] = [m for m in metrics if m.endswith(("unexpected_values", "unexpected_rows"))]
    assert len(asked) > 100
    assert {rule: names for rule, names in asked.items() if names} == {}
