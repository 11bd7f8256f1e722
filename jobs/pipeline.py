"""Thin entry points, one per stage: the only code that DAG tasks call.

Each builds the settings and (once per process) the Spark session, runs one
stage and returns a small JSON-able summary of counts for XCom — never a
patient-level value.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from pyspark.sql import SparkSession

from jobs import clean, curate, dictionary, gate, land, link, report, scorecard
from jobs.config import Settings
from jobs.contracts import source_contract
from jobs.spark import get_spark


def settings() -> Settings:
    return Settings.from_env()


@cache
def session() -> SparkSession:
    # dag.test() runs every task in this one process: they share one JVM.
    return get_spark(settings())


def landing_session() -> SparkSession | None:
    """What landing needs: on a local lake no Spark at all (jobs.land.lands_locally), so no JVM starts."""
    return None if land.lands_locally(settings()) else session()


def run_land(run_id: str) -> dict:
    """Every source and every stray file in one go (the CLI and benchmarks)."""
    return land.summarise(land.land_all(landing_session(), settings(), batch_id=run_id))


def run_land_source(source: str, run_id: str) -> dict:
    """One source's new files: the landing DAG runs one of these per contract."""
    return land.summarise(land.land_source(landing_session(), settings(), source_contract(source), batch_id=run_id))


def run_land_unrecognised(run_id: str) -> dict:
    """Files in folders no contract claims: recorded as rejected, never ignored."""
    return land.summarise(land.land_unrecognised(landing_session(), settings(), batch_id=run_id))


def run_clean(run_id: str, rebuild_source: str | None = None, rebuild_from: str | None = None) -> dict:
    """Clean new bronze rows of every source; rebuild_source (or 'all') is cleaned again from bronze first."""
    return clean.clean_all(
        session(), settings(), batch_id=run_id, rebuild_source=rebuild_source, rebuild_from=rebuild_from
    )


def run_link(run_id: str, relink: bool = False) -> dict:
    """Link what changed in silver; relink: every record again, the model re-estimated (link.link_all)."""
    linked = link.link_all(session(), settings(), run_id=run_id, relink=relink)
    # Silver is checked once it is complete (sources, links, persons): a fail rule stops the build here.
    checked = gate.check_silver(session(), settings(), run_id=run_id)
    return {**linked, "silver_checks": {t: v["passed"] for t, v in checked.items()}}


def run_curate(as_of: date) -> dict:
    return curate.curate_all(session(), settings(), as_of=as_of)


def run_gate(run_id: str) -> dict:
    return gate.gate_all(session(), settings(), run_id=run_id)


def run_publish() -> dict:
    return gate.publish_all(session(), settings())


def run_report(run_id: str) -> str:
    scorecard.build_scorecard(session(), settings(), run_id=run_id)
    dictionary.write_dictionary(settings())  # beside the report, which links to it
    return report.write_report(session(), settings(), run_id=run_id)
