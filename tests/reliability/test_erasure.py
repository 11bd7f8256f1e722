"""Right to erasure: `placelake forget --nhs-number N` on a lake a whole pipeline built (the recovered one,
after test_crash has read it), then every layer, every earlier table version, landing and the files
on disk are searched for the person; a run afterwards must not bring them back."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import os
import re

import pytest
from lakes import lake_tables
from pipelines import placelake
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import lake
from jobs.contracts import source_contracts
from jobs.forget import number_pattern

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _hmac(value: str) -> str:
    return hmac.new(os.environ["PLACELAKE_PSEUDONYM_KEY"].encode(), value.encode(), hashlib.sha256).hexdigest()


def _someone(spark, settings):
    """A published person whose NHS number is on records from two or more sources."""
    links = lake.read(spark, settings.table("silver", "person_link"))
    person = lake.read(spark, settings.table("silver", "person")).where(F.col("nhs_number").isNotNull())
    published = {r.person_key for r in lake.read(spark, settings.table("gold", "person")).collect()}
    candidates = (
        links.groupBy("person_id")
        .agg(F.countDistinct("source").alias("sources"), F.count("*").alias("records"))
        .where(F.col("sources") >= 2)
        .join(person.select("person_id", "nhs_number"), "person_id", "inner")
        .orderBy(F.col("records").desc(), "person_id")
        .collect()
    )
    return next(c for c in candidates if _hmac(c.person_id) in published)


@pytest.fixture(scope="module")
def erased(recovered, spark):
    settings = recovered.settings
    who = _someone(spark, settings)
    records = [
        (r.source, r.record_id)
        for r in lake.read(spark, settings.table("silver", "person_link"))
        .where(F.col("person_id") == who.person_id)
        .collect()
    ]
    before = {name: lake.version(spark, path) for name, path in lake_tables(settings).items()}
    who_ = {"number": who.nhs_number, "person_id": who.person_id, "records": records}
    who_ |= {"person_key": _hmac(who.person_id), "event_keys": [_hmac(f"{s}:{r}") for s, r in records]}
    held = sorted(name for name, path in lake_tables(settings).items() if _holding(lake.read(spark, path), who_))
    spaced = f"{who.nhs_number[:3]} {who.nhs_number[3:6]} {who.nhs_number[6:]}"
    result = placelake(recovered.home, "forget", "--nhs-number", spaced, log_name="forget")
    assert result.returncode == 0, result.tail()
    return {**who_, "versions": before, "held": held, "result": result}


def _holding(df, erased) -> int:
    """Rows of df that carry the person: their number (as delivered or clean), id, keys or records."""
    values = [erased["number"], erased["person_id"], erased["person_key"], *erased["event_keys"]]
    strings = [f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)]
    condition = F.lit(False)
    for column in strings:
        condition = condition | F.col(column).isin(values) | F.col(column).rlike(number_pattern([erased["number"]]))
    if {"source", "record_id"} <= set(df.columns):
        for source, record_id in erased["records"]:
            condition = condition | ((F.col("source") == source) & (F.col("record_id") == record_id))
    return df.where(condition).count()


def test_forget_names_no_one_in_its_output(erased):
    out = erased["result"].stdout + erased["result"].stderr
    assert "forgot 1 NHS number(s): 1 person(s)" in out
    for value in (erased["number"], erased["person_id"], erased["person_key"]):
        assert value not in out


def test_the_person_was_in_every_layer_and_is_now_in_none(erased, recovered, spark):
    settings = recovered.settings
    layers = {name.split("/")[0] for name in erased["held"]}
    assert {"bronze", "silver", "gold", "staging"} <= layers, erased["held"]
    for name, path in lake_tables(settings).items():
        assert _holding(lake.read(spark, path), erased) == 0, name


def test_no_earlier_table_version_can_be_read_with_them_in_it(erased, recovered, spark):
    settings = recovered.settings
    checked = failed = 0
    for name, path in lake_tables(settings).items():
        old = erased["versions"].get(name)
        if old is None:
            continue
        for version in range(old + 1):
            checked += 1
            try:
                held = _holding(lake.read(spark, path, version=version), erased)
            except Exception:  # noqa: BLE001 - the files of that version are gone: it cannot be read at all
                failed += 1
                continue
            assert held == 0, (name, version)
    assert checked and failed, "some earlier versions held the person and are now unreadable"


def test_no_file_in_the_lake_or_landing_holds_their_number(erased, recovered):
    pattern = re.compile(number_pattern([erased["number"]]).encode())
    holding = []
    for root in (recovered.home / "lake", recovered.home / "landing", recovered.home / "tmp"):
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            if path.suffix == ".gz":
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError):
                    pass
            if pattern.search(data):
                holding.append(str(path.relative_to(recovered.home)))
    assert holding == []


def test_the_erasure_is_recorded_as_an_hmac_never_the_number(erased, recovered, spark):
    settings = recovered.settings
    rows = lake.read(spark, settings.table("ops", "erasures")).collect()
    assert [r.erasure_id for r in rows] == [_hmac(f"erasure:{erased['number']}")]
    assert rows[0].people == 1 and rows[0].records >= len(erased["records"]) and rows[0].vacuumed
    manifest = lake.read(spark, settings.table("ops", "landing_manifest")).where(F.col("status") == "erased").collect()
    assert manifest and all(r.rule == "erasure" for r in manifest)


def test_the_next_run_would_land_nothing_and_conservation_still_holds(erased, recovered, spark):
    """What a run after the erasure would do, without paying for one: landing finds every file (the
    rewritten ones included) already handled, and bronze = silver + superseded + quarantined per source."""
    from jobs import land
    from jobs.clean import conservation

    settings = recovered.settings
    recorded = land.recorded_files(spark, settings)
    delivered = land.delivered_files(settings)
    waiting = [
        d.path for d in delivered if not d.symlink and (d.path, land.scan_file(d.path).sha256) not in recorded.handled
    ]
    assert waiting == []
    for contract in source_contracts():
        bronze = lake.read(spark, settings.table("bronze", contract.name))
        figures = conservation(spark, settings, contract.name, bronze, run_id="after-forget")
        assert (
            figures["bronze_rows"] == figures["silver_rows"] + figures["superseded_rows"] + figures["quarantined_rows"]
        )
