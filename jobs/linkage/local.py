"""The link stage's whole-table work around a delivery, on a lake on local disk: DuckDB and delta-rs.

link_delivery links a delivery against the last link's state for about the cost of the delivery.
What the stage did around it on Spark touched every record: finding what changed in silver (a join
of every record with the last links), survivorship over every record (silver/person), measuring
every link, and rewriting person_link and the state. At a 1M place with nothing new that took
172 s, of which link_delivery took 8. On a local lake those are scans and hash joins that DuckDB
does over delta-rs datasets in seconds, and whole-table writes that delta-rs does in one commit.
Spark keeps what has one implementation: the identity hashes, link_delivery, and survivorship
(link.best_demographics) for the persons whose records changed.

What changed is read from Delta's versions: each silver person source now against the version the
last link read (in person_link's stamp), compared on every column the link stage reads. The tables
written are those the Spark path writes for the same silver (tests/integration/test_linkage.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa

from jobs import lake

log = logging.getLogger(__name__)


@dataclass
class Changes:
    """Silver since the last link: every record new or changed on a column the link stage reads."""

    rows: pa.Table  # the link stage's columns of each such record
    gone: int  # records the last link read that are no longer in silver


def silver_changes(paths: dict[str, str], versions: dict[str, int], columns: list[str]) -> Changes | None:
    """Each source's rows now that its version in versions did not hold, on these columns (source and
    record_id among them); None when a source has no such version (new since that link, or its history
    is gone), and the caller reads every record instead."""
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError

    if not paths or set(paths) != set(versions):
        return None
    selected = ", ".join(columns)
    parts, gone = [], 0
    with lake.local_sql() as sql:
        for source, path in sorted(paths.items()):
            now = DeltaTable(path)
            sql.register("now_rows", now.to_pyarrow_dataset())
            if now.version() == versions[source]:
                parts.append(sql.sql(f"SELECT {selected} FROM now_rows LIMIT 0").to_arrow_table())
                continue
            try:
                then = DeltaTable(path, version=versions[source])
            except DeltaError as exc:
                log.info("link: silver %s has no version %s to compare with (%s)", source, versions[source], exc)
                return None
            sql.register("then_rows", then.to_pyarrow_dataset())
            parts.append(
                sql.sql(f"SELECT {selected} FROM now_rows EXCEPT SELECT {selected} FROM then_rows").to_arrow_table()
            )
            (left,) = sql.sql("SELECT count(*) FROM then_rows ANTI JOIN now_rows USING (source, record_id)").fetchall()[
                0
            ]
            gone += left
    return Changes(pa.concat_tables(parts), gone)


LAST_IDENTITY = "last_identity_id"


def with_last_identity(rows: pa.Table, link_path: str, link_version: int) -> pa.Table:
    """rows (source, record_id, ...) with the identity_id the last link (person_link at link_version)
    gave each, as LAST_IDENTITY; null for a record it did not link."""
    with lake.local_sql() as sql:
        sql.register("changed_rows", rows)
        sql.register("last_links", lake.dataset_local(link_path, link_version))
        return sql.sql(
            f"SELECT c.*, l.identity_id AS {LAST_IDENTITY} "
            "FROM changed_rows c LEFT JOIN last_links l USING (source, record_id)"
        ).to_arrow_table()


def stamped_run(path: str) -> str | None:
    """The run_id in a table's latest commit's stamp, if it has one."""
    import json

    stamps = lake.recent_user_metadata_local(path, limit=1)
    try:
        stamp = json.loads(stamps[0]) if stamps else None
    except ValueError:
        return None
    return stamp.get("run_id") if isinstance(stamp, dict) else None


def links_after(link_path: str, link_version: int, touched: pa.Table, run_id: str, columns: list[str]) -> pa.Table:
    """Every record's link after a delivery: the last link's (person_link at link_version), with the
    records the delivery touched given their new links; each row of this run (run_id), in columns' order."""
    last = lake.dataset_local(link_path, link_version)
    run = "'" + run_id.replace("'", "''") + "'"
    selected = ", ".join(f"{run} AS run_id" if c == "run_id" else c for c in columns)
    with lake.local_sql() as sql:
        sql.register("last_links", last)
        sql.register("touched", touched)
        links = sql.sql(
            f"SELECT {selected} FROM last_links ANTI JOIN touched USING (source, record_id) "
            f"UNION ALL SELECT {selected} FROM touched"
        ).to_arrow_table()
    return links.cast(last.schema)


def persons_records(links: pa.Table, touched: pa.Table, changed: pa.Table, silver: dict[str, str], columns: list[str]):
    """(the persons whose best demographics may have changed, every silver record of those persons with
    its person_id): the persons the delivery touched (their ids before and after) and the persons of
    every record changed in silver. The records carry columns, as the link stage reads them."""
    selected = ", ".join(f"r.{c}" for c in columns)
    with lake.local_sql() as sql:
        sql.register("links", links)
        sql.register("touched", touched)
        sql.register("changed", changed)
        affected = sql.sql(
            "SELECT person_id FROM touched UNION SELECT previous_id FROM touched WHERE previous_id IS NOT NULL "
            "UNION SELECT person_id FROM links SEMI JOIN changed USING (source, record_id)"
        ).to_arrow_table()
        sql.register("affected", affected)
        their = sql.sql(
            "SELECT source, record_id, person_id FROM links SEMI JOIN affected USING (person_id)"
        ).to_arrow_table()
        sql.register("theirs", their)
        parts = []
        for path in silver.values():
            sql.register("silver_rows", lake.dataset_local(path))
            parts.append(
                sql.sql(
                    f"SELECT {selected}, t.person_id FROM silver_rows r JOIN theirs t USING (source, record_id)"
                ).to_arrow_table()
            )
    return affected, pa.concat_tables(parts, promote_options="permissive")


def replace_rows(path: str, fresh: pa.Table, gone: pa.Table, key: list[str], user_metadata: str) -> None:
    """A table rewritten in one commit by delta-rs: its rows whose key is in gone give way to fresh."""
    current = lake.dataset_local(path)
    on = ", ".join(key)
    with lake.local_sql() as sql:
        sql.register("current_rows", current)
        sql.register("gone_keys", gone)
        sql.register("fresh_rows", fresh)
        rows = sql.sql(
            f"SELECT * FROM current_rows ANTI JOIN gone_keys USING ({on}) UNION ALL BY NAME SELECT * FROM fresh_rows"
        )
        lake.replace_local(lake.streamed(rows, current.schema), path, user_metadata=user_metadata)
