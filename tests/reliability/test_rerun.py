"""Re-running a completed pipeline, twice at once: one run is refused cleanly, the other changes nothing.

`placelake run` runs the DAGs in-process (dag.test), where max_active_runs does
not reach: the lake lock (jobs/lock.py) is what keeps two runs apart.
"""

from __future__ import annotations

import time

import pytest
from lakes import PEOPLE, RUN_DATE, gold_versions, lake_state, manifest_rows, person_ids
from pipelines import finish_together, start

from jobs import lake
from jobs.cli import LOCKED

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


@pytest.fixture(scope="module")
def two_reruns(baseline, baseline_state, spark):
    """The completed baseline lake, then two runs started at the same moment."""
    settings = baseline.settings
    before = {
        "manifest": manifest_rows(spark, settings),
        "gold_versions": gold_versions(spark, settings),
        "bronze_versions": {n: lake.version(spark, p) for n, p in lake.table_paths(settings, "bronze").items()},
        "person_ids": person_ids(spark, settings),
    }
    args = ("run", "--people", str(PEOPLE), "--date", RUN_DATE)
    started = time.monotonic()
    first = start(baseline.home, *args, log_name="rerun-a")
    second = start(baseline.home, *args, log_name="rerun-b")
    results = finish_together([first, second], args, started)
    baseline.results.extend(results)
    pids = [first[0].pid, second[0].pid]
    return before, results, pids


def test_two_runs_at_once_one_completes_and_the_other_is_refused_naming_the_holder(two_reruns):
    _, results, pids = two_reruns
    assert sorted(r.returncode for r in results) == [0, LOCKED], [r.tail() for r in results]
    winner = pids[[r.returncode for r in results].index(0)]
    refused = next(r for r in results if r.returncode == LOCKED)
    assert "placelake run: another run holds the lake lock since 20" in refused.stderr
    assert f"(pid {winner}, placelake run)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.seconds < 120  # refused at once, not after building anything


def test_a_rerun_lands_nothing_new(two_reruns, baseline, spark):
    before, _, _ = two_reruns
    settings = baseline.settings
    assert manifest_rows(spark, settings) == before["manifest"]
    bronze = {n: lake.version(spark, p) for n, p in lake.table_paths(settings, "bronze").items()}
    assert bronze == before["bronze_versions"]


def test_a_rerun_leaves_every_table_identical_with_the_same_person_ids(two_reruns, baseline, baseline_state, spark):
    before, _, _ = two_reruns
    settings = baseline.settings
    after = lake_state(spark, settings)
    assert after.keys() == baseline_state.keys()
    changed = sorted(k for k in after if after[k] != baseline_state[k])
    assert not changed, changed
    assert person_ids(spark, settings) == before["person_ids"]
    # Gold is not even rewritten: an unchanged table keeps its version.
    assert gold_versions(spark, settings) == before["gold_versions"]
