"""Clean's whole-table work on a lake on local disk: DuckDB and delta-rs.

A delivery's new rows are few, but cleaning them on Spark paid for passes over every record the
source has: the supersede guard's join with the history, a MERGE into the history (which joins it
again and rewrites the files it touches), silver rewritten from the history's current versions and
the conservation counts. On two cores each of those costs seconds of planning and jobs more than of
rows: a 100,000-person place's one-month delivery (16,890 rows), its sources cleaned one at a time,
took 132 s, 22 of them rewriting silver and 25 writing history. On a lake on local disk they are
scans and hash joins that DuckDB does over delta-rs datasets, and whole-table writes that delta-rs
makes in one commit.

Spark keeps what has one implementation: the adapters (the new rows are still adapted there), the
quarantine and the delivery metrics. What is here gives the rows its Spark twin in jobs.clean and
jobs.history gives (tests/integration/test_cleaning.py cleans one place both ways).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from jobs import lake
from jobs.contracts import Contract, ContractError
from jobs.history import VERSION_COLUMNS, DeliveryShare, delivery_shares


def landed_files(bronze_path: str, version: int) -> set[str]:
    """The files (by sha256) whose rows are in bronze at that version: one column read."""
    column = lake.dataset_local(bronze_path, version).to_table(columns=["_file_sha256"]).column(0)
    return set(pc.unique(column).to_pylist())


def _versioned(rows: str, key: list[str]) -> str:
    """jobs.history.versioned in DuckDB's SQL, over the rows of a query with no version columns: the
    same order (Spark sorts nulls first), the same dates and flags."""
    order = f"PARTITION BY {', '.join(key)} ORDER BY _delivery NULLS FIRST, _source_file NULLS FIRST, _line NULLS FIRST"
    valid_from = "TRY_CAST(substr(_delivery, 1, 10) AS DATE)"
    return f"""
        SELECT * EXCLUDE (_has_next), NOT _has_next AS _is_current FROM (
            SELECT *, row_number() OVER w AS _version, {valid_from} AS _valid_from,
                   lead({valid_from}) OVER w AS _valid_to, lead(TRUE, 1, FALSE) OVER w AS _has_next
            FROM {rows} WINDOW w AS ({order})
        )"""


def superseded_shares(history_path: str, new: pa.Table, key: list[str]) -> list[DeliveryShare]:
    """jobs.history.superseded_shares of the history's rows and the new ones."""
    on = ", ".join(key)
    with lake.local_sql() as sql:
        sql.register("existing", lake.dataset_local(history_path))
        sql.register("new_rows", new)
        patterns = sql.sql(
            f"""
            WITH keyed AS (
                SELECT {on}, _delivery, FALSE AS _new FROM existing
                UNION ALL SELECT {on}, _delivery, TRUE AS _new FROM new_rows
            )
            SELECT first, sent_by, count(*) FROM (
                SELECT min(_delivery) AS first,
                       list_sort(list_distinct(coalesce(list(_delivery) FILTER (WHERE _new), []))) AS sent_by
                FROM keyed GROUP BY {on}
            ) GROUP BY ALL"""
        ).fetchall()
    return delivery_shares(patterns)


def write_history(history_path: str, good: pa.Table, key: list[str]) -> None:
    """The new versions added and every version of the records they touch dated again, in one commit
    (jobs.clean._write_history's MERGE, as a rewrite). A version cleaned before (the same file and
    line, cleaned again after a build died before marking its file) gives way to its new copy."""
    existing = lake.dataset_local(history_path)
    on = ", ".join(key)
    columns = ", ".join(n for n in existing.schema.names if n not in VERSION_COLUMNS)
    earlier = (
        f"(SELECT {columns} FROM existing SEMI JOIN touched USING ({on}) ANTI JOIN good USING (_file_sha256, _line))"
    )
    with lake.local_sql() as sql:
        sql.register("existing", existing)
        sql.register("good", good)
        rows = sql.sql(
            f"""
            WITH touched AS (SELECT DISTINCT {on} FROM good)
            SELECT * FROM existing ANTI JOIN touched USING ({on})
            UNION ALL BY NAME
            SELECT * FROM ({_versioned(f"({earlier} UNION ALL BY NAME SELECT {columns} FROM good)", key)})"""
        )
        lake.replace_local(lake.streamed(rows, existing.schema), history_path)


def write_silver(history_path: str, silver_path: str, contract: Contract, postcodes_path: str | None) -> None:
    """Silver: the history's current versions, located by the postcode directory when postcodes_path is
    given (jobs.clean.with_geography's join and flags), conforming to contract; one commit."""
    current = "SELECT * EXCLUDE (" + ", ".join(VERSION_COLUMNS) + ") FROM versions WHERE _is_current"
    with lake.local_sql() as sql:
        sql.register("versions", lake.dataset_local(history_path))
        if postcodes_path is not None:
            sql.register("directory", lake.dataset_local(postcodes_path))
            query = f"""
                SELECT e.* EXCLUDE (clean_flags), d.lsoa_code, d.ward_code, d.imd_decile,
                       NULLIF(concat_ws(';', e.clean_flags,
                           CASE WHEN e.postcode IS NOT NULL AND d.lsoa_code IS NULL THEN 'postcode_not_in_directory' END,
                           CASE WHEN coalesce(d.terminated, FALSE) THEN 'postcode_terminated' END), '') AS clean_flags
                FROM ({current}) e
                LEFT JOIN (SELECT postcode, lsoa_code, ward_code, imd_decile, terminated FROM directory) d USING (postcode)"""
        else:
            query = current
        rows = sql.sql(query)
        missing = [c for c in contract.column_names if c not in rows.columns]
        if missing:  # as jobs.contracts.conform words it
            raise ContractError(
                f"output does not match contract {contract.layer}/{contract.name}: "
                + "; ".join(f"missing column {c!r}" for c in missing)
            )
        lake.replace_local(lake.streamed(rows, lake.arrow_schema(contract.typed_schema())), silver_path)


def conservation_figures(
    source: str, bronze_path: str, bronze_version: int, silver_path: str, history_path: str, quarantine_path: str
) -> dict[str, int]:
    """jobs.clean.conservation's counts: from the Parquet footers where a whole table is counted, a
    one-column scan where rows are filtered."""
    quarantined = 0
    if lake.exists_local(quarantine_path):
        at_clean = (pc.field("stage") == "clean") & (pc.field("source") == source)
        quarantined = lake.dataset_local(quarantine_path).count_rows(filter=at_clean)
    return {
        "bronze_rows": lake.dataset_local(bronze_path, bronze_version).count_rows(),
        "silver_rows": lake.dataset_local(silver_path).count_rows(),
        "superseded_rows": lake.dataset_local(history_path).count_rows(filter=~pc.field("_is_current")),
        "quarantined_rows": quarantined,
    }


# --- clean's ops tables -------------------------------------------------------------------------------
# The watermark, the last conservation checks, the delivery metrics and the rows quarantined at
# clean: a handful of rows a source, each read or rewritten in one commit.


def cleaned_files(watermark_path: str, source: str) -> dict[str, str]:
    """jobs.clean._cleaned_files: the source's files cleaned before (sha256 -> delivery)."""
    rows = lake.dataset_local(watermark_path).to_table(
        columns=["file_sha256", "delivery"], filter=pc.field("source") == source
    )
    return dict(zip(rows.column(0).to_pylist(), rows.column(1).to_pylist(), strict=True))


def last_checks(conservation_path: str) -> list[dict]:
    """Each source's latest conservation check (jobs.clean.Bookkeeping.last); none from a table
    whose checks predate their inputs column."""
    checks = lake.dataset_local(conservation_path)
    if "inputs" not in checks.schema.names:
        return []
    with lake.local_sql() as sql:
        sql.register("checks", checks)
        latest = "QUALIFY row_number() OVER (PARTITION BY source ORDER BY checked_at DESC) = 1"
        return sql.sql(f"SELECT * FROM checks {latest}").to_arrow_table().to_pylist()


def quarantined_at_clean(quarantine_path: str) -> dict[str, int]:
    """Rows quarantined at clean, per source."""
    sources = (
        lake.dataset_local(quarantine_path).to_table(columns=["source"], filter=pc.field("stage") == "clean").column(0)
    )
    return {c["values"]: c["counts"] for c in pc.value_counts(sources).to_pylist()}


def replace_where(path: str, rows: pa.Table, where: str) -> None:
    """The table's rows matching where (a SQL predicate) give way to rows, in one commit; a column
    the table has and rows lack is null in them (as a Spark write leaves it)."""
    schema = lake.dataset_local(path).schema
    columns = [
        rows.column(f.name).cast(f.type) if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type)
        for f in schema
    ]
    lake.replace_local(pa.Table.from_arrays(columns, schema=schema), path, where=where)
