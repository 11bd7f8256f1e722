"""Right to erasure: remove a person from every layer, and from every earlier version of every table.

`placelake forget --nhs-number N` finds everyone linked to a record carrying N
(on any source, or on their best-known demographics), then every record of
those people, and removes:

- landing/   the lines of their records, from each file that held one (the file is
             rewritten; the manifest records the new hash with status ``erased``,
             so the rewritten file is never landed again, and a re-sent original is
             still a file already handled); lines carrying N in rejected files too
- bronze     their rows (by file and line)
- silver     their records and every version of them (``<source>_history``),
             their links, their person rows and person_id history; the opt-out
             list's row for N; the linkage state (link_identities, link_term_counts)
             whole, which the next link saves again
- quarantine rows from their lines (land and clean), and gate rows naming them
- staging/gold and gold   rows keyed by their person_key or event_key
- tmp/       Splink's intermediate files a crashed run may have left

then VACUUMs every table it changed with retention 0, so no earlier Delta
version can be read with them in it (time travel to before the erasure fails),
and expires the log entries before the erasure (their file statistics can hold
a minimum or maximum value of a column). Aggregates (place_month,
cohort_area) are disclosure-controlled counts: the next run rebuilds them.

Recorded in lake/ops/erasures: when, who asked (the OS user), counts of
people, records, rows and files — and the number only as an HMAC with the
pseudonym key, so a repeat request can be recognised without keeping it.
"""

from __future__ import annotations

import getpass
import gzip
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import fs, lake, land
from jobs.config import Settings
from jobs.contracts import source_contracts
from jobs.link import state_paths
from jobs.privacy import pseudonym_key

log = logging.getLogger(__name__)

_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_RETENTIONS = ("delta.logRetentionDuration", "delta.deletedFileRetentionDuration")
ERASURES_SCHEMA = (
    "erasure_id string, requested_at timestamp, requested_by string, people long, records long, "
    "rows_removed long, tables_changed long, landing_files_rewritten long, vacuumed boolean"
)


class ForgetError(ValueError):
    pass


def nhs_number(text: str) -> str:
    """The 10 digits of an NHS number as typed (spaces and dashes allowed); never echoed in an error."""
    digits = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"[0-9]{10}", digits):
        raise ForgetError("an --nhs-number must be 10 digits (spaces or dashes between them are fine)")
    return digits


def _hmac(key: str, value: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def erasure_id(number: str, key: str) -> str:
    """HMAC-SHA256 of the number: recognises a repeat request, reveals nothing without the key."""
    return _hmac(key, f"erasure:{number}")


def number_pattern(numbers: list[str]) -> str:
    """A regex matching any of the numbers as 10 digits, or 3-3-4 with spaces or dashes (as delivered)."""
    forms = [rf"{n[:3]}[ -]?{n[3:6]}[ -]?{n[6:]}" for n in numbers]
    return r"(?<![0-9])(" + "|".join(forms) + r")(?![0-9])"


_LINEAGE = ["_file_sha256", "_line", "_source_file"]


def _digits(column: str) -> Column:
    return F.regexp_replace(F.col(column), r"[^0-9]", "")


@dataclass
class Found:
    person_ids: list[str]
    records: DataFrame  # source, record_id
    lineage: DataFrame  # source, _file_sha256, _line, _source_file: every bronze row of theirs
    removed: dict[str, int] = field(default_factory=dict)


def _person_sources(settings: Settings, spark: SparkSession) -> list[str]:
    return [
        c.name
        for c in source_contracts()
        if c.kind == "person_events" and lake.table_exists(spark, settings.table("silver", c.name))
    ]


def find(spark: SparkSession, settings: Settings, numbers: list[str]) -> Found:
    """Everyone linked to a record carrying one of the numbers; all their records; all their bronze rows."""
    sources = _person_sources(settings, spark)
    links_path = settings.table("silver", "person_link")
    links = lake.read(spark, links_path) if lake.table_exists(spark, links_path) else None
    carrying = [
        lake.read(spark, settings.table("silver", s))
        .where(F.col("nhs_number").isin(numbers))
        .select("source", "record_id")
        for s in sources
    ]
    ids: set[str] = set()
    if links is not None and carrying:
        seeds = reduce(DataFrame.unionByName, carrying)
        ids |= {r.person_id for r in links.join(seeds, ["source", "record_id"], "inner").select("person_id").collect()}
    person_path = settings.table("silver", "person")
    if lake.table_exists(spark, person_path):
        best = lake.read(spark, person_path).where(F.col("nhs_number").isin(numbers)).select("person_id").collect()
        ids |= {r.person_id for r in best}
    empty = spark.createDataFrame([], "source string, record_id string")
    records = reduce(DataFrame.unionByName, carrying, empty)
    if links is not None and ids:
        records = records.unionByName(links.where(F.col("person_id").isin(sorted(ids))).select("source", "record_id"))
    records = records.distinct().localCheckpoint()

    lineage = spark.createDataFrame([], "source string, _file_sha256 string, _line long, _source_file string")
    for contract in source_contracts():
        bronze_path = settings.table("bronze", contract.name)
        if not lake.table_exists(spark, bronze_path):
            continue
        bronze = lake.read(spark, bronze_path)
        mine = F.lit(False)
        if "nhs_number" in contract.column_names:
            mine = mine | _digits("nhs_number").isin(numbers)
        theirs = records.where(F.col("source") == contract.name).select(F.col("record_id").alias("_rid"))
        key = contract.record_key[0]
        rows = bronze.join(theirs, bronze[key] == theirs["_rid"], "left").where(mine | F.col("_rid").isNotNull())
        lineage = lineage.unionByName(rows.select(F.lit(contract.name).alias("source"), *_LINEAGE))
        # Every version of their records (the current one included) names its bronze row.
        history = settings.table("silver", f"{contract.name}_history")
        if lake.table_exists(spark, history) and "record_id" in lake.read(spark, history).columns:
            versions = lake.read(spark, history).join(theirs, F.col("record_id") == F.col("_rid"), "inner")
            lineage = lineage.unionByName(versions.select(F.lit(contract.name).alias("source"), *_LINEAGE))
    return Found(sorted(ids), records, lineage.distinct().localCheckpoint())


def _removed(spark: SparkSession, path: str, before: int | None) -> int:
    """Rows the commits since version before deleted, from the log's metrics (no scan)."""
    history = DeltaTable.forPath(spark, path).history().where(F.col("version") > before).collect()
    metrics = [h.operationMetrics or {} for h in history]
    return sum(int(m.get("numDeletedRows", m.get("numTargetRowsDeleted", 0))) for m in metrics)


def _count(found: Found, name: str, removed: int) -> None:
    if removed:
        found.removed[name] = found.removed.get(name, 0) + removed


def _delete(spark: SparkSession, path: str, condition: Column, found: Found, name: str) -> None:
    if not lake.table_exists(spark, path):
        return
    before = lake.version(spark, path)
    DeltaTable.forPath(spark, path).delete(condition)
    _count(found, name, _removed(spark, path, before))


def _delete_matching(spark: SparkSession, path: str, keys: DataFrame, on: list[tuple[str, str]], found, name) -> None:
    """Delete the rows whose columns match a row of keys (a MERGE: no key is ever spliced into SQL text)."""
    if not lake.table_exists(spark, path) or not {t for t, _ in on} <= set(lake.read(spark, path).columns):
        return
    before = lake.version(spark, path)
    condition = " AND ".join(f"t.`{t}` = k.`{k}`" for t, k in on)
    # One key row per target row: MERGE refuses a target row that matches two source rows.
    distinct = keys.select(*[k for _, k in on]).distinct()
    DeltaTable.forPath(spark, path).alias("t").merge(distinct.alias("k"), condition).whenMatchedDelete().execute()
    _count(found, name, _removed(spark, path, before))


def remove_from_lake(spark: SparkSession, settings: Settings, numbers: list[str], found: Found) -> None:
    key = pseudonym_key()
    lineage = found.lineage
    by_hash = [("_file_sha256", "_file_sha256"), ("_line", "_line")]
    sources = {r.source for r in lineage.select("source").distinct().collect()}
    for contract in source_contracts():
        name = contract.name
        if name not in sources:
            continue  # nothing of theirs in this source: no commit, nothing to vacuum
        _delete_matching(spark, settings.table("bronze", name), lineage, by_hash, found, f"bronze/{name}")
        _delete_matching(
            spark, settings.table("silver", f"{name}_history"), lineage, by_hash, found, f"silver/{name}_history"
        )
        # Current silver keeps the file and line of its version, not the file's hash.
        by_file = [("_source_file", "_source_file"), ("_line", "_line")]
        _delete_matching(spark, settings.table("silver", name), lineage, by_file, found, f"silver/{name}")
    ids = found.person_ids
    if ids:
        _delete(
            spark, settings.table("silver", "person_link"), F.col("person_id").isin(ids), found, "silver/person_link"
        )
        _delete(spark, settings.table("silver", "person"), F.col("person_id").isin(ids), found, "silver/person")
        history = F.col("old_person_id").isin(ids) | F.col("new_person_id").isin(ids)
        _delete(spark, settings.table("silver", "person_id_history"), history, found, "silver/person_id_history")
        # The linkage state holds every identity's features: removed whole, every version with it.
        # person_link's erasure commit carries no link's stamp, so the next link relinks every
        # record and saves the state again.
        for path in state_paths(settings).values():
            fs.remove_tree(path)

    rows = settings.path("lake", "quarantine", "rows")
    _delete_matching(
        spark, rows, lineage, [("file_sha256", "_file_sha256"), ("line", "_line")], found, "quarantine/rows"
    )
    # As curate makes them (jobs.privacy.hmac_sha256 equals Python's hmac; tests/unit/test_privacy.py).
    person_keys = [_hmac(key, i) for i in ids]
    event_keys = [_hmac(key, f"{r.source}:{r.record_id}") for r in found.records.collect()]
    # Rows as delivered (land rejects) or as the gate saw them (JSON): the number, their ids or keys.
    tokens = [*ids, *person_keys]
    named = F.col("raw").rlike(number_pattern(numbers))
    if tokens:
        named = named | reduce(lambda a, b: a | b, [F.col("raw").contains(t) for t in tokens])
    _delete(spark, rows, named, found, "quarantine/rows (named)")

    for layer in ("staging/gold", "gold"):
        for name, path in lake.table_paths(settings, layer).items():
            columns = lake.read(spark, path).columns
            condition = F.lit(False)
            if "person_key" in columns and person_keys:
                condition = condition | F.col("person_key").isin(person_keys)
            if "event_key" in columns and event_keys:
                condition = condition | F.col("event_key").isin(event_keys)
            _delete(spark, path, condition, found, f"{layer}/{name}")


def _rewritten(path: str, contract, drop_lines: set[int], pattern: re.Pattern) -> tuple[bytes, int] | None:
    """The file without the records starting on drop_lines and without lines matching pattern; None if unchanged."""
    encoding = land._text_encoding(contract) if contract else "utf-8"
    with fs.open_text(path, encoding) as text:
        physical = list(text)
    skip: set[int] = set()
    if drop_lines and contract is not None:
        for record in land.record_reader(contract)(iter(physical)):
            if record.line in drop_lines:
                skip.update(range(record.line, record.line + record.lines))
    skip.update(i for i, line in enumerate(physical, start=1) if pattern.search(line))
    if not skip:
        return None
    kept = "".join(line for i, line in enumerate(physical, start=1) if i not in skip)
    data = kept.encode(land._encoding(contract) if contract else "utf-8")
    return (gzip.compress(data, mtime=0) if fs.is_gzip(path) else data), len(skip)


def rewrite_landing(spark: SparkSession, settings: Settings, numbers: list[str], found: Found, batch_id: str) -> int:
    """Rewrite every landing file that holds them; record each new hash so it is never landed again."""
    lines_by_file: dict[str, set[int]] = {}
    for r in found.lineage.select("_source_file", "_line").collect():
        lines_by_file.setdefault(r._source_file, set()).add(r._line)
    pattern = re.compile(number_pattern(numbers))
    contracts = {c.name: c for c in source_contracts()}
    outcomes = []
    for d in land.delivered_files(settings):
        if d.symlink:
            continue  # never read, never landed
        contract = contracts.get(d.folder)
        try:
            result = _rewritten(d.path, contract, lines_by_file.get(d.path, set()), pattern)
        except (UnicodeDecodeError, EOFError, OSError):
            # A rejected file that does not decode (or a truncated gzip) cannot be rewritten line by line.
            log.warning("%s: cannot be read as text; delete it by hand if it may hold the person", d.file)
            continue
        if result is None:
            continue
        data, removed = result
        fs.write_bytes(d.path, data)
        outcomes.append(
            land.FileOutcome(
                source=d.folder, delivery=d.delivery, file=d.file, path=d.path, sha256=fs.sha256(d.path),
                status="erased", rule="erasure",
                reason=f"rewritten without {removed} line(s) under an erasure request; never landed again",
                line=None, rows_in_file=0, rows_landed=0, rows_quarantined=0,
            )
        )  # fmt: skip
    land._record(spark, settings, outcomes, batch_id)
    return len(outcomes)


def vacuum(spark: SparkSession, path: str) -> None:
    """Remove every file no longer in the table's current version, and the log before it.

    A full vacuum with retention 0: files any commit removed and files no commit ever
    named (a crashed write's leftovers may hold the person too). On a local lake delta-rs
    does it by listing the folder, in well under a second; Spark's VACUUM took 40 s a
    table on two cores (its listing and delete are distributed jobs), which made an
    erasure take minutes per table. Elsewhere Spark does it, with Delta's retention
    check switched off here only, and back on at once. Readers of an older snapshot
    (a long query) fail; new readers do not.
    """
    if "://" not in path:
        from deltalake import DeltaTable as RustTable

        RustTable(path).vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True)
        _remove_orphan_checksums(path)
    else:
        spark.conf.set(_RETENTION_CHECK, "false")
        try:
            DeltaTable.forPath(spark, path).vacuum(0)
        finally:
            spark.conf.set(_RETENTION_CHECK, "true")
    expire_log(spark, path)


def _remove_orphan_checksums(path: str) -> None:
    """Delete each hidden .<file>.crc whose data file is gone: Spark's local writes keep one
    beside every file, and delta-rs deletes the file but not its checksum."""
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != "_delta_log"]
        present = set(files)
        for name in files:
            if name.startswith(".") and name.endswith(".crc") and name[1:-4] not in present:
                os.remove(os.path.join(folder, name))


def expire_log(spark: SparkSession, path: str) -> None:
    """Drop the commit files before now: their add actions carry per-file statistics (the minimum
    and maximum of a name or an NHS number column), which VACUUM leaves behind.

    A checkpoint of the current version replaces them (written by delta-rs, which can
    checkpoint and clean up on demand), with the log retention at 0 for that moment only.
    """
    from deltalake import DeltaTable as RustTable

    quoted = path.replace("`", "``")
    # Delta wants log retention >= file retention: both go to 0 for the moment, then back to their defaults.
    zero = ", ".join(f"'{p}' = 'interval 0 seconds'" for p in _RETENTIONS)
    spark.sql(f"ALTER TABLE delta.`{quoted}` SET TBLPROPERTIES ({zero})")
    try:
        table = RustTable(path)
        table.create_checkpoint()
        table.cleanup_metadata()
        _remove_stale_checksums(path)
    finally:
        spark.sql(f"ALTER TABLE delta.`{quoted}` UNSET TBLPROPERTIES ({', '.join(repr(p) for p in _RETENTIONS)})")


def _remove_stale_checksums(path: str) -> None:
    """Delete the .crc files of versions before the last checkpoint: Delta 4 keeps every live file's
    statistics in them (``allFiles``), and cleaning up the log leaves them behind."""
    log_dir = f"{path}/_delta_log"
    with fs.open_text(f"{log_dir}/_last_checkpoint", "utf-8") as handle:
        checkpoint = json.load(handle)["version"]
    filesystem, _ = fs._resolve(log_dir)
    for info in fs.list_files(log_dir):
        name = info.path.rsplit("/", 1)[-1]
        if name.endswith(".crc") and name[:20].isdigit() and int(name[:20]) < checkpoint:
            filesystem.delete_file(fs._resolve(info.path)[1])


def forget(spark: SparkSession, settings: Settings, numbers: list[str]) -> dict:
    """Erase everyone linked to the numbers; returns counts (never a number, id or key)."""
    key = pseudonym_key()
    started = datetime.now(UTC).replace(tzinfo=None)
    batch_id = f"forget__{started:%Y-%m-%dT%H:%M:%S}"
    found = find(spark, settings, numbers)
    records = found.records.count()
    remove_from_lake(spark, settings, numbers, found)
    files = rewrite_landing(spark, settings, numbers, found, batch_id)
    fs.remove_tree(settings.path("tmp", "splink"))  # a crashed link's intermediates hold identities
    changed = sorted({name.split(" ")[0] for name in found.removed})
    for name in changed:
        vacuum(spark, settings.path("lake", name))
    summary = {
        "people": len(found.person_ids),
        "records": records,
        "rows_removed": sum(found.removed.values()),
        "tables_changed": len(changed),
        "landing_files_rewritten": files,
    }
    row = [
        (erasure_id(n, key), started, getpass.getuser(), *summary.values(), True)
        for n in numbers
    ]  # fmt: skip
    lake.append_once(spark.createDataFrame(row, ERASURES_SCHEMA), settings.table("ops", "erasures"), app_id=batch_id)
    log.info("forgot %d person(s): %d records, %d rows in %d tables, %d landing files", *summary.values())
    return {**summary, "tables": found.removed}
