"""Landing with real Spark and Delta on tiny hand-written deliveries: every bad
input has a named outcome, nothing is lost, the rest still lands, and a
retried landing never duplicates a row."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import lake, land
from jobs.config import Settings
from jobs.contracts import source_contract, source_contracts

pytestmark = pytest.mark.integration

GP = source_contract("gp_registrations")
ASC = source_contract("asc_services")
# A JSON-lines source, as the NHS trust's new feed will send: same columns as GP.
GP_JSONL = replace(GP, name="gp_jsonl", format={"type": "jsonl", "encoding": "utf-8", "date_format": "yyyy-MM-dd"})
CONTRACTS = (*source_contracts(), GP_JSONL)

GP_HEADER = ",".join(GP.column_names)
GP_ROWS = (
    "R1,0123456789,O'Brien,Zoë,2001-01-01,2,LK1 1AA,Y02101,2020-01-01,,\n"
    "R2,,Ng,Mei,1950-06-05,1,,Y02102,2021-03-04,,\n"
    "R3,999 000 0026,Smith-Jones,Ann,1944-12-31,9,LK1 1AB,Y02101,2019-07-08,,\n"
)
GOOD = (GP_HEADER + "\n" + GP_ROWS).encode()


def _home(tmp_path: Path) -> Settings:
    return Settings.from_env({"PLACELAKE_HOME": str(tmp_path)})


def _deliver(settings: Settings, relative: str, data: bytes) -> str:
    path = Path(settings.landing, relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _bad_day(settings: Settings) -> None:
    """Every bad input of issue #4, beside good files of the same sources."""
    gp, asc = "gp_registrations", "asc_services"
    _deliver(settings, f"{gp}/2026-11-01/good.csv", GOOD)
    embedded = (
        GP_HEADER + "\n"
        # A quoted newline inside a name, then quotes inside a quoted name.
        'R4,,"Smith\nJones",Ann,1944-12-31,2,,Y02101,2019-07-08,,\n'
        'R5,,"O""Neill",Sé,1950-01-01,1,,Y02101,2019-07-08,,\n'
        "R6,,Ng,Li,1950-01-01,1,,Y02101,2019-07-08,,\n"
    )
    _deliver(settings, f"{gp}/2026-11-01/embedded.csv", embedded.encode())
    latin1 = (
        GP_HEADER + "\nR7,,Ng,Mei,2001-01-01,2,,Y02101,2020-01-01,,\nR8,,Nuñez,Ana,2001-01-01,2,,Y02101,2020-01-01,,\n"
    )
    _deliver(settings, f"{gp}/2026-11-01/latin1.csv", latin1.encode("latin-1"))
    _deliver(
        settings,
        f"{gp}/2026-11-01/bom.csv",
        b"\xef\xbb\xbf" + (GP_HEADER + "\nR9,,Ng,Mei,2001-01-01,2,,Y02101,2020-01-01,,\n").encode(),
    )
    reordered = ",".join(reversed(GP.column_names)) + "\n" + ",".join(reversed(GP_ROWS.splitlines()[0].split(",")))
    _deliver(settings, f"{gp}/2026-11-02/reordered.csv", (reordered + "\n").encode())
    _deliver(
        settings, f"{gp}/2026-11-02/missing.csv", (",".join(GP.column_names[:-1]) + "\nR1,a,b,c,d,e,f,g\n").encode()
    )
    _deliver(settings, f"{gp}/2026-11-02/extra.csv", (GP_HEADER + ",notes\n" + GP_ROWS.replace("\n", ",x\n")).encode())
    _deliver(settings, f"{gp}/2026-11-02/empty.csv", b"")
    _deliver(settings, f"{gp}/2026-11-02/header_only.csv", (GP_HEADER + "\n").encode())
    _deliver(settings, f"{gp}/2026-11-03/good_again.csv", GOOD)
    _deliver(settings, f"{gp}/2026-11-03/truncated.csv.gz", gzip.compress(GOOD * 20, mtime=0)[:60])
    _deliver(
        settings,
        f"{gp}/2026-11-03/zipped.csv.gz",
        gzip.compress((GP_HEADER + "\n" + GP_ROWS.splitlines(keepends=True)[0]).encode(), mtime=0),
    )
    _deliver(settings, f"{gp}/no_date.csv", GOOD.replace(b"R1,", b"R0,"))
    asc_header = "|".join(ASC.column_names)
    ragged = (
        asc_header + "\n"
        "S1|C1||O'Brien|Zoë|01/02/1940|F|LK1 1AA|HOME_CARE|01/01/2025|\n"
        "S2|C2|Bloggs|Joe\n"
        "S3|C3|9990000026|Ng|Mei|05/06/1950|F||NURSING|02/02/2025|03/03/2025\n"
    )
    _deliver(settings, f"{asc}/2026-11-01/asc_services.txt", ragged.encode())
    jsonl = '{"registration_id": "J1", "nhs_number": "0123456789", "sex": 2}\n{"registration_id": "J2"\n{"registration_id": "J3"}\n'
    _deliver(settings, "gp_jsonl/2026-11-01/gp.jsonl", jsonl.encode())
    _deliver(settings, "hospital_admissions/2026-11-01/apc.csv", b"spell_id,nhs_number\nA1,9990000026\n")
    _deliver(settings, "readme.txt", b"deliveries go in landing/<source>/<date>/\n")


@pytest.fixture(scope="module")
def bad_day(spark, tmp_path_factory):
    settings = _home(tmp_path_factory.mktemp("bad-day"))
    _bad_day(settings)
    outcomes = land.land_all(spark, settings, batch_id="bad-day", contracts=CONTRACTS)
    manifest = {r.file: r for r in lake.read(spark, settings.table("ops", "landing_manifest")).collect()}
    return settings, outcomes, manifest


EXPECTED = {
    # file: (status, rule, line)
    "good.csv": ("landed", None, None),
    "embedded.csv": ("landed", None, None),
    "latin1.csv": ("rejected", "file.encoding", 3),
    "bom.csv": ("landed", "file.bom", 1),
    "reordered.csv": ("rejected", "file.header_order", 1),
    "missing.csv": ("rejected", "file.missing_column", 1),
    "extra.csv": ("rejected", "file.extra_column", 1),
    "empty.csv": ("rejected", "file.not_empty", None),
    "header_only.csv": ("rejected", "file.no_rows", None),
    "good_again.csv": ("duplicate", "file.duplicate", None),
    "truncated.csv.gz": ("rejected", "file.truncated", None),
    "zipped.csv.gz": ("landed", None, None),
    "no_date.csv": ("rejected", "file.no_delivery_date", None),
    "asc_services.txt": ("landed", None, None),
    "gp.jsonl": ("landed", None, None),
    "apc.csv": ("rejected", "file.unknown_source", None),
    "readme.txt": ("rejected", "file.unknown_source", None),
}


def test_every_file_has_its_named_outcome(bad_day):
    _, outcomes, manifest = bad_day
    assert {f: (m.status, m.rule, m.line) for f, m in manifest.items()} == EXPECTED
    assert sorted(o.file for o in outcomes) == sorted(EXPECTED)
    for m in manifest.values():
        assert m.reason or m.status == "landed", m.file  # every rule comes with a reason


def test_nothing_is_lost_every_delivered_file_is_recorded_once(spark, bad_day):
    settings, _, manifest = bad_day
    delivered = sorted(str(p) for p in Path(settings.landing).rglob("*") if p.is_file())
    recorded = lake.read(spark, settings.table("ops", "landing_manifest")).select("path").collect()
    assert sorted(r.path for r in recorded) == delivered
    quarantined = lake.read(spark, settings.path("lake", "quarantine", "files")).collect()
    rejected = {f for f, m in manifest.items() if m.status == "rejected"}
    assert sorted(r.file for r in quarantined) == sorted(rejected)
    unknown = {r.file: (r.source, r.delivery) for r in quarantined if r.rule == "file.unknown_source"}
    assert unknown == {"apc.csv": ("hospital_admissions", "2026-11-01"), "readme.txt": (None, None)}


def test_counts_reconcile_with_what_bronze_and_quarantine_hold(spark, bad_day):
    settings, _, manifest = bad_day
    rows = lake.read(spark, settings.path("lake", "quarantine", "rows"))
    expected = {  # rows in file, landed, quarantined: counted by hand
        "good.csv": (3, 3, 0),
        "embedded.csv": (3, 3, 0),
        "bom.csv": (1, 1, 0),
        "zipped.csv.gz": (1, 1, 0),
        "asc_services.txt": (3, 2, 1),
        "gp.jsonl": (3, 2, 1),
    }
    for name, (in_file, landed, quarantined) in expected.items():
        m = manifest[name]
        assert (m.rows_in_file, m.rows_landed, m.rows_quarantined) == (in_file, landed, quarantined), name
        bronze = lake.read(spark, settings.table("bronze", m.source)).where(F.col("_file_sha256") == m.sha256)
        assert bronze.count() == landed, name
        assert rows.where((F.col("stage") == "land") & (F.col("file_sha256") == m.sha256)).count() == quarantined
    for m in manifest.values():
        if m.status != "landed":
            assert (m.rows_landed, m.rows_quarantined) == (0, 0), m.file


def test_quoted_newlines_and_quotes_land_in_their_field_with_physical_line_numbers(spark, bad_day):
    settings, _, manifest = bad_day
    bronze = lake.read(spark, settings.table("bronze", "gp_registrations"))
    embedded = bronze.where(F.col("_file_sha256") == manifest["embedded.csv"].sha256)
    got = sorted((r._line, r.registration_id, r.family_name) for r in embedded.collect())
    assert got == [(2, "R4", "Smith\nJones"), (4, "R5", 'O"Neill'), (5, "R6", "Ng")]


def test_bronze_keeps_values_as_delivered_with_lineage(spark, bad_day):
    settings, _, manifest = bad_day
    bronze = lake.read(spark, settings.table("bronze", "gp_registrations"))
    assert bronze.columns == [
        *GP.column_names,
        "_source_file",
        "_line",
        "_file_sha256",
        "_delivery",
        "_landed_at",
        "_batch_id",
    ]
    assert all(t == "string" for c, t in bronze.dtypes if c in GP.column_names)
    r1 = bronze.where(F.col("_file_sha256") == manifest["good.csv"].sha256).where(F.col("_line") == 2).first()
    assert (r1.registration_id, r1.nhs_number, r1.family_name, r1.given_name) == ("R1", "0123456789", "O'Brien", "Zoë")
    assert (r1._delivery, r1._batch_id, r1._source_file) == ("2026-11-01", "bad-day", manifest["good.csv"].path)
    bom = bronze.where(F.col("_file_sha256") == manifest["bom.csv"].sha256).first()
    assert bom.registration_id == "R9"  # the byte order mark is not part of the first value
    zipped = bronze.where(F.col("_file_sha256") == manifest["zipped.csv.gz"].sha256).first()
    assert zipped.registration_id == "R1"


def test_malformed_rows_are_quarantined_with_file_line_and_rule(spark, bad_day):
    settings, _, _ = bad_day
    rows = lake.read(spark, settings.path("lake", "quarantine", "rows")).where(F.col("stage") == "land")
    got = sorted((r.source, r.source_file.rsplit("/", 1)[-1], r.line, r.rule) for r in rows.collect())
    assert got == [
        ("asc_services", "asc_services.txt", 3, "row.ragged"),
        ("gp_jsonl", "gp.jsonl", 2, "row.unparseable"),
    ]
    ragged = rows.where(F.col("source") == "asc_services").first()
    assert ragged.raw == "S2|C2|Bloggs|Joe"  # kept as delivered: quarantine loses nothing


def test_landing_again_changes_nothing(spark, bad_day):
    settings, _, _ = bad_day
    tables = [settings.table("bronze", "gp_registrations"), settings.table("ops", "landing_manifest")]
    versions = [lake.version(spark, t) for t in tables]
    assert land.land_all(spark, settings, batch_id="again", contracts=CONTRACTS) == []
    assert [lake.version(spark, t) for t in tables] == versions


def test_a_resent_file_under_a_new_name_is_a_duplicate_and_adds_nothing(spark, tmp_path):
    settings = _home(tmp_path)
    _deliver(settings, "gp_registrations/2026-11-01/gp.csv", GOOD)
    land.land_all(spark, settings, batch_id="first", contracts=[GP])
    _deliver(settings, "gp_registrations/2026-11-08/gp.csv", GOOD)
    [outcome] = land.land_all(spark, settings, batch_id="second", contracts=[GP])
    assert (outcome.status, outcome.rule, outcome.delivery) == ("duplicate", "file.duplicate", "2026-11-08")
    assert lake.read(spark, settings.table("bronze", "gp_registrations")).count() == 3


def test_a_crash_between_bronze_and_the_manifest_never_duplicates_a_row(spark, tmp_path, monkeypatch):
    settings = _home(tmp_path)
    asc = "|".join(ASC.column_names) + "\nS1|C1||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\nS2|ragged\n"
    _deliver(settings, "asc_services/2026-11-01/asc.txt", asc.encode())

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after the bronze commit, before quarantine and the manifest")

    with monkeypatch.context() as patch:
        patch.setattr(land, "_record", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            land.land_all(spark, settings, batch_id="crashed", contracts=[ASC])
    bronze_path = settings.table("bronze", "asc_services")
    assert lake.read(spark, bronze_path).count() == 1  # the bronze commit went through
    assert not lake.table_exists(spark, settings.table("ops", "landing_manifest"))

    # Before the retry, another file arrives: the batch differs, so txnAppId alone would not save us.
    _deliver(settings, "asc_services/2026-11-02/asc.txt", asc.replace("S1|", "S9|").encode())
    outcomes = land.land_all(spark, settings, batch_id="retry", contracts=[ASC])
    assert sorted((o.delivery, o.status, o.rows_landed, o.rows_quarantined) for o in outcomes) == [
        ("2026-11-01", "landed", 1, 1),
        ("2026-11-02", "landed", 1, 1),
    ]
    bronze = lake.read(spark, bronze_path)
    assert sorted(r.service_id for r in bronze.collect()) == ["S1", "S9"]
    quarantined = lake.read(spark, settings.path("lake", "quarantine", "rows")).where(F.col("stage") == "land")
    assert quarantined.count() == 2
    assert quarantined.select("file_sha256", "line").distinct().count() == 2


def test_rejects_too_many_to_keep_on_the_driver_are_quarantined_the_same(spark, tmp_path, monkeypatch):
    asc = "|".join(ASC.column_names) + "\nS1|C1||Ng|Mei|01/02/1940|F||HOME_CARE|01/01/2025|\nS2|ragged\n\nS4|C4\n"

    def quarantined(home: Path) -> list[tuple]:
        settings = _home(home)
        _deliver(settings, "asc_services/2026-11-01/asc.txt", asc.encode())
        [outcome] = land.land_all(spark, settings, batch_id="b", contracts=[ASC])
        assert (outcome.rows_landed, outcome.rows_quarantined) == (1, 3)
        rows = lake.read(spark, settings.path("lake", "quarantine", "rows"))
        return sorted((r.stage, r.source, r.line, r.rule, r.reason, r.raw) for r in rows.collect())

    local = quarantined(tmp_path / "local")
    monkeypatch.setattr(land, "lands_locally", lambda settings: False)  # the path a lake on an object store takes
    kept = quarantined(tmp_path / "kept")
    monkeypatch.setattr(land, "_KEPT_REJECTS", 2)  # three rejects: the file is parsed again in Spark for them
    parsed_again = quarantined(tmp_path / "parsed-again")
    assert parsed_again == kept == local
    assert [(line, rule, raw) for _, _, line, rule, _, raw in kept] == [
        (3, "row.ragged", "S2|ragged"),
        (4, "row.blank_line", ""),
        (5, "row.ragged", "S4|C4"),
    ]


def _contents(spark, settings: Settings) -> dict[str, list[tuple]]:
    """Every landing table's rows, with the home and the landing time taken out, in a fixed order."""
    home = settings.home

    def plain(row) -> tuple:
        return tuple(v.replace(home, "<home>") if isinstance(v, str) else v for v in row)

    tables = {
        "manifest": settings.table("ops", "landing_manifest"),
        "quarantine_rows": settings.path("lake", "quarantine", "rows"),
        "quarantine_files": settings.path("lake", "quarantine", "files"),
        **{f"bronze.{name}": path for name, path in lake.table_paths(settings, "bronze").items()},
    }
    found = {}
    for name, path in tables.items():
        frame = lake.read(spark, path)
        frame = frame.drop(*[c for c in frame.columns if c in ("landed_at", "_landed_at")])
        found[name] = (frame.dtypes, sorted((plain(r) for r in frame.collect()), key=repr))
    return found


@pytest.mark.engines
def test_spark_lands_the_same_rows_in_the_same_tables(spark, bad_day, tmp_path, monkeypatch):
    """A lake on an object store lands through Spark; on local disk, worker processes and delta-rs do."""
    settings, _, _ = bad_day
    elsewhere = _home(tmp_path)
    _bad_day(elsewhere)
    monkeypatch.setattr(land, "lands_locally", lambda settings: False)
    land.land_all(spark, elsewhere, batch_id="bad-day", contracts=CONTRACTS)
    by_spark, locally = _contents(spark, elsewhere), _contents(spark, settings)
    assert sorted(by_spark) == sorted(locally)
    for table in locally:
        assert by_spark[table] == locally[table], table  # the same columns, types and rows
    assert len(locally["bronze.gp_registrations"][1]) == 8  # good, embedded, bom and zipped: 3 + 3 + 1 + 1


def test_files_waiting_for_a_contract_land_once_it_exists(spark, tmp_path):
    settings = _home(tmp_path)
    _deliver(settings, "gp_new/2026-11-01/gp.csv", GOOD)
    [waiting] = land.land_all(spark, settings, batch_id="before", contracts=[GP])
    assert (waiting.status, waiting.rule, waiting.source) == ("rejected", "file.unknown_source", "gp_new")
    [landed] = land.land_all(spark, settings, batch_id="after", contracts=[GP, replace(GP, name="gp_new")])
    assert (landed.status, landed.rows_landed) == ("landed", 3)
    assert land.land_all(spark, settings, batch_id="again", contracts=[GP, replace(GP, name="gp_new")]) == []
