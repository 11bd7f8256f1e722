"""Delta reads and writes, each idempotent: re-running a write with the same
input changes nothing (the house rule for every stage)."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime

import pyarrow as pa
from delta.tables import DeltaTable
from py4j.protocol import Py4JError
from pyspark.sql import DataFrame, SparkSession

from jobs import fs
from jobs.config import Settings


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def _latest_commit(spark: SparkSession, path: str) -> tuple[int, datetime]:
    """(version, commit time as naive UTC) of the table's latest commit.

    From Delta's log on the driver (DeltaLog.update), not DeltaTable.history: history is a
    DataFrame, and reading it costs a Spark job each time, which a clean pays several times a source.
    """
    try:
        jvm = spark._jvm
        none = jvm.scala.Option.empty()
        snapshot = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path).update(
            False, none, none
        )
        return int(snapshot.version()), datetime.fromtimestamp(snapshot.timestamp() / 1000, UTC).replace(tzinfo=None)
    except Py4JError:  # Delta's internal API moved: the public one, one job dearer
        row = DeltaTable.forPath(spark, path).history(1).select("version", "timestamp").first()
        return int(row[0]), row[1]


def version(spark: SparkSession, path: str) -> int | None:
    if not table_exists(spark, path):
        return None
    return _latest_commit(spark, path)[0]


def committed_at(spark: SparkSession, path: str) -> datetime:
    """When the table's latest commit was made (naive UTC), to tell which of two tables was written last."""
    return _latest_commit(spark, path)[1]


def append_once(
    df: DataFrame, path: str, app_id: str, user_metadata: str | None = None, properties: dict | None = None
) -> None:
    """Append df unless this app_id has already been appended to the table.

    Delta records (txnAppId, txnVersion) in the same commit as the data, so a
    task retried after a crash can never append the same batch twice.
    user_metadata, if given, is kept in the commit's history (counts and
    hashes only: history is readable by anyone who can list the table).
    properties (delta.* table properties) take effect when this write creates the table.
    """
    writer = (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", 0)
        .option("mergeSchema", "false")
    )
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    for key, value in (properties or {}).items():
        writer = writer.option(key, value)
    writer.save(path)


def last_commit_rows(spark: SparkSession, path: str) -> int:
    """Rows the table's latest commit wrote, from its log (no scan)."""
    metrics = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()[0] or {}
    return int(metrics.get("numOutputRows", 0))


def recent_user_metadata(spark: SparkSession, path: str, limit: int = 10) -> list[str]:
    """userMetadata of the table's latest commits, newest first (from its history)."""
    if not table_exists(spark, path):
        return []
    history = DeltaTable.forPath(spark, path).history(limit).select("userMetadata").collect()
    return [r.userMetadata for r in history if r.userMetadata]


# --------------------------------------------------------------------------- delta-rs, for a lake on local disk
# Landing commits small, blind appends to many tables. delta-rs makes each one in milliseconds on the
# driver; Spark's writer first rebuilds the table's snapshot and plans a job (0.5-2 s a commit on
# two cores). The tables are the same Delta tables either way: Spark reads, DELETEs and appends to them.


# Spark's types as Arrow's, by name: a DDL string says long, a StructType's simpleString bigint.
_ARROW_TYPES = {
    "string": pa.string(),
    "long": pa.int64(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "date": pa.date32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "array<string>": pa.list_(pa.string()),
}


def arrow_schema(columns) -> pa.Schema:
    """The Arrow schema of a Spark schema (a DDL string or a StructType): one declaration for both writers."""
    if isinstance(columns, str):
        pairs = (c.split() for c in columns.split(","))
    else:
        pairs = ((f.name, f.dataType.simpleString()) for f in columns)
    return pa.schema([pa.field(name, _ARROW_TYPES[kind]) for name, kind in pairs])


def append_once_local(
    table: pa.Table,
    path: str,
    app_id: str,
    user_metadata: str | None = None,
    properties: dict | None = None,
    row_group_rows: int | None = None,
) -> bool:
    """append_once by delta-rs; False (nothing written) when app_id was appended before.

    The (app_id, 0) transaction goes in the commit with the data, exactly as Spark's
    txnAppId does, so either writer skips a batch the other has already appended.
    An empty table still commits: the commit's metadata names what it landed.
    row_group_rows: Spark splits a Parquet file between tasks only at row groups, and
    delta-rs writes a commit as one file of one row group up to a million rows.
    """
    from deltalake import CommitProperties, DeltaTable, write_deltalake
    from deltalake.transaction import Transaction

    if DeltaTable.is_deltatable(path) and DeltaTable(path).transaction_version(app_id) is not None:
        return False
    commit = CommitProperties(
        custom_metadata={"userMetadata": user_metadata} if user_metadata is not None else None,
        app_transactions=[Transaction(app_id, 0)],
    )
    writer = _writer_properties(row_group_rows) if row_group_rows else None
    write_deltalake(
        path, table, mode="append", configuration=properties, commit_properties=commit, writer_properties=writer
    )
    return True


def last_commit_rows_local(path: str) -> int:
    """Rows the table's latest commit wrote, when delta-rs made it (append_once_local), from its log."""
    from deltalake import DeltaTable

    metrics = DeltaTable(path).history(1)[0].get("operationMetrics") or {}
    return int(metrics.get("num_added_rows", 0))  # delta-rs's name for Spark's numOutputRows


def recent_user_metadata_local(path: str, limit: int = 10) -> list[str]:
    """recent_user_metadata by delta-rs: no Spark job, for a local table."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return []
    return [c["userMetadata"] for c in DeltaTable(path).history(limit) if c.get("userMetadata")]


def read_local(path: str, columns: list[str] | None = None, where=None) -> pa.Table | None:
    """Columns (default all) of a local table by delta-rs (where: a pyarrow.dataset expression); None if
    there is no table."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(path):
        return None
    return dataset_local(path).to_table(columns=columns, filter=where)


def dataset_local(path: str, version: int | None = None):
    """A local table (its current version, or version) as a pyarrow dataset: scanned when queried, not read now."""
    from deltalake import DeltaTable

    return DeltaTable(path, version=version).to_pyarrow_dataset()


# What one DuckDB session over local tables may hold (clean's and the link stage's whole-table work,
# two sources side by side): beyond it joins and windows spill to a folder of their own. Unbounded, a
# 1M place's increment held 2.7 GiB a source while rewriting its history.
LOCAL_SQL_MEMORY = "512MB"


@contextmanager
def local_sql(memory_limit: str = LOCAL_SQL_MEMORY):
    """A DuckDB session within memory_limit, spilling to a temporary folder removed after it."""
    import duckdb

    with (
        tempfile.TemporaryDirectory(prefix="placelake-duckdb-") as spill,
        duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill}) as sql,
    ):
        yield sql


def streamed(rows, schema: pa.Schema) -> pa.RecordBatchReader:
    """A DuckDB query's rows as batches of schema (its columns, in its order and types), computed as a
    writer (replace_local) asks for them: a whole table is never held in memory at once."""
    return pa.RecordBatchReader.from_batches(
        schema, (batch.select(schema.names).cast(schema) for batch in rows.to_arrow_reader(GROUP_ROWS))
    )


def exists_local(path: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(path)


def size_local(paths: list[str]) -> int:
    """Bytes of the data files in the current versions of these local tables (from their logs)."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    return sum(
        pc.sum(pa.table(DeltaTable(p).get_add_actions()).column("size_bytes")).as_py() or 0
        for p in paths
        if DeltaTable.is_deltatable(p)
    )


# delta-rs writes a commit as one Parquet file of one row group up to a million rows; Spark
# splits a file between tasks only at row groups, so a table Spark reads next is written in these.
GROUP_ROWS = 131_072


def _writer_properties(row_group_rows: int):
    """delta-rs's Parquet settings for rows in groups of row_group_rows, Snappy-compressed as Spark writes.

    Given any WriterProperties, delta-rs leaves the columns uncompressed unless told: a 100,000-person
    place's silver gp_registrations took 6.8 MB so, 4.5 MB in Snappy (3.0 MB as Spark wrote it).
    """
    from deltalake import WriterProperties

    return WriterProperties(max_row_group_size=row_group_rows, compression="SNAPPY")


def replace_local(
    table: pa.Table | pa.RecordBatchReader, path: str, where: str | None = None, user_metadata: str | None = None
) -> None:
    """replace() by delta-rs, in one commit: the rows matching where (a SQL predicate) give way to table,
    or with no where the whole table does, schema included (as replace's overwriteSchema). A reader's
    batches are written as they come."""
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    commit = CommitProperties(custom_metadata={"userMetadata": user_metadata} if user_metadata is not None else None)
    writer = _writer_properties(GROUP_ROWS)
    if not DeltaTable.is_deltatable(path):
        write_deltalake(path, table, mode="append", commit_properties=commit, writer_properties=writer)
    elif where is None:
        write_deltalake(
            path, table, mode="overwrite", schema_mode="overwrite", commit_properties=commit, writer_properties=writer
        )
    else:
        write_deltalake(
            path, table, mode="overwrite", predicate=where, commit_properties=commit, writer_properties=writer
        )


def upsert(spark: SparkSession, df: DataFrame, path: str, keys: list[str]) -> None:
    """Insert new rows and update changed ones, keyed by keys."""
    if not table_exists(spark, path):
        df.write.format("delta").mode("append").save(path)
        return
    condition = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(df.alias("s"), condition)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def replace(
    df: DataFrame, path: str, where: str | None = None, user_metadata: str | None = None, merge_schema: bool = False
) -> None:
    """Overwrite the table (or the slice matching where) in one commit; user_metadata is kept in its history.

    merge_schema: a slice may bring columns the table lacks (added, null in its other rows).
    """
    if where and not table_exists(df.sparkSession, path):
        where = None  # nothing to replace yet: the first write creates the table
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "false" if where else "true")
    if where:
        writer = writer.option("replaceWhere", where)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
    if user_metadata is not None:
        writer = writer.option("userMetadata", user_metadata)
    writer.save(path)


def table_paths(settings: Settings, layer: str) -> dict[str, str]:
    """Delta tables that exist in a layer, by name (local lakes only list cheaply)."""
    root = settings.path("lake", layer)
    names = sorted({f.path[len(root) + 1 :].split("/", 1)[0] for f in fs.list_files(root) if "/_delta_log/" in f.path})
    return {name: f"{root}/{name}" for name in names}
