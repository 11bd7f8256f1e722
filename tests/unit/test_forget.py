"""Erasure's last step on one small table: after `vacuum`, no earlier version can be read and no
file outside the current version is left, checksums and commit statistics included.
The whole of `placelake forget` on a pipeline's lake: tests/reliability/test_erasure.py."""

import json
import os

import pytest
from delta.tables import DeltaTable

from jobs import forget


def test_vacuum_leaves_only_the_current_version_on_disk(spark, tmp_path):
    path = str(tmp_path / "people")
    rows = [(f"r{i}", "999000000" + str(i % 10)) for i in range(40)]
    spark.createDataFrame(rows, "record_id string, nhs_number string").repartition(2).write.format("delta").save(path)
    DeltaTable.forPath(spark, path).delete("nhs_number = '9990000003'")  # rewrites the files holding them
    before = {f for f in os.listdir(path) if f.endswith(".parquet")}

    forget.vacuum(spark, path)

    live = {os.path.basename(f) for f in spark.read.format("delta").load(path).inputFiles()}
    data = {f for f in os.listdir(path) if f.endswith(".parquet")}
    assert data == live and data < before  # the files with the person in them are gone
    assert all(f[1:-4] in data for f in os.listdir(path) if f.endswith(".crc"))  # no checksum of a deleted file
    assert spark.read.format("delta").load(path).where("nhs_number = '9990000003'").count() == 0
    with pytest.raises(Exception, match="(?i)version|not.*(exist|found|recreatable)"):
        spark.read.format("delta").option("versionAsOf", 0).load(path).count()
    # The commits before the checkpoint, whose add actions held each file's minimum and maximum, are gone.
    log_dir = os.path.join(path, "_delta_log")
    with open(os.path.join(log_dir, "_last_checkpoint")) as handle:
        checkpoint = json.load(handle)["version"]
    assert min(int(f[:20]) for f in os.listdir(log_dir) if f.endswith(".json")) >= checkpoint
    assert not [f for f in os.listdir(log_dir) if os.path.isfile(os.path.join(log_dir, f))
                and b"9990000003" in open(os.path.join(log_dir, f), "rb").read()]  # fmt: skip
