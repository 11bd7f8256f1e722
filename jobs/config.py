"""The one configuration object: every path and setting a stage needs.

Everything lives under one root, ``PLACELAKE_HOME``; pointing that root at an
object store and ``PLACELAKE_SPARK_MASTER`` at a cluster is all it takes to
move the lake.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Maven Central serves the Delta JVM artifacts up to 4.4.0 (no 4.4.1 jar was
# published); the delta-spark 4.4.1 Python package is byte-identical to 4.4.0
# apart from its version string, so the pair is consistent.
DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.4.0"


def _is_uri(path: str) -> bool:
    return "://" in path


@dataclass(frozen=True)
class Settings:
    home: str
    spark_master: str = "local[*]"
    jars_dir: Path = REPO_ROOT / ".cache" / "jars"
    shuffle_partitions: int = 4
    # Tables written side by side in one Spark session (jobs.fanout): each source's bronze when
    # landing, its history and silver when cleaning. 1: one at a time.
    table_threads: int = 2
    # Processes that parse delivered files side by side when landing on a local lake (see jobs.land.Parsers).
    land_processes: int = 2
    # Staged gold (Parquet bytes) up to which a local lake's gold gate validates in memory (jobs.gate).
    gate_memory_bytes: int = 2 * 2**30
    # Where Splink trains and scores (jobs.linkage.model.ENGINES): auto is DuckDB in the driver's process
    # while Spark runs local[...], Spark on a cluster.
    link_engine_choice: str = "auto"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = env.get("PLACELAKE_HOME", str(REPO_ROOT / "var"))
        if not _is_uri(home):
            home = str(Path(home).resolve())
        return cls(
            home=home,
            spark_master=env.get("PLACELAKE_SPARK_MASTER", "local[*]"),
            jars_dir=Path(env.get("PLACELAKE_JARS_DIR", str(REPO_ROOT / ".cache" / "jars"))),
            shuffle_partitions=int(env.get("PLACELAKE_SHUFFLE_PARTITIONS", "4")),
            table_threads=int(env.get("PLACELAKE_TABLE_THREADS", "2")),
            land_processes=int(env.get("PLACELAKE_LAND_PROCESSES", str(os.cpu_count() or 1))),
            gate_memory_bytes=int(env.get("PLACELAKE_GATE_MEMORY_BYTES", str(2 * 2**30))),
            link_engine_choice=env.get("PLACELAKE_LINK_ENGINE", "auto"),
        )

    def __post_init__(self) -> None:
        if self.link_engine_choice not in ("auto", "spark", "duckdb"):
            raise ValueError(f"PLACELAKE_LINK_ENGINE={self.link_engine_choice!r}: expected auto, spark or duckdb")

    def path(self, *parts: str) -> str:
        return "/".join([self.home.rstrip("/"), *parts])

    @property
    def landing(self) -> str:
        return self.path("landing")

    @property
    def reports(self) -> str:
        return self.path("reports")

    @property
    def airflow_home(self) -> str:
        return self.path("airflow")

    def table(self, layer: str, name: str) -> str:
        """Path of a Delta table: ``lake/<layer>/<name>`` (layer may be nested)."""
        return self.path("lake", layer, name)

    def is_local(self) -> bool:
        return not _is_uri(self.home)

    @property
    def link_engine(self) -> str:
        """spark or duckdb: PLACELAKE_LINK_ENGINE, or for auto, duckdb on a local Spark and spark on a cluster."""
        if self.link_engine_choice != "auto":
            return self.link_engine_choice
        return "duckdb" if self.spark_master.startswith("local") else "spark"
