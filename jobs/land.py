"""Landing: check each delivered file against its contract and keep it in
bronze exactly once, values exactly as delivered.

landing/<source>/<delivery>/<file>  ->  lake/bronze/<source>
Rejected files go to quarantine/files, malformed rows to quarantine/rows, and
every file is recorded in ops/landing_manifest with counts that reconcile:
rows in the file = rows landed + rows quarantined.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import fs, lake
from jobs.config import Settings
from jobs.contracts import Contract, source_contracts

log = logging.getLogger(__name__)

REJECT = "_reject_reason"


@dataclass(frozen=True)
class FileScan:
    """What one streaming pass over a file's bytes tells us, before Spark reads it."""

    sha256: str
    size: int
    utf8: bool
    header: str | None
    lines: int


@dataclass(frozen=True)
class FileOutcome:
    source: str
    delivery: str
    path: str
    sha256: str
    status: str  # landed | duplicate | rejected
    rule: str | None
    reason: str | None
    rows_in_file: int
    rows_landed: int
    rows_quarantined: int


def scan_file(path: str) -> FileScan:
    """sha256, UTF-8 validity, header line and data line count in one pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, size, newlines, head, last = True, 0, 0, b"", b""
    for chunk in fs.read_chunks(path):
        digest.update(chunk)
        size += len(chunk)
        newlines += chunk.count(b"\n")
        if len(head) < 1 << 16:
            head += chunk[: (1 << 16) - len(head)]
        last = chunk[-1:]
        if utf8:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    lines = newlines + (1 if size and last != b"\n" else 0)
    header = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace") if size else None
    if header is not None:
        header = header.lstrip("\ufeff")  # a BOM is an encoding artefact, not part of the first name
    return FileScan(digest.hexdigest(), size, utf8, header, lines)


def has_header(contract: Contract) -> bool:
    return contract.format.get("type", "csv") == "csv" and contract.format.get("header", True)


def file_problem(scan: FileScan, contract: Contract) -> tuple[str, str] | None:
    """(rule, reason) if the whole file must be rejected, else None."""
    fmt = contract.format
    if scan.size == 0:
        return "file.not_empty", "the file is empty"
    if not scan.utf8:
        return "file.encoding", f"the file is not valid {fmt.get('encoding', 'utf-8')}"
    if not has_header(contract):
        return None  # JSON lines: every line is a row, checked row by row
    names = next(csv.reader([scan.header], delimiter=fmt["delimiter"], quotechar=fmt.get("quote", '"')))
    if names != contract.column_names:
        if sorted(names) == sorted(contract.column_names):
            return "file.header_order", (
                f"header has the contract's columns in another order: got {names}, expected {contract.column_names}"
            )
        missing = [c for c in contract.column_names if c not in names]
        extra = [c for c in names if c not in contract.column_names]
        return "file.header", f"header does not match the contract: missing {missing}, unexpected {extra}"
    if scan.lines <= 1:
        return "file.no_rows", "the file has a header but no data rows"
    return None


LineParser = Callable[[str], tuple[list[str | None] | None, str | None]]


def _csv_line_parser(contract: Contract) -> LineParser:
    names = contract.column_names
    delimiter = contract.format["delimiter"]
    quote = contract.format.get("quote", '"')

    def parse(value: str):
        try:
            parsed = next(csv.reader([value], delimiter=delimiter, quotechar=quote, strict=True))
        except csv.Error as exc:
            return None, f"row.unparseable: {exc}"
        if len(parsed) != len(names):
            return None, f"row.ragged: {len(parsed)} fields, contract has {len(names)}"
        return [v if v != "" else None for v in parsed], None

    return parse


def _json_scalar(value) -> str | None:
    # Bronze keeps values as delivered: numbers and booleans as their JSON text.
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _jsonl_line_parser(contract: Contract) -> LineParser:
    names = contract.column_names
    known = set(names)

    def parse(value: str):
        try:
            record = json.loads(value)
        except ValueError as exc:
            return None, f"row.unparseable: not JSON ({exc.msg})"
        if not isinstance(record, dict):
            return None, "row.unparseable: a JSON line must be an object"
        extra = sorted(set(record) - known)
        if extra:
            return None, f"row.unexpected_keys: {extra[:5]}"
        if any(isinstance(record.get(n), dict | list) for n in names):
            return None, "row.nested_value: contract columns hold scalars"
        return [_json_scalar(record.get(n)) for n in names], None

    return parse


def line_parser(contract: Contract) -> LineParser:
    kind = contract.format.get("type", "csv")
    if kind == "csv":
        return _csv_line_parser(contract)
    if kind == "jsonl":
        return _jsonl_line_parser(contract)
    raise ValueError(f"{contract.name}: unknown format type {kind!r} (csv or jsonl)")


def parse_rows(lines: DataFrame, contract: Contract) -> DataFrame:
    """(line, value) text lines -> the contract's columns as strings, plus _line and _reject_reason.

    Python parses each line (csv or json module), so a quoted delimiter stays
    inside its field and a ragged row is caught by its field count (Spark's
    CSV reader silently pads or truncates ragged rows).
    """
    names = contract.column_names
    parse_line = line_parser(contract)
    schema = T.StructType(
        [T.StructField(n, T.StringType(), True) for n in names]
        + [
            T.StructField("_line", T.LongType(), False),
            T.StructField(REJECT, T.StringType(), True),
            # The line as delivered, kept only for rejects: quarantine loses nothing.
            T.StructField("_raw", T.StringType(), True),
        ]
    )

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            out: dict[str, list] = {n: [] for n in schema.fieldNames()}
            for line_no, value in zip(batch["line"], batch["value"], strict=True):
                fields, reason = None, "row.blank_line"
                if value.strip():
                    fields, reason = parse_line(value)
                for n, v in zip(names, fields or [None] * len(names), strict=True):
                    out[n].append(v)
                out["_line"].append(int(line_no))
                out[REJECT].append(reason)
                out["_raw"].append(value if reason else None)
            yield pd.DataFrame(out, columns=schema.fieldNames())

    return lines.mapInPandas(parse, schema)


def _numbered_lines(spark: SparkSession, path: str, skip_header: bool) -> DataFrame:
    """Every data line (after the header, if any), with its 1-based line number in the file."""
    text = spark.read.text(path)
    numbered = text.rdd.zipWithIndex().map(lambda pair: (pair[1] + 1, pair[0][0]))
    lines = spark.createDataFrame(numbered, "line long, value string")
    return lines.where(F.col("line") > 1) if skip_header else lines


def land_file(
    spark: SparkSession, settings: Settings, contract: Contract, path: str, delivery: str, batch_id: str
) -> FileOutcome:
    scan = scan_file(path)
    rows_in_file = scan.lines - (1 if has_header(contract) else 0)
    base = {"source": contract.name, "delivery": delivery, "path": path, "sha256": scan.sha256}
    manifest_path = settings.table("ops", "landing_manifest")

    if lake.table_exists(spark, manifest_path):
        seen = (
            lake.read(spark, manifest_path)
            .where((F.col("sha256") == scan.sha256) & (F.col("status") == "landed"))
            .select("path")
            .collect()
        )
        earlier = [r.path for r in seen if r.path != path]
        if earlier:
            outcome = FileOutcome(
                **base,
                status="duplicate",
                rule="file.duplicate",
                reason="identical to a file already landed",
                rows_in_file=rows_in_file,
                rows_landed=0,
                rows_quarantined=0,
            )
            _record(spark, settings, outcome, batch_id)
            return outcome
        if seen:  # this very file landed in an earlier run: nothing to do
            prior = (
                lake.read(spark, manifest_path)
                .where((F.col("sha256") == scan.sha256) & (F.col("path") == path))
                .first()
            )
            return FileOutcome(**{k: prior[k] for k in FileOutcome.__dataclass_fields__})

    problem = file_problem(scan, contract)
    if problem:
        rule, reason = problem
        outcome = FileOutcome(
            **base,
            status="rejected",
            rule=rule,
            reason=reason,
            rows_in_file=rows_in_file,
            rows_landed=0,
            rows_quarantined=0,
        )
        _record(spark, settings, outcome, batch_id)
        return outcome

    parsed = parse_rows(_numbered_lines(spark, path, has_header(contract)), contract).persist()
    try:
        meta = [
            F.lit(path).alias("_source_file"),
            F.col("_line"),
            F.lit(scan.sha256).alias("_file_sha256"),
            F.lit(delivery).alias("_delivery"),
            F.lit(datetime.now(UTC).replace(tzinfo=None)).cast("timestamp").alias("_landed_at"),
            F.lit(batch_id).alias("_batch_id"),
        ]
        good = parsed.where(F.col(REJECT).isNull()).select(*contract.column_names, *meta)
        bad = parsed.where(F.col(REJECT).isNotNull()).select(
            F.lit("land").alias("stage"),
            F.lit(contract.name).alias("source"),
            F.lit(path).alias("source_file"),
            F.col("_line").alias("line"),
            F.lit(scan.sha256).alias("file_sha256"),
            F.regexp_extract(F.col(REJECT), r"^([a-z_.0-9]+)", 1).alias("rule"),
            F.col(REJECT).alias("reason"),
            F.col("_raw").alias("raw"),
            F.lit(batch_id).alias("batch_id"),
        )
        counts = {r[0]: r[1] for r in parsed.groupBy(F.col(REJECT).isNull()).count().collect()}
        landed, quarantined = counts.get(True, 0), counts.get(False, 0)
        lake.append_once(good, settings.table("bronze", contract.name), app_id=f"land-{scan.sha256}")
        if quarantined:
            lake.append_once(bad, settings.path("lake", "quarantine", "rows"), app_id=f"land-{scan.sha256}")
    finally:
        parsed.unpersist()

    outcome = FileOutcome(
        **base,
        status="landed",
        rule=None,
        reason=None,
        rows_in_file=rows_in_file,
        rows_landed=landed,
        rows_quarantined=quarantined,
    )
    if landed + quarantined != rows_in_file:
        raise RuntimeError(
            f"{path}: counts do not reconcile: {rows_in_file} rows in file, {landed} landed + {quarantined} quarantined"
        )
    _record(spark, settings, outcome, batch_id)
    return outcome


def _record(spark: SparkSession, settings: Settings, outcome: FileOutcome, batch_id: str) -> None:
    row = {**asdict(outcome), "batch_id": batch_id, "recorded_at": datetime.now(UTC).replace(tzinfo=None)}
    schema = (
        "source string, delivery string, path string, sha256 string, status string, rule string, reason string, "
        "rows_in_file long, rows_landed long, rows_quarantined long, batch_id string, recorded_at timestamp"
    )
    df = spark.createDataFrame([row], schema)
    lake.insert_new(spark, df, settings.table("ops", "landing_manifest"), keys=["path", "sha256"])
    if outcome.status == "rejected":
        lake.insert_new(
            spark,
            df.select("source", "delivery", "path", "sha256", "rule", "reason", "batch_id", "recorded_at"),
            settings.path("lake", "quarantine", "files"),
            keys=["path", "sha256"],
        )


def delivered_files(settings: Settings, contract: Contract) -> list[tuple[str, str]]:
    """(delivery, path) of every file delivered for a source, oldest delivery first."""
    root = f"{settings.landing}/{contract.name}"
    found = []
    for info in fs.list_files(root):
        relative = info.path[len(root) + 1 :]
        if "/" not in relative:
            continue  # a file outside any delivery folder has no delivery date
        delivery = relative.split("/", 1)[0]
        found.append((delivery, info.path))
    return sorted(found)


def land_all(spark: SparkSession, settings: Settings, batch_id: str) -> list[FileOutcome]:
    outcomes = []
    for contract in source_contracts():
        for delivery, path in delivered_files(settings, contract):
            outcome = land_file(spark, settings, contract, path, delivery, batch_id)
            log.info(
                "%s %s: %s (%d rows: %d landed, %d quarantined)%s",
                contract.name,
                delivery,
                outcome.status,
                outcome.rows_in_file,
                outcome.rows_landed,
                outcome.rows_quarantined,
                f" — {outcome.rule}: {outcome.reason}" if outcome.rule else "",
            )
            outcomes.append(outcome)
    return outcomes
