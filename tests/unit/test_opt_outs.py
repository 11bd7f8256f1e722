"""The national data opt-out list: cleaned like any extract, and only valid numbers name anyone."""

from __future__ import annotations

from pyspark.testing import assertDataFrameEqual

from jobs.clean import ADAPTERS, REJECT, SILVER_CONTRACT
from jobs.contracts import conform, source_contract, table_contract


def test_the_opt_out_list_cleans_to_its_silver_contract_and_bad_numbers_are_quarantined(spark):
    assert SILVER_CONTRACT["opt_outs"] == "opt_out"
    assert source_contract("opt_outs").column_names == ["nhs_number"]
    bronze = spark.createDataFrame(
        [
            (" 999 000 0018", "2026-11-01", "opt_outs.csv", 2, "{}", "x", None, "b1"),
            ("9990000026", "2026-11-01", "opt_outs.csv", 3, "{}", "x", None, "b1"),
            ("9990000027", "2026-11-01", "opt_outs.csv", 4, "{}", "x", None, "b1"),  # fails Modulus 11
            ("O'999", "2026-11-01", "opt_outs.csv", 5, "{}", "x", None, "b1"),
            (None, "2026-11-01", "opt_outs.csv", 6, "{}", "x", None, "b1"),
        ],
        "nhs_number string, _delivery string, _source_file string, _line long, _raw string, _file_sha256 string, "
        "_landed_at timestamp, _batch_id string",
    )
    adapted = ADAPTERS["opt_outs"](bronze)
    reasons = adapted.select("_line", REJECT)
    expected = spark.createDataFrame(
        [
            (2, None),
            (3, None),
            (4, "clean.nhs_number_failed_modulus_11"),
            (5, "clean.nhs_number_malformed"),
            (6, "clean.nhs_number_missing"),
        ],
        f"_line long, {REJECT} string",
    )
    assertDataFrameEqual(reasons, expected)
    silver = conform(adapted.where(f"{REJECT} IS NULL"), table_contract("silver", "opt_out"))
    assert sorted(r.nhs_number for r in silver.collect()) == ["9990000018", "9990000026"]
