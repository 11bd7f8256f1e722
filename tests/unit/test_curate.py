"""Gold marts on tiny hand-typed silver frames: the documented rules, row by row."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.curate import (
    build_care_event,
    build_gold,
    build_place_month,
    discharge_delays,
    frail_people,
    high_intensity_users,
    place_month_counts,
    rising_risk,
    stated_ethnicity,
)

KEY = "k" * 32
AS_OF = date(2026, 11, 1)
D = date.fromisoformat

PERSONS = (
    "person_id string, nhs_number string, date_of_birth date, sex string, postcode string, lsoa_code string, "
    "ward_code string, imd_decile int, practice_code string, source_count int"
)
EVENTS = (
    "person_id string, source string, record_id string, organisation string, nhs_number string, event_type string, "
    "service_type string, provider_code string, event_start date, event_end date, ethnic_category string, "
    "primary_diagnosis string, discharge_ready_date date, discharge_destination string"
)
WARD, LSOA = "E05000001", "E01000001"


def person(pid, dob, nhs=None, ward=WARD, lsoa=LSOA):
    return (pid, nhs, D(dob) if dob else None, "F", None, lsoa, ward, 3, "A12345", 2)


def event(pid, record_id, event_type, start, end=None, service=None, diagnosis=None, ready=None, dest=None, **kw):
    source = {
        "ae_attendance": "ae_attendances",
        "hospital_episode": "apc_episodes",
        "social_care_service": "asc_services",
        "social_care_request": "asc_events",
        "social_care_assessment": "asc_events",
        "community_contact": "community_contacts",
        "housing_case": "housing_cases",
        "gp_registration": "gp_registrations",
    }[event_type]
    organisation = "council" if source.startswith(("asc", "housing")) else "nhs"
    return (
        pid,
        source,
        record_id,
        organisation,
        kw.get("nhs"),
        event_type,
        service,
        None,
        D(start),
        D(end) if end else None,
        kw.get("ethnic"),
        diagnosis,
        D(ready) if ready else None,
        dest,
    )


def pseudonym(value: str) -> str:
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()


def test_the_most_often_stated_ethnicity_wins_and_not_stated_is_ignored(spark):
    events = spark.createDataFrame(
        [
            event("P1", "A1", "ae_attendance", "2026-01-05", ethnic="D1"),
            event("P1", "A2", "ae_attendance", "2026-02-05", ethnic="A4"),
            event("P1", "A3", "ae_attendance", "2026-03-05", ethnic="D1"),
            event("P1", "A4", "ae_attendance", "2026-04-05", ethnic="Z"),
            event("P2", "A5", "ae_attendance", "2026-01-05", ethnic="Z"),
            event("O'Neil", "A6", "ae_attendance", "2026-01-05", ethnic="B1"),
            event("O'Neil", "A7", "ae_attendance", "2026-06-05", ethnic="C2"),
        ],
        EVENTS,
    )
    expected = spark.createDataFrame([("P1", "D1"), ("O'Neil", "C2")], "person_id string, ethnic_category string")
    assertDataFrameEqual(stated_ethnicity(events), expected)


def test_the_frailty_rule_flags_only_what_it_documents(spark):
    persons = spark.createDataFrame(
        [
            person("two_emergencies", "1950-03-01"),
            person("one_emergency", "1950-03-01"),
            person("young_faller", "1970-03-01"),
            person("falls_service", "1940-03-01"),
            person("long_home_care", "1955-12-31"),
            person("old_emergencies", "1950-03-01"),
            person("no_birth_date", None),
        ],
        PERSONS,
    )
    events = spark.createDataFrame(
        [
            event("two_emergencies", "E1", "hospital_episode", "2026-02-01", "2026-02-04", "EMERGENCY", "J189"),
            event("two_emergencies", "E2", "hospital_episode", "2026-05-01", "2026-05-04", "EMERGENCY", "J189"),
            event("one_emergency", "E3", "hospital_episode", "2026-05-01", "2026-05-04", "EMERGENCY", "J189"),
            event("young_faller", "E4", "hospital_episode", "2026-05-01", "2026-05-04", "EMERGENCY", "W19X"),
            event("falls_service", "K1", "community_contact", "2026-10-31", "2026-10-31", "FALLS_SERVICE"),
            event("long_home_care", "S1", "social_care_service", "2023-01-01", None, "HOME_CARE"),
            # Both before the 12 months to 1 Nov 2026: they no longer count.
            event("old_emergencies", "E5", "hospital_episode", "2025-10-01", "2025-10-04", "EMERGENCY", "W19X"),
            event("old_emergencies", "E6", "hospital_episode", "2025-10-20", "2025-10-24", "EMERGENCY", "J189"),
            event("no_birth_date", "E7", "hospital_episode", "2026-05-01", "2026-05-04", "EMERGENCY", "S7200"),
        ],
        EVENTS,
    )
    got = {r.person_id for r in frail_people(persons, events, AS_OF).collect()}
    assert got == {"two_emergencies", "falls_service", "long_home_care"}


def test_place_month_counts_by_area_and_month(spark):
    persons = spark.createDataFrame(
        [person("P1", "1940-01-01"), person("P2", "1980-01-01"), person("nowhere", "1980-01-01", ward=None, lsoa=None)],
        PERSONS,
    )
    events = spark.createDataFrame(
        [
            # A delayed emergency stay over a month end: 2 bed days in August, 2 in September.
            event("P1", "E1", "hospital_episode", "2026-08-30", "2026-09-03", "EMERGENCY", "J189", ready="2026-09-01"),
            event("P1", "A1", "ae_attendance", "2026-08-30", "2026-08-30"),
            event("P2", "A2", "ae_attendance", "2026-08-01", "2026-08-01"),
            event("P1", "S1", "social_care_service", "2026-09-03", None, "HOME_CARE"),
            event("P2", "H1", "housing_case", "2026-10-10", "2026-12-01"),
            event("nowhere", "A3", "ae_attendance", "2026-08-02", "2026-08-02"),
            # Died in hospital in October: not a resident from November on (outside the grid here).
            event("P2", "E2", "hospital_episode", "2026-10-20", "2026-10-25", "ELECTIVE", "C509", dest="79"),
        ],
        EVENTS,
    )
    counts = place_month_counts(persons, events, AS_OF, months=3).where(F.col("area_level") == "ward")
    columns = [
        "month",
        "residents",
        "ae_attendances",
        "emergency_admissions",
        "bed_days",
        "delayed_discharges",
        "social_care_clients",
        "new_care_packages",
        "homelessness_cases",
    ]
    expected = spark.createDataFrame(
        [
            (D("2026-08-01"), 2, 2, 1, 2, 0, 0, 0, 0),
            (D("2026-09-01"), 2, 0, 0, 2, 1, 1, 1, 0),
            (D("2026-10-01"), 2, 0, 0, 5, 0, 1, 0, 1),
        ],
        ", ".join(f"{c} {'date' if c == 'month' else 'long'}" for c in columns),
    )
    assertDataFrameEqual(counts.select(*columns), expected)


def test_place_month_is_disclosure_controlled_with_a_place_total_from_published_cells(spark):
    counts_schema = "area_level string, area_code string, month date, " + ", ".join(
        f"{c} long"
        for c in (
            "residents",
            "ae_attendances",
            "emergency_admissions",
            "bed_days",
            "delayed_discharges",
            "social_care_clients",
            "new_care_packages",
            "homelessness_cases",
        )
    )
    month = D("2026-10-01")
    counts = spark.createDataFrame(
        [
            ("ward", "E05000001", month, 1002, 13, 3, 0, 8, 12, 7, 1),
            ("ward", "E05000002", month, 400, 5, 22, 0, 0, 0, 0, 0),
            ("lsoa", "E01000001", month, 23, 6, 9, 0, 0, 0, 0, 0),
        ],
        counts_schema,
    )
    published = build_place_month(counts)
    got = {
        (r.area_level, r.area_code): (r.residents, r.ae_attendances, r.emergency_admissions, r.delayed_discharges)
        for r in published.collect()
    }
    assert got == {
        ("ward", "E05000001"): (1000, 15, None, 10),
        ("ward", "E05000002"): (400, None, 20, 0),
        # 13 + 5 + 3 + 22 = 43 true; the total adds the published cells: 15 + 0, 0 + 20.
        ("place", "ALL"): (1400, 15, 20, 10),
        ("lsoa", "E01000001"): (25, None, 10, 0),
    }
    rates = {r.area_code: (r.ae_attendances_per_1000, r.emergency_admissions_per_1000) for r in published.collect()}
    assert rates["E05000001"] == (15.0, None)
    assert rates["E05000002"] == (None, 50.0)
    assert rates["E01000001"] == (None, 400.0)


def test_high_intensity_users_need_five_attendances_inside_the_twelve_months(spark):
    rows = [event("five", f"A{i}", "ae_attendance", f"2026-0{i}-10", f"2026-0{i}-10") for i in range(1, 6)]
    rows += [event("five", "Q1", "social_care_request", "2026-03-01", "2026-03-01", "ONGOING")]
    rows += [event("five", "S1", "social_care_service", "2024-01-01", "2025-12-01", "HOME_CARE")]
    rows += [event("four", f"B{i}", "ae_attendance", f"2026-0{i}-10", f"2026-0{i}-10") for i in range(1, 5)]
    rows += [event("four", "B9", "ae_attendance", "2025-10-31", "2025-10-31")]  # a day before the window
    got = high_intensity_users(spark.createDataFrame(rows, EVENTS), KEY, AS_OF)
    expected = spark.createDataFrame(
        [(pseudonym("five"), 5, 0, 1, True)],
        "person_key string, ae_attendances_12m int, emergency_admissions_12m int, social_care_contacts_12m int, "
        "had_social_care_service_12m boolean",
    )
    assertDataFrameEqual(got, expected)


def test_a_discharge_delay_is_a_late_discharge_followed_by_a_care_package(spark):
    rows = [
        event("P1", "E1", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", ready="2026-09-06", dest="19"),
        event("P1", "S1", "social_care_service", "2026-09-10", None, "REABLEMENT"),
        event("P1", "S2", "social_care_service", "2026-09-12", None, "HOME_CARE"),
        # Late, but the package came a month later: not waiting on it.
        event("P2", "E2", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", ready="2026-09-06"),
        event("P2", "S3", "social_care_service", "2026-10-20", None, "HOME_CARE"),
        # On time, with a package: not delayed.
        event("P3", "E3", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", ready="2026-09-10"),
        event("P3", "S4", "social_care_service", "2026-09-10", None, "HOME_CARE"),
    ]
    got = discharge_delays(spark.createDataFrame(rows, EVENTS), KEY)
    expected = spark.createDataFrame(
        [(pseudonym("apc_episodes:E1"), pseudonym("P1"), D("2026-09-01"), 4, "REABLEMENT", "19")],
        "event_key string, person_key string, discharge_month date, delay_days int, care_package_type string, "
        "discharge_destination string",
    )
    assertDataFrameEqual(got, expected)


def test_rising_risk_is_a_recent_score_of_four_or_more_above_the_score_before(spark):
    rows = [
        event("rising", "E1", "hospital_episode", "2026-06-01", "2026-06-03", "EMERGENCY"),
        event("rising", "A1", "ae_attendance", "2026-06-01", "2026-06-01"),
        event("rising", "A2", "ae_attendance", "2026-02-01", "2026-02-01"),
        event("steady", "E2", "hospital_episode", "2026-06-01", "2026-06-03", "EMERGENCY"),
        event("steady", "H1", "housing_case", "2026-06-01"),
        event("steady", "E3", "hospital_episode", "2026-01-01", "2026-01-03", "EMERGENCY"),
        event("steady", "Q1", "social_care_assessment", "2026-01-05", "2026-01-05"),
        event("died", "E4", "hospital_episode", "2026-09-01", "2026-09-03", "EMERGENCY", dest="79"),
        event("died", "E5", "hospital_episode", "2026-08-01", "2026-08-03", "EMERGENCY"),
    ]
    got = rising_risk(spark.createDataFrame(rows, EVENTS), KEY, AS_OF)
    expected = spark.createDataFrame(
        [(pseudonym("rising"), 4, 1, 1, 1, 0, 0)],
        "person_key string, risk_score int, prior_risk_score int, emergency_admissions_6m int, ae_attendances_6m int, "
        "social_care_requests_6m int, homelessness_cases_6m int",
    )
    assertDataFrameEqual(got, expected)


@pytest.fixture
def small_place(spark):
    persons = spark.createDataFrame(
        [
            person("P1", "1940-05-17", nhs="9990000018"),
            person("P2", "1982-01-02", nhs="9990000026"),
            person("P3", "2015-07-30", nhs=None),
        ],
        PERSONS,
    )
    rows = [event("P1", f"A{i}", "ae_attendance", f"2026-0{i}-10", f"2026-0{i}-10") for i in range(1, 7)]
    rows += [
        event("P1", "E1", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", "W19X", ready="2026-09-06"),
        event("P1", "S1", "social_care_service", "2026-09-10", None, "HOME_CARE"),
        event("P2", "A9", "ae_attendance", "2026-05-10", "2026-05-10"),
        # P3's only record with an NHS number is on the opt-out list; silver person holds none.
        event("P3", "K1", "community_contact", "2026-03-03", "2026-03-03", "HEALTH_VISITING", nhs="9990000034"),
        event("P3", "A8", "ae_attendance", "2026-04-10", "2026-04-10"),
    ]
    return persons, spark.createDataFrame(rows, EVENTS)


def test_opted_out_people_leave_every_gold_table(spark, small_place):
    persons, events = small_place
    opt_outs = spark.createDataFrame([("9990000018",), ("9990000034",), ("9990000042",)], "nhs_number string")
    gold = build_gold(persons, events, opt_outs, KEY, AS_OF)
    kept, out = pseudonym("P2"), {pseudonym("P1"), pseudonym("P3")}
    assert {r.person_key for r in gold["person"].collect()} == {kept}
    assert {r.person_key for r in gold["care_event"].collect()} == {kept}
    for name in ("cohort_hiu", "cohort_delay", "cohort_risk"):
        assert gold[name].where(F.col("person_key").isin(*out)).count() == 0, name
    # The aggregates count one resident and one attendance, both suppressed.
    ward_may = gold["place_month"].where((F.col("area_code") == WARD) & (F.col("month") == D("2026-05-01"))).first()
    assert (ward_may.residents, ward_may.ae_attendances) == (None, None)


def test_without_the_list_the_same_people_are_in_every_table(spark, small_place):
    persons, events = small_place
    gold = build_gold(persons, events, spark.createDataFrame([], "nhs_number string"), KEY, AS_OF)
    assert gold["person"].count() == 3
    assert {r.person_key for r in gold["cohort_hiu"].collect()} == {pseudonym("P1")}
    assert {r.person_key for r in gold["cohort_delay"].collect()} == {pseudonym("P1")}
    frail = {r.person_key: r.is_frail for r in gold["person"].collect()}
    assert frail == {pseudonym("P1"): True, pseudonym("P2"): False, pseudonym("P3"): False}


def test_gold_carries_a_discharge_destination_only_when_its_code_list_knows_it(spark):
    events = spark.createDataFrame(
        [
            event("P1", "E1", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", dest="19"),
            event("P1", "E2", "hospital_episode", "2026-09-11", "2026-09-12", "EMERGENCY", dest='=HYPERLINK("x")'),
            event("P1", "E3", "ae_attendance", "2026-09-13", "2026-09-13", dest="306689006"),
        ],
        EVENTS,
    )
    got = {r.duration_days: r.discharge_destination for r in build_care_event(events, KEY).collect()}
    assert got == {9: "19", 1: None, 0: "306689006"}


# --- the same rules in DuckDB (jobs.curate_local), which make run takes on a lake on local disk -------


def gold_both_ways(spark, persons, events, opt_outs, as_of):
    """Every gold table as Spark's builders and as DuckDB's build it, each as a multiset of rows."""
    import collections

    from jobs import curate_local, lake

    def rows(table):
        return collections.Counter(tuple(r.items()) for r in table.to_pylist())

    by_spark = {name: df.toArrow() for name, df in build_gold(persons, events, opt_outs, KEY, as_of).items()}
    with lake.local_sql() as sql:
        for name, frame in (("persons_in", persons), ("events_in", events), ("opt_outs", opt_outs)):
            sql.register(name, frame.toArrow())
        tables = curate_local.build_gold(sql, KEY, as_of)
        by_duckdb = {name: sql.sql(f"SELECT * FROM {table}").to_arrow_table() for name, table in tables.items()}
    assert set(by_duckdb) == set(by_spark)
    return {n: rows(t) for n, t in by_spark.items()}, {
        n: rows(by_duckdb[n].cast(t.schema)) for n, t in by_spark.items()
    }


# The run date the rows were typed around in make test; a leap day and a month's last day in make test-engines.
@pytest.mark.parametrize(
    "as_of",
    [
        AS_OF,
        pytest.param(D("2024-02-29"), marks=pytest.mark.engines),
        pytest.param(D("2026-08-31"), marks=pytest.mark.engines),
    ],
    ids=str,
)
def test_duckdb_builds_the_gold_that_spark_builds(spark, as_of):
    """Ages on and either side of a birthday (a leap day's too), windows that start on a month's last day,
    codes Trusts send with dots and spaces, ties in stated ethnicity, deaths, open packages and opt-outs."""
    persons = spark.createDataFrame(
        [
            person("P1", "1940-05-17", nhs="9990000018"),
            person("P2", "1961-11-01", nhs="9990000026"),  # 65 on 2026-11-01
            person("P3", "1961-11-02"),  # 65 the day after
            person("P4", "1956-02-29"),  # a leap day
            person("P5", None, ward=None),  # no date of birth, no ward
            person("P6", "2026-08-31", lsoa=None),  # born on a month's last day
            person("P7", "1950-01-31", nhs="9990000034", ward="E05000002"),  # on the opt-out list
            person("P8", "1935-03-03", ward="E05000002"),
        ],
        PERSONS,
    )
    rows = [event("P1", f"A{i}", "ae_attendance", f"2026-0{i}-10", f"2026-0{i}-10") for i in range(1, 10)]
    rows += [event("P8", f"B{i}", "ae_attendance", f"2025-{i:02d}-28", f"2025-{i:02d}-28") for i in range(3, 13)]
    rows += [
        event("P1", "E1", "hospital_episode", "2026-09-01", "2026-09-10", "EMERGENCY", "W19X", ready="2026-09-06"),
        event("P1", "S1", "social_care_service", "2026-09-10", None, "HOME_CARE"),
        event("P2", "E2", "hospital_episode", "2026-02-27", "2026-03-02", "EMERGENCY", " s72.0 ", ready="2026-02-28"),
        event("P2", "E3", "hospital_episode", "2026-08-31", "2026-09-30", "EMERGENCY", "I21", ready="2026-09-01"),
        event("P2", "S2", "social_care_service", "2026-09-01", "2026-10-31", "RESIDENTIAL"),
        event("P2", "S3", "social_care_service", "2026-09-01", "2026-10-31", "NURSING"),
        event("P3", "E4", "hospital_episode", "2024-01-10", "2024-02-29", "ELECTIVE", "U07.1", dest="79"),
        event("P3", "K1", "community_contact", "2023-12-01", "2023-12-01", "FALLS_SERVICE", ethnic="A1"),
        event("P4", "K2", "community_contact", "2026-06-30", "2026-06-30", "DISTRICT_NURSING", ethnic="B2"),
        event("P4", "K3", "community_contact", "2026-07-31", "2026-07-31", "HEALTH_VISITING", ethnic="A1"),
        event("P4", "R1", "social_care_request", "2026-08-31", "2026-08-31", ethnic="Z"),
        event("P4", "R2", "social_care_assessment", "2026-09-15", "2026-09-15"),
        event("P4", "H1", "housing_case", "2026-10-01", None, "MAIN_DUTY"),
        event("P5", "E5", "hospital_episode", "2026-10-20", None, "EMERGENCY", "=SUM(A1)", dest="O'Brien"),
        event("P5", "G1", "gp_registration", "2016-01-01", None),
        event("P6", "A20", "ae_attendance", "2026-09-30", "2026-10-01", dest="306689006"),
        event("P7", "A21", "ae_attendance", "2026-03-03", "2026-03-03", nhs="9990000034"),
        event("P7", "E6", "hospital_episode", "2026-03-03", "2026-03-09", "EMERGENCY", "R41", ready="2026-03-04"),
        event("P8", "E7", "hospital_episode", "2026-01-31", "2026-02-28", "EMERGENCY", "J18", ready="2026-02-01"),
        event("P8", "S4", "social_care_service", "2026-02-28", None, None),
    ]
    events = spark.createDataFrame(rows, EVENTS)
    opt_outs = spark.createDataFrame([("9990000034",), (None,)], "nhs_number string")
    by_spark, by_duckdb = gold_both_ways(spark, persons, events, opt_outs, as_of)
    for name in by_spark:
        assert by_duckdb[name] == by_spark[name], name
    # Not vacuous: on the run date the rows were typed around every table has rows and the rules fire.
    if as_of == AS_OF:
        assert all(by_spark.values())
        assert any(dict(r)["is_frail"] for r in by_spark["person"])
    assert len(by_spark["person"]) == 7 and sum(by_spark["care_event"].values()) == len(rows) - 2


def test_duckdb_rounds_counts_and_rates_as_spark_does(spark):
    """Published counts and rates on every pair of counts up to 400 (rates of 1,000 per 1,000 and more,
    ties at .x5 among them): DuckDB's integer HALF_UP against Spark's rounding of a double."""
    from jobs import curate_local, lake
    from jobs.privacy import rate_per_1000, rounded_count

    pairs = spark.createDataFrame(
        [(n, d) for n in range(0, 401, 5) for d in range(0, 401, 5)] + [(3, None)], "n long, d long"
    )
    expected = pairs.select(
        "n", "d", rounded_count(F.col("d")).alias("published"), rate_per_1000(F.col("n"), F.col("d")).alias("rate")
    )
    with lake.local_sql() as sql:
        sql.register("pairs", pairs.toArrow())
        got = sql.sql(
            f"SELECT n, d, {curate_local.rounded_count('d')} AS published, "
            f"{curate_local.rate_per_1000('n', 'd')} AS rate FROM pairs"
        ).fetchall()
    assert sorted(got, key=repr) == sorted((tuple(r) for r in expected.collect()), key=repr)
    # Ties (a quotient ending in .x5) are among them: where HALF_UP and round-half-even would part.
    assert any(d and (n * 20000) % (2 * d) == d for n, d, *_ in got)
