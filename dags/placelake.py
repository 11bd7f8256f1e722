"""placelake: landing, then the build, joined by one Asset per bronze table.

placelake_land   one task per source contract (schemas/<source>.yaml), each
                 landing that source's new files into lake/bronze/<source> and
                 updating the Asset bronze.<source>; one more task records files
                 in folders no contract claims. Adding a source is adding a
                 contract (and its adapter in jobs/clean.py): no DAG code.
placelake        clean -> link -> curate -> gate -> publish -> report, scheduled
                 on the bronze Assets: it runs when any source has landed new rows.

Thin on purpose: every task calls one entry point in jobs.pipeline, imported
inside the task so parsing this file stays cheap (no Spark, no YAML parsing).
Each task is a transaction: re-running it with the same input changes nothing.
`placelake run` runs both in-process (dag.test), landing first.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import Asset, AssetAny, Param, dag, task

# A source is its contract file: schemas/<name>.yaml declares `name: <name>`
# (tests/test_dag_integrity.py holds every contract to that).
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
SOURCES = sorted(p.stem for p in SCHEMAS.glob("*.yaml"))
BRONZE_ASSETS = {s: Asset(name=f"bronze.{s}", uri=f"placelake://bronze/{s}", group="placelake") for s in SOURCES}
# Likewise a gold table is its contract: schemas/gold/<name>.yaml.
GOLD_TABLES = sorted(p.stem for p in (SCHEMAS / "gold").glob("*.yaml"))
GOLD_ASSETS = [Asset(name=f"gold.{t}", uri=f"placelake://gold/{t}", group="placelake") for t in GOLD_TABLES]

START = pendulum.datetime(2026, 1, 1, tz="UTC")
LAND_SCHEDULE = os.environ.get("PLACELAKE_LAND_SCHEDULE", "@hourly")


def _due_by(data_interval_end, dag_run):
    """The last delivery date a landing run may take: the day its data interval ends.

    A delivery dated D is due from D 00:00 UTC. A scheduled run lands everything
    due by the end of its interval, so `airflow backfill create` over past dates
    lands the deliveries due by each of those dates and none delivered after
    (a run without an interval, e.g. triggered with no logical date, takes the
    moment it was asked to run). Never now(): re-running a run gives its own answer.
    """
    return (data_interval_end or dag_run.run_after).date()


def _land_due(source: str, run_id: str, due_by) -> dict:
    """One source's new files dated up to due_by (and undated files, which landing rejects and records)."""
    from jobs import land
    from jobs.contracts import source_contract
    from jobs.pipeline import landing_session, settings

    config = settings()
    due = [
        d
        for d in land.delivered_files(config)
        if d.folder == source and (d.delivery is None or d.delivery <= due_by.isoformat())
    ]
    if not due or land.all_recorded(config, due):
        # Most hourly looks find nothing new: answered from the manifest without starting a JVM.
        return _nothing_landed()
    outcomes = land.land_source(landing_session(), config, source_contract(source), batch_id=run_id, delivered=due)
    return land.summarise(outcomes)


def _nothing_landed() -> dict:
    """The summary of a landing that found nothing new (as jobs.land.summarise would put it)."""
    return {"files": 0, "rows_landed": 0, "rows_quarantined": 0, "rejected": []}


def alert(context) -> None:
    """Failure callback: a log line, and a webhook or email where configured (jobs/alerts.py)."""
    from jobs.alerts import notify

    notify(context)


# Every task states its retries and timeout; these are the defaults they override.
DEFAULT_ARGS = {
    "owner": "placelake",
    "retries": 1,
    "retry_delay": timedelta(seconds=15),
    "execution_timeout": timedelta(minutes=30),
    # A log line always; a webhook or an email when PLACELAKE_ALERT_WEBHOOK / _EMAIL are set.
    "on_failure_callback": [alert],
}


@dag(
    dag_id="placelake_land",
    # Deliveries arrive at any hour; landing an unchanged landing/ is a no-op
    # that emits no Asset event and starts no JVM, so an hourly look costs seconds.
    # A place whose feeds come once a day can look daily (PLACELAKE_LAND_SCHEDULE,
    # any cron or preset), which also makes a backfill one run per delivery day.
    schedule=LAND_SCHEDULE,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=DEFAULT_ARGS,
    tags=["placelake", "landing"],
    doc_md=__doc__,
)
def placelake_land():
    # A crash between the bronze commit and the manifest is recovered on retry
    # without duplicating a row (jobs/land.py), so retrying is safe.
    # One instance per source at a time across all runs: a backfill's runs and the
    # hourly run must not land the same new file side by side.
    @task(
        retries=2,
        retry_delay=timedelta(minutes=1),
        execution_timeout=timedelta(minutes=60),
        max_active_tis_per_dag=1,
    )
    def land_source(source: str, run_id=None, data_interval_end=None, dag_run=None, outlet_events=None):
        from airflow.sdk.exceptions import AirflowSkipException

        summary = _land_due(source, run_id, _due_by(data_interval_end, dag_run))
        if not summary.get("landed"):
            # Nothing new reached bronze: no Asset event, so no rebuild downstream.
            raise AirflowSkipException(f"{source}: no new file landed ({summary['files']} new file(s) recorded)")
        outlet_events[BRONZE_ASSETS[source]].extra = {
            k: summary[k] for k in ("files", "landed", "rows_landed", "rows_quarantined")
        }
        return summary

    @task(retries=2, retry_delay=timedelta(minutes=1), execution_timeout=timedelta(minutes=10))
    def land_unrecognised(run_id=None):
        from jobs import land
        from jobs.pipeline import run_land_unrecognised, settings

        if all(d.folder in BRONZE_ASSETS for d in land.delivered_files(settings())):
            return _nothing_landed()  # no stray file: no JVM
        return run_land_unrecognised(run_id)

    for source in SOURCES:
        land_source.override(task_id=f"land_{source}", outlets=[BRONZE_ASSETS[source]])(source)
    land_unrecognised()


@dag(
    dag_id="placelake",
    schedule=AssetAny(*BRONZE_ASSETS.values()),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    default_args=DEFAULT_ARGS,
    tags=["placelake"],
    doc_md=__doc__,
    # A data engineer who changed an adapter or a standardiser triggers one run with
    # {"rebuild_source": "<source>" or "all", "rebuild_from": "YYYY-MM-DD"}: that source's silver is
    # cleaned again from bronze (never re-landed), and every stage after it rebuilds from silver.
    # After a change to linkage.yaml, {"relink": true} links every record again under the new settings.
    params={
        "relink": Param(
            False, type="boolean", description="Link every record again and re-estimate the model (person_ids kept)."
        ),
        "rebuild_source": Param(None, type=["null", "string"], description="Source to rebuild from bronze, or all."),
        "rebuild_from": Param(
            None, type=["null", "string"], format="date", description="First delivery date to rebuild (default all)."
        ),
    },
)
def placelake():
    @task(retries=1, execution_timeout=timedelta(minutes=30))
    def clean(run_id=None, params=None):
        from jobs.pipeline import run_clean

        params = params or {}
        return run_clean(run_id, rebuild_source=params.get("rebuild_source"), rebuild_from=params.get("rebuild_from"))

    @task(retries=1, execution_timeout=timedelta(minutes=60))
    def link(run_id=None, params=None):
        from jobs.pipeline import run_link

        return run_link(run_id, relink=bool((params or {}).get("relink")))

    @task(retries=1, execution_timeout=timedelta(minutes=30))
    def curate(logical_date=None, dag_run=None):
        from jobs.pipeline import run_curate

        # Ages and months are as of the run's logical date (an Asset-triggered
        # or manual run may have none: then the moment it was asked to run), never now().
        as_of = logical_date or dag_run.run_after
        return run_curate(as_of.date())

    # A failed gate is a verdict on the data, not a glitch: retrying cannot change it.
    @task(retries=0, execution_timeout=timedelta(minutes=20))
    def gate(run_id=None):
        from jobs.pipeline import run_gate

        return run_gate(run_id)

    @task(outlets=GOLD_ASSETS, retries=1, execution_timeout=timedelta(minutes=10))
    def publish():
        from jobs.pipeline import run_publish

        return run_publish()

    # The report is for the bad days too: it runs whatever happened upstream.
    @task(trigger_rule="all_done", retries=1, execution_timeout=timedelta(minutes=10))
    def report(run_id=None):
        from jobs.pipeline import run_report

        return run_report(run_id)

    # Watcher: the report runs on bad days too, so it cannot decide the run's
    # state; this task fails the run whenever any stage failed.
    # It alerts on nothing itself: the failed stage has already raised the alert.
    @task(trigger_rule="one_failed", retries=0, execution_timeout=timedelta(minutes=1), on_failure_callback=[])
    def watcher():
        raise RuntimeError("a placelake stage failed: see the failed task's log and the quality report")

    stages = [clean(), link(), curate(), gate(), publish(), report()]
    for upstream, downstream in zip(stages, stages[1:], strict=False):
        upstream >> downstream
    stages >> watcher()


placelake_land_dag = placelake_land()
placelake_dag = placelake()
