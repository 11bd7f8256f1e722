"""Streaming writers: delivered files laid out by source and delivery, and the
truth files beside them. Each file is written as rows arrive, so memory does
not grow with the place. Works on local disk and object stores (pyarrow).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from pyarrow import fs as pafs

from jobs.contracts import Contract

_FLUSH_AT = 1 << 18


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(path.replace("s3a://", "s3://", 1))
    return pafs.LocalFileSystem(), path


class TextSink:
    """Lines of text to one file, in an encoding, buffered."""

    def __init__(self, path: str, encoding: str = "utf-8", bom: bool = False) -> None:
        filesystem, p = _filesystem(path)
        filesystem.create_dir(p.rsplit("/", 1)[0], recursive=True)
        self._stream = filesystem.open_output_stream(p)
        self.encoding = encoding
        self._buffer: list[str] = ["\ufeff"] if bom else []
        self._size = 0
        self.lines = 0

    def write_line(self, line: str) -> int:
        """Write one line; returns its 1-based line number in the file."""
        self._buffer.append(line)
        self._buffer.append("\n")
        self._size += len(line)
        self.lines += 1
        if self._size > _FLUSH_AT:
            self.flush()
        return self.lines

    def flush(self) -> None:
        if self._buffer:
            # A Latin-1 system cannot write every name: it writes '?' instead, as such systems do.
            self._stream.write("".join(self._buffer).encode(self.encoding, errors="replace"))
            self._buffer, self._size = [], 0

    def close(self) -> None:
        self.flush()
        self._stream.close()


def copy_file(source: str, target: str) -> None:
    src_fs, src = _filesystem(source)
    dst_fs, dst = _filesystem(target)
    dst_fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
    with src_fs.open_input_stream(src) as reader, dst_fs.open_output_stream(dst) as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)


def spark_to_strftime(spark_format: str) -> str:
    return spark_format.replace("yyyy", "%Y").replace("MM", "%m").replace("dd", "%d")


@dataclass
class DeliveredFile:
    """One file of one delivery of one source, written row by row in the contract's format."""

    contract: Contract
    path: str
    relative: str
    sink: TextSink
    columns: list[str]
    rows: int = 0

    @classmethod
    def open(
        cls,
        contract: Contract,
        landing: str,
        relative: str,
        *,
        encoding: str = "utf-8",
        bom: bool = False,
        columns: list[str] | None = None,
    ) -> DeliveredFile:
        path = f"{landing}/{relative}"
        sink = TextSink(path, encoding, bom)
        delivered = cls(contract, path, relative, sink, columns or contract.column_names)
        if contract.format.get("type", "csv") == "csv" and contract.format.get("header", True):
            sink.write_line(delivered._csv_line(delivered.columns))
        return delivered

    def _csv_line(self, values: list[str]) -> str:
        if not hasattr(self, "_writer"):
            self._out = io.StringIO()
            self._writer = csv.writer(self._out, delimiter=self.contract.format["delimiter"], lineterminator="")
        self._writer.writerow(values)
        line = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        return line

    def line_for(self, row: dict[str, str]) -> str:
        """The row as the feed writes it: delimited in contract column order, or a JSON object."""
        if self.contract.format.get("type", "csv") == "jsonl":
            # Empty values are left out, as the feed's JSON serialiser does.
            return json.dumps({c: row[c] for c in self.columns if row.get(c)}, ensure_ascii=False)
        return self._csv_line([row.get(c) or "" for c in self.columns])

    def write(self, line: str) -> int:
        self.rows += 1
        return self.sink.write_line(line)

    def close(self) -> None:
        self.sink.close()


class TruthTable:
    """A CSV of truth, streamed."""

    def __init__(self, path: str, header: list[str]) -> None:
        self._sink = TextSink(path)
        self._header = header
        self._out = io.StringIO()
        self._writer = csv.writer(self._out, lineterminator="")
        self.add(header)

    def add(self, values) -> None:
        self._writer.writerow(values)
        self._sink.write_line(self._out.getvalue())
        self._out.seek(0)
        self._out.truncate()

    def close(self) -> None:
        self._sink.close()
