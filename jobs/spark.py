"""The Spark session factory, and the one-time fetch of the Delta jars.

A session is created only at the edge (the CLI, a DAG task, the test
fixture) and passed in everywhere else.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.config import DELTA_PACKAGE, Settings

log = logging.getLogger(__name__)

_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


_IVY_SETTINGS = """<ivysettings>
  <settings defaultResolver="central"/>
  <caches defaultCacheDir="{cache}"/>
  <resolvers>
    <ibiblio name="central" m2compatible="true" root="https://repo1.maven.org/maven2/"/>
  </resolvers>
</ivysettings>
"""


class JarsMissing(RuntimeError):
    pass


def delta_jars(settings: Settings) -> list[str]:
    """The local Delta jars; a clear error if setup has not fetched them."""
    jars = sorted(str(p) for p in Path(settings.jars_dir).glob("*.jar"))
    if not any("delta-spark" in Path(j).name for j in jars):
        raise JarsMissing(
            f"no Delta jars in {settings.jars_dir}: run `make setup` (or `placelake setup`) "
            "once while Maven Central is reachable"
        )
    return jars


def fetch_delta_jars(settings: Settings) -> list[str]:
    """Resolve Delta and its dependencies from Maven Central into jars_dir, once.

    Spark's own Ivy resolver does the work, in a throwaway JVM; afterwards
    every session loads the jars from disk and needs no network.
    """
    target = Path(settings.jars_dir)
    try:
        return delta_jars(settings)
    except JarsMissing:
        pass
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="placelake-ivy-") as ivy:
        # Maven Central only: Spark's default chain also asks spark-packages,
        # which this network (and many trust networks) cannot reach.
        settings_file = Path(ivy, "ivysettings.xml")
        settings_file.write_text(_IVY_SETTINGS.format(cache=Path(ivy, "cache")), encoding="utf-8")
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("placelake-fetch-jars")
            .config("spark.jars.packages", DELTA_PACKAGE)
            .config("spark.jars.ivy", ivy)
            .config("spark.jars.ivySettings", str(settings_file))
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        spark.stop()
        for jar in Path(ivy, "jars").glob("*.jar"):
            shutil.copy2(jar, target / jar.name)
    return delta_jars(settings)


def similarity_jar() -> list[str]:
    """Splink's Scala similarity UDFs (jaro_winkler, ...) for Spark 4, shipped inside the splink package.

    Loaded with the Delta jars so linkage runs offline; empty if splink is not installed.
    """
    spec = importlib.util.find_spec("splink")
    if spec is None or spec.origin is None:
        return []
    jar = Path(spec.origin).parent / "internals" / "files" / "spark_jars" / "scala-udf-similarity-0.2.1_spark4.x.jar"
    return [str(jar)] if jar.exists() else []


def get_spark(settings: Settings, app_name: str = "placelake") -> SparkSession:
    """A Delta-enabled session on the configured master, loading local jars only."""
    jars = delta_jars(settings) + similarity_jar()
    # Python workers must run the interpreter that has our dependencies (pandas, pyarrow).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(settings.spark_master)
        .appName(app_name)
        .config("spark.jars", ",".join(jars))
        # Timestamps written by one machine must read the same on another.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        # Delta's default of 50 partitions for log replay dwarfs a small table's work.
        .config("spark.databricks.delta.snapshotPartitions", str(settings.shuffle_partitions))
        # The progress bar interleaves with the run's own log lines.
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("PLACELAKE_DRIVER_MEMORY", "4g"))
        # Our Delta tables are path-based; keep any stray catalog files out of the repo.
        .config("spark.sql.warehouse.dir", settings.path("warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={settings.path('derby')}")
    )
    for key, value in _DELTA_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def releases_what_it_cached(stage):
    """Decorator for a stage (a function of the session, then anything, returning a summary, never a
    frame): the RDDs it left persisted are released when it returns or raises.

    A localCheckpoint's blocks are otherwise freed only once the JVM collects its RDD (Spark's
    ContextCleaner), which on a large heap may not happen within a run: every stage of `placelake run`
    shares one JVM (dag.test), and cached blocks of an earlier stage hold storage memory a later
    stage's joins and sorts could use. At 100,000 people each curate left 6 more cached RDDs (157 MiB).
    """

    @functools.wraps(stage)
    def run(spark: SparkSession | None, *args, **kwargs):
        if spark is None:  # a stage that runs without Spark on a local lake
            return stage(spark, *args, **kwargs)
        context = spark.sparkContext._jsc
        before = set(context.getPersistentRDDs().keySet())
        try:
            return stage(spark, *args, **kwargs)
        finally:
            for rdd_id in set(context.getPersistentRDDs().keySet()) - before:
                # What RDD.unpersist does, without its warning for each localCheckpoint (one WARN line
                # per checkpoint, 38 in a 500-person `placelake run`): the stage is done with them.
                context.sc().unpersistRDD(rdd_id, False)

    return run
