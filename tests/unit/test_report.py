"""The report's SQL, bound for Spark."""

import pytest

from jobs.report import _bind_spark


@pytest.mark.parametrize("run_id", ["manual__2026-12-07T16:13:18.836431+00:00", "it's", "back\\slash\\'", "?", ""])
def test_a_run_id_reads_as_itself_in_sparks_sql(spark, run_id):
    assert spark.sql(_bind_spark("SELECT ? AS a, 'x' AS b, ? AS c", (run_id, run_id))).first() == (run_id, "x", run_id)


def test_markers_and_parameters_must_agree():
    with pytest.raises(ValueError, match="2 parameter markers for 1 parameters"):
        _bind_spark("SELECT ?, ?", ("a",))
