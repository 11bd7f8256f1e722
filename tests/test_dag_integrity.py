"""The DAG folder imports cleanly and both DAGs have the shape we rely on."""

import subprocess
import sys
from datetime import timedelta
from functools import cache
from pathlib import Path

import yaml

from jobs.contracts import gold_contracts

DAGS = Path(__file__).resolve().parent.parent / "dags"
SCHEMAS = DAGS.parent / "schemas"
BUILD = ["clean", "link", "curate", "gate", "publish", "report"]


@cache
def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def _sources() -> list[str]:
    return sorted(yaml.safe_load(p.read_text(encoding="utf-8"))["name"] for p in SCHEMAS.glob("*.yaml"))


def test_dagbag_has_no_import_errors():
    bag = _dagbag()
    assert bag.import_errors == {}
    assert {"placelake_land", "placelake"} <= set(bag.dag_ids)


def test_the_dag_file_imports_nothing_heavy():
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "heavy = [m for m in ('pyspark', 'delta', 'great_expectations', 'splink', 'pandas', 'jobs') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(DAGS / "placelake.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""


def test_contract_file_names_are_contract_names():
    # The DAG lists sources by file name without parsing YAML; this keeps that honest.
    assert [p.stem for p in sorted(SCHEMAS.glob("*.yaml"))] == _sources()


def test_landing_has_one_task_per_contract_each_updating_its_bronze_asset():
    dag = _dagbag().dags["placelake_land"]
    assert dag.max_active_runs == 1
    for source in _sources():
        task = dag.get_task(f"land_{source}")
        assert [(a.name, a.uri) for a in task.outlets] == [(f"bronze.{source}", f"placelake://bronze/{source}")]
    # Files in a folder no contract claims are recorded, never ignored.
    assert "land_unrecognised" in dag.task_ids
    assert set(dag.task_ids) == {f"land_{s}" for s in _sources()} | {"land_unrecognised"}


def test_the_build_is_scheduled_on_every_bronze_asset():
    dag = _dagbag().dags["placelake"]
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    assert {a.name for a in condition.objects} == {f"bronze.{s}" for s in _sources()}


def test_main_dag_runs_the_stages_in_order_and_reports_on_bad_days():
    dag = _dagbag().dags["placelake"]
    for upstream, downstream in zip(BUILD, BUILD[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("gate").retries == 0
    assert dag.max_active_runs == 1
    # The watcher fails the run when any stage fails, though the report (a leaf) succeeds.
    watcher = dag.get_task("watcher")
    assert watcher.trigger_rule == "one_failed"
    assert set(BUILD) <= watcher.upstream_task_ids


def test_every_task_states_its_retries_and_timeout():
    for dag_id in ("placelake_land", "placelake"):
        dag = _dagbag().dags[dag_id]
        assert dag.dagrun_timeout is not None
        for task in dag.tasks:
            assert task.retries is not None, task.task_id
            assert isinstance(task.execution_timeout, timedelta), task.task_id
            assert task.execution_timeout <= timedelta(hours=1), task.task_id
    assert all(t.retries >= 1 for t in _dagbag().dags["placelake_land"].tasks)


def test_publish_declares_the_gold_assets():
    dag = _dagbag().dags["placelake"]
    outlets = {a.name for a in dag.get_task("publish").outlets}
    # One Asset per gold contract: a new curated table is announced without DAG code.
    assert {"gold.person", "gold.care_event", "gold.place_month", "gold.cohort_area"} <= outlets
    assert outlets == {f"gold.{c.name}" for c in gold_contracts()}


def test_every_task_alerts_on_failure_except_the_watcher():
    dag = _dagbag().dags["placelake"]
    for task in dag.tasks:
        callbacks = task.on_failure_callback or []
        assert bool(callbacks) == (task.task_id != "watcher"), task.task_id
