"""Helpers for the reliability suite: run placelake as an operator does, and read what a lake holds."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hostile import Kind
from pyspark.sql import functions as F

from jobs import lake
from jobs.config import Settings
from jobs.gate import content_fingerprint

PEOPLE = 300
RUN_DATE = "2026-11-01"
LAYERS = ("bronze", "silver", "gold", "quarantine", "ops")
# Bookkeeping that names the run or the moment, not the data: a re-run writes its own.
PATHS = {"_source_file", "source_file", "path"}
VOLATILE = {"run_id", "batch_id", "_batch_id", "_landed_at", "landed_at", "checked_at", "validated_at", "changed_at"}


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    def tail(self) -> str:
        return f"placelake {' '.join(self.args)} -> {self.returncode}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


def placelake_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PLACELAKE_HOME": str(home),
        "PLACELAKE_SPARK_MASTER": "local[2]",
        "PLACELAKE_SHUFFLE_PARTITIONS": "1",
        "PLACELAKE_DRIVER_MEMORY": "2g",
        **extra,
    }
    env.pop("AIRFLOW_HOME", None)  # the run sets its own, under PLACELAKE_HOME
    return env


def start(home: Path, *args: str, log_name: str, **extra_env: str) -> tuple[subprocess.Popen, Path]:
    """Start `python -m jobs.cli <args>` in its own process group (so the Spark JVM can be killed with it)."""
    logs = home.parent / f"{home.name}-logs"
    logs.mkdir(exist_ok=True)
    out = logs / log_name
    with open(f"{out}.out", "w") as stdout, open(f"{out}.err", "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.cli", *args],
            env=placelake_env(home, **extra_env),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    return proc, out


def finish(proc: subprocess.Popen, out: Path, args: tuple[str, ...], started: float, **wait) -> Result:
    returncode = wait_for(proc, **wait)
    try:
        # The process is gone; its JVM may not be yet. A crash takes everything with it.
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return Result(
        args,
        returncode,
        Path(f"{out}.out").read_text(errors="replace"),
        Path(f"{out}.err").read_text(errors="replace"),
        time.monotonic() - started,
    )


def wait_for(proc: subprocess.Popen, timeout: float = 2700, kill_when: Callable[[], bool] | None = None) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"placelake took more than {timeout}s")
        if kill_when is not None and kill_when():
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run, JVM included, as a power cut would
        time.sleep(0.5)
    return proc.returncode


def placelake(home: Path, *args: str, log_name: str, kill_when=None, **extra_env: str) -> Result:
    started = time.monotonic()
    proc, out = start(home, *args, log_name=log_name, **extra_env)
    return finish(proc, out, args, started, kill_when=kill_when)


def run(home: Path, log_name: str, kill_when=None, **extra_env: str) -> Result:
    return placelake(
        home, "run", "--people", str(PEOPLE), "--date", RUN_DATE, log_name=log_name, kill_when=kill_when, **extra_env
    )


@dataclass
class Lake:
    home: Path
    settings: Settings
    results: list[Result]
    kinds: list[Kind]
    after: dict = field(default_factory=dict)  # what each crash left behind, by kill point


def lake_settings(home: Path) -> Settings:
    return Settings.from_env({"PLACELAKE_HOME": str(home)})


def new_lake(tmp_path_factory, place, name: str) -> Lake:
    template, kinds = place
    home = tmp_path_factory.mktemp(name) / "home"
    shutil.copytree(template, home, symlinks=True)
    return Lake(home, lake_settings(home), [], kinds)


def lake_tables(settings: Settings) -> dict[str, str]:
    """Every Delta table of the lake, as layer/name -> path."""
    found = {}
    for layer in LAYERS:
        for name, path in lake.table_paths(settings, layer).items():
            found[f"{layer}/{name}"] = path
    for name, path in lake.table_paths(settings, "staging/gold").items():
        found[f"staging/gold/{name}"] = path
    return found


def table_state(spark, path: str) -> tuple[int, int]:
    """(rows, fingerprint of every column but run bookkeeping), file paths relative to the lake's home
    (two lakes of the same place hold the same files under different homes)."""
    df = lake.read(spark, path)
    home = path.rsplit("/lake/", 1)[0] + "/"
    columns = [
        F.replace(F.col(c), F.lit(home), F.lit("")).alias(c) if c in PATHS else F.col(c)
        for c in df.columns
        if c not in VOLATILE
    ]
    return content_fingerprint(df.select(*columns))


def lake_state(
    spark, settings: Settings, layers=("bronze", "silver", "gold", "quarantine")
) -> dict[str, tuple[int, int]]:
    return {
        name: table_state(spark, path) for name, path in lake_tables(settings).items() if name.split("/")[0] in layers
    }


def person_ids(spark, settings: Settings) -> set[tuple[str, str, str]]:
    links = lake.read(spark, settings.table("silver", "person_link"))
    return {(r.source, r.record_id, r.person_id) for r in links.select("source", "record_id", "person_id").collect()}


def person_keys(spark, settings: Settings) -> set[str]:
    return {r.person_key for r in lake.read(spark, settings.table("gold", "person")).select("person_key").collect()}


def gold_versions(spark, settings: Settings) -> dict[str, int | None]:
    return {name: lake.version(spark, path) for name, path in lake.table_paths(settings, "gold").items()}


def manifest_rows(spark, settings: Settings) -> list[tuple]:
    manifest = lake.read(spark, settings.table("ops", "landing_manifest"))
    return sorted(manifest.select("path", "sha256", "status", "rule").collect())


def duplicate_keys(spark, path: str, keys: list[str]) -> int:
    """Rows sharing a key with another row: 0 when every key is unique."""
    df = lake.read(spark, path)
    return df.groupBy(*keys).count().where(F.col("count") > 1).count()


def splink_started(home: Path) -> Callable[[], bool]:
    """True once linkage has written its first intermediate file: the link stage is under way."""
    scratch = home / "tmp" / "splink"
    return lambda: scratch.is_dir() and any(p.is_file() for p in scratch.rglob("*"))
