"""The pinned stack does what the lake relies on: Delta MERGE and time travel,
and a Great Expectations validation on a Spark frame, on this pyspark."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from jobs import lake
from jobs.contracts import table_contract
from jobs.gate import validate

pytestmark = pytest.mark.integration


def test_delta_merge_and_time_travel(spark, tmp_path):
    path = str(tmp_path / "t")
    lake.upsert(spark, spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), path, keys=["id"])
    lake.upsert(spark, spark.createDataFrame([(2, "B"), (3, "c")], "id int, v string"), path, keys=["id"])

    assert lake.version(spark, path) == 1
    assertDataFrameEqual(
        lake.read(spark, path), spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], "id int, v string")
    )
    assertDataFrameEqual(
        lake.read(spark, path, version=0), spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    )


def test_append_once_ignores_a_retried_batch(spark, tmp_path):
    path = str(tmp_path / "t")
    batch = spark.createDataFrame([(1, "O'Brien")], "id int, v string")
    lake.append_once(batch, path, app_id="file-abc")
    lake.append_once(batch, path, app_id="file-abc")  # the retry after a crash
    assert lake.read(spark, path).count() == 1
    assert lake.version(spark, path) == 0


def test_great_expectations_validates_a_spark_frame_without_sample_values(spark):
    contract = table_contract("silver", "postcode")
    frame = spark.createDataFrame(
        [("LK1 1AA", "E01090000", "E05009000", "Castle", 3, False), ("LK1 1AB", None, "E05009000", "Castle", 4, False)],
        "postcode string, lsoa_code string, ward_code string, ward_name string, imd_decile int, terminated boolean",
    )
    results = {r.rule_id: r for r in validate(frame, contract)}
    assert results["postcode.lsoa_code.not_null"].success is False
    assert results["postcode.lsoa_code.not_null"].unexpected_count == 1
    assert results["postcode.postcode.not_null"].success is True
