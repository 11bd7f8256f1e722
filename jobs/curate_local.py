"""Curation on a lake on local disk: jobs.curate's gold builders in DuckDB's SQL, written by delta-rs.

On Spark, curate costs what its plans and jobs cost more than what its rows do: a 100,000-person
place (396,592 events) took 58 s, of which 33 s were reading and joining the events once, and a
1M place 100-120 s. The same rules over the same silver are hash joins and aggregations that
DuckDB does in seconds. Spark keeps the rules' first statement (jobs.curate, whose docstrings
document them); each function here is its namesake there, and tests/unit/test_curate.py and
tests/integration/test_pipeline.py build gold both ways from the same silver and compare every row.

Spark's semantics are followed where DuckDB's differ: months_between's fraction of 31 days in an
age, HALF_UP rounding of a rate from its exact quotient (Spark rounds the double's shortest decimal,
which is the same for these quotients), NULLS FIRST in ascending orders and NULLS LAST in descending
ones, count_if as a count that is 0, never null, and sums typed as Spark's long.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date

import pyarrow as pa

from jobs import lake
from jobs.codes import _icd10_chapter_of_category, known_codes
from jobs.config import Settings
from jobs.contracts import gold_contracts, source_contracts, table_contract
from jobs.curate import (
    DIED_IN_HOSPITAL,
    ETHNICITY_GROUPS,
    EVENT_COLUMNS,
    FRAILTY_DIAGNOSES,
    FRAILTY_TEAMS,
    HIGH_INTENSITY_MIN_AE,
    LONG_TERM_SERVICES,
    PACKAGE_AFTER_DISCHARGE_DAYS,
    PLACE_COUNTS,
    PLACE_MONTHS,
    RISING_RISK_MIN_SCORE,
    RISK_WEIGHTS,
    _rates,
)
from jobs.privacy import hmac_hex

log = logging.getLogger(__name__)

# What build_person reads of silver person: names and addresses stay behind.
PERSON_COLUMNS = (
    "person_id",
    "nhs_number",
    "date_of_birth",
    "sex",
    "lsoa_code",
    "ward_code",
    "imd_decile",
    "practice_code",
    "source_count",
)
# A 1M place's events (4.85M rows) are held once, as a temporary table; beyond this they spill.
CURATE_SQL_MEMORY = "2GB"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(values) -> str:
    return ", ".join(_quoted(v) for v in values)


def _day(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def _add_months(day: date, months: int) -> date:
    """Spark's add_months: the same day of the month months later, or that month's last day if it has none."""
    years, month = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _months_before(as_of: date, months: int) -> str:
    return _day(_add_months(as_of, -months))


def _month(column: str) -> str:
    """F.trunc(column, 'month'): a date."""
    return f"CAST(date_trunc('month', {column}) AS DATE)"


def age_band(date_of_birth: str, as_of: date) -> str:
    """jobs.curate.age_band: Spark's floor(months_between(as_of, dob) / 12), whose fraction of a month is
    the difference in days over 31 unless the days match or both are their month's last."""
    run = _day(as_of)
    months = f"((year({run}) - year({date_of_birth})) * 12 + month({run}) - month({date_of_birth}))"
    whole = f"(day({run}) = day({date_of_birth}) OR ({run} = last_day({run}) AND {date_of_birth} = last_day({date_of_birth})))"
    between = f"(CASE WHEN {whole} THEN {months} ELSE {months} + (day({run}) - day({date_of_birth})) / 31.0 END)"
    age = f"floor({between} / 12)"
    return (
        f"CASE WHEN {date_of_birth} IS NULL OR {age} < 0 THEN 'unknown' WHEN {age} < 18 THEN '0-17' "
        f"WHEN {age} < 65 THEN '18-64' WHEN {age} < 75 THEN '65-74' WHEN {age} < 85 THEN '75-84' ELSE '85+' END"
    )


def ethnicity_group(code: str) -> str:
    groups = " ".join(f"WHEN {_quoted(letter)} THEN {_quoted(name)}" for letter, name in ETHNICITY_GROUPS.items())
    return f"coalesce(CASE substring({code}, 1, 1) {groups} END, 'Not stated')"


def care_setting(event_type: str, service_type: str) -> str:
    return (
        f"CASE WHEN {event_type} = 'gp_registration' THEN 'primary_care' "
        f"WHEN {event_type} = 'hospital_episode' THEN 'hospital_inpatient' "
        f"WHEN {event_type} = 'ae_attendance' THEN 'emergency_department' "
        f"WHEN {event_type} = 'community_contact' THEN 'community' "
        f"WHEN {event_type} = 'social_care_service' AND {service_type} IN ('RESIDENTIAL', 'NURSING') THEN 'care_home' "
        f"WHEN starts_with({event_type}, 'social_care') THEN 'social_care' "
        f"WHEN {event_type} = 'housing_case' THEN 'housing' END"
    )


def listed_code(column: str, table: str | None = None) -> str:
    """jobs.curate.listed_code: the code if its national list knows it, else null (table: a qualifier)."""
    qualified = f"{table}.{column}" if table else column
    return f"CASE WHEN {qualified} IN ({_in(known_codes(column))}) THEN {qualified} END"


def icd10_category(raw: str) -> str:
    """The first three characters of a diagnosis code once upper-cased and stripped of dots and spaces, as
    jobs.codes.icd10_chapter reads them; its chapter is icd10_categories' (_icd10_categories) for it."""
    return f"substring(regexp_replace(upper(trim({raw})), '[.\\t\\n\\x0B\\f\\r ]', '', 'g'), 1, 3)"


def _icd10_categories() -> pa.Table:
    categories = [f"{chr(ord('A') + i // 100)}{i % 100:02d}" for i in range(2600)]
    chapters = list(_icd10_chapter_of_category())
    return pa.table({"category": categories, "chapter": chapters}).filter(pa.array([c is not None for c in chapters]))


def _count_if(condition: str) -> str:
    # Spark's count_if is a count: 0 for a group with no true, where DuckDB's is null.
    return f"count(*) FILTER (WHERE {condition})"


def _sum_int(condition: str) -> str:
    """sum(cast(condition as int)), typed as Spark's (a long; null when every row's condition is)."""
    return f"CAST(sum(CAST({condition} AS INTEGER)) AS BIGINT)"


# --- the tables, as SQL over the temporary tables `persons` and `events` -----------------------------


def opted_out_people() -> str:
    return """
        SELECT DISTINCT person_id FROM (
            SELECT person_id, nhs_number FROM events_in UNION ALL SELECT person_id, nhs_number FROM persons_in
        ) AS numbers
        WHERE nhs_number IN (SELECT nhs_number FROM opt_outs)"""


def stated_ethnicity() -> str:
    return """
        SELECT person_id, ethnic_category FROM (
            SELECT person_id, ethnic_category, row_number() OVER (
                PARTITION BY person_id ORDER BY n DESC NULLS LAST, latest DESC NULLS LAST, ethnic_category ASC NULLS FIRST
            ) AS _rank
            FROM (
                SELECT person_id, ethnic_category, count(*) AS n, max(event_start) AS latest FROM events
                WHERE ethnic_category IS NOT NULL AND ethnic_category <> 'Z'
                GROUP BY person_id, ethnic_category
            ) AS tallies
        ) AS ranked WHERE _rank = 1"""


def death_months() -> str:
    return f"""
        SELECT person_id, min({_month("event_end")}) AS month_of_death FROM events
        WHERE event_type = 'hospital_episode' AND discharge_destination = {_quoted(DIED_IN_HOSPITAL)}
            AND event_end IS NOT NULL
        GROUP BY person_id"""


def frail_people(as_of: date) -> str:
    since, until = _months_before(as_of, 12), _day(as_of)
    in_window = f"(event_start >= {since} AND event_start < {until})"
    emergency = "(event_type = 'hospital_episode' AND service_type = 'EMERGENCY')"
    long_term_active = (
        f"(event_type = 'social_care_service' AND service_type IN ({_in(LONG_TERM_SERVICES)}) "
        f"AND event_start < {until} AND (event_end IS NULL OR event_end >= {since}))"
    )
    team = f"(event_type = 'community_contact' AND service_type IN ({_in(FRAILTY_TEAMS)}) AND {in_window})"
    diagnosis = f"regexp_matches(primary_diagnosis, {_quoted(FRAILTY_DIAGNOSES)})"
    return f"""
        SELECT o.person_id FROM (
            SELECT person_id FROM persons WHERE {age_band("date_of_birth", as_of)} IN ('65-74', '75-84', '85+')
        ) AS o
        JOIN (
            SELECT person_id,
                {_sum_int(f"{emergency} AND {in_window}")} AS emergencies,
                max(CAST({emergency} AND {in_window} AND {diagnosis} AS INTEGER)) AS frailty_diagnosis,
                max(CAST({long_term_active} AS INTEGER)) AS long_term_care,
                max(CAST({team} AS INTEGER)) AS frailty_team
            FROM events GROUP BY person_id
        ) AS s ON o.person_id = s.person_id
        WHERE s.emergencies >= 2 OR s.frailty_diagnosis = 1 OR s.long_term_care = 1 OR s.frailty_team = 1"""


def build_person(as_of: date) -> str:
    return f"""
        SELECT k.person_key, {age_band("p.date_of_birth", as_of)} AS age_band, p.sex,
            {ethnicity_group("e.ethnic_category")} AS ethnicity_group, p.lsoa_code, p.ward_code, p.imd_decile,
            p.practice_code, d.month_of_death,
            coalesce(c.person_id IS NOT NULL, false) AS is_social_care_client,
            coalesce(f.person_id IS NOT NULL, false) AS is_frail, p.source_count
        FROM persons AS p
        JOIN person_keys AS k ON k.person_id = p.person_id
        LEFT JOIN (SELECT DISTINCT person_id FROM events WHERE event_type = 'social_care_service') AS c
            ON c.person_id = p.person_id
        LEFT JOIN ({frail_people(as_of)}) AS f ON f.person_id = p.person_id
        LEFT JOIN ({stated_ethnicity()}) AS e ON e.person_id = p.person_id
        LEFT JOIN ({death_months()}) AS d ON d.person_id = p.person_id"""


def build_care_event() -> str:
    return f"""
        SELECT pseudonym(concat_ws(':', e.source, e.record_id)) AS event_key, k.person_key, e.source,
            e.organisation, e.event_type, {care_setting("e.event_type", "e.service_type")} AS setting,
            e.service_type, e.provider_code,
            {_month("e.event_start")} AS event_start_month, {_month("e.event_end")} AS event_end_month,
            CAST(date_diff('day', e.event_start, e.event_end) AS INTEGER) AS duration_days,
            c.chapter AS diagnosis_chapter,
            CASE WHEN e.event_type = 'hospital_episode'
                THEN CAST(greatest(date_diff('day', e.discharge_ready_date, e.event_end), 0) AS INTEGER) END
                AS discharge_delay_days,
            {listed_code("discharge_destination", "e")} AS discharge_destination
        FROM events AS e
        JOIN person_keys AS k ON k.person_id = e.person_id
        LEFT JOIN icd10_categories AS c ON regexp_matches({icd10_category("e.primary_diagnosis")}, '^[A-Z][0-9]{{2}}$')
            AND c.category = {icd10_category("e.primary_diagnosis")}"""


def _grid_months(as_of: date, months: int) -> str:
    first = date(as_of.year, as_of.month, 1)
    return " UNION ALL ".join(f"SELECT {_day(_add_months(first, -m))} AS month" for m in range(months, 0, -1))


def place_month_counts(as_of: date, months: int = PLACE_MONTHS) -> str:
    keys = "area_level, area_code, month"
    until = f"coalesce(event_end, {_day(as_of)})"
    hospital, service = "event_type = 'hospital_episode'", "event_type = 'social_care_service'"
    bed_days = f"date_diff('day', greatest(event_start, month), least({until}, last_day(month) + 1))"
    counts = ", ".join(f"CAST(coalesce({c}, 0) AS BIGINT) AS {c}" for c in PLACE_COUNTS)
    return f"""
        WITH grid_months AS ({_grid_months(as_of, months)}),
        areas AS (
            SELECT person_id, 'ward' AS area_level, ward_code AS area_code FROM persons WHERE ward_code IS NOT NULL
            UNION ALL
            SELECT person_id, 'lsoa' AS area_level, lsoa_code AS area_code FROM persons WHERE lsoa_code IS NOT NULL
        ),
        grid AS (SELECT DISTINCT area_level, area_code FROM areas),
        alive AS (
            SELECT a.area_level, a.area_code, g.month, sum(a.people) AS residents FROM (
                SELECT area_level, area_code, month_of_death, count(*) AS people
                FROM areas LEFT JOIN ({death_months()}) AS d USING (person_id)
                GROUP BY area_level, area_code, month_of_death
            ) AS a JOIN grid_months AS g ON a.month_of_death IS NULL OR a.month_of_death >= g.month
            GROUP BY a.area_level, a.area_code, g.month
        ),
        located AS (SELECT e.*, a.area_level, a.area_code FROM events AS e JOIN areas AS a USING (person_id)),
        by_start AS (
            SELECT area_level, area_code, {_month("event_start")} AS month,
                {_count_if("event_type = 'ae_attendance'")} AS ae_attendances,
                {_count_if(f"{hospital} AND service_type = 'EMERGENCY'")} AS emergency_admissions,
                {_count_if(service)} AS new_care_packages,
                {_count_if("event_type = 'housing_case'")} AS homelessness_cases
            FROM located GROUP BY ALL
        ),
        delayed AS (
            SELECT area_level, area_code, {_month("event_end")} AS month, count(*) AS delayed_discharges
            FROM located WHERE {hospital} AND discharge_ready_date < event_end GROUP BY ALL
        ),
        overlapping AS (
            SELECT area_level, area_code, month,
                sum(CASE WHEN {hospital} THEN {bed_days} END) AS bed_days,
                count(DISTINCT CASE WHEN {service} THEN person_id END) AS social_care_clients
            FROM located JOIN grid_months ON event_start <= last_day(month) AND {until} >= month
            WHERE {hospital} OR {service}
            GROUP BY area_level, area_code, month
        )
        SELECT {keys}, {counts}
        FROM (SELECT area_level, area_code, month FROM grid CROSS JOIN grid_months) AS cells
        LEFT JOIN alive USING (area_level, area_code, month)
        LEFT JOIN by_start USING (area_level, area_code, month)
        LEFT JOIN delayed USING (area_level, area_code, month)
        LEFT JOIN overlapping USING (area_level, area_code, month)"""


def rounded_count(count: str) -> str:
    """jobs.privacy.rounded_count (a count over 5 is never a tie, so HALF_UP and DuckDB's round agree)."""
    return (
        f"CASE WHEN {count} IS NULL THEN NULL WHEN {count} = 0 THEN 0 WHEN {count} <= 7 THEN NULL "
        f"ELSE CAST(round({count} / 5.0) AS BIGINT) * 5 END"
    )


def rate_per_1000(numerator: str, denominator: str) -> str:
    """jobs.privacy.rate_per_1000: Spark rounds num * 1000.0 / den HALF_UP to one decimal (from the double's
    shortest decimal); here the exact quotient is, in integers, which gives the same for counts like these."""
    return (
        f"CASE WHEN {numerator} IS NOT NULL AND {denominator} IS NOT NULL AND {denominator} > 0 "
        f"THEN (({numerator} * 20000 + {denominator}) // (2 * {denominator})) / 10.0 END"
    )


def disclosure_controlled(
    raw: str,
    keys: list[str],
    counts: tuple[str, ...],
    rates: dict[str, tuple[str, str]],
    total_over: str | None = None,
    total_label: str = "ALL",
) -> str:
    """jobs.privacy.disclosure_controlled over the rows of a query."""
    cells = f"SELECT {', '.join(keys)}, {', '.join(f'{rounded_count(c)} AS {c}' for c in counts)} FROM ({raw}) AS raw"
    if total_over is not None:
        others = [k for k in keys if k != total_over]
        sums = ", ".join(f"CAST(sum(coalesce({c}, 0)) AS BIGINT) AS {c}" for c in counts)
        cells = (
            f"WITH published AS ({cells}) SELECT * FROM published UNION ALL BY NAME "
            f"SELECT {_quoted(total_label)} AS {total_over}, * FROM ("
            f"SELECT {', '.join(others)}, {sums} FROM published GROUP BY {', '.join(others)})"
        )
    rated = ", ".join(f"{rate_per_1000(num, den)} AS {name}" for name, (num, den) in rates.items())
    return f"SELECT *, {rated} FROM ({cells}) AS cells"


def build_place_month(as_of: date) -> str:
    keys = ["area_level", "area_code", "month"]
    rates = _rates(PLACE_COUNTS, "residents")
    counts = place_month_counts(as_of)
    wards = disclosure_controlled(
        f"SELECT * FROM ({counts}) WHERE area_level = 'ward'", keys, PLACE_COUNTS, rates, total_over="area_code"
    )
    lsoas = disclosure_controlled(f"SELECT * FROM ({counts}) WHERE area_level = 'lsoa'", keys, PLACE_COUNTS, rates)
    return f"""
        SELECT * REPLACE (CASE WHEN area_code = 'ALL' THEN 'place' ELSE area_level END AS area_level) FROM ({wards})
        UNION ALL BY NAME SELECT * FROM ({lsoas})"""


def _window_counts(since: str, until: str, suffix: str) -> str:
    in_window = f"(event_start >= {since} AND event_start < {until})"

    def n(condition: str, name: str) -> str:
        return f"{_sum_int(f'({condition}) AND {in_window}')} AS {name}{suffix}"

    return f"""
        SELECT person_id,
            {n("event_type = 'ae_attendance'", "ae_attendances")},
            {n("event_type = 'hospital_episode' AND service_type = 'EMERGENCY'", "emergency_admissions")},
            {n("event_type IN ('social_care_request', 'social_care_assessment')", "social_care_requests")},
            {n("starts_with(event_type, 'social_care')", "social_care_contacts")},
            {n("event_type = 'housing_case'", "homelessness_cases")}
        FROM events GROUP BY person_id"""


def high_intensity_users(as_of: date) -> str:
    since, until = _months_before(as_of, 12), _day(as_of)
    return f"""
        SELECT k.person_key, CAST(c.ae_attendances_12m AS INTEGER) AS ae_attendances_12m,
            CAST(c.emergency_admissions_12m AS INTEGER) AS emergency_admissions_12m,
            CAST(c.social_care_contacts_12m AS INTEGER) AS social_care_contacts_12m,
            coalesce(s.person_id IS NOT NULL, false) AS had_social_care_service_12m
        FROM ({_window_counts(since, until, "_12m")}) AS c
        JOIN person_keys AS k ON k.person_id = c.person_id
        LEFT JOIN (
            SELECT DISTINCT person_id FROM events WHERE event_type = 'social_care_service'
                AND event_start < {until} AND (event_end IS NULL OR event_end >= {since})
        ) AS s ON s.person_id = c.person_id
        WHERE c.ae_attendances_12m >= {HIGH_INTENSITY_MIN_AE}"""


def discharge_delays() -> str:
    return f"""
        SELECT pseudonym(concat_ws(':', source, record_id)) AS event_key, k.person_key,
            {_month("event_end")} AS discharge_month,
            CAST(date_diff('day', discharge_ready_date, event_end) AS INTEGER) AS delay_days, care_package_type,
            {listed_code("discharge_destination")} AS discharge_destination
        FROM (
            SELECT stay.*, p.package_start, p.care_package_type, row_number() OVER (
                PARTITION BY stay.source, stay.record_id
                ORDER BY p.package_start ASC NULLS FIRST, p.care_package_type ASC NULLS FIRST
            ) AS _rank
            FROM events AS stay
            JOIN (
                SELECT person_id AS _pid, event_start AS package_start, service_type AS care_package_type
                FROM events WHERE event_type = 'social_care_service'
            ) AS p ON stay.person_id = p._pid AND p.package_start >= stay.discharge_ready_date
                AND p.package_start <= stay.event_end + {PACKAGE_AFTER_DISCHARGE_DAYS}
            WHERE stay.event_type = 'hospital_episode' AND stay.discharge_ready_date < stay.event_end
        ) AS matched
        JOIN person_keys AS k ON k.person_id = matched.person_id
        WHERE _rank = 1"""


def _risk_score(suffix: str) -> str:
    return " + ".join(f"{weight} * {name}{suffix}" for name, weight in RISK_WEIGHTS.items())


def rising_risk(as_of: date) -> str:
    recent = _window_counts(_months_before(as_of, 6), _day(as_of), "_6m")
    prior = _window_counts(_months_before(as_of, 12), _months_before(as_of, 6), "_prior")
    counts = ", ".join(f"CAST({name}_6m AS INTEGER) AS {name}_6m" for name in RISK_WEIGHTS)
    return f"""
        SELECT k.person_key, s.* EXCLUDE (person_id) FROM (
            SELECT person_id, CAST({_risk_score("_6m")} AS INTEGER) AS risk_score,
                CAST({_risk_score("_prior")} AS INTEGER) AS prior_risk_score, {counts}
            FROM ({recent}) AS r JOIN ({prior}) AS p USING (person_id)
        ) AS s
        JOIN person_keys AS k ON k.person_id = s.person_id
        WHERE s.risk_score >= {RISING_RISK_MIN_SCORE} AND s.risk_score > s.prior_risk_score
            AND s.person_id NOT IN (SELECT person_id FROM ({death_months()}))"""


def build_cohort_area(cohorts: dict[str, str]) -> str:
    """cohorts: cohort name -> the (temporary) table holding it; person is the table gold_person."""
    members = " UNION ".join(
        f"SELECT DISTINCT {_quoted(name)} AS cohort, person_key FROM {t}" for name, t in cohorts.items()
    )
    names = " UNION ALL ".join(f"SELECT {_quoted(name)} AS cohort" for name in cohorts)
    raw = f"""
        WITH residents AS (
            SELECT ward_code AS area_code, count(*) AS residents FROM gold_person
            WHERE ward_code IS NOT NULL AND month_of_death IS NULL GROUP BY ward_code
        ),
        people AS (
            SELECT m.cohort, p.ward_code AS area_code, count(*) AS people
            FROM ({members}) AS m JOIN gold_person AS p USING (person_key)
            WHERE p.ward_code IS NOT NULL GROUP BY ALL
        )
        SELECT g.cohort, g.area_code, CAST(coalesce(p.people, 0) AS BIGINT) AS people,
            CAST(g.residents AS BIGINT) AS residents
        FROM (SELECT * FROM ({names}) CROSS JOIN residents) AS g
        LEFT JOIN people AS p USING (cohort, area_code)"""
    controlled = disclosure_controlled(
        raw, ["cohort", "area_code"], ("people", "residents"), {"people_per_1000": ("people", "residents")}, "area_code"
    )
    return f"""
        SELECT cohort, CASE WHEN area_code = 'ALL' THEN 'place' ELSE 'ward' END AS area_level, area_code, people,
            residents, people_per_1000
        FROM ({controlled})"""


# --- the build -----------------------------------------------------------------------------------


def build_gold(sql, key: str, as_of: date) -> dict[str, str]:
    """Every gold table as a temporary table gold_<name> in sql, conforming to its contract; returns
    name -> that table. Reads the views persons_in (PERSON_COLUMNS), events_in (EVENT_COLUMNS and
    person_id) and opt_outs (nhs_number) that the caller registered."""
    sql.create_function(
        "pseudonym",
        _pseudonyms(key),
        ["VARCHAR"],
        "VARCHAR",
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    sql.register("icd10_categories", _icd10_categories())
    sql.execute(f"CREATE TEMP TABLE opted_out AS {opted_out_people()}")
    sql.execute("CREATE TEMP TABLE persons AS SELECT * FROM persons_in ANTI JOIN opted_out USING (person_id)")
    sql.execute("CREATE TEMP TABLE events AS SELECT * FROM events_in ANTI JOIN opted_out USING (person_id)")
    # One HMAC a person, joined to every table keyed by person, not one an event.
    sql.execute(
        "CREATE TEMP TABLE person_keys AS SELECT person_id, pseudonym(person_id) AS person_key FROM ("
        "SELECT person_id FROM persons UNION SELECT person_id FROM events)"
    )
    queries = {
        "person": build_person(as_of),
        "care_event": build_care_event(),
        "place_month": build_place_month(as_of),
        "cohort_hiu": high_intensity_users(as_of),
        "cohort_delay": discharge_delays(),
        "cohort_risk": rising_risk(as_of),
    }
    tables = {}
    for name, query in queries.items():
        tables[name] = _conformed(sql, name, query)
    cohorts = {
        "high_intensity_user": "gold_cohort_hiu",
        "discharge_delay": "gold_cohort_delay",
        "rising_risk": "gold_cohort_risk",
    }
    tables["cohort_area"] = _conformed(sql, "cohort_area", build_cohort_area(cohorts))
    return tables


def _conformed(sql, name: str, query: str) -> str:
    """The query's rows as temporary table gold_<name>, the contract's columns in its order and types."""
    contract = table_contract("gold", name)
    schema = lake.arrow_schema(contract.typed_schema())
    types = {
        pa.string(): "VARCHAR",
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.date32(): "DATE",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }
    columns = ", ".join(f"CAST({f.name} AS {types[f.type]}) AS {f.name}" for f in schema)
    sql.execute(f"CREATE TEMP TABLE gold_{name} AS SELECT {columns} FROM ({query})")
    return f"gold_{name}"


def _pseudonyms(key: str):
    digest = hmac_hex(key)

    def pseudonyms(values) -> pa.Array:
        return pa.array([digest(v) for v in values.to_pylist()], pa.string())

    return pseudonyms


def curates_locally(settings: Settings) -> bool:
    """Whether curate runs here rather than on Spark: a lake on local disk whose silver person sources,
    person_link and person fit settings.gate_memory_bytes (the same bound as the gate's and the link's)."""
    if not settings.is_local():
        return False
    paths = [settings.table("silver", t) for t in (*_person_sources(settings), "person_link", "person")]
    return lake.size_local(paths) <= settings.gate_memory_bytes


def _person_sources(settings: Settings) -> list[str]:
    return [
        c.name
        for c in source_contracts()
        if c.kind == "person_events" and lake.exists_local(settings.table("silver", c.name))
    ]


def register_silver(sql, settings: Settings) -> None:
    """The views build_gold reads, over the lake's silver (delta-rs datasets, scanned when queried)."""
    sources = _person_sources(settings)
    for source in sources:
        sql.register(f"silver_{source}", lake.dataset_local(settings.table("silver", source)))
    union = " UNION ALL ".join(f"SELECT {', '.join(EVENT_COLUMNS)} FROM silver_{s}" for s in sources)
    sql.register("person_link", lake.dataset_local(settings.table("silver", "person_link")))
    sql.execute(
        f"CREATE TEMP VIEW events_in AS SELECT e.*, l.person_id FROM ({union}) AS e "
        "JOIN (SELECT source, record_id, person_id FROM person_link) AS l USING (source, record_id)"
    )
    sql.register("silver_person", lake.dataset_local(settings.table("silver", "person")))
    sql.execute(f"CREATE TEMP VIEW persons_in AS SELECT {', '.join(PERSON_COLUMNS)} FROM silver_person")
    listed = lake.read_local(settings.table("silver", "opt_outs"), columns=["nhs_number"])
    sql.register("opt_outs", listed if listed is not None else pa.table({"nhs_number": pa.array([], pa.string())}))


def curate_all_local(settings: Settings, key: str, as_of: date) -> dict[str, int]:
    """jobs.curate.curate_all on a local lake: every gold table into staging by delta-rs, one commit each."""
    with lake.local_sql(CURATE_SQL_MEMORY) as sql:
        register_silver(sql, settings)
        tables = build_gold(sql, key, as_of)
        if set(tables) != {c.name for c in gold_contracts()}:
            raise RuntimeError(f"gold builders {sorted(tables)} do not match gold contracts")
        counts = {}
        for name, table in tables.items():
            schema = lake.arrow_schema(table_contract("gold", name).typed_schema())
            lake.replace_local(
                lake.streamed(sql.sql(f"SELECT * FROM {table}"), schema), settings.table("staging/gold", name)
            )
            (counts[name],) = sql.sql(f"SELECT count(*) FROM {table}").fetchall()[0]
            log.info("staged gold.%s: %d rows (on a local lake)", name, counts[name])
    return counts
