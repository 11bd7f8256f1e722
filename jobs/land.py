"""Landing: check each delivered file against its contract and keep it in
bronze exactly once, values exactly as delivered.

landing/<source>/<delivery>/<file>  ->  lake/bronze/<source>

Every file under landing/ gets one row in ops/landing_manifest: landed,
duplicate or rejected, with the rule and reason. Rejected files (and files in
a folder no contract claims) are also listed in quarantine/files; malformed
rows go to quarantine/rows with file, physical line and reason. Counts
reconcile for every landed file: rows in the file = rows landed + rows
quarantined, and those rows cover every physical line after the header.

The order of work per source: scan every new file on the driver (sha256,
encoding, header, lines: one streaming pass each) and decide file-level
outcomes; then, on a lake on local disk (lands_locally), parse each accepted
file once (csv or json module, record-aware so quoted newlines stay inside
their field; big deliveries one file per worker process, side by side),
check that its records span exactly the lines the scan counted, and write
every new file's rows in one bronze commit by delta-rs, whose row count must
equal the parse's; the source's rejects go into one quarantine commit and
every file into the manifest, one commit more each for the whole landing.
Landing a local lake needs no Spark. On any other lake (an object store,
HDFS) the driver counts each file's records (keeping the few rejects) and
Spark's Python workers parse the files into the bronze commit instead.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import fanout, fs, lake
from jobs.config import Settings
from jobs.contracts import Contract, source_contracts
from jobs.faults import kill_point

log = logging.getLogger(__name__)

REJECT = "_reject_reason"
_BATCH_ROWS = 32_768  # records per Arrow batch out of the parser: bounded memory per task

MANIFEST_SCHEMA = (
    "source string, delivery string, file string, path string, sha256 string, status string, rule string, "
    "reason string, line long, rows_in_file long, rows_landed long, rows_quarantined long, "
    "batch_id string, landed_at timestamp"
)
QUARANTINE_ROWS_SCHEMA = (
    "stage string, source string, source_file string, line long, file_sha256 string, rule string, "
    "reason string, raw string, batch_id string"
)
QUARANTINE_FILES_COLUMNS = ["source", "delivery", "file", "path", "sha256", "rule", "reason", "line", "batch_id"]


# --------------------------------------------------------------------------- where files come from


@dataclass(frozen=True)
class Delivered:
    """One file under landing/: the folder it sits in and the delivery date its path names."""

    path: str
    folder: str | None  # landing/<folder>/...; None for a file loose in landing/ itself
    delivery: str | None  # ISO date, or None when neither folder nor file name carries one
    symlink: bool = False  # the file, or a folder on its way from landing/, is a symbolic link

    @property
    def file(self) -> str:
        return self.path.rsplit("/", 1)[-1]


_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def _iso_date(text: str) -> str | None:
    match = _DATE_IN_NAME.search(text)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return None  # 2026-02-31 is not a delivery date


def delivery_date(parts: list[str]) -> str | None:
    """The delivery date named by a path under landing/<source>/: its folder, else its file name."""
    if len(parts) > 1 and _DATE_IN_NAME.fullmatch(parts[0]):
        return _iso_date(parts[0])
    return _iso_date(parts[-1])


def _through_symlink(root: str, parts: list[str]) -> bool:
    """Whether the path root/parts... passes through a symbolic link (local landing only).

    The file lister follows links, so a link in landing/ would land whatever it
    points at: another place's extract, /etc/passwd, a FIFO that never ends.
    """
    if "://" in root:
        return False  # object stores have no links
    return any(os.path.islink(os.path.join(root, *parts[: i + 1])) for i in range(len(parts)))


def delivered_files(settings: Settings) -> list[Delivered]:
    """Every file under landing/, oldest delivery first (undated last)."""
    root = settings.landing
    found = []
    for info in fs.list_files(root):
        parts = info.path[len(root) + 1 :].split("/")
        folder = parts[0] if len(parts) > 1 else None
        delivery = delivery_date(parts[1:]) if folder else None
        found.append(Delivered(info.path, folder, delivery, _through_symlink(root, parts)))
    return sorted(found, key=lambda d: (d.folder or "", d.delivery or "9999", d.path))


# --------------------------------------------------------------------------- one pass over the bytes


@dataclass(frozen=True)
class FileScan:
    """What one streaming pass over a file's bytes tells us, before Spark reads it."""

    sha256: str
    size: int  # bytes as delivered (compressed, for .gz)
    text_size: int  # bytes after decompression
    lines: int  # physical lines of text, the last counted even without a final newline
    header: str | None
    bom: bool
    encoding_error_line: int | None  # first line that does not decode, if any
    compression_error: str | None  # "truncated" or "not_gzip"


def _gunzip(chunks: Iterable[bytes], problem: list[str]) -> Iterator[bytes]:
    """Decompress gzip members one after another; note a truncated or non-gzip stream in problem."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        for chunk in chunks:
            while chunk:
                yield inflater.decompress(chunk)
                # A gzip file may hold several members back to back (cat a.gz b.gz).
                chunk = inflater.unused_data if inflater.eof else b""
                if chunk:
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        yield inflater.flush()
        if not inflater.eof:
            problem.append("truncated")
    except zlib.error:
        problem.append("not_gzip")


def scan_file(path: str, encoding: str = "utf-8") -> FileScan:
    """sha256 of the bytes delivered; then, of the text: encoding, BOM, header line and line count."""
    digest = hashlib.sha256()
    size = 0

    def hashed() -> Iterator[bytes]:
        nonlocal size
        for chunk in fs.read_chunks(path):
            digest.update(chunk)
            size += len(chunk)
            yield chunk

    problem: list[str] = []
    raw = hashed()
    text = _gunzip(raw, problem) if fs.is_gzip(path) else raw
    decoder = codecs.getincrementaldecoder(encoding)()
    text_size, newlines, head, last, bad_line = 0, 0, b"", b"", None
    for chunk in text:
        if not chunk:
            continue
        if bad_line is None:
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_line = newlines + chunk[: max(exc.start - pending, 0)].count(b"\n") + 1
        text_size += len(chunk)
        newlines += chunk.count(b"\n")
        if len(head) < 1 << 16:
            head += chunk[: (1 << 16) - len(head)]
        last = chunk[-1:]
    for _ in raw:  # a corrupt gzip stops decompression early; the hash still covers every byte
        pass
    if bad_line is None and not problem:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            bad_line = newlines + 1
    lines = newlines + (1 if text_size and last != b"\n" else 0)
    bom = head.startswith(codecs.BOM_UTF8)
    header = None
    if text_size:
        first = head[len(codecs.BOM_UTF8) if bom else 0 :].split(b"\n", 1)[0].rstrip(b"\r")
        header = first.decode(encoding, errors="replace")
    return FileScan(digest.hexdigest(), size, text_size, lines, header, bom, bad_line, problem[0] if problem else None)


def scan_link(path: str) -> FileScan:
    """A symbolic link is never read: its identity is where it points (so a re-run skips it)."""
    target = os.readlink(path) if os.path.islink(path) else os.path.realpath(path)
    return FileScan(hashlib.sha256(f"symlink:{target}".encode()).hexdigest(), 0, 0, 0, None, False, None, None)


def scan_delivered(d: Delivered, encoding: str = "utf-8") -> FileScan:
    return scan_link(d.path) if d.symlink else scan_file(d.path, encoding)


SYMLINK_PROBLEM = ("file.symlink", "a symbolic link: landing reads only files delivered into landing/", None)


# --------------------------------------------------------------------------- file-level checks


def has_header(contract: Contract) -> bool:
    return contract.format.get("type", "csv") == "csv" and contract.format.get("header", True)


def _encoding(contract: Contract) -> str:
    return contract.format.get("encoding", "utf-8")


def _first(items: list, limit: int = 10) -> str:
    """A list for a message, cut short: a header of 100,000 columns must not make a 1 MB reason."""
    return str(items) if len(items) <= limit else f"{str(items[:limit])[:-1]}, ... ({len(items)} in all)]"


def _header_problem(header: str, contract: Contract) -> tuple[str, str] | None:
    fmt = contract.format
    names = next(csv.reader([header], delimiter=fmt["delimiter"], quotechar=fmt.get("quote", '"')), [])
    expected = contract.column_names
    if names == expected:
        return None
    if sorted(names) == sorted(expected):
        # Never shift values into the wrong columns: a reordered header is a rejection.
        return "file.header_order", f"header has the contract's columns in another order: got {names}"
    missing = [c for c in expected if c not in names]
    # Delivered header cells are named by position only: a file without a header
    # has a patient's record in its first line.
    extra = [i + 1 for i, c in enumerate(names) if c not in expected]
    if missing and not extra:
        return "file.missing_column", f"header lacks contract columns {missing}"
    if extra and not missing:
        return (
            "file.extra_column",
            f"header has {len(extra)} column(s) the contract does not name, at positions {_first(extra)}",
        )
    return "file.header", (
        f"header does not match the contract: lacks {_first(missing)}; {len(extra)} unknown column(s) "
        f"at positions {_first(extra)}" + (" (is the header missing?)" if len(missing) == len(expected) else "")
    )


def file_problem(scan: FileScan, contract: Contract) -> tuple[str, str, int | None] | None:
    """(rule, reason, line) if the whole file must be rejected before anything is written, else None."""
    if scan.compression_error == "truncated":
        return "file.truncated", "the gzip stream ends early: the file is truncated", None
    if scan.compression_error == "not_gzip":
        return "file.compression", "the file is named .gz but is not a valid gzip stream", None
    if scan.text_size == 0:
        return "file.not_empty", "the file is empty", None
    if scan.encoding_error_line is not None:
        line = scan.encoding_error_line
        return "file.encoding", f"the file is not valid {_encoding(contract)} (first bad byte on line {line})", line
    if not has_header(contract):
        return None  # JSON lines and header-less CSV: every line is a row, checked row by row
    problem = _header_problem(scan.header, contract)
    if problem:
        return (*problem, 1)
    if scan.lines <= 1:
        return "file.no_rows", "the file has a header but no data rows", None
    return None


# --------------------------------------------------------------------------- records (pure Python)


class Record(NamedTuple):
    line: int  # physical line the record starts on (1-based, header included)
    fields: list[str | None] | None  # None for a reject
    reason: str | None
    raw: str | None  # the record's physical lines as delivered, kept for rejects only
    lines: int  # physical lines the record spans


class _Tap:
    """Feeds lines to csv.reader and remembers the ones the current record used."""

    def __init__(self, lines: Iterable[str]):
        self._lines = iter(lines)
        self.taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.taken.append(line)
        return line


def _csv_error(exc: csv.Error) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return "row.unparseable: the file ends inside a quoted field"
    if "field larger than field limit" in message:
        return f"row.field_too_large: a field is longer than {csv.field_size_limit()} characters"
    return f"row.unparseable: {message}"


def csv_records(lines: Iterable[str], names: list[str], delimiter: str, quote: str) -> Iterator[Record]:
    """Records of delimited text, quote-aware: a quoted newline stays inside its field.

    csv.reader pulls exactly the lines a record needs, so each record knows the
    physical line it starts on and how many it spans; a reject keeps them raw.
    """
    tap = _Tap(lines)
    reader = csv.reader(tap, delimiter=delimiter, quotechar=quote, strict=True)
    line, width = 1, len(names)
    while True:
        tap.taken.clear()
        try:
            fields = next(reader)
            reason = None
        except StopIteration:
            return
        except csv.Error as exc:
            fields, reason = None, _csv_error(exc)
        span = len(tap.taken)
        if span == 0:
            return
        if fields is not None:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                fields, reason = None, "row.blank_line"
            elif len(fields) != width:
                fields, reason = None, f"row.ragged: {len(fields)} fields, contract has {width}"
        if fields is None:
            yield Record(line, None, reason, "".join(tap.taken).rstrip("\r\n"), span)
        else:
            yield Record(line, [v if v != "" else None for v in fields], None, None, span)
        line += span


def _json_scalar(value) -> str | None:
    # Bronze keeps values as delivered: numbers and booleans as their JSON text.
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


_TEXT_TYPES = {str, type(None)}


def _json_fields(text: str, names: list[str], known: set[str]) -> tuple[list[str | None] | None, str | None]:
    try:
        record = json.loads(text)
    except ValueError as exc:
        return None, f"row.unparseable: not JSON ({exc.msg})"
    except RecursionError:
        # json.loads recurses per level: [[[[...]]]] 1,000 deep would otherwise kill the parsing task.
        return None, "row.unparseable: JSON nested too deeply"
    if not isinstance(record, dict):
        return None, "row.unparseable: a JSON line must be an object"
    if not record.keys() <= known:
        return None, f"row.unexpected_keys: {sorted(record.keys() - known)[:5]}"
    values = list(map(record.get, names))
    if set(map(type, values)) <= _TEXT_TYPES:
        return values, None  # the usual record, strings and nulls only: nothing to convert
    if any(isinstance(v, dict | list) for v in values):
        return None, "row.nested_value: contract columns hold scalars"
    return [_json_scalar(v) for v in values], None


def jsonl_records(lines: Iterable[str], names: list[str]) -> Iterator[Record]:
    """One record per physical line: JSON lines never span lines."""
    known = set(names)
    for line, text in enumerate(lines, start=1):
        value = text.rstrip("\r\n")
        fields, reason = (None, "row.blank_line") if not value.strip() else _json_fields(value, names, known)
        yield Record(line, fields, reason, value if reason else None, 1)


def record_reader(contract: Contract) -> Callable[[Iterable[str]], Iterator[Record]]:
    """Lines of one whole file (header included) -> its data records."""
    fmt, names = contract.format, contract.column_names
    kind = fmt.get("type", "csv")
    if kind == "jsonl":
        return lambda lines: jsonl_records(lines, names)
    if kind != "csv":
        raise ValueError(f"{contract.name}: unknown format type {kind!r} (csv or jsonl)")
    header = has_header(contract)
    delimiter, quote = fmt["delimiter"], fmt.get("quote", '"')

    def read(lines: Iterable[str]) -> Iterator[Record]:
        records = csv_records(lines, names, delimiter, quote)
        if header:
            next(records, None)  # checked against the contract before Spark starts
        return records

    return read


def _text_encoding(contract: Contract) -> str:
    # A UTF-8 byte order mark is an encoding artefact, not part of the first value.
    encoding = _encoding(contract)
    return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding


# --------------------------------------------------------------------------- parsing in Spark

_META = ["_source_file", "_line", "_file_sha256", "_delivery"]


def parsed_schema(contract: Contract) -> T.StructType:
    return T.StructType(
        [T.StructField(n, T.StringType(), True) for n in contract.column_names]
        + [
            T.StructField("_source_file", T.StringType(), False),
            T.StructField("_line", T.LongType(), False),
            T.StructField("_file_sha256", T.StringType(), False),
            T.StructField("_delivery", T.StringType(), True),
            T.StructField(REJECT, T.StringType(), True),
            # The record as delivered, kept only for rejects: quarantine loses nothing.
            T.StructField("_raw", T.StringType(), True),
            T.StructField("_lines", T.IntegerType(), False),
        ]
    )


def _arrow_schema(contract: Contract) -> pa.Schema:
    return lake.arrow_schema(parsed_schema(contract))


def file_batches(contract: Contract, path: str, sha: str, delivery: str | None) -> Iterator[pa.RecordBatch]:
    """Every record of one file, rejects included, as Arrow batches of parsed_schema (streamed, bounded memory)."""
    arrow_schema = _arrow_schema(contract)
    read_records = record_reader(contract)
    blank = [None] * len(contract.column_names)

    def batch(rows, line, reason, raw, span) -> pa.RecordBatch:
        n = len(rows)
        columns = list(zip(*rows, strict=True))  # rows to columns in C, not a Python loop per value
        arrays = [pa.array(c, pa.string()) for c in columns] + [
            pa.repeat(pa.scalar(path, pa.string()), n),
            pa.array(line, pa.int64()),
            pa.repeat(pa.scalar(sha, pa.string()), n),
            pa.repeat(pa.scalar(delivery, pa.string()), n),
            pa.array(reason, pa.string()),
            pa.array(raw, pa.string()),
            pa.array(span, pa.int32()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)

    rows: list[list[str | None]] = []
    line, reason, raw, span = [], [], [], []
    with fs.open_text(path, _text_encoding(contract)) as text:
        for record in read_records(text):
            rows.append(record.fields or blank)
            line.append(record.line)
            reason.append(record.reason)
            raw.append(record.raw)
            span.append(record.lines)
            if len(rows) >= _BATCH_ROWS:
                yield batch(rows, line, reason, raw, span)
                rows, line, reason, raw, span = [], [], [], [], []
    if rows:
        yield batch(rows, line, reason, raw, span)


def _arrow_parser(contract: Contract):
    """A mapInArrow function: file descriptors (path, sha256, delivery) in, parsed records out."""

    def parse(descriptors: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for descriptor in descriptors:
            for row in descriptor.to_pylist():
                yield from file_batches(contract, row["path"], row["sha256"], row["delivery"])

    return parse


class Parsed(NamedTuple):
    """One file parsed once: the rows for bronze, the rejects for quarantine, and the lines they all span."""

    good: pa.Table  # contract columns + _META, values as delivered
    rejects: pa.Table  # _line, _reject_reason, _raw
    lines: int


def parse_file(contract: Contract, path: str, sha: str, delivery: str | None) -> Parsed:
    """Parse one whole file in this process (a landing worker's job): one pass, every record accounted for."""
    return _quote_free_csv(contract, path, sha, delivery) or _parsed_in_python(contract, path, sha, delivery)


def _parsed_in_python(contract: Contract, path: str, sha: str, delivery: str | None) -> Parsed:
    parsed = pa.Table.from_batches(list(file_batches(contract, path, sha, delivery)), schema=_arrow_schema(contract))
    rejected = pc.is_valid(parsed[REJECT])
    return Parsed(
        good=parsed.filter(pc.invert(rejected)).select([*contract.column_names, *_META]),
        rejects=parsed.filter(rejected).select(["_line", REJECT, "_raw"]),
        lines=pc.sum(parsed["_lines"]).as_py() or 0,
    )


def _quote_free_csv(contract: Contract, path: str, sha: str, delivery: str | None) -> Parsed | None:
    """The file parsed by pyarrow's CSV reader (C++, many times Python's csv), or None: parse it in Python.

    Only where the two cannot differ. With no quote character, no carriage return but
    before a newline, no NUL and no blank line, every record is one physical line split
    at the delimiter, exactly as csv_records splits it; pyarrow hands each line with the
    wrong number of fields to _RaggedLines, with its line number, and every other line
    is a row. Rows and rejects together must be every line after the header.
    """
    fmt, names = contract.format, contract.column_names
    utf8 = codecs.lookup(_encoding(contract)).name == "utf-8"
    if not (has_header(contract) and utf8 and len(names) > 1) or fs.is_gzip(path):
        return None  # (one column: an empty line would be a null value to pyarrow, a blank line to csv)
    # The whole file in memory: pyarrow reads it in one go (a delivery is tens to hundreds of MB).
    data = b"".join(fs.read_chunks(path)).removeprefix(codecs.BOM_UTF8)
    quote = fmt.get("quote", '"').encode()
    if quote in data or b"\0" in data or data.count(b"\r") != data.count(b"\r\n"):
        return None
    if b"\n\n" in data or b"\n\r\n" in data:
        return None  # pyarrow would read an empty line as a row of nulls
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    ragged = _RaggedLines(len(names))
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            # One thread: the reader then knows each line's number (a worker process per file is the parallelism).
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=fmt["delimiter"],
                quote_char=False,
                escape_char=False,
                ignore_empty_lines=False,
                invalid_row_handler=ragged,
            ),
            # Values as delivered: only an empty field is null ("NA", "null" and " " stay text).
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=[""], strings_can_be_null=True
            ),
        ).combine_chunks()
    except pa.ArrowInvalid:
        return None  # a byte that is not UTF-8 after all: csv_records names it
    n = table.num_rows
    if ragged.unnumbered or n + len(ragged.line) != lines - 1:
        return None
    if max(_longest_field(table), *map(len, ragged.raw), 0) > csv.field_size_limit():
        return None  # csv_records rejects a field over its limit as row.field_too_large, ragged or not
    good_lines = np.setdiff1d(np.arange(2, lines + 1, dtype=np.int64), np.array(ragged.line, dtype=np.int64))
    meta = {
        "_source_file": pa.repeat(pa.scalar(path), n),
        "_line": pa.array(good_lines),
        "_file_sha256": pa.repeat(pa.scalar(sha), n),
        "_delivery": pa.repeat(pa.scalar(delivery, pa.string()), n),
    }
    for name, column in meta.items():
        table = table.append_column(name, column)
    rejects = pa.table(
        {
            "_line": pa.array(ragged.line, pa.int64()),
            REJECT: pa.array(ragged.reason, pa.string()),
            "_raw": pa.array(ragged.raw, pa.string()),
        }
    )
    return Parsed(good=table, rejects=rejects, lines=lines - 1)


class _RaggedLines:
    """pyarrow's invalid_row_handler: each line with the wrong number of fields, named as csv_records names it."""

    def __init__(self, width: int):
        self.width = width
        self.line: list[int] = []
        self.reason: list[str] = []
        self.raw: list[str] = []
        self.unnumbered = False

    def __call__(self, row) -> str:
        if row.number is None:
            self.unnumbered = True
        blank = row.actual_columns == 1 and not row.text.strip()
        self.line.append(row.number or 0)
        self.reason.append(
            "row.blank_line" if blank else f"row.ragged: {row.actual_columns} fields, contract has {self.width}"
        )
        self.raw.append(row.text)
        return "skip"


def _longest_field(table: pa.Table) -> int:
    lengths = [pc.max(pc.utf8_length(column)).as_py() for column in table.columns]
    return max([length for length in lengths if length is not None], default=0)


def parse_files(spark: SparkSession, contract: Contract, files: list[tuple[str, str, str | None]]) -> DataFrame:
    """Every record of the given (path, sha256, delivery) files, each file parsed by one Python task.

    Python parses (csv or json module) rather than Spark's CSV reader, which
    pads or truncates ragged rows silently and cannot say which line a record
    came from.
    """
    # A local list scans as min(files, cores) slices: files parse in parallel, each streamed once,
    # with no shuffle to spread them.
    descriptors = spark.createDataFrame(files, "path string, sha256 string, delivery string", verifySchema=False)
    return descriptors.mapInArrow(_arrow_parser(contract), parsed_schema(contract))


# --------------------------------------------------------------------------- outcomes and writes


@dataclass(frozen=True)
class FileOutcome:
    source: str | None
    delivery: str | None
    file: str
    path: str
    sha256: str
    status: str  # landed | duplicate | rejected
    rule: str | None
    reason: str | None
    line: int | None
    rows_in_file: int
    rows_landed: int
    rows_quarantined: int


def _outcome(d: Delivered, scan: FileScan, source: str | None, status: str, rule=None, reason=None, line=None):
    return FileOutcome(
        source=source,
        delivery=d.delivery,
        file=d.file,
        path=d.path,
        sha256=scan.sha256,
        status=status,
        rule=rule,
        reason=reason,
        line=line,
        rows_in_file=scan.lines,
        rows_landed=0,
        rows_quarantined=0,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _digest(values: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(values)).encode()).hexdigest()[:32]


def _record(
    spark: SparkSession, settings: Settings, outcomes: list[FileOutcome], batch_id: str, rows: list[DataFrame] = ()
) -> None:
    """The batch's quarantined rows, its rejected files, then its manifest: one commit each.

    Blind appends of files not yet recorded: concurrent landing tasks never
    conflict, and a retry finds these files recorded and skips them. The
    manifest goes last: a file it records has everything else written.
    """
    if not outcomes:
        return
    landed_at = _now()
    # The outcome is part of the id: a file recorded as waiting for its contract
    # is recorded again when it lands, and that must not look like a retry.
    app_id = "manifest-" + _digest(f"{o.path}|{o.sha256}|{o.status}|{o.rule}" for o in outcomes)
    if lands_locally(settings):
        _record_local(settings, outcomes, batch_id, list(rows), app_id, landed_at)
        return
    if rows:
        lake.append_once(
            functools.reduce(DataFrame.unionByName, rows), settings.path("lake", "quarantine", "rows"), app_id=app_id
        )
    manifest = spark.createDataFrame(
        [{**asdict(o), "batch_id": batch_id, "landed_at": landed_at} for o in outcomes], MANIFEST_SCHEMA
    )
    if any(o.status == "rejected" for o in outcomes):
        lake.append_once(
            manifest.where(F.col("status") == "rejected").select(*QUARANTINE_FILES_COLUMNS, "landed_at"),
            settings.path("lake", "quarantine", "files"),
            app_id=app_id,
        )
    lake.append_once(manifest, settings.table("ops", "landing_manifest"), app_id=app_id)


def _record_local(
    settings: Settings, outcomes: list[FileOutcome], batch_id: str, rows: list[pa.Table], app_id: str, landed_at
) -> None:
    """_record by delta-rs, for a local lake: the same three commits, in the same order."""
    if rows:
        lake.append_once_local(pa.concat_tables(rows), settings.path("lake", "quarantine", "rows"), app_id)
    landed_at = landed_at.replace(tzinfo=UTC)
    manifest = pa.Table.from_pylist(
        [{**asdict(o), "batch_id": batch_id, "landed_at": landed_at} for o in outcomes],
        schema=lake.arrow_schema(MANIFEST_SCHEMA),
    )
    rejected = manifest.filter(pc.equal(manifest["status"], "rejected"))
    if rejected.num_rows:
        files = rejected.select([*QUARANTINE_FILES_COLUMNS, "landed_at"])
        lake.append_once_local(files, settings.path("lake", "quarantine", "files"), app_id)
    lake.append_once_local(manifest, settings.table("ops", "landing_manifest"), app_id)


@dataclass(frozen=True)
class Recorded:
    """What the manifest already knows: which (path, sha256) were handled, which hashes landed,
    and which files waited for a contract (a source's first contract lands them)."""

    handled: frozenset[tuple[str, str]]
    landed: frozenset[str]
    unclaimed: frozenset[tuple[str, str]] = frozenset()


_MANIFEST_KEYS = ["path", "sha256", "status", "rule"]


def _manifest_rows(spark: SparkSession | None, settings: Settings) -> list[dict]:
    """The manifest's short columns: by delta-rs on a local lake, else by Spark.

    delta-rs reads a few thousand short rows in milliseconds; Spark first rebuilds the
    table's state after each commit (three jobs), and every source's landing commits to it.
    """
    path = settings.table("ops", "landing_manifest")
    if spark is None or settings.is_local():
        from deltalake import DeltaTable

        if not DeltaTable.is_deltatable(path):
            return []
        return DeltaTable(path).to_pyarrow_table(columns=_MANIFEST_KEYS).to_pylist()
    if not lake.table_exists(spark, path):
        return []
    return [r.asDict() for r in lake.read(spark, path).select(*_MANIFEST_KEYS).collect()]


def recorded_files(spark: SparkSession | None, settings: Settings) -> Recorded:
    """One small read of the manifest (four short columns, one row per file ever delivered).

    A local lake's is read by delta-rs, without Spark; spark None asks for that (local lakes only).
    """
    rows = _manifest_rows(spark, settings)
    unknown = {(r["path"], r["sha256"]) for r in rows if r["rule"] == "file.unknown_source"}
    claimed = {(r["path"], r["sha256"]) for r in rows if r["rule"] != "file.unknown_source"}
    return Recorded(
        handled=frozenset((r["path"], r["sha256"]) for r in rows),
        landed=frozenset(r["sha256"] for r in rows if r["status"] == "landed"),
        unclaimed=frozenset(unknown - claimed),
    )


def all_recorded(settings: Settings, due: list[Delivered]) -> bool:
    """Whether the manifest already records every one of these files, path and bytes, for its source.

    land_source skips exactly such files; this asks the same question without starting
    Spark, so the DAG's hourly look at an unchanged folder costs no JVM. A file recorded
    only as waiting for a contract is not recorded for its source. On an object store
    the answer is False and Spark decides.
    """
    if not settings.is_local():
        return False
    recorded = recorded_files(None, settings)
    claimed = recorded.handled - recorded.unclaimed
    return all((d.path, fs.sha256(d.path)) in claimed for d in due)


def _commit_note(source: str, shas: list[str]) -> str:
    return json.dumps({"land": source, "files": sorted(shas)})


def _committed_before(spark: SparkSession, bronze_path: str, source: str, shas: list[str]) -> set[str]:
    """Hashes among shas whose bronze commit went through although the manifest never heard of them.

    Every bronze commit names its files in userMetadata. Landing checks this on
    every run before writing, so a crash between the bronze commit and the
    manifest commit is found by the next attempt, while that commit is still
    among the table's latest: no table scan on the normal path.
    """
    return _named_in(lake.recent_user_metadata(spark, bronze_path), source, shas)


def _named_in(notes: list[str], source: str, shas: list[str]) -> set[str]:
    """Hashes among shas that these bronze commit notes name for source."""
    found: set[str] = set()
    for note in notes:
        try:
            meta = json.loads(note)
        except ValueError:
            continue
        if isinstance(meta, dict) and meta.get("land") == source:
            found.update(meta.get("files", []))
    return found & set(shas)


def _quarantined_before(spark: SparkSession, rows_path: str, shas: set[str]) -> set[str]:
    if not shas or not lake.table_exists(spark, rows_path):
        return set()
    rows = lake.read(spark, rows_path).where((F.col("stage") == "land") & F.col("file_sha256").isin(list(shas)))
    return {r[0] for r in rows.select("file_sha256").collect()}


def _log(outcome: FileOutcome) -> None:
    log.info(
        "%s %s %s: %s (%d rows: %d landed, %d quarantined)%s",
        outcome.source or "-",
        outcome.delivery or "-",
        outcome.file,
        outcome.status,
        outcome.rows_in_file,
        outcome.rows_landed,
        outcome.rows_quarantined,
        f" — {outcome.rule}: {outcome.reason}" if outcome.rule else "",
    )


# Rejects of one file kept from the driver's count for quarantine; a file with more is parsed again in Spark.
_KEPT_REJECTS = 10_000


class Survey(NamedTuple):
    """The driver's own pass over one file: what must land, what must be quarantined, and the lines they span."""

    landed: int
    quarantined: int
    lines: int
    rejects: list[Record] | None  # the rejected records themselves; None when there were too many to keep


def survey_records(contract: Contract, path: str, keep: int) -> Survey:
    """Count one file's records on the driver, keeping its rejects (rejects are few): up to keep of them.

    An independent pass: the bronze commit must then hold exactly these rows,
    and the lines must be every line of the file after the header. The rejects
    it keeps go to quarantine without Spark parsing the file a second time.
    """
    good = bad = lines = 0
    rejects: list[Record] | None = []
    with fs.open_text(path, _text_encoding(contract)) as text:
        for record in record_reader(contract)(text):
            lines += record.lines
            if record.reason is None:
                good += 1
                continue
            bad += 1
            if rejects is not None:
                rejects.append(record)
                if len(rejects) > keep:
                    rejects = None
    return Survey(good, bad, lines, rejects)


def _reconcile(contract: Contract, d: Delivered, scan: FileScan, lines: int) -> None:
    """Every physical line after the header belongs to exactly one landed or quarantined row."""
    accounted = lines + (1 if has_header(contract) else 0)
    if accounted != scan.lines:
        raise RuntimeError(
            f"{d.file}: counts do not reconcile: {scan.lines} lines in the file, "
            f"{accounted} accounted for by landed and quarantined rows"
        )


# Bronze is read whole by clean; statistics on every delivered column would
# double the cost of each append for no query. Lineage columns keep theirs.
BRONZE_PROPERTIES = {"delta.dataSkippingStatsColumns": "_file_sha256,_delivery,_line,_batch_id"}


# A reject's rule is the dotted name its reason starts with (row.ragged: 7 fields, ...).
_RULE = r"^([a-z_.0-9]+)"


def _rule(reason: str) -> str:
    found = re.match(_RULE, reason)
    return found.group(1) if found else ""


def lands_locally(settings: Settings) -> bool:
    """Whether landing parses in this machine's processes and commits by delta-rs (a lake on local disk).

    Elsewhere (an object store, HDFS) Spark parses the files and commits: the same records, rows and
    commits either way (tests/integration/test_landing.py lands one set of files both ways).
    """
    return settings.is_local()


# A landing's share of one source smaller than this parses in the calling process:
# starting the worker processes costs about a second.
_POOL_MIN_BYTES = 8 << 20


class Parsers:
    """Where a source's files are parsed: here, or one file per worker process, side by side.

    Python's csv and json parsers hold the GIL, so threads would take turns; processes use
    every core. The pool starts on first need (spawned, not forked: this process may hold a
    JVM gateway's threads) and stops on close().
    """

    def __init__(self, processes: int, min_bytes: int | None = None):
        self.processes = processes
        self.min_bytes = _POOL_MIN_BYTES if min_bytes is None else min_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def parse(self, contract: Contract, files: list[tuple[Delivered, FileScan]]) -> list[Parsed]:
        """Each file parsed once, in the order given."""
        jobs = [(d.path, scan.sha256, d.delivery) for d, scan in files]
        if self.processes < 2 or sum(scan.text_size for _, scan in files) < self.min_bytes:
            return [parse_file(contract, *job) for job in jobs]
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
        futures = [self._pool.submit(parse_file, contract, *job) for job in jobs]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> Parsers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _quarantine_table(contract: Contract, d: Delivered, sha: str, rejects: pa.Table, batch_id: str) -> pa.Table:
    """One file's rejected records shaped for quarantine/rows."""
    n = rejects.num_rows
    reasons = rejects[REJECT].to_pylist()
    columns = {
        "stage": pa.repeat(pa.scalar("land"), n),
        "source": pa.repeat(pa.scalar(contract.name), n),
        "source_file": pa.repeat(pa.scalar(d.path), n),
        "line": rejects["_line"],
        "file_sha256": pa.repeat(pa.scalar(sha), n),
        "rule": pa.array([_rule(r) for r in reasons], pa.string()),
        "reason": rejects[REJECT],
        "raw": rejects["_raw"],
        "batch_id": pa.repeat(pa.scalar(batch_id), n),
    }
    return pa.table(columns, schema=lake.arrow_schema(QUARANTINE_ROWS_SCHEMA))


def _land_parsed_local(
    settings: Settings,
    contract: Contract,
    accepted: list[tuple[Delivered, FileScan]],
    batch_id: str,
    parsers: Parsers,
) -> tuple[dict[str, tuple[int, int]], list[pa.Table]]:
    """_land_parsed on a local lake: each file parsed once by a worker process, bronze written by delta-rs.

    Every record is checked twice against independent figures: the lines its file's records
    span against the lines the byte scan counted (_reconcile), and the rows the bronze commit
    wrote, by Delta's log, against the records parsed.
    """
    shas = [s.sha256 for _, s in accepted]
    bronze_path = settings.table("bronze", contract.name)
    rows_path = settings.path("lake", "quarantine", "rows")
    in_bronze = _named_in(lake.recent_user_metadata_local(bronze_path), contract.name, shas)
    in_quarantine = set()
    if in_bronze:
        log.warning(
            "%s: %d file(s) reached bronze in an interrupted run; not writing them again", contract.name, len(in_bronze)
        )
        # Quarantine rows are written after bronze: only a file already in bronze can have them.
        found = lake.read_local(
            rows_path, ["file_sha256"], (ds.field("stage") == "land") & ds.field("file_sha256").isin(sorted(in_bronze))
        )
        in_quarantine = set() if found is None else set(found["file_sha256"].to_pylist())

    parsed = dict(zip(shas, parsers.parse(contract, accepted), strict=True))
    for d, scan in accepted:
        _reconcile(contract, d, scan, parsed[scan.sha256].lines)
    counts = {sha: (p.good.num_rows, p.rejects.num_rows) for sha, p in parsed.items()}

    new = [sha for sha in shas if sha not in in_bronze]
    if new:
        good = pa.concat_tables([parsed[sha].good for sha in new])
        landed_at = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
        good = good.append_column("_landed_at", pa.repeat(landed_at, good.num_rows))
        good = good.append_column("_batch_id", pa.repeat(pa.scalar(batch_id), good.num_rows))
        app_id = f"land-{contract.name}-" + _digest(shas)
        note = _commit_note(contract.name, new)
        if lake.append_once_local(
            good, bronze_path, app_id, user_metadata=note, properties=BRONZE_PROPERTIES, row_group_rows=lake.GROUP_ROWS
        ):
            written = lake.last_commit_rows_local(bronze_path)
            if written != good.num_rows:
                raise RuntimeError(
                    f"{contract.name}: bronze commit wrote {written} rows, the files hold {good.num_rows}"
                )
        kill_point("land.after_bronze")

    rejects = [
        _quarantine_table(contract, d, scan.sha256, parsed[scan.sha256].rejects, batch_id)
        for d, scan in accepted
        if counts[scan.sha256][1] and scan.sha256 not in in_quarantine
    ]
    return counts, rejects


def _land_parsed(
    spark: SparkSession,
    settings: Settings,
    contract: Contract,
    accepted: list[tuple[Delivered, FileScan]],
    batch_id: str,
    parsers: Parsers | None = None,
) -> tuple[dict[str, tuple[int, int]], list[DataFrame] | list[pa.Table]]:
    """Count on the driver (keeping rejects), then parse in Spark and write bronze.

    On a local lake, _land_parsed_local instead (one parse per file, no Spark).

    Returns (landed, quarantined) by sha256, and the frames of rows to quarantine,
    which _record writes. Idempotent under retries: bronze commits carry txnAppId
    and name their files; a file already committed (the run crashed before the
    manifest) is not written again, nor are its quarantined rows.
    """
    if lands_locally(settings):
        with contextlib.nullcontext(parsers) if parsers else Parsers(settings.land_processes) as these:
            return _land_parsed_local(settings, contract, accepted, batch_id, these)
    shas = [s.sha256 for _, s in accepted]
    bronze_path = settings.table("bronze", contract.name)
    rows_path = settings.path("lake", "quarantine", "rows")
    in_bronze = _committed_before(spark, bronze_path, contract.name, shas)
    # Quarantine rows are written after bronze: only a file already in bronze can have them.
    in_quarantine = _quarantined_before(spark, rows_path, in_bronze)
    if in_bronze:
        log.warning(
            "%s: %d file(s) reached bronze in an interrupted run; not writing them again", contract.name, len(in_bronze)
        )

    surveys = {}
    for d, scan in accepted:
        survey = survey_records(contract, d.path, keep=_KEPT_REJECTS)
        _reconcile(contract, d, scan, survey.lines)
        surveys[scan.sha256] = survey
    counts = {sha: (survey.landed, survey.quarantined) for sha, survey in surveys.items()}

    new = [(d.path, s.sha256, d.delivery) for d, s in accepted if s.sha256 not in in_bronze]
    app_id = f"land-{contract.name}-" + _digest(shas)
    if new:
        # Written even when every row was rejected: the commit names the files.
        good = (
            parse_files(spark, contract, new)
            .where(F.col(REJECT).isNull())
            .select(
                *contract.column_names,
                *_META,
                F.lit(_now()).cast("timestamp").alias("_landed_at"),
                F.lit(batch_id).alias("_batch_id"),
            )
        )
        note = _commit_note(contract.name, [sha for _, sha, _ in new])
        lake.append_once(good, bronze_path, app_id=app_id, user_metadata=note, properties=BRONZE_PROPERTIES)
        expected = sum(counts[sha][0] for _, sha, _ in new)
        # Not a bare count(): the rows Delta says this commit wrote, against the driver's own parse.
        written = lake.last_commit_rows(spark, bronze_path)
        if written != expected:
            raise RuntimeError(f"{contract.name}: bronze commit wrote {written} rows, the files hold {expected}")
        kill_point("land.after_bronze")

    pending = [(d, s) for d, s in accepted if counts[s.sha256][1] and s.sha256 not in in_quarantine]
    parts = []
    kept = [
        ("land", contract.name, d.path, r.line, s.sha256, _rule(r.reason), r.reason, r.raw, batch_id)
        for d, s in pending
        for r in surveys[s.sha256].rejects or []
    ]
    if kept:
        parts.append(spark.createDataFrame(kept, QUARANTINE_ROWS_SCHEMA))
    too_many = [(d.path, s.sha256, d.delivery) for d, s in pending if surveys[s.sha256].rejects is None]
    if too_many:
        # More rejects than the driver keeps: Spark parses those files again for them.
        parts.append(
            parse_files(spark, contract, too_many)
            .where(F.col(REJECT).isNotNull())
            .select(
                F.lit("land").alias("stage"),
                F.lit(contract.name).alias("source"),
                F.col("_source_file").alias("source_file"),
                F.col("_line").alias("line"),
                F.col("_file_sha256").alias("file_sha256"),
                F.regexp_extract(F.col(REJECT), _RULE, 1).alias("rule"),
                F.col(REJECT).alias("reason"),
                F.col("_raw").alias("raw"),
                F.lit(batch_id).alias("batch_id"),
            )
        )
    return counts, parts


def land_source(
    spark: SparkSession,
    settings: Settings,
    contract: Contract,
    batch_id: str,
    delivered: list[Delivered] | None = None,
    recorded: Recorded | None = None,
    record: bool = True,
    rows_out: list | None = None,
    parsers: Parsers | None = None,
) -> list[FileOutcome]:
    """Land every file of one source not recorded before; the outcome of each, in delivery order.

    spark may be None on a local lake (lands_locally): landing there starts no JVM.

    With record=False the caller writes the manifest and the quarantined rows,
    which go to rows_out (land_all: one commit of each for every source).
    """
    rows_out = [] if rows_out is None else rows_out
    mine = [d for d in (delivered if delivered is not None else delivered_files(settings)) if d.folder == contract.name]
    if not mine:
        return []
    scans = [(d, scan_delivered(d, _encoding(contract))) for d in mine]
    recorded = recorded if recorded is not None else recorded_files(spark, settings)
    # Files recorded while no contract claimed their folder are this source's to land now.
    seen_here = recorded.handled - recorded.unclaimed
    landed_before = set(recorded.landed)

    outcomes: list[FileOutcome] = []
    accepted: list[tuple[Delivered, FileScan]] = []
    for d, scan in scans:
        if (d.path, scan.sha256) in seen_here:
            continue  # recorded by an earlier run: nothing to do
        if scan.sha256 in landed_before:
            outcomes.append(
                _outcome(d, scan, contract.name, "duplicate", "file.duplicate", "identical to a file already landed")
            )
            continue
        if d.symlink:
            problem = SYMLINK_PROBLEM
        elif d.delivery is None:
            problem = ("file.no_delivery_date", "neither the folder nor the file name carries a delivery date", None)
        else:
            problem = file_problem(scan, contract)
        if problem:
            outcomes.append(_outcome(d, scan, contract.name, "rejected", *problem))
            continue
        landed_before.add(scan.sha256)  # a second copy in this same batch is a duplicate too
        accepted.append((d, scan))

    counts, rows = _land_parsed(spark, settings, contract, accepted, batch_id, parsers) if accepted else ({}, [])
    for d, scan in accepted:
        landed, quarantined = counts.get(scan.sha256, (0, 0))
        bom = ("file.bom", "a UTF-8 byte order mark was removed; the file landed") if scan.bom else (None, None)
        outcomes.append(
            FileOutcome(
                source=contract.name,
                delivery=d.delivery,
                file=d.file,
                path=d.path,
                sha256=scan.sha256,
                status="landed",
                rule=bom[0],
                reason=bom[1],
                line=1 if scan.bom else None,
                # Records, not lines: _reconcile has checked they cover every physical line.
                rows_in_file=landed + quarantined,
                rows_landed=landed,
                rows_quarantined=quarantined,
            )
        )
    outcomes.sort(key=lambda o: (o.delivery or "9999", o.path))
    rows_out.extend(rows)
    if record:
        _record(spark, settings, outcomes, batch_id, rows_out)
    for outcome in outcomes:
        _log(outcome)
    return outcomes


def land_unrecognised(
    spark: SparkSession,
    settings: Settings,
    batch_id: str,
    contracts: Iterable[Contract] | None = None,
    delivered: list[Delivered] | None = None,
    recorded: Recorded | None = None,
    record: bool = True,
) -> list[FileOutcome]:
    """Record files in folders no contract claims (or loose in landing/): rejected, never ignored."""
    known = {c.name for c in (contracts if contracts is not None else source_contracts())}
    strays = [d for d in (delivered if delivered is not None else delivered_files(settings)) if d.folder not in known]
    if not strays:
        return []
    scans = [(d, scan_delivered(d)) for d in strays]
    seen = (recorded if recorded is not None else recorded_files(spark, settings)).handled
    outcomes = []
    for d, scan in scans:
        if (d.path, scan.sha256) in seen:
            continue
        where = f"folder {d.folder!r}" if d.folder else "landing/ itself (no source folder)"
        outcomes.append(
            _outcome(d, scan, d.folder, "rejected", "file.unknown_source", f"no contract in schemas/ for {where}")
        )
    if record:
        _record(spark, settings, outcomes, batch_id)
    for outcome in outcomes:
        _log(outcome)
    return outcomes


def land_all(
    spark: SparkSession, settings: Settings, batch_id: str, contracts: Iterable[Contract] | None = None
) -> list[FileOutcome]:
    """Every source, then every stray file: what happened to each new file under landing/.

    Sources land side by side (settings.table_threads); each writes only its own bronze table.
    One commit each for every source's quarantined rows and for the manifest,
    at the end: a crash before them is recovered by the next run (see
    _committed_before), so batching costs no safety.
    """
    contracts = tuple(contracts if contracts is not None else source_contracts())
    delivered = delivered_files(settings)
    recorded = recorded_files(spark, settings)

    def one(contract: Contract) -> tuple[list[FileOutcome], list]:
        rows: list = []
        landed = land_source(
            spark, settings, contract, batch_id, delivered, recorded, record=False, rows_out=rows, parsers=parsers
        )
        return landed, rows

    outcomes, rows = [], []
    # One pool of parsing processes for every source: the threads feed it files.
    with Parsers(settings.land_processes) as parsers:
        for landed, quarantined in fanout.each(one, contracts, settings.table_threads, "land"):
            outcomes += landed
            rows += quarantined
    outcomes += land_unrecognised(spark, settings, batch_id, contracts, delivered, recorded, record=False)
    _record(spark, settings, outcomes, batch_id, rows)
    return outcomes


def summarise(outcomes: list[FileOutcome]) -> dict:
    """Counts and file names for XCom and logs: never a value from inside a file."""
    by_status: dict[str, int] = {}
    for o in outcomes:
        by_status[o.status] = by_status.get(o.status, 0) + 1
    return {
        "files": len(outcomes),
        **by_status,
        "rows_landed": sum(o.rows_landed for o in outcomes),
        "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
        "rejected": [
            {"source": o.source, "file": o.file, "rule": o.rule, "line": o.line}
            for o in outcomes
            if o.status == "rejected"
        ],
    }
