"""Helpers for the reliability suite: run placelake as an operator does, and read what a lake holds."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pipelines
from hostile import Kind
from pipelines import Result
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


def run(home: Path, log_name: str, **extra_env: str) -> Result:
    return pipelines.run(home, PEOPLE, RUN_DATE, log_name=log_name, **extra_env)


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


def manifest_sources(spark, settings: Settings) -> list[str]:
    """The sources the landing manifest records files of (none when it does not exist yet)."""
    path = settings.table("ops", "landing_manifest")
    if not lake.table_exists(spark, path):
        return []
    return sorted(r[0] for r in lake.read(spark, path).select("source").distinct().collect() if r[0])


def duplicate_keys(spark, path: str, keys: list[str]) -> int:
    """Rows sharing a key with another row: 0 when every key is unique."""
    df = lake.read(spark, path)
    return df.groupBy(*keys).count().where(F.col("count") > 1).count()
