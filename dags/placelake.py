"""placelake: land -> clean -> link -> curate -> gate -> publish -> report.

Thin on purpose: every task calls one entry point in jobs.pipeline, imported
inside the task so parsing this file stays cheap. Each task is a transaction:
re-running it with the same input changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

GOLD_TABLES = ("person", "care_event", "place_month")
GOLD_ASSETS = [Asset(name=f"gold.{t}", uri=f"placelake://gold/{t}", group="placelake") for t in GOLD_TABLES]

DEFAULT_ARGS = {
    "owner": "placelake",
    "retries": 1,
    "retry_delay": timedelta(seconds=15),
    "execution_timeout": timedelta(minutes=60),
}


@dag(
    dag_id="placelake",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["placelake"],
    doc_md=__doc__,
)
def placelake():
    @task
    def land(run_id=None):
        from jobs.pipeline import run_land

        return run_land(run_id)

    @task
    def clean(run_id=None):
        from jobs.pipeline import run_clean

        return run_clean(run_id)

    @task
    def link(run_id=None):
        from jobs.pipeline import run_link

        return run_link(run_id)

    @task
    def curate(logical_date=None, dag_run=None):
        from jobs.pipeline import run_curate

        # Ages and months are as of the run's logical date (a manual run may
        # have none: then the moment it was asked to run), never now().
        as_of = logical_date or dag_run.run_after
        return run_curate(as_of.date())

    # A failed gate is a verdict on the data, not a glitch: retrying cannot change it.
    @task(retries=0)
    def gate(run_id=None):
        from jobs.pipeline import run_gate

        return run_gate(run_id)

    @task(outlets=GOLD_ASSETS)
    def publish():
        from jobs.pipeline import run_publish

        return run_publish()

    # The report is for the bad days too: it runs whatever happened upstream.
    @task(trigger_rule="all_done")
    def report(run_id=None):
        from jobs.pipeline import run_report

        return run_report(run_id)

    # Watcher: the report runs on bad days too, so it cannot decide the run's
    # state; this task fails the run whenever any stage failed.
    @task(trigger_rule="one_failed", retries=0)
    def watcher():
        raise RuntimeError("a placelake stage failed: see the failed task's log and the quality report")

    landed = land()
    cleaned = clean()
    linked = link()
    curated = curate()
    gated = gate()
    published = publish()
    stages = [landed, cleaned, linked, curated, gated, published, report()]
    for upstream, downstream in zip(stages, stages[1:], strict=False):
        upstream >> downstream
    stages >> watcher()


placelake_dag = placelake()
