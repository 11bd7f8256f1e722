"""How delta-rs writes a local lake's tables (jobs.lake): Parquet as Spark would read and write it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from jobs import lake


def _row_groups(path: str) -> list[tuple[int, set[str]]]:
    """(rows, compression codecs of its columns) of every row group in the table's current files."""
    groups = []
    for uri in DeltaTable(path).file_uris():
        metadata = pq.ParquetFile(uri.removeprefix("file://")).metadata
        for i in range(metadata.num_row_groups):
            group = metadata.row_group(i)
            groups.append((group.num_rows, {group.column(c).compression for c in range(group.num_columns)}))
    return groups


def test_local_writes_are_snappy_compressed_in_row_groups_spark_can_split(tmp_path):
    rows = lake.GROUP_ROWS + 10
    table = pa.table({"record_id": [f"r{i}" for i in range(rows)], "n": list(range(rows))})

    replaced = str(tmp_path / "replaced")
    lake.replace_local(table, replaced)
    lake.replace_local(table.to_reader(max_chunksize=1000), replaced)  # a stream, as clean's rewrites are
    assert _row_groups(replaced) == [(lake.GROUP_ROWS, {"SNAPPY"}), (10, {"SNAPPY"})]

    appended = str(tmp_path / "appended")
    assert lake.append_once_local(table, appended, "batch-1", row_group_rows=lake.GROUP_ROWS)
    assert _row_groups(appended) == [(lake.GROUP_ROWS, {"SNAPPY"}), (10, {"SNAPPY"})]
    assert DeltaTable(appended).to_pyarrow_table().sort_by("n").equals(table)
