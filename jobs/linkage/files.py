"""`placelake link`: link a data engineer's own CSV files with the pipeline's method.

Each input is a CSV with a header using any of the columns below; record_id is
required, the rest are compared when present. Links go to DIR/links.csv;
what can be measured without truth is printed (counts and rates only).
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import standardise as std
from jobs.linkage.config import LinkageConfig

COLUMNS = ["record_id", "nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode", "address"]
# The three ways people write a date of birth in files we have seen: ISO, compact ISO, UK.
DATE_FORMATS = ["yyyy-MM-dd", "yyyyMMdd", "dd/MM/yyyy"]
_SEX = {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F"}


class LinkInputError(ValueError):
    """A bad input file: names the file, the line and the rule it broke (never a value from it)."""

    def __init__(self, path: Path, line: int | None, rule: str, reason: str) -> None:
        self.path, self.line, self.rule, self.reason = path, line, rule, reason
        where = f" line {line}" if line else ""
        super().__init__(f"{path}{where}: {rule} — {reason}")


@dataclass(frozen=True)
class InputFile:
    source: str
    path: Path
    columns: list[str]
    rows: list[dict[str, str]]


def read_input(path: Path) -> InputFile:
    """One input file, checked: readable, a record_id column, every record_id present and unique."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if not header:
                raise LinkInputError(path, 1, "link.no_header", "the file is empty or has no header line")
            if "record_id" not in header:
                raise LinkInputError(path, 1, "link.no_record_id", "the header has no record_id column")
            reader.fieldnames = header
            rows, seen = [], {}
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise LinkInputError(path, line, "link.ragged_row", "the row has more fields than the header")
                record_id = (row.get("record_id") or "").strip()
                if not record_id:
                    raise LinkInputError(path, line, "link.missing_record_id", "record_id is empty")
                if record_id in seen:
                    raise LinkInputError(
                        path, line, "link.duplicate_record_id", f"record_id repeats the one on line {seen[record_id]}"
                    )
                seen[record_id] = line
                rows.append({c: (row.get(c) or "").strip() or None for c in COLUMNS if c in header})
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LinkInputError(
            path, None, "link.unreadable", f"cannot read the file as UTF-8 CSV ({type(exc).__name__})"
        ) from None
    return InputFile(source=path.stem, path=path, columns=[c for c in COLUMNS if c in header], rows=rows)


def check_sources(inputs: list[InputFile]) -> None:
    """Sources are named after file stems; two inputs with one stem would merge their record ids."""
    seen: dict[str, Path] = {}
    for f in inputs:
        if f.source in seen:
            raise LinkInputError(f.path, None, "link.duplicate_source", f"same file name stem as {seen[f.source]}")
        seen[f.source] = f.path


def standardised(spark: SparkSession, inputs: list[InputFile]) -> DataFrame:
    """The inputs as one frame of (source, record_id, identity fields), standardised as silver is."""
    schema = "source string, " + ", ".join(f"{c} string" for c in COLUMNS)
    raw = spark.createDataFrame([(f.source, *[row.get(c) for c in COLUMNS]) for f in inputs for row in f.rows], schema)
    sex = F.lit("U")
    for code, value in _SEX.items():
        sex = F.when(F.upper(F.col("sex")) == code, F.lit(value)).otherwise(sex)
    return raw.select(
        "source",
        "record_id",
        std.nhs_number(F.col("nhs_number")).alias("nhs_number"),
        std.name(F.col("family_name")).alias("family_name"),
        std.name(F.col("given_name")).alias("given_name"),
        F.coalesce(*[std.parse_date(F.col("date_of_birth"), fmt) for fmt in DATE_FORMATS]).alias("date_of_birth"),
        sex.alias("sex"),
        std.postcode(F.col("postcode")).alias("postcode"),
        std.name(F.col("address")).alias("address"),
    )


# Kept beside links.csv: what `placelake link --against DIR` links a later delivery against.
STATE = ".placelake-state"


def save_state(state, compared: set[str], folder: Path) -> None:
    """A link's LinkState (jobs.link) under folder: its links, identities and term counts as parquet, and its model."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("links", "identities", "term_counts"):
        getattr(state, name).write.mode("overwrite").parquet(str(folder / name))
    meta = {"model": state.model, "identity_count": state.identity_count, "compared": sorted(compared)}
    (folder / "state.json").write_text(json.dumps(meta), encoding="utf-8")


def load_state(spark: SparkSession, output: Path):
    """(LinkState, the columns it compared) of an earlier `placelake link --output output`."""
    from jobs.link import LinkState

    folder = output / STATE
    try:
        meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LinkInputError(
            output, None, "link.no_state", f"no {STATE}/state.json: not the output folder of an earlier placelake link"
        ) from None
    if meta["model"] is None:
        raise LinkInputError(output, None, "link.no_model", "that link trained no model (too few records or columns)")
    frames = {name: spark.read.parquet(str(folder / name)).localCheckpoint() for name in ("links", "identities")}
    counts = spark.read.parquet(str(folder / "term_counts")).localCheckpoint()
    state = LinkState(frames["links"], frames["identities"], meta["model"], meta["identity_count"], counts)
    return state, set(meta["compared"])


def link_files(
    spark: SparkSession,
    paths: list[Path],
    output: Path,
    config: LinkageConfig | None = None,
    engine: str = "spark",
    against: Path | None = None,
) -> dict:
    """Link the files into output/links.csv; returns what it measured (counts and rates).

    engine: where Splink trains and scores (jobs.linkage.model.ENGINES).
    against: an earlier link's output folder: the files are a delivery, linked
    against that link with its model (records it had and the files re-send are
    linked as they are now; the rest keep their person_id), and links.csv holds
    every record of both."""
    from jobs.link import link_delivery, link_records
    from jobs.linkage.metrics import run_metrics

    inputs = [read_input(Path(p)) for p in paths]
    check_sources(inputs)
    config = config or LinkageConfig.load()
    present = set.intersection(*[set(f.columns) for f in inputs]) - {"record_id"}
    if against is not None and against.resolve() == output.resolve():
        raise LinkInputError(output, None, "link.against_is_output", "--output must be a new folder, not --against's")
    state, compared = load_state(spark, against) if against is not None else (None, present)
    output.mkdir(parents=True, exist_ok=True)
    scratch = output / ".splink-tmp"
    # Checkpointed: rows typed in from Python would otherwise be re-standardised inside every query plan.
    records = standardised(spark, inputs).localCheckpoint()
    try:
        if state is None:
            linked = link_records(
                spark, records, config, str(scratch), run_id="placelake-link", present=present, engine=engine
            )
        else:
            linked = link_delivery(
                spark, records, state, config, str(scratch), "placelake-link", present=compared, engine=engine
            )
        rows = linked.links.select("source", "record_id", "person_id").orderBy("source", "record_id").collect()
        with open(output / "links.csv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["source", "record_id", "person_id"])
            writer.writerows([(r.source, r.record_id, r.person_id) for r in rows])
        measured = run_metrics(linked.links, linked.scored, config.match_threshold)
        save_state(linked.state(), compared, output / STATE)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "files": len(inputs),
        "compared": sorted(compared),
        "engine": engine,
        "identities": linked.counts["identities"],
        "new_identities": linked.counts["new_identities"] if state is not None else None,
        "metrics": [(m, g, v) for m, _, g, v, _, _ in measured],
    }
