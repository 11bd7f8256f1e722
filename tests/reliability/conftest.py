"""Whole pipelines for the reliability suite: `placelake run` in a subprocess, as an operator runs it.

Two lakes share one generated place (300 people, the hostile corpus beside
its good deliveries) and one pseudonym key:

- ``baseline``: one uninterrupted run (Spark event log on). test_rerun,
  test_concurrent, test_hostile and test_secrets read it; the first two run
  it again and must leave it as it was.
- ``recovered``: the same place, killed with SIGKILL at several points and
  run again until a run completes (test_crash). test_erasure then forgets a
  person in it, so it must come after test_crash (pytest runs files in name order).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile import Kind, write_corpus
from lakes import PEOPLE, Lake, lake_state, manifest_sources, new_lake, run, table_state
from pipelines import placelake

from jobs import lake


@pytest.fixture(scope="session")
def place(tmp_path_factory) -> tuple[Path, list[Kind]]:
    """A generated place with the hostile corpus in landing/: copied into each lake."""
    root = tmp_path_factory.mktemp("place")
    home = root / "home"
    result = placelake(home, "generate", "--people", str(PEOPLE), "--every", "12", log_name="generate")
    assert result.returncode == 0, result.tail()
    kinds = write_corpus(home, root / "outside-landing")
    return home, kinds


@pytest.fixture(scope="session")
def event_log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="session")
def baseline(tmp_path_factory, place, event_log_dir) -> Lake:
    """One uninterrupted run, with Spark's event log on (spark-defaults.conf in SPARK_CONF_DIR)."""
    built = new_lake(tmp_path_factory, place, "baseline")
    conf = tmp_path_factory.mktemp("spark-conf")
    # Spark 4 compresses event logs (zstd) by default: plain text, so test_secrets searches what Spark
    # wrote and not its compressed bytes (where the key could hide).
    (conf / "spark-defaults.conf").write_text(
        f"spark.eventLog.enabled true\nspark.eventLog.dir file://{event_log_dir}\nspark.eventLog.compress false\n",
        encoding="utf-8",
    )
    result = run(built.home, "run-1", SPARK_CONF_DIR=str(conf))
    assert result.returncode == 0, result.tail()
    built.results.append(result)
    return built


@pytest.fixture(scope="session")
def baseline_state(baseline, spark) -> dict:
    """Content of every table right after the first run: what later runs must leave alone."""
    return lake_state(spark, baseline.settings)


@pytest.fixture(scope="session")
def recovered(tmp_path_factory, place, spark) -> Lake:
    """The same place, SIGKILLed mid-landing, mid-link and mid-publish, then run until a run completes.

    Returns the lake with every attempt's result; what each crash left behind is
    checked right after it (recovered.after), before the next run repairs it.
    """
    built = new_lake(tmp_path_factory, place, "recovered")
    settings = built.settings

    killed = run(built.home, "kill-land", PLACELAKE_TEST_KILL_AT="land.after_bronze")
    built.results.append(killed)
    built.after["land.after_bronze"] = {
        "bronze": sorted(lake.table_paths(settings, "bronze")),
        # Sources the manifest records files of (stray files in folders no contract claims are
        # recorded by their own task, which may run before the killed one).
        "manifest": manifest_sources(spark, settings),
    }

    killed = run(built.home, "kill-link", PLACELAKE_TEST_KILL_AT="link.splink")
    built.results.append(killed)
    built.after["link"] = {
        "person_link": lake.table_exists(spark, settings.table("silver", "person_link")),
        "silver": sorted(lake.table_paths(settings, "silver")),
    }

    killed = run(built.home, "kill-publish", PLACELAKE_TEST_KILL_AT="publish.midway")
    built.results.append(killed)
    built.after["publish.midway"] = {
        name: table_state(spark, path) for name, path in lake.table_paths(settings, "gold").items()
    }

    final = run(built.home, "final")
    built.results.append(final)
    assert final.returncode == 0, final.tail()
    return built
