"""The DAG folder imports cleanly and the main DAG has the shape we rely on."""

from pathlib import Path

DAGS = Path(__file__).resolve().parent.parent / "dags"


def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dagbag_has_no_import_errors():
    bag = _dagbag()
    assert bag.import_errors == {}
    assert "placelake" in bag.dag_ids


def test_main_dag_runs_the_stages_in_order_and_reports_on_bad_days():
    dag = _dagbag().dags["placelake"]
    order = ["land", "clean", "link", "curate", "gate", "publish", "report"]
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("gate").retries == 0
    assert dag.max_active_runs == 1
    # The watcher fails the run when any stage fails, though the report (a leaf) succeeds.
    watcher = dag.get_task("watcher")
    assert watcher.trigger_rule == "one_failed"
    assert set(order) <= watcher.upstream_task_ids


def test_publish_declares_the_gold_assets():
    dag = _dagbag().dags["placelake"]
    outlets = {a.name for a in dag.get_task("publish").outlets}
    assert outlets == {"gold.person", "gold.care_event", "gold.place_month"}
