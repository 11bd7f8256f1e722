"""The DAGs under a real Airflow 3: scheduler, dag-processor and api-server, LocalExecutor on SQLite.

`make test-airflow` runs this (it is not part of `make test`). It starts the
three Airflow services as separate processes with AIRFLOW_HOME in a temporary
folder and PLACELAKE_HOME on a generated place of 300 people, then walks one
deployment's story, in order (each test builds on the one before):

1. the dag-processor parses both DAGs with no import errors;
2. the landing DAG, unpaused, is run by the scheduler and lands every delivery due;
3. `airflow backfill create` over past dates lands exactly the deliveries due
   by those dates (two sources' last delivery was held back until now), not
   one delivered after them;
4. the same backfill again (reprocess completed runs) changes nothing;
5. a triggered landing run whose one task fails (a bronze table a newer Delta
   writer upgraded) is fixed, the task cleared with `airflow tasks clear` and
   re-run alone to success; the bronze Asset event it emits schedules the
   build DAG, which completes.

The build runs once, at the end: until then `placelake` stays paused, so the
landings before it queue no Asset events (a paused DAG is never queued). Every
Airflow process and whatever it started is killed at teardown.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pipelines
import pytest
from deltalake import DeltaTable

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
PLACELAKE = str(Path(sys.executable).parent / "placelake")
PEOPLE = 300
HELD_BACK = "2026-11-01"  # the generator's last delivery: what the backfill must land ...
HELD_SOURCES = ("community_contacts", "housing_cases")  # ... of these two (each task is a JVM: keep them few)
LATER = "2026-11-20"  # a delivery after the backfill's range: it must wait for a later run
LATER_SOURCE = "community_contacts"
BACKFILL_FROM, BACKFILL_TO = "2026-10-31T00:00:00+00:00", "2026-11-01T00:00:00+00:00"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Airflow:
    """The running deployment: its REST API, its CLI, and the place it lands."""

    def __init__(self, env: dict[str, str], port: int, home: Path, logs: Path) -> None:
        self.env, self.url, self.home, self.logs = env, f"http://127.0.0.1:{port}", home, logs

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/api/v2/{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        for _ in range(5):
            result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=300)
            # SQLite has one writer: a CLI write can lose to the scheduler's; it rolled back, so ask again.
            if result.returncode == 0 or "database is locked" not in result.stderr:
                break
            time.sleep(5)
        assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stderr[-3000:]}"
        return result

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        self.api(f"dags/{dag_id}", "PATCH", {"is_paused": paused})

    def runs(self, dag_id: str) -> list[dict]:
        return self.api(f"dags/{dag_id}/dagRuns?order_by=run_after&limit=200")["dag_runs"]

    def tasks(self, dag_id: str, run_id: str) -> dict[str, dict]:
        found = self.api(f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=100")
        return {t["task_id"]: t for t in found["task_instances"]}

    def wait(self, what: str, condition, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except (OSError, urllib.error.URLError):
                value = None  # the api-server restarting a worker, or SQLite busy: ask again
            if value:
                return value
            time.sleep(5)
        tail = (self.logs / "scheduler.log").read_text(errors="replace")[-3000:]
        raise TimeoutError(f"{what}: not after {timeout:.0f}s. Task logs: {self.env['AIRFLOW_HOME']}/logs\n{tail}")

    def settled(self, dag_id: str, count: int | None = None) -> list[dict] | None:
        """The DAG's runs once none is queued or running (and at least count exist), else None."""
        runs = self.runs(dag_id)
        if count is not None and len(runs) < count:
            return None
        if not runs or any(r["state"] in ("queued", "running") for r in runs):
            return None
        return runs

    def backfills_completed(self, dag_id: str) -> bool:
        """No backfill of the DAG open (the scheduler closes one within 30 s of its last run)."""
        return all(b["completed_at"] for b in self.api(f"backfills?dag_id={dag_id}")["backfills"])

    def backfill(self, *args: str) -> None:
        """`airflow backfill create` for placelake_land over the test's dates, once no other backfill is open.

        Airflow commits the backfill before making its runs: if SQLite's lock then
        makes the CLI fail, that empty backfill stays open until the scheduler
        closes it, and only then may we ask again.
        """
        dates = ["--from-date", BACKFILL_FROM, "--to-date", BACKFILL_TO, "--max-active-runs", "1"]
        for _ in range(5):
            self.wait("no open backfill", lambda: self.backfills_completed("placelake_land") or None, timeout=300)
            result = subprocess.run(
                [AIRFLOW, "backfill", "create", "--dag-id", "placelake_land", *dates, *args],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode == 0 or "database is locked" not in result.stderr:
                break
        assert result.returncode == 0, f"airflow backfill create: {result.stderr[-3000:]}"

    def trigger(self, dag_id: str) -> str:
        logical = datetime.now(UTC).replace(microsecond=0).isoformat()
        run_id = f"manual__{logical}"
        self.cli("dags", "trigger", dag_id, "--logical-date", logical, "--run-id", run_id)
        return run_id


def _bronze(home: Path) -> dict[str, tuple[int, int, frozenset[str]]]:
    """Per source: (Delta version, rows, delivery dates) of lake/bronze/<source>, read with delta-rs."""
    found = {}
    for table in sorted((home / "lake" / "bronze").iterdir()):
        delta = DeltaTable(str(table))
        deliveries = delta.to_pyarrow_table(columns=["_delivery"]).column("_delivery").to_pylist()
        found[table.name] = (delta.version(), len(deliveries), frozenset(deliveries))
    return found


def _manifest_paths(home: Path) -> set[str]:
    table = DeltaTable(str(home / "lake" / "ops" / "landing_manifest"))
    return set(table.to_pyarrow_table(columns=["path"]).column("path").to_pylist())


def _landing(home: Path, *deliveries: str) -> set[str]:
    """Every file under landing/ in one of these delivery folders."""
    return {str(p) for p in (home / "landing").glob("*/*/*") if p.parent.name in deliveries}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    work = tmp_path_factory.mktemp("airflow-deployment")
    home, airflow_home, logs = work / "place", work / "airflow", work / "logs"
    airflow_home.mkdir()
    logs.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "PLACELAKE_HOME": str(home),
        # Landing looks once a day here: no scheduled run of its own comes mid-test to land what a
        # backfill should (hourly is the default; see README "Airflow with a real scheduler").
        "PLACELAKE_LAND_SCHEDULE": "@daily",
        "PLACELAKE_SPARK_MASTER": "local[1]",  # each task is its own JVM; two run side by side on two cores
        "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        "PLACELAKE_DRIVER_MEMORY": "1g",
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # SQLite takes one writer at a time: wait up to a minute for the lock, not pysqlite's 5 s.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db?timeout=60",
        # Airflow 3 has no SequentialExecutor: LocalExecutor runs on SQLite (what `airflow standalone` uses).
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # Tasks report to the api-server's execution API; it and the scheduler sign tokens with one secret.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # A throwaway deployment on 127.0.0.1: every caller is admin, no login.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        # Not 8793: other deployments on this machine may hold it.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "GX_ANALYTICS_ENABLED": "False",
    }

    generated = subprocess.run(
        [PLACELAKE, "generate", "--people", str(PEOPLE)], env=env, capture_output=True, text=True, timeout=300
    )
    assert generated.returncode == 0, generated.stderr[-3000:]
    # Two sources' last delivery waits outside landing/ until the backfill (test 3) ...
    held = work / "held"
    for source in HELD_SOURCES:
        shutil.move(str(home / "landing" / source / HELD_BACK), held / source / HELD_BACK)
    # ... with a later one: five records of that delivery sent again on another day.
    original = next((held / LATER_SOURCE / HELD_BACK).glob("*.csv")).read_text(encoding="utf-8").splitlines()
    later = held / LATER_SOURCE / LATER / f"{LATER_SOURCE}_{LATER.replace('-', '')}.csv"
    later.parent.mkdir(parents=True)
    later.write_text("\n".join(original[:6]) + "\n", encoding="utf-8")

    migrated = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    processes: list[subprocess.Popen] = []
    files = []

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed at teardown
        files.append(log)
        # Its own session: teardown signals the whole group, and finds what escaped it by ancestry.
        processes.append(
            subprocess.Popen([AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    deployment = Airflow(env, port, home, logs)
    try:
        start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        start("scheduler", "scheduler")
        start("dag-processor", "dag-processor")
        deployment.wait(
            "api-server, scheduler and dag-processor healthy",
            lambda: all(
                (deployment.api("monitor/health").get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ),
            timeout=240,
        )
        deployment.held = held
        yield deployment
    finally:
        pipelines.stop(processes)
        for log in files:
            log.close()


def test_the_dag_processor_parses_both_dags_without_import_errors(airflow):
    dags = airflow.wait(
        "both DAGs serialised",
        lambda: (
            {d["dag_id"] for d in airflow.api("dags")["dags"]} >= {"placelake_land", "placelake"}
            and airflow.api("dags")["dags"]
        ),
        timeout=180,
    )
    assert {d["dag_id"]: d["is_paused"] for d in dags} == {"placelake_land": True, "placelake": True}
    assert airflow.api("importErrors")["total_entries"] == 0
    build = airflow.api("dags/placelake")
    assert build["timetable_summary"] == "Asset"


def test_landing_unpaused_is_run_by_the_scheduler_and_lands_every_delivery_due(airflow):
    airflow.unpause("placelake_land")
    # No trigger: unpausing a DAG that does not catch up makes the scheduler run its latest interval.
    runs = airflow.wait("the scheduled landing run finished", lambda: airflow.settled("placelake_land"), timeout=2400)

    assert [(r["run_type"], r["state"]) for r in runs] == [("scheduled", "success")]
    bronze = _bronze(airflow.home)
    assert len(bronze) == 9
    for source, (_, rows, deliveries) in bronze.items():
        expected = {"2025-11-01", "2026-05-01", HELD_BACK} - ({HELD_BACK} if source in HELD_SOURCES else set())
        assert rows > 0 and deliveries <= expected, source
    # Every delivered file is accounted for in the manifest (landed, rejected or duplicate).
    assert _landing(airflow.home, "2025-11-01", "2026-05-01", HELD_BACK) <= _manifest_paths(airflow.home)


def test_a_backfill_lands_exactly_the_deliveries_due_by_its_dates(airflow):
    for source in airflow.held.iterdir():
        for folder in source.iterdir():
            shutil.move(str(folder), airflow.home / "landing" / source.name / folder.name)
    before = _bronze(airflow.home)

    airflow.backfill()
    runs = airflow.wait(
        "the backfill runs finished",
        lambda: (
            (runs := airflow.settled("placelake_land"))
            and sum(r["run_type"] == "backfill" for r in runs) == 2
            # Only one backfill per DAG may be open, and the next test starts another.
            and airflow.backfills_completed("placelake_land")
            and runs
        ),
        timeout=1200,
    )
    backfill = {r["logical_date"][:10]: r for r in runs if r["run_type"] == "backfill"}
    assert sorted(backfill) == ["2026-10-31", "2026-11-01"]
    assert {d: r["state"] for d, r in backfill.items()} == {"2026-10-31": "success", "2026-11-01": "success"}
    # 2026-10-31: nothing new was due, every source skipped; 2026-11-01: that day's deliveries landed.
    first = airflow.tasks("placelake_land", backfill["2026-10-31"]["dag_run_id"])
    assert {t["state"] for t in first.values() if t["task_id"] != "land_unrecognised"} == {"skipped"}
    second = airflow.tasks("placelake_land", backfill["2026-11-01"]["dag_run_id"])
    assert {t: v["state"] for t, v in second.items() if t.removeprefix("land_") in HELD_SOURCES} == {
        f"land_{s}": "success" for s in HELD_SOURCES
    }

    after = _bronze(airflow.home)
    for source, (version, rows, deliveries) in after.items():
        if source in HELD_SOURCES:
            assert deliveries - before[source][2] == {HELD_BACK}, f"bronze.{source} did not take exactly {HELD_BACK}"
            assert rows > before[source][1]
        else:
            assert (version, rows, deliveries) == before[source], f"bronze.{source} changed"
    assert _landing(airflow.home, HELD_BACK) <= _manifest_paths(airflow.home)
    later = _landing(airflow.home, LATER)
    assert later and not later & _manifest_paths(airflow.home), "the later delivery was landed before its day"


def test_the_same_backfill_again_changes_nothing(airflow):
    before = _bronze(airflow.home)
    manifest = _manifest_paths(airflow.home)

    airflow.backfill("--reprocess-behavior", "completed")
    # Completed runs are cleared and run again: wait until both backfill runs have a second try.
    airflow.wait(
        "the backfill runs ran again",
        lambda: (
            airflow.settled("placelake_land")
            and airflow.backfills_completed("placelake_land")
            and all(
                t["try_number"] >= 2
                for r in airflow.runs("placelake_land")
                if r["run_type"] == "backfill"
                for t in airflow.tasks("placelake_land", r["dag_run_id"]).values()
            )
        ),
        timeout=900,
    )
    runs = [r for r in airflow.runs("placelake_land") if r["run_type"] == "backfill"]
    assert len(runs) == 2 and {r["state"] for r in runs} == {"success"}
    for run in runs:
        states = {t["state"] for t in airflow.tasks("placelake_land", run["dag_run_id"]).values()}
        assert states <= {"skipped", "success"}
    assert _bronze(airflow.home) == before  # same rows, same Delta version: not one commit
    assert _manifest_paths(airflow.home) == manifest


def test_a_failed_task_is_cleared_and_rerun_alone_and_its_asset_event_runs_the_build(airflow):
    bronze = airflow.home / "lake" / "bronze" / LATER_SOURCE
    rows_before = _bronze(airflow.home)[LATER_SOURCE][1]
    # The deliberate fault: a commit from a Delta writer newer than ours, which our reader must refuse.
    log = bronze / "_delta_log"
    latest = max(int(p.stem) for p in log.glob("*.json"))
    bad = log / f"{latest + 1:020d}.json"
    bad.write_text(json.dumps({"protocol": {"minReaderVersion": 99, "minWriterVersion": 99}}) + "\n")
    airflow.unpause("placelake")

    run_id = airflow.trigger("placelake_land")
    task = f"land_{LATER_SOURCE}"
    airflow.wait(
        "the landing run failed",
        lambda: {r["dag_run_id"]: r["state"] for r in airflow.runs("placelake_land")}.get(run_id) == "failed",
        timeout=1200,
    )
    tasks = airflow.tasks("placelake_land", run_id)
    assert tasks[task]["state"] == "failed"
    others = {t: (v["state"], v["try_number"]) for t, v in tasks.items() if t != task}
    assert {state for state, _ in others.values()} <= {"skipped", "success"}
    assert airflow.runs("placelake") == [], "nothing new landed, yet the build was scheduled"

    bad.unlink()  # the fix
    logical = airflow.api(f"dags/placelake_land/dagRuns/{urllib.parse.quote(run_id, safe='')}")["logical_date"]
    # The plain id: Airflow 3.3.2's `tasks clear` matches --task-regex as a substring, so ^…$ finds nothing.
    airflow.cli("tasks", "clear", "placelake_land", "--task-regex", task, "--only-failed",
                "--start-date", logical, "--end-date", logical, "--yes")  # fmt: skip
    airflow.wait(
        "the cleared run succeeded",
        lambda: {r["dag_run_id"]: r["state"] for r in airflow.runs("placelake_land")}.get(run_id) == "success",
        timeout=900,
    )
    tasks = airflow.tasks("placelake_land", run_id)
    assert tasks[task]["state"] == "success"
    # Only the cleared task ran again: every other task kept its one try and its state.
    assert {t: (v["state"], v["try_number"]) for t, v in tasks.items() if t != task} == others
    after = _bronze(airflow.home)[LATER_SOURCE]
    assert LATER in after[2] and after[1] > rows_before

    # Its bronze Asset event scheduled the build, which ran every stage to success.
    runs = airflow.wait("the build finished", lambda: airflow.settled("placelake", count=1), timeout=2400)
    assert [(r["run_type"], r["state"]) for r in runs] == [("asset_triggered", "success")]
    stages = airflow.tasks("placelake", runs[0]["dag_run_id"])
    assert {t: v["state"] for t, v in stages.items() if t != "watcher"} == dict.fromkeys(
        ["clean", "link", "curate", "gate", "publish", "report"], "success"
    )
    for table in ("person", "care_event", "place_month"):
        assert DeltaTable(str(airflow.home / "lake" / "gold" / table)).to_pyarrow_table().num_rows > 0
