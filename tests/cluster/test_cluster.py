"""Cluster mode: the same pipeline, unchanged, on a real Spark standalone cluster.

`make test-cluster` runs this (it is not part of `make test`): it starts a
master and two workers on 127.0.0.1 from the pyspark distribution, runs
`placelake run` on a small place against spark://127.0.0.1:<port>, runs it
again in local mode on the same place, and checks every gold table is the same
in both; then stops the cluster.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pipelines
import pyspark
import pytest

from jobs import lake
from jobs.contracts import gold_contracts
from jobs.gate import content_fingerprint

pytestmark = pytest.mark.cluster

SPARK_HOME = Path(pyspark.__file__).resolve().parent
# Enough people for every gold table to hold rows: at 300 the generated place has one person with the
# five A&E attendances in a year that cohort_hiu needs, and the pipeline keeps none (checked 4 December).
PEOPLE = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _master_state(ui_port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
            return json.load(response)
    except OSError:
        return None


def _wait_for(what: str, condition, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise TimeoutError(f"Spark standalone cluster: {what} not ready after {timeout:.0f}s")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two one-core workers; yields (master URL, master UI port)."""
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_LOCAL_DIRS": str(work / "tmp"),
        "SPARK_NO_DAEMONIZE": "1",
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_url = f"spark://127.0.0.1:{port}"
    logs = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        return subprocess.Popen([spark_class, *args], env=env, stdout=log, stderr=subprocess.STDOUT)

    processes = [
        start(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui_port),
        )
    ]
    try:
        _wait_for("master", lambda: _master_state(ui_port) is not None)
        for i in (1, 2):
            processes.append(
                start(
                    f"worker-{i}",
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "2g",
                    "--webui-port",
                    str(_free_port()),
                    "--work-dir",
                    str(work / f"worker-{i}"),
                    master_url,
                )
            )
        _wait_for("two workers", lambda: (_master_state(ui_port) or {}).get("aliveworkers") == 2)
        yield master_url, ui_port
    finally:
        pipelines.stop(processes)
        for log in logs:
            log.close()


def _run(home: Path, master: str) -> pipelines.Result:
    result = pipelines.run(
        home,
        PEOPLE,
        "2026-11-01",
        log_name="run",
        timeout=1800,
        PLACELAKE_SPARK_MASTER=master,
        PLACELAKE_SHUFFLE_PARTITIONS="2",
        PLACELAKE_DRIVER_MEMORY="1g",
    )
    if result.returncode != 0:
        sys.stderr.write(result.tail(5000))
    return result


def test_the_pipeline_publishes_the_same_gold_on_a_cluster_as_locally(cluster, tmp_path, spark):
    master_url, ui_port = cluster
    assert _run(tmp_path / "on-cluster", master_url).returncode == 0
    # The run really used the cluster: the master saw the application through to the end.
    finished = (_master_state(ui_port) or {}).get("completedapps", [])
    assert "placelake" in [app["name"] for app in finished]

    assert _run(tmp_path / "local", "local[2]").returncode == 0
    for contract in gold_contracts():
        on_cluster = lake.read(spark, str(tmp_path / "on-cluster" / "lake" / "gold" / contract.name))
        local = lake.read(spark, str(tmp_path / "local" / "lake" / "gold" / contract.name))
        rows, _ = content_fingerprint(local)
        assert rows > 0, f"gold.{contract.name} is empty: nothing was compared"
        assert content_fingerprint(on_cluster) == content_fingerprint(local), f"gold.{contract.name} differs"
