"""The end-to-end pipeline runs the integration tests share, started in the background.

`placelake run` is a subprocess with its own Spark JVM: on two cores it takes
minutes, most of them waiting on small Spark jobs. So when the session starts,
a background thread runs the whole pipeline on a generated place, keeps a
copy of that lake, and runs it again on the copy with a gate that must fail,
while the other tests use the test session's own Spark. The tests that need
a run wait for it, and are moved to the end of the session so they rarely do.
"""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pipelines
import pytest
from pipelines import Result

from jobs.config import REPO_ROOT, Settings

PEOPLE = 500  # enough that every cohort has members (at 300 the high-intensity users can be none)
FIRST_RUN, SECOND_RUN = "2026-11-01", "2026-11-02"
IMPOSSIBLE_RULE = "person.impossible_for_this_test"
FIXTURES = {"pipeline_run", "failed_gate_run"}


@dataclass
class Run:
    settings: Settings
    result: Result
    alerts: list[dict] = field(default_factory=list)
    broken_rule: str | None = None  # the rule this run was given to fail


def _settings(home: Path) -> Settings:
    return Settings.from_env(
        {"PLACELAKE_HOME": str(home), "PLACELAKE_SPARK_MASTER": "local[2]", "PLACELAKE_SHUFFLE_PARTITIONS": "1"}
    )


def run_pipeline(settings: Settings, run_date: str, **extra_env: str) -> Result:
    """`placelake run` on a PEOPLE-person place under settings.home, as `make run` would."""
    result = pipelines.run(Path(settings.home), PEOPLE, run_date, log_name="run", timeout=1800, **extra_env)
    if result.returncode != 0:
        sys.stderr.write(result.tail(10000))
    return result


def _first_run(root: Path) -> Run:
    """A clean run; then a copy of its lake, taken before any test touches it, for the second run."""
    settings = _settings(root / "home")
    run = Run(settings, run_pipeline(settings, FIRST_RUN))
    if run.result.returncode == 0:
        shutil.copytree(settings.home, root / "copy", symlinks=True)
    return run


def _failed_gate_run(root: Path) -> Run:
    """The copy run again with one gold rule no table can pass, alerts going to a local webhook."""
    settings = _settings(root / "copy")
    rules = root / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", rules)
    with open(rules / "gold" / "person.yaml", "a", encoding="utf-8") as handle:
        handle.write(
            f"  - id: {IMPOSSIBLE_RULE}\n"
            "    expectation: expect_table_row_count_to_be_between\n"
            "    kwargs: {max_value: 0}\n"
            "    severity: fail\n"
            "    description: A rule no real table can pass.\n"
        )
    alerts: list[dict] = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            alerts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_pipeline(
            settings,
            SECOND_RUN,
            PLACELAKE_EXPECTATIONS_DIR=str(rules),
            PLACELAKE_ALERT_WEBHOOK=f"http://127.0.0.1:{server.server_address[1]}/alert",
        )
    finally:
        server.shutdown()
        server.server_close()
    return Run(settings, result, alerts, IMPOSSIBLE_RULE)


class _Background:
    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.runs: dict[str, Future] = {}

    def start(self, root: Path, failed_gate: bool = True) -> None:
        # One worker: the runs follow each other, so at most one pipeline JVM competes with the tests.
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self.runs["pipeline_run"] = self.pool.submit(_first_run, root)
        if failed_gate:  # the second run only when a collected test reads it
            self.runs["failed_gate_run"] = self.pool.submit(self._after_first, root)

    def _after_first(self, root: Path) -> Run | None:
        first = self.runs["pipeline_run"].result()
        return _failed_gate_run(root) if first.result.returncode == 0 else None

    def get(self, name: str, root_factory) -> Run:
        if self.pool is None:  # collected some other way (e.g. a keyword at run time): start now
            self.start(root_factory())
        return self.runs[name].result()

    def stop(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


_background = _Background()


def _needs_a_run(item: pytest.Item) -> bool:
    return bool(FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    # Tests waiting on a run go last (the failed-gate test after the others: it needs the second run).
    items.sort(key=lambda item: (_needs_a_run(item), "failed_gate_run" in getattr(item, "fixturenames", ())))


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    if any(_needs_a_run(item) for item in session.items):
        failed_gate = any("failed_gate_run" in getattr(item, "fixturenames", ()) for item in session.items)
        _background.start(session.config._tmp_path_factory.mktemp("pipeline"), failed_gate)


def pytest_sessionfinish(session):
    _background.stop()


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Run:
    """The first run on a fresh generated place (landing generated by `placelake run` itself)."""
    return _background.get("pipeline_run", lambda: tmp_path_factory.mktemp("pipeline"))


@pytest.fixture(scope="session")
def failed_gate_run(pipeline_run, tmp_path_factory) -> Run:
    """A second run, on a copy of the first's lake, whose gold gate fails."""
    run = _background.get("failed_gate_run", lambda: tmp_path_factory.mktemp("pipeline"))
    assert run is not None, "the first pipeline run failed"
    return run
