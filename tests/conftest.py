"""One Spark session for the whole test run, tuned for tiny data.

Never call spark.stop() in a test: every test shares this JVM.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

# Airflow reads its configuration at import time: point it at a throwaway
# home (SQLite, no example DAGs) before any test imports it.
# Removed when the run ends: every pytest run used to leave one behind in /tmp.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="placelake-test-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parent.parent / "dags"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# pandas-on-Spark (imported by a dependency) warns unless this is set before its import; it is what it would set.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
# py4j logs from __del__ at interpreter exit, after pytest has closed its streams.
logging.getLogger("py4j").setLevel(logging.WARNING)
# A fresh random key per test run: no key ever lives in the repository.
os.environ.setdefault("PLACELAKE_PSEUDONYM_KEY", secrets.token_hex(32))


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    from jobs.config import Settings

    home = tmp_path_factory.mktemp("placelake-home")
    return Settings.from_env(
        {
            "PLACELAKE_HOME": str(home),
            # Two threads: this machine has two cores, and tests also run a pipeline subprocess.
            "PLACELAKE_SPARK_MASTER": "local[2]",
            # Tiny frames: one shuffle partition avoids hundreds of empty tasks.
            "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        }
    )


@pytest.fixture(scope="session")
def spark(settings):
    from jobs.spark import get_spark

    os.environ.setdefault("PLACELAKE_DRIVER_MEMORY", "2g")  # leave room for the pipeline subprocess
    session = get_spark(settings, app_name="placelake-tests")
    # Adaptive execution re-plans tiny queries for no gain and makes plans vary.
    session.conf.set("spark.sql.adaptive.enabled", "false")
    # Tiny frames: compiling Java for every new query shape costs more than evaluating the rows
    # (test_cleaning alone: 287 s with code generation, 271 s without whole-stage code generation,
    # 223 s with expressions interpreted too). Spark's interpreted path gives the same results;
    # the pipeline subprocesses the integration tests start keep Spark's code generation.
    session.conf.set("spark.sql.codegen.wholeStage", "false")
    session.conf.set("spark.sql.codegen.factoryMode", "NO_CODEGEN")
    yield session


@pytest.fixture(autouse=True)
def _reset_catalog(request):
    """Temp views made by one test must not leak into the next."""
    yield
    if "spark" in request.fixturenames:
        session = request.getfixturevalue("spark")
        # SHOW VIEWS, not catalog.listTables(): the latter cannot decode its rows with code generation off.
        for view in session.sql("SHOW VIEWS").collect():
            if view.isTemporary:
                session.catalog.dropTempView(view.viewName)
