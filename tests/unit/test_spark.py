"""What a stage leaves cached in the shared JVM (jobs.spark.releases_what_it_cached)."""

from __future__ import annotations

import pytest

from jobs.spark import releases_what_it_cached


def _persistent(spark) -> set[int]:
    return set(spark.sparkContext._jsc.getPersistentRDDs().keySet())


def test_a_stage_releases_what_it_checkpointed_or_cached_and_nothing_it_found(spark):
    found = spark.range(10).localCheckpoint()  # a caller's: the stage must not release it
    before = _persistent(spark)

    @releases_what_it_cached
    def stage(session, n):
        checkpointed = session.range(n).localCheckpoint()
        cached = session.range(n).selectExpr("id * 2 AS id").persist()
        cached.count()
        assert len(_persistent(session) - before) == 2
        return {"rows": checkpointed.count() + cached.count()}

    assert stage(spark, 5) == {"rows": 10}
    assert _persistent(spark) == before
    assert found.count() == 10

    @releases_what_it_cached
    def failing(session):
        session.range(3).localCheckpoint()
        raise RuntimeError("the stage failed")

    with pytest.raises(RuntimeError, match="the stage failed"):
        failing(spark)
    assert _persistent(spark) == before


def test_a_stage_without_spark_runs_as_it_is():
    @releases_what_it_cached
    def local_stage(session, x):
        return {"session": session, "x": x}

    assert local_stage(None, 1) == {"session": None, "x": 1}
