"""Linkage end to end with real Splink, on Spark and on DuckDB: `placelake link` on two small files,
the same links from either engine, then an incremental delivery that keeps every person_id."""

from __future__ import annotations

import csv
import json
import re
from datetime import date

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from jobs.cli import main
from jobs.link import SILVER_FEATURES, link_delivery, link_records
from jobs.linkage import model
from jobs.linkage.config import LinkageConfig
from jobs.linkage.features import identities, identity_features
from jobs.linkage.files import read_input, standardised

pytestmark = pytest.mark.integration
# Splink on DuckDB is how a local Spark links (the default); on Spark, how a cluster does: make test-engines.
ENGINES = [pytest.param(e, marks=pytest.mark.engines) if e == model.SPARK else e for e in model.ENGINES]

GIVEN = ["WILLIAM", "MARGARET", "ANITA", "OLUWASEUN", "SIOBHAN", "KRZYSZTOF", "PRIYA", "DECLAN", "FATIMA", "GARETH"]
NEWCOMER_GIVEN = ["ZEB", "QUINN", "YUSUF", "XAVIERA", "VIVIENNE", "ULRIKE", "TOBIAS", "RUFUS", "NIAMH", "ORLA"]
NEWCOMER_FAMILY = [
    "VOSS",
    "ILIESCU",
    "KAMARA",
    "LUNDQVIST",
    "MBEKI",
    "NAKAMURA",
    "OYELARAN",
    "PETROV",
    "RASK",
    "SOLBERG",
]
FAMILY = ["ABERNATHY", "BHATTACHARYA", "CHOWDHURY", "DELACROIX", "EVANS", "FITZGERALD", "GUNASEKARA", "HALLORAN"]


def _nhs(i: int) -> str:
    """A valid test-range NHS number (999 prefix, Modulus 11 check digit)."""
    for base in range(i * 7, i * 7 + 20):
        digits = f"999{base:06d}"
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
    raise AssertionError(i)


def _person(i: int) -> dict[str, str]:
    born = date(1930 + (i * 7) % 70, 1 + (i * 5) % 12, 1 + (i * 11) % 28)
    return {
        "nhs_number": _nhs(i),
        "given_name": GIVEN[i % len(GIVEN)],
        "family_name": FAMILY[(i // len(GIVEN)) % len(FAMILY)] + ("" if i < 80 else "SON"),
        "date_of_birth": born.isoformat(),
        "sex": "F" if GIVEN[i % len(GIVEN)] in ("MARGARET", "ANITA", "SIOBHAN", "PRIYA", "FATIMA") else "M",
        "postcode": f"LS{1 + i % 9} {i % 10}AB",
    }


def _write(path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _council_view(i: int) -> dict[str, str]:
    """How the council holds person i: no NHS number for most, and the usual damage for some."""
    p = _person(i)
    if i % 3:
        p["nhs_number"] = ""
    born = date.fromisoformat(p["date_of_birth"])
    p["date_of_birth"] = born.strftime("%d/%m/%Y")  # the council's own date format
    if i % 10 == 1 and born.day <= 12 and born.day != born.month:
        p["date_of_birth"] = born.strftime("%m/%d/%Y")  # day and month transposed
    if p["given_name"] == "WILLIAM" and i % 20 == 0:
        p["given_name"] = "Bill"
    if i % 10 == 4:
        p["family_name"] = p["family_name"] + "-JONES"  # double-barrelled since
    if i % 10 == 6:
        p["postcode"] = ""
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("link-files")
    gp = [{"record_id": f"G{i:03d}", **_person(i)} for i in range(90)]
    council = [{"record_id": f"C{i:03d}", **_council_view(i)} for i in range(0, 90, 2)]
    # Council-only people: names the GP file does not hold (a near-namesake born the same year
    # as a GP patient is a hard case a model trained on 145 records can get wrong).
    council += [
        {"record_id": f"C9{i:02d}", **_council_view(i), "nhs_number": "", "given_name": g, "family_name": f}
        for i, g, f in zip(range(100, 110), NEWCOMER_GIVEN, NEWCOMER_FAMILY, strict=True)
    ]
    _write(root / "gp.csv", gp)
    _write(root / "council.csv", council)
    return root


def test_link_cli_links_the_same_people_across_files(files, spark, capsys):
    out = files / "out"
    assert (
        main(["link", "--input", str(files / "gp.csv"), "--input", str(files / "council.csv"), "--output", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "link_rate" in printed and "est_false_match_rate" in printed
    with open(out / "links.csv", encoding="utf-8", newline="") as handle:
        links = {(r["source"], r["record_id"]): r["person_id"] for r in csv.DictReader(handle)}
    assert len(links) == 90 + 45 + 10
    gp_person = {links[("gp", f"G{i:03d}")]: i for i in range(90)}
    # Precision: a council record joins its own GP person or nobody from the GP file.
    for i in range(0, 90, 2):
        assert gp_person.get(links[("council", f"C{i:03d}")], i) == i, i
    for i in range(100, 110):
        assert links[("council", f"C9{i:02d}")] not in gp_person, i
    # Recall: a model trained on 145 records is weak; a record with neither NHS number nor
    # postcode (names, date of birth and sex only) may stay apart. Most must still link:
    # 39 of 45 do today (issue #6 tracks raising it); fewer than 38 is a regression.
    found = sum(links[("council", f"C{i:03d}")] == links[("gp", f"G{i:03d}")] for i in range(0, 90, 2))
    assert found >= 38, found


def _links_csv(folder) -> dict[tuple, str]:
    with open(folder / "links.csv", encoding="utf-8", newline="") as handle:
        return {(r["source"], r["record_id"]): r["person_id"] for r in csv.DictReader(handle)}


def test_link_cli_links_a_delivery_against_an_earlier_link_keeping_its_ids(files, capsys):
    first, second = files / "first", files / "second"
    assert (
        main(["link", "--input", str(files / "gp.csv"), "--input", str(files / "council.csv"), "--output", str(first)])
        == 0
    )
    (files / "delivery").mkdir()
    delivery = files / "delivery" / "council.csv"  # the council's next file: same source, two records
    _write(delivery, [{"record_id": "C001", **_council_view(1)}, {"record_id": "C999", **_council_view(150)}])
    capsys.readouterr()
    assert main(["link", "--input", str(delivery), "--against", str(first), "--output", str(second)]) == 0
    assert f"a delivery against {first}: 2 new identities" in capsys.readouterr().out
    before, after = _links_csv(first), _links_csv(second)
    assert len(after) == len(before) + 2  # every record of both, once
    assert {k: after[k] for k in before} == before
    assert after[("council", "C001")] == before[("gp", "G001")]
    assert after[("council", "C999")] not in set(before.values())
    # A folder no link wrote, and the earlier output itself, are refused before anything is written.
    assert main(["link", "--input", str(delivery), "--against", str(files), "--output", str(files / "o3")]) == 2
    assert "link.no_state" in capsys.readouterr().err and not (files / "o3").exists()
    assert main(["link", "--input", str(delivery), "--against", str(first), "--output", str(first)]) == 2
    assert "link.against_is_output" in capsys.readouterr().err and _links_csv(first) == before


def test_link_cli_refuses_bad_input_naming_file_line_and_rule(files, capsys):
    bad = files / "dupes.csv"
    bad.write_text("record_id,given_name\nX1,ANN\nX1,ANN\n", encoding="utf-8")
    assert main(["link", "--input", str(files / "gp.csv"), "--input", str(bad), "--output", str(files / "o2")]) == 2
    err = capsys.readouterr().err
    assert f"{bad} line 3: link.duplicate_record_id" in err and "ANN" not in err
    assert not (files / "o2" / "links.csv").exists()


@pytest.fixture(scope="module")
def first_link(files, spark, tmp_path_factory):
    """A full link of the two files, and the records after the council sends two more.

    The council's delivery: person 1 (known to the GP only) and a newcomer.
    """
    base = [read_input(files / "gp.csv"), read_input(files / "council.csv")]
    first = link_records(
        spark, standardised(spark, base), LinkageConfig.load(), str(tmp_path_factory.mktemp("a")), "run-1"
    )
    delivery = files / "council_new.csv"
    _write(delivery, [{"record_id": "C001", **_council_view(1)}, {"record_id": "C999", **_council_view(150)}])
    more = read_input(delivery)
    more = type(more)(source="council", path=more.path, columns=more.columns, rows=base[1].rows + more.rows)
    return first, standardised(spark, [base[0], more]).persist()


@pytest.mark.engines
def test_splink_on_duckdb_links_the_files_as_splink_on_spark_does(files, spark, tmp_path):
    records = standardised(spark, [read_input(files / "gp.csv"), read_input(files / "council.csv")]).localCheckpoint()
    config = LinkageConfig.load()
    linked = {
        engine: link_records(spark, records, config, str(tmp_path / engine), "run-1", engine=engine)
        for engine in model.ENGINES
    }

    def persons(engine: str) -> dict[tuple, str]:
        return {(r.source, r.record_id): r.person_id for r in linked[engine].links.collect()}

    def scored(engine: str) -> dict[tuple, float]:
        return {(r.unique_id_l, r.unique_id_r): r.match_probability for r in linked[engine].scored.collect()}

    assert persons("duckdb") == persons("spark")
    assert len(set(persons("spark").values())) < len(persons("spark"))  # some records did link
    # The same pairs scored; probabilities equal but for the order floating-point sums were added in.
    on_spark, on_duckdb = scored("spark"), scored("duckdb")
    assert on_duckdb.keys() == on_spark.keys() and on_spark
    assert max(abs(on_duckdb[pair] - on_spark[pair]) for pair in on_spark) < 1e-6
    # Both keep the model in Spark's dialect, so either engine can score the next delivery with it.
    assert linked["duckdb"].model["sql_dialect"] == linked["spark"].model["sql_dialect"] == "spark"


@pytest.mark.parametrize("engine", ENGINES)
def test_an_incremental_delivery_keeps_every_person_id(first_link, spark, tmp_path, engine):
    first, delivered = first_link
    assert first.mode == "full"
    previous = first.links.withColumn("run_id", F.lit("run-1")).localCheckpoint()
    before = {(r.source, r.record_id): r.person_id for r in previous.collect()}
    second = link_records(
        spark, delivered, LinkageConfig.load(), str(tmp_path / "b"), "run-2", previous, first.model, engine=engine
    )
    assert second.mode == "incremental" and second.counts["new_identities"] == 2
    rows = second.links.collect()
    after = {(r.source, r.record_id): r.person_id for r in rows}
    assert len(rows) == len(after) == delivered.count()  # every record once
    assert {k: after[k] for k in before} == before
    # Records linked before keep how they were linked; the delivery's are linked now.
    how = {(r.source, r.record_id): (r.method, r.match_probability) for r in rows}
    was = {(r.source, r.record_id): (r.method, r.match_probability) for r in first.links.collect()}
    assert {k: how[k] for k in was} == was
    assert how[("council", "C999")][0] == "singleton" and how[("council", "C001")][0] != "singleton"
    assert after[("council", "C001")] == before[("gp", "G001")]
    assert after[("council", "C999")] not in set(before.values())


def _links(linked) -> dict[tuple, tuple]:
    return {
        (r.source, r.record_id): (r.identity_id, r.person_id, r.previous_id, r.method, r.match_probability)
        for r in linked.links.collect()
    }


def _delivery_alone(spark, files, first, delivered, rows, tmp_path, engine):
    """The delivery linked alone against the first link's state, and every record linked incrementally."""
    config = LinkageConfig.load()
    previous = first.links.localCheckpoint()
    everything = link_records(
        spark, delivered, config, str(tmp_path / "all"), "run-2", previous, first.model, engine=engine
    )
    path = files / f"delivery_{engine}.csv"
    _write(path, rows)
    delivery = read_input(path)
    delivery = standardised(spark, [type(delivery)("council", delivery.path, delivery.columns, delivery.rows)])
    alone = link_delivery(spark, delivery, first.state(), config, str(tmp_path / "alone"), "run-2", engine=engine)
    return everything, alone


@pytest.mark.parametrize("engine", ENGINES)
def test_a_delivery_linked_alone_links_as_relinking_every_record_does(first_link, files, spark, tmp_path, engine):
    first, delivered = first_link
    rows = [{"record_id": "C001", **_council_view(1)}, {"record_id": "C999", **_council_view(150)}]
    everything, alone = _delivery_alone(spark, files, first, delivered, rows, tmp_path, engine)
    assert _links(alone) == _links(everything)
    assert alone.counts == everything.counts == {"identities": 147, "new_identities": 2}
    assert _links(alone)[("council", "C001")][1] == _links(first)[("gp", "G001")][1]
    # What the next delivery is linked against: every identity, each with its records.
    state = {r.unique_id: r.asDict() for r in alone.state().identities.collect()}
    assert state == {r.unique_id: r.asDict() for r in everything.identities.collect()}


def test_a_record_resent_with_another_identity_moves_as_it_would_in_a_full_relink(files, spark, tmp_path):
    """The council re-sends C002 (person 2, linked to G002) as it now holds it: person 3's identity."""
    base = [read_input(files / "gp.csv"), read_input(files / "council.csv")]
    config = LinkageConfig.load()
    first = link_records(spark, standardised(spark, base), config, str(tmp_path / "first"), "run-1")
    resent = {"record_id": "C002", **_council_view(3)}
    kept = [r for r in base[1].rows if r["record_id"] != "C002"]
    council = type(base[1])(
        "council", base[1].path, base[1].columns, [*kept, {c: resent.get(c) or None for c in base[1].columns}]
    )
    delivered = standardised(spark, [base[0], council]).localCheckpoint()
    everything, alone = _delivery_alone(spark, files, first, delivered, [resent], tmp_path, model.DUCKDB)
    before, after = _links(first), _links(alone)
    assert after == _links(everything)
    assert after[("council", "C002")][1] == before[("gp", "G003")][1] != before[("council", "C002")][1]
    assert after[("gp", "G002")][1] == before[("gp", "G002")][1]  # person 2 keeps its id on what is left
    assert len(after) == len(before)  # nothing left out of the delivery is lost


@pytest.mark.parametrize("engine", ENGINES)
def test_a_delivery_scored_against_its_blocking_candidates_finds_every_pair_scoring_all_would(
    first_link, spark, tmp_path, monkeypatch, engine
):
    first, delivered = first_link
    config = LinkageConfig.load()
    features = identity_features(identities(delivered), config.nicknames).localCheckpoint()
    known = first.links.select(F.col("identity_id").alias("unique_id"))
    new_ids = features.select("unique_id").join(known, "unique_id", "left_anti")

    def pairs(scratch: str) -> set[tuple]:
        existing = features.join(new_ids, "unique_id", "left_anti")
        new = features.join(new_ids, "unique_id", "left_semi")
        edges = model.predict_new(spark, existing, new, first.model, config, str(tmp_path / scratch), engine)
        return {(r.unique_id_l, r.unique_id_r, round(r.match_probability, 9)) for r in edges.collect()}

    narrowed = pairs("narrowed")
    # The same model scoring every identity (Splink's own predict: its blocking, its term frequencies)
    # finds the same pairs with a new identity in them, each once, with the same probability.
    splink = model._Splink(spark, engine, str(tmp_path / "every"), config)
    linker = splink.linker(features, model.in_dialect(first.model, engine))
    every = splink.edges(linker.inference.predict(threshold_match_probability=config.review_floor))
    new_set = {r.unique_id for r in new_ids.collect()}
    unordered = {(frozenset((left, right)), p) for left, right, p in narrowed}
    assert len(unordered) == len(narrowed)
    assert unordered == {
        (frozenset((r.unique_id_l, r.unique_id_r)), round(r.match_probability, 9))
        for r in every.collect()
        if {r.unique_id_l, r.unique_id_r} & new_set
    }
    monkeypatch.setattr(model, "prediction_blocks", lambda _: None)  # every existing identity
    assert narrowed == pairs("all")
    # Person 1's council record meets its GP record: the comparison is not empty.
    assert any(p >= config.match_threshold for _, _, p in narrowed)


IDENTITY_SCHEMA = (
    "source string, record_id string, nhs_number string, family_name string, given_name string, "
    "date_of_birth date, sex string, postcode string, lsoa_code string, ward_code string, imd_decile int, "
    "provider_code string, event_start date"
)


def _silver_rows(source: str, people: range) -> list[tuple]:
    rows = []
    for i in people:
        p = _person(i)
        nhs = p["nhs_number"] if source == "gp_registrations" or i % 3 == 0 else None
        rows.append(
            (source, f"{source[:2]}{i}", nhs, p["family_name"], p["given_name"], date.fromisoformat(p["date_of_birth"]),
             p["sex"], p["postcode"], None, None, None, None, date(2026, 1, 1))
        )  # fmt: skip
    return rows


def _two_source_silver(spark, tmp_path, **env):
    """Settings of a lake at tmp_path whose silver holds 90 GP records and 45 A&E records of the same people."""
    from jobs import lake
    from jobs.config import Settings

    settings = Settings.from_env({"PLACELAKE_HOME": str(tmp_path), "PLACELAKE_SHUFFLE_PARTITIONS": "1", **env})
    for source, people in (("gp_registrations", range(90)), ("ae_attendances", range(0, 90, 2))):
        lake.replace(
            spark.createDataFrame(_silver_rows(source, people), IDENTITY_SCHEMA), settings.table("silver", source)
        )
    return settings


def test_the_link_stage_runs_when_silver_has_changed_or_placelake_relink_asks(spark, tmp_path, monkeypatch, capsys):
    from jobs import lake
    from jobs.link import link_all

    settings = _two_source_silver(spark, tmp_path)
    link_table = settings.table("silver", "person_link")

    first = link_all(spark, settings, run_id="run-1")
    assert first["mode"] == "full"
    linked_version = lake.version(spark, link_table)
    again = link_all(spark, settings, run_id="run-2")
    assert again == {"mode": "unchanged", "linked_by_run": "run-1", "records": 135, "persons": first["persons"]}
    assert lake.version(spark, link_table) == linked_version

    # A new A&E record for person 3: the stage links again, and the record joins person 3.
    new = spark.createDataFrame(_silver_rows("ae_attendances", range(3, 4)), IDENTITY_SCHEMA)
    new.withColumn("record_id", F.lit("late-3")).write.format("delta").mode("append").save(
        settings.table("silver", "ae_attendances")
    )
    third = link_all(spark, settings, run_id="run-3")
    assert third["mode"] != "unchanged" and third["delivered_records"] == 1
    ids = {(r.source, r.record_id): r.person_id for r in lake.read(spark, link_table).collect()}
    assert ids[("ae_attendances", "late-3")] == ids[("gp_registrations", "gp3")]

    # After a change to linkage.yaml (which a delivery applies only to what it brings), a data engineer
    # relinks every record: the model is estimated again, and a person whose records still cluster
    # together keeps their id; the next run's link stage then has nothing to do.
    model = tmp_path / "lake/ops/linkage_model/model.json"
    model.unlink()  # so the relink's model is seen to be written again
    monkeypatch.setenv("PLACELAKE_HOME", str(tmp_path))
    monkeypatch.setenv("PLACELAKE_SHUFFLE_PARTITIONS", "1")
    assert main(["relink"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^relinked 136 records \(\d+ identities\) into 90 persons", out, re.MULTILINE), out
    assert model.exists()
    relinked = lake.read(spark, link_table)
    assert {r.run_id for r in relinked.select("run_id").distinct().collect()} == set(
        re.findall(r"run (relink__\S+)", out)
    )
    assert {(r.source, r.record_id): r.person_id for r in relinked.collect()} == ids
    assert link_all(spark, settings, run_id="run-4")["mode"] == "unchanged"


def test_placelake_relink_says_there_is_nothing_to_link_before_a_clean(spark, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLACELAKE_HOME", str(tmp_path))
    assert main(["relink"]) == 2
    assert "no silver person sources to link" in capsys.readouterr().err


def test_the_link_stage_links_what_changed_as_a_delivery_with_link_records_ids(spark, tmp_path):
    """A second link stage reads every record's key once, and links only the records new or changed
    since the last link (link_delivery, against the state the last link saved): the same person_ids
    and methods as relinking every record against the last links. A record gone from silver makes
    it relink every record (persons may split)."""
    from jobs import lake
    from jobs.link import link_all, silver_records, state_paths

    settings = _two_source_silver(spark, tmp_path)
    link_table = settings.table("silver", "person_link")
    first = link_all(spark, settings, run_id="run-1")
    assert first["mode"] == "full" and first["delivered_records"] == 135
    assert all(lake.table_exists(spark, p) for p in state_paths(settings).values())
    last_links = lake.read(spark, link_table).select(
        "source", "record_id", "person_id", "identity_id", "method", "match_probability"
    )
    last_links = last_links.localCheckpoint()

    # Every A&E record re-sent with another event date, no identity changed: nothing to link as new.
    ae = settings.table("silver", "ae_attendances")
    lake.replace(lake.read(spark, ae).withColumn("event_start", F.lit(date(2026, 2, 1))).localCheckpoint(), ae)
    resent = link_all(spark, settings, run_id="run-1b")
    assert resent["delivered_records"] == 0 and resent["new_identities"] == 0
    assert resent["persons"] == first["persons"]
    unmoved = lake.read(spark, link_table).select("source", "record_id", "person_id", "method")
    assert sorted(unmoved.collect()) == sorted(
        last_links.select("source", "record_id", "person_id", "method").collect()
    )

    # Person 3 attends A&E again; a newcomer registers with a GP and attends A&E.
    late = spark.createDataFrame(_silver_rows("ae_attendances", range(3, 4)), IDENTITY_SCHEMA)
    late.withColumn("record_id", F.lit("late-3")).write.format("delta").mode("append").save(ae)
    for source in ("gp_registrations", "ae_attendances"):
        newcomer = spark.createDataFrame(_silver_rows(source, range(95, 96)), IDENTITY_SCHEMA)
        newcomer.write.format("delta").mode("append").save(settings.table("silver", source))
    second = link_all(spark, settings, run_id="run-2")
    assert second["mode"] == "incremental" and second["delivered_records"] == 3
    assert second["records"] == 138 and second["new_identities"] == 3  # ae3 was never at A&E
    got = {(r.source, r.record_id): (r.person_id, r.method) for r in lake.read(spark, link_table).collect()}
    assert got[("ae_attendances", "late-3")][0] == got[("gp_registrations", "gp3")][0]
    assert got[("ae_attendances", "ae95")][0] == got[("gp_registrations", "gp95")][0]
    assert got[("gp_registrations", "gp95")][0] not in {got[k][0] for k in got if k[1] not in ("gp95", "ae95")}

    # What relinking every record against run-1's links gives, record by record.
    records = silver_records(spark, settings, ["gp_registrations", "ae_attendances"])
    config = LinkageConfig.load()
    trained = json.loads((tmp_path / "lake/ops/linkage_model/model.json").read_text())
    relinked = link_records(
        spark, records, config, str(tmp_path / "all"), "run-2", last_links, trained, present=SILVER_FEATURES
    )
    assert relinked.mode == "incremental"
    want = {(r.source, r.record_id): (r.person_id, r.method) for r in relinked.links.collect()}
    assert got == want

    # A record is erased from silver: the next link relinks every record.
    DeltaTable.forPath(spark, ae).delete(F.col("record_id") == "late-3")
    third = link_all(spark, settings, run_id="run-3")
    assert third["delivered_records"] == 137
    assert ("ae_attendances", "late-3") not in {(r.source, r.record_id) for r in lake.read(spark, link_table).collect()}
    stamps = [json.loads(lake.recent_user_metadata(spark, p, 1)[0]) for p in state_paths(settings).values()]
    assert [s["run_id"] for s in stamps] == ["run-3", "run-3"]


def _truth_files(settings) -> None:
    """A generated place's truth for _two_source_silver's records (and the changes below): who each is."""
    folder = settings.path("truth")
    import os

    os.makedirs(folder, exist_ok=True)
    records = [
        {"source": s, "record_id": f"{s[:2]}{i}", "truth_id": f"t{i}", "delivery": "d", "file": "f", "line": str(i)}
        for s, people in (("gp_registrations", range(96)), ("ae_attendances", range(0, 96, 2)))
        for i in people
    ]
    records += [
        {
            "source": "ae_attendances",
            "record_id": "late-3",
            "truth_id": "t3",
            "delivery": "d",
            "file": "f",
            "line": "0",
        },
        {"source": "ae_attendances", "record_id": "ae95", "truth_id": "t95", "delivery": "d", "file": "f", "line": "0"},
    ]
    people = [
        {
            "truth_id": f"t{i}",
            "household_id": "h",
            "sex": _person(i)["sex"],
            "birth_year": _person(i)["date_of_birth"][:4] if i % 7 else "",
            "ethnic_code": "ABCDEZ"[i % 6] + "1" if i % 5 else "",
        }
        for i in range(96)
    ]
    _write(os.path.join(folder, "records.csv"), records)
    _write(os.path.join(folder, "people.csv"), people)


def _deliver(spark, settings) -> None:
    """A delivery's worth of silver changes: person 3 attends A&E again, a newcomer registers and attends,
    a record is re-sent under another name, and two GP records gain a location (no identity changes)."""
    from jobs import lake

    ae, gp = settings.table("silver", "ae_attendances"), settings.table("silver", "gp_registrations")
    late = spark.createDataFrame(_silver_rows("ae_attendances", range(3, 4)), IDENTITY_SCHEMA)
    late.withColumn("record_id", F.lit("late-3")).write.format("delta").mode("append").save(ae)
    for source in ("gp_registrations", "ae_attendances"):
        newcomer = spark.createDataFrame(_silver_rows(source, range(95, 96)), IDENTITY_SCHEMA)
        newcomer.write.format("delta").mode("append").save(settings.table("silver", source))
    renamed = F.when(F.col("record_id") == "ae10", F.lit("HALLORAN")).otherwise(F.col("family_name"))
    lake.replace(lake.read(spark, ae).withColumn("family_name", renamed).localCheckpoint(), ae)
    located = F.when(F.col("record_id").isin("gp5", "gp6"), F.lit("E01000001")).otherwise(F.col("lsoa_code"))
    lake.replace(lake.read(spark, gp).withColumn("lsoa_code", located).localCheckpoint(), gp)


@pytest.mark.engines
def test_a_delivery_on_a_local_lake_writes_what_the_spark_link_stage_writes(spark, tmp_path, monkeypatch):
    """On a lake on local disk the link stage finds a delivery in Delta's versions and rewrites its tables
    with DuckDB and delta-rs (jobs/linkage/local.py); on Spark (here: a memory budget of 0) it reads
    every record. The same silver changes give the same rows in every table either way, the
    accuracy against the truth included."""
    from jobs import lake
    from jobs.link import link_all, state_paths
    from jobs.linkage import local

    ran_locally = []
    links_after = local.links_after
    monkeypatch.setattr(local, "links_after", lambda *a: ran_locally.append(a[0]) or links_after(*a))
    lakes = {
        "local": _two_source_silver(spark, tmp_path / "local"),
        "spark": _two_source_silver(spark, tmp_path / "spark", PLACELAKE_GATE_MEMORY_BYTES="0"),
    }
    second = {}
    for name, settings in lakes.items():
        _truth_files(settings)
        assert link_all(spark, settings, run_id="run-1")["mode"] == "full"
        _deliver(spark, settings)
        second[name] = link_all(spark, settings, run_id="run-2")
    assert ran_locally == [lakes["local"].table("silver", "person_link")]
    assert second["local"] == second["spark"]
    assert second["local"]["delivered_records"] == 4  # late-3, gp95, ae95, ae10 (gp5 and gp6 kept their identity)
    assert second["local"]["records"] == 138

    def rows(settings, table, drop=()):
        frame = lake.read(spark, settings.table("silver", table)).drop(*drop)
        return sorted(tuple(r) for r in frame.collect())

    for table, drop in (
        ("person_link", ()),
        ("person", ()),
        ("person_id_history", ("changed_at",)),
        ("link_identities", ()),
        ("link_term_counts", ()),
    ):
        assert rows(lakes["local"], table, drop) == rows(lakes["spark"], table, drop), table
    persons = {r.person_id: r for r in lake.read(spark, lakes["local"].table("silver", "person")).collect()}
    located = {
        r.person_id
        for r in lake.read(spark, lakes["local"].table("silver", "person_link")).collect()
        if r.record_id in ("gp5", "gp6")
    }
    assert {persons[p].lsoa_code for p in located} == {"E01000001"}

    def measured(settings):
        frame = lake.read(spark, settings.table("ops", "linkage_metrics")).where(F.col("run_id") == "run-2")
        return {(r.metric, r.dimension, r.grp): (r.value, r.numerator, r.denominator) for r in frame.collect()}

    local_metrics, spark_metrics = measured(lakes["local"]), measured(lakes["spark"])
    assert local_metrics.keys() == spark_metrics.keys()
    assert ("records_pairwise_f1", "ethnic_group", "Asian") in local_metrics
    for key, figures in local_metrics.items():
        for got, want in zip(figures, spark_metrics[key], strict=True):
            assert got == want if want is None else got == pytest.approx(want, rel=1e-9), key
    for settings in lakes.values():
        stamps = [json.loads(lake.recent_user_metadata(spark, p, 1)[0]) for p in state_paths(settings).values()]
        assert [s["run_id"] for s in stamps] == ["run-2", "run-2"]
        link_stamp = json.loads(lake.recent_user_metadata(spark, settings.table("silver", "person_link"), 1)[0])
        assert link_stamp["run_id"] == "run-2"
