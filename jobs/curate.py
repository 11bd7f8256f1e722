"""Curation: gold marts keyed by a pseudonymous person_key, no direct identifiers.

Each builder is a pure transform from silver frames to a frame matching its
contract in schemas/gold/. The gate decides whether it is published. People
on the national data opt-out list are removed before anything is built, so no
gold table (row-level or aggregate) carries them.

Rules that decide who is frail, whose discharge waited on social care and who
is at rising risk are plain thresholds written out here and in the tables'
contracts, so an analyst can check any row by hand.
"""

from __future__ import annotations

import logging
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import lake
from jobs.codes import icd10_chapter, known_codes
from jobs.config import Settings
from jobs.contracts import conform, gold_contracts, table_contract
from jobs.link import person_sources
from jobs.privacy import disclosure_controlled, hmac_sha256, pseudonym_key
from jobs.spark import releases_what_it_cached

log = logging.getLogger(__name__)

PLACE_MONTHS = 24  # place_month covers the 24 complete months before the run's month
HIGH_INTENSITY_MIN_AE = 5  # A&E attendances in 12 months that make a high-intensity user
PACKAGE_AFTER_DISCHARGE_DAYS = 7  # a package starting this soon after discharge is the one the stay waited on
RISK_WEIGHTS = {  # points per event in a 6-month window
    "emergency_admissions": 3,
    "ae_attendances": 1,
    "social_care_requests": 2,
    "homelessness_cases": 2,
}
RISING_RISK_MIN_SCORE = 4
# ICD-10 codes that mark frailty on an admission: falls (W00-W19), tendency to fall (R296),
# hip fracture (S72), confusion and other cognitive symptoms (R41).
FRAILTY_DIAGNOSES = r"^(W0[0-9]|W1[0-9]|R296|S72|R41)"
FRAILTY_TEAMS = ("DISTRICT_NURSING", "COMMUNITY_MATRON", "FALLS_SERVICE")
LONG_TERM_SERVICES = ("HOME_CARE", "RESIDENTIAL", "NURSING")
# The 22 chapters of ICD-10 (WHO 2019) by the first three characters of the code.
# ONS 2021 ethnic group codes: the letter is the high-level group.
ETHNICITY_GROUPS = {"A": "Asian", "B": "Black", "C": "Mixed", "D": "White", "E": "Other"}
# APC discharge destination 79: the patient died in hospital.
DIED_IN_HOSPITAL = "79"


def _months_before(as_of: date, months: int) -> Column:
    return F.add_months(F.lit(as_of), -months)


def age_band(date_of_birth: Column, as_of: date) -> Column:
    age = F.floor(F.months_between(F.lit(as_of), date_of_birth) / 12)
    return (
        F.when(date_of_birth.isNull() | (age < 0), F.lit("unknown"))
        .when(age < 18, F.lit("0-17"))
        .when(age < 65, F.lit("18-64"))
        .when(age < 75, F.lit("65-74"))
        .when(age < 85, F.lit("75-84"))
        .otherwise(F.lit("85+"))
    )


def ethnicity_group(code: Column) -> Column:
    group = F.create_map(*[F.lit(v) for pair in ETHNICITY_GROUPS.items() for v in pair])[F.substring(code, 1, 1)]
    return F.coalesce(group, F.lit("Not stated"))


def care_setting(event_type: Column, service_type: Column) -> Column:
    """Where the care happened, in one vocabulary across sources."""
    return (
        F.when(event_type == "gp_registration", F.lit("primary_care"))
        .when(event_type == "hospital_episode", F.lit("hospital_inpatient"))
        .when(event_type == "ae_attendance", F.lit("emergency_department"))
        .when(event_type == "community_contact", F.lit("community"))
        .when(
            (event_type == "social_care_service") & service_type.isin("RESIDENTIAL", "NURSING"),
            F.lit("care_home"),
        )
        .when(event_type.startswith("social_care"), F.lit("social_care"))
        .when(event_type == "housing_case", F.lit("housing"))
    )


# --- the opt-out boundary --------------------------------------------------------


def opted_out_people(persons: DataFrame, events: DataFrame, opt_outs: DataFrame) -> DataFrame:
    """person_id of everyone whose NHS number is on the opt-out list, on any record of theirs.

    A person known under two NHS numbers (registered twice) is out if either is listed.
    """
    listed = opt_outs.select(F.col("nhs_number").alias("_listed")).distinct()
    numbers = events.select("person_id", "nhs_number").unionByName(persons.select("person_id", "nhs_number"))
    return (
        numbers.join(listed, on=numbers["nhs_number"] == listed["_listed"], how="inner").select("person_id").distinct()
    )


def without_people(df: DataFrame, people: DataFrame) -> DataFrame:
    return df.join(people.select("person_id"), on="person_id", how="left_anti")


# --- person ------------------------------------------------------------------------


def stated_ethnicity(events: DataFrame) -> DataFrame:
    """Per person, the ethnic category most often stated across sources (not-stated Z ignored), latest on a tie."""
    stated = events.where(F.col("ethnic_category").isNotNull() & (F.col("ethnic_category") != "Z"))
    tallies = stated.groupBy("person_id", "ethnic_category").agg(
        F.count("*").alias("n"), F.max("event_start").alias("latest")
    )
    best = Window.partitionBy("person_id").orderBy(F.desc("n"), F.desc("latest"), "ethnic_category")
    return (
        tallies.withColumn("_rank", F.row_number().over(best))
        .where(F.col("_rank") == 1)
        .select("person_id", "ethnic_category")
    )


def death_months(events: DataFrame) -> DataFrame:
    """Month of death as the lake knows it: the end of a hospital stay discharged as died (code 79).

    Deaths outside hospital reach the lake as a GP deregistration with reason
    'death', which silver does not carry yet; those people have no month here.
    """
    return (
        events.where(
            (F.col("event_type") == "hospital_episode")
            & (F.col("discharge_destination") == DIED_IN_HOSPITAL)
            & F.col("event_end").isNotNull()
        )
        .groupBy("person_id")
        .agg(F.min(F.trunc("event_end", "month")).alias("month_of_death"))
    )


def frail_people(persons: DataFrame, events: DataFrame, as_of: date) -> DataFrame:
    """person_id of everyone the frailty rule flags (see schemas/gold/person.yaml).

    Aged 65+ on the run date and, in the 12 months before it, any of: two or
    more emergency admissions; an emergency admission for a fall, hip fracture
    or confusion; a long-term social care service (home care, residential,
    nursing); a contact from district nursing, a community matron or the falls
    service.
    """
    since, until = _months_before(as_of, 12), F.lit(as_of)
    in_window = (F.col("event_start") >= since) & (F.col("event_start") < until)
    emergency = (F.col("event_type") == "hospital_episode") & (F.col("service_type") == "EMERGENCY")
    long_term_active = (
        (F.col("event_type") == "social_care_service")
        & F.col("service_type").isin(*LONG_TERM_SERVICES)
        & (F.col("event_start") < until)
        & (F.col("event_end").isNull() | (F.col("event_end") >= since))
    )
    signals = events.groupBy("person_id").agg(
        F.sum((emergency & in_window).cast("int")).alias("emergencies"),
        F.max((emergency & in_window & F.col("primary_diagnosis").rlike(FRAILTY_DIAGNOSES)).cast("int")).alias(
            "frailty_diagnosis"
        ),
        F.max(long_term_active.cast("int")).alias("long_term_care"),
        F.max(
            (
                (F.col("event_type") == "community_contact") & F.col("service_type").isin(*FRAILTY_TEAMS) & in_window
            ).cast("int")
        ).alias("frailty_team"),
    )
    older = persons.where(age_band(F.col("date_of_birth"), as_of).isin("65-74", "75-84", "85+")).select("person_id")
    flagged = signals.where(
        (F.col("emergencies") >= 2)
        | (F.col("frailty_diagnosis") == 1)
        | (F.col("long_term_care") == 1)
        | (F.col("frailty_team") == 1)
    )
    return older.join(flagged.select("person_id"), on="person_id", how="inner")


def build_person(persons: DataFrame, events: DataFrame, key: str, as_of: date) -> DataFrame:
    social_care = (
        events.where(F.col("event_type") == "social_care_service")
        .select("person_id")
        .distinct()
        .withColumn("is_social_care_client", F.lit(True))
    )
    frail = frail_people(persons, events, as_of).withColumn("is_frail", F.lit(True))
    return (
        persons.join(social_care, on="person_id", how="left")
        .join(frail, on="person_id", how="left")
        .join(stated_ethnicity(events), on="person_id", how="left")
        .join(death_months(events), on="person_id", how="left")
        .select(
            hmac_sha256(F.col("person_id"), key).alias("person_key"),
            age_band(F.col("date_of_birth"), as_of).alias("age_band"),
            "sex",
            ethnicity_group(F.col("ethnic_category")).alias("ethnicity_group"),
            "lsoa_code",
            "ward_code",
            "imd_decile",
            "practice_code",
            "month_of_death",
            F.coalesce("is_social_care_client", F.lit(False)).alias("is_social_care_client"),
            F.coalesce("is_frail", F.lit(False)).alias("is_frail"),
            "source_count",
        )
    )


# --- care_event ----------------------------------------------------------------------


def _event_key(key: str) -> Column:
    return hmac_sha256(F.concat_ws(":", "source", "record_id"), key)


def listed_code(column: str) -> Column:
    """The code if its national list (schemas/codes/<column>.yaml) knows it, else null.

    Silver keeps an unknown code as delivered (and flags it); gold must not pass on whatever
    text a source put there (a spreadsheet formula, a name).
    """
    return F.when(F.col(column).isin(*known_codes(column)), F.col(column))


def build_care_event(events: DataFrame, key: str) -> DataFrame:
    # Exact dates are quasi-identifying (a birth, a death, an admission a neighbour saw):
    # gold carries months and durations; exact dates stay in silver.
    hospital = F.col("event_type") == "hospital_episode"
    return events.select(
        _event_key(key).alias("event_key"),
        hmac_sha256(F.col("person_id"), key).alias("person_key"),
        "source",
        "organisation",
        "event_type",
        care_setting(F.col("event_type"), F.col("service_type")).alias("setting"),
        "service_type",
        "provider_code",
        F.trunc("event_start", "month").alias("event_start_month"),
        F.trunc("event_end", "month").alias("event_end_month"),
        F.datediff("event_end", "event_start").alias("duration_days"),
        icd10_chapter(F.col("primary_diagnosis")).alias("diagnosis_chapter"),
        F.when(hospital, F.greatest(F.datediff("event_end", "discharge_ready_date"), F.lit(0))).alias(
            "discharge_delay_days"
        ),
        listed_code("discharge_destination").alias("discharge_destination"),
    )


# --- place_month ---------------------------------------------------------------------


def _month_grid(spark: SparkSession, as_of: date, months: int) -> DataFrame:
    return spark.sql(
        f"SELECT explode(sequence(add_months(trunc(DATE'{as_of.isoformat()}', 'MM'), -{months}), "
        f"add_months(trunc(DATE'{as_of.isoformat()}', 'MM'), -1), INTERVAL 1 MONTH)) AS month"
    )


def person_areas(persons: DataFrame) -> DataFrame:
    """(person_id, area_level, area_code): each person in their ward and their LSOA."""
    areas = F.array(
        F.struct(F.lit("ward").alias("area_level"), F.col("ward_code").alias("area_code")),
        F.struct(F.lit("lsoa").alias("area_level"), F.col("lsoa_code").alias("area_code")),
    )
    return (
        persons.select("person_id", F.explode(areas).alias("a"))
        .select("person_id", "a.area_level", "a.area_code")
        .where(F.col("area_code").isNotNull())
    )


PLACE_COUNTS = (
    "residents",
    "ae_attendances",
    "emergency_admissions",
    "bed_days",
    "delayed_discharges",
    "social_care_clients",
    "new_care_packages",
    "homelessness_cases",
)


def place_month_counts(persons: DataFrame, events: DataFrame, as_of: date, months: int = PLACE_MONTHS) -> DataFrame:
    """True (uncontrolled) counts per area per month: never published as they are.

    Activity is placed by the person's best-known area of residence.
    """
    grid_months = _month_grid(persons.sparkSession, as_of, months)
    areas = person_areas(persons)
    grid = areas.select("area_level", "area_code").distinct().crossJoin(grid_months)
    keys = ["area_level", "area_code", "month"]

    # Residents: people are counted per area and month of death first, so the months are joined
    # to a few thousand groups, not to every person (24 rows each).
    deaths = death_months(events)
    alive = (
        areas.join(deaths, on="person_id", how="left")
        .groupBy("area_level", "area_code", "month_of_death")
        .agg(F.count("*").alias("people"))
        .join(
            F.broadcast(grid_months),
            on=F.col("month_of_death").isNull() | (F.col("month_of_death") >= F.col("month")),
            how="inner",
        )
        .groupBy(*keys)
        .agg(F.sum("people").alias("residents"))
    )
    located = events.join(areas, on="person_id", how="inner")

    event_type = F.col("event_type")
    hospital = event_type == "hospital_episode"
    service = event_type == "social_care_service"
    # Everything dated by its start month, in one pass.
    by_start = located.groupBy("area_level", "area_code", F.trunc("event_start", "month").alias("month")).agg(
        F.count_if(event_type == "ae_attendance").alias("ae_attendances"),
        F.count_if(hospital & (F.col("service_type") == "EMERGENCY")).alias("emergency_admissions"),
        F.count_if(service).alias("new_care_packages"),
        F.count_if(event_type == "housing_case").alias("homelessness_cases"),
    )
    # A delayed discharge belongs to the month the patient left.
    delayed = (
        located.where(hospital & (F.col("discharge_ready_date") < F.col("event_end")))
        .groupBy("area_level", "area_code", F.trunc("event_end", "month").alias("month"))
        .agg(F.count("*").alias("delayed_discharges"))
    )
    # Stays and care packages overlapping each month (an open one runs to the run date).
    month_end = F.last_day("month")
    until = F.coalesce(F.col("event_end"), F.lit(as_of))
    overlapping = (
        located.where(hospital | service)
        .join(
            F.broadcast(grid_months),
            on=(F.col("event_start") <= month_end) & (until >= F.col("month")),
            how="inner",
        )
        .groupBy(*keys)
        .agg(
            F.sum(
                F.when(
                    hospital,
                    F.datediff(
                        F.least(until, F.date_add(month_end, 1)), F.greatest(F.col("event_start"), F.col("month"))
                    ),
                )
            ).alias("bed_days"),
            F.countDistinct(F.when(service, F.col("person_id"))).alias("social_care_clients"),
        )
    )
    parts = [alive, by_start, delayed, overlapping]
    counts = grid
    for part in parts:
        counts = counts.join(part, on=keys, how="left")
    return counts.fillna(0, subset=list(PLACE_COUNTS)).select(
        *keys, *[F.col(c).cast("long").alias(c) for c in PLACE_COUNTS]
    )


def _rates(counts: tuple[str, ...], denominator: str) -> dict[str, tuple[str, str]]:
    return {f"{c}_per_1000": (c, denominator) for c in counts if c != denominator}


def build_place_month(counts: DataFrame) -> DataFrame:
    """Disclosure-controlled area-month counts: wards, LSOAs, and a place total from the published ward cells."""
    keys = ["area_level", "area_code", "month"]
    rates = _rates(PLACE_COUNTS, "residents")
    wards = disclosure_controlled(
        counts.where(F.col("area_level") == "ward"), keys, PLACE_COUNTS, rates, total_over="area_code"
    ).withColumn("area_level", F.when(F.col("area_code") == "ALL", F.lit("place")).otherwise(F.col("area_level")))
    lsoas = disclosure_controlled(counts.where(F.col("area_level") == "lsoa"), keys, PLACE_COUNTS, rates)
    return wards.unionByName(lsoas)


# --- cohorts -------------------------------------------------------------------------


def _window_counts(events: DataFrame, since: Column, until: Column, suffix: str) -> DataFrame:
    in_window = (F.col("event_start") >= since) & (F.col("event_start") < until)
    event_type = F.col("event_type")

    def n(condition: Column, name: str) -> Column:
        return F.sum((condition & in_window).cast("int")).alias(f"{name}{suffix}")

    return events.groupBy("person_id").agg(
        n(event_type == "ae_attendance", "ae_attendances"),
        n((event_type == "hospital_episode") & (F.col("service_type") == "EMERGENCY"), "emergency_admissions"),
        n(event_type.isin("social_care_request", "social_care_assessment"), "social_care_requests"),
        n(event_type.startswith("social_care"), "social_care_contacts"),
        n(event_type == "housing_case", "homelessness_cases"),
    )


def high_intensity_users(events: DataFrame, key: str, as_of: date) -> DataFrame:
    """People with 5+ A&E attendances in the 12 months before the run date, with their social care contact."""
    counts = _window_counts(events, _months_before(as_of, 12), F.lit(as_of), "_12m")
    since, until = _months_before(as_of, 12), F.lit(as_of)
    supported = (
        events.where(
            (F.col("event_type") == "social_care_service")
            & (F.col("event_start") < until)
            & (F.col("event_end").isNull() | (F.col("event_end") >= since))
        )
        .select("person_id")
        .distinct()
        .withColumn("had_social_care_service_12m", F.lit(True))
    )
    return (
        counts.where(F.col("ae_attendances_12m") >= HIGH_INTENSITY_MIN_AE)
        .join(supported, on="person_id", how="left")
        .select(
            hmac_sha256(F.col("person_id"), key).alias("person_key"),
            *[
                F.col(c).cast("int").alias(c)
                for c in ("ae_attendances_12m", "emergency_admissions_12m", "social_care_contacts_12m")
            ],
            F.coalesce("had_social_care_service_12m", F.lit(False)).alias("had_social_care_service_12m"),
        )
    )


def discharge_delays(events: DataFrame, key: str) -> DataFrame:
    """Hospital stays discharged after the clinically-ready date whose discharge waited on a care package.

    The package is the person's first social care service starting on or
    after the ready date and no later than 7 days after discharge.
    """
    delayed = events.where(
        (F.col("event_type") == "hospital_episode") & (F.col("discharge_ready_date") < F.col("event_end"))
    ).alias("stay")
    packages = events.where(F.col("event_type") == "social_care_service").select(
        F.col("person_id").alias("_pid"),
        F.col("event_start").alias("package_start"),
        F.col("service_type").alias("care_package_type"),
    )
    matched = delayed.join(
        packages,
        on=(F.col("person_id") == F.col("_pid"))
        & (F.col("package_start") >= F.col("discharge_ready_date"))
        & (F.col("package_start") <= F.date_add(F.col("event_end"), PACKAGE_AFTER_DISCHARGE_DAYS)),
        how="inner",
    )
    first = Window.partitionBy("source", "record_id").orderBy("package_start", "care_package_type")
    return (
        matched.withColumn("_rank", F.row_number().over(first))
        .where(F.col("_rank") == 1)
        .select(
            _event_key(key).alias("event_key"),
            hmac_sha256(F.col("person_id"), key).alias("person_key"),
            F.trunc("event_end", "month").alias("discharge_month"),
            F.datediff("event_end", "discharge_ready_date").alias("delay_days"),
            "care_package_type",
            listed_code("discharge_destination").alias("discharge_destination"),
        )
    )


def _risk_score(suffix: str) -> Column:
    return sum((F.lit(weight) * F.col(f"{name}{suffix}") for name, weight in RISK_WEIGHTS.items()), start=F.lit(0))


def rising_risk(events: DataFrame, key: str, as_of: date) -> DataFrame:
    """People whose score over the last 6 months is 4+ and higher than over the 6 months before.

    Score: 3 per emergency admission, 1 per A&E attendance, 2 per social care
    request or assessment, 2 per homelessness case. People with a recorded
    death are left out: their risk no longer rises.
    """
    recent = _window_counts(events, _months_before(as_of, 6), F.lit(as_of), "_6m")
    prior = _window_counts(events, _months_before(as_of, 12), _months_before(as_of, 6), "_prior")
    scored = recent.join(prior, on="person_id", how="inner").select(
        "person_id",
        _risk_score("_6m").cast("int").alias("risk_score"),
        _risk_score("_prior").cast("int").alias("prior_risk_score"),
        *[F.col(f"{name}_6m").cast("int").alias(f"{name}_6m") for name in RISK_WEIGHTS],
    )
    return (
        scored.where((F.col("risk_score") >= RISING_RISK_MIN_SCORE) & (F.col("risk_score") > F.col("prior_risk_score")))
        .join(death_months(events), on="person_id", how="left_anti")
        .select(
            hmac_sha256(F.col("person_id"), key).alias("person_key"), *[c for c in scored.columns if c != "person_id"]
        )
    )


def build_cohort_area(person: DataFrame, cohorts: dict[str, DataFrame]) -> DataFrame:
    """People in each cohort per ward, disclosure-controlled, with a place total from the published ward cells."""
    living = person.where(F.col("ward_code").isNotNull() & F.col("month_of_death").isNull())
    residents = living.groupBy(F.col("ward_code").alias("area_code")).agg(F.count("*").alias("residents"))
    members = [frame.select(F.lit(name).alias("cohort"), "person_key").distinct() for name, frame in cohorts.items()]
    in_cohort = members[0]
    for frame in members[1:]:
        in_cohort = in_cohort.unionByName(frame)
    names = person.sparkSession.createDataFrame([(n,) for n in cohorts], "cohort string")
    grid = names.crossJoin(residents)
    people = (
        in_cohort.join(person.select("person_key", F.col("ward_code").alias("area_code")), on="person_key", how="inner")
        .where(F.col("area_code").isNotNull())
        .groupBy("cohort", "area_code")
        .agg(F.count("*").alias("people"))
    )
    raw = grid.join(people, on=["cohort", "area_code"], how="left").select(
        "cohort",
        "area_code",
        F.coalesce("people", F.lit(0)).cast("long").alias("people"),
        F.col("residents").cast("long"),
    )
    controlled = disclosure_controlled(
        raw,
        ["cohort", "area_code"],
        ["people", "residents"],
        {"people_per_1000": ("people", "residents")},
        total_over="area_code",
    )
    return controlled.select(
        "cohort",
        F.when(F.col("area_code") == "ALL", F.lit("place")).otherwise(F.lit("ward")).alias("area_level"),
        "area_code",
        "people",
        "residents",
        "people_per_1000",
    )


# --- IO ------------------------------------------------------------------------------


# What the gold builders read of a silver event: names, addresses and the lineage columns stay
# behind, neither read nor held in memory (at 1M people the events are 4.85M rows).
EVENT_COLUMNS = (
    "source",
    "record_id",
    "organisation",
    "nhs_number",  # for the opt-out list only
    "event_type",
    "service_type",
    "provider_code",
    "event_start",
    "event_end",
    "ethnic_category",
    "primary_diagnosis",
    "discharge_ready_date",
    "discharge_destination",
)


def linked_events(spark: SparkSession, settings: Settings) -> DataFrame:
    """Every silver event the gold builders read (EVENT_COLUMNS), with its record's person_id."""
    links = lake.read(spark, settings.table("silver", "person_link")).select("source", "record_id", "person_id")
    frames = [
        lake.read(spark, settings.table("silver", s)).select(*EVENT_COLUMNS) for s in person_sources(spark, settings)
    ]
    events = frames[0]
    for frame in frames[1:]:
        events = events.unionByName(frame)
    return events.join(links, on=["source", "record_id"], how="inner")


def opt_out_list(spark: SparkSession, settings: Settings) -> DataFrame:
    """The silver opt-out list; an empty one if no list has been delivered yet."""
    path = settings.table("silver", "opt_outs")
    if lake.table_exists(spark, path):
        return lake.read(spark, path).select("nhs_number")
    return spark.createDataFrame([], "nhs_number string")


def build_gold(
    persons: DataFrame, events: DataFrame, opt_outs: DataFrame, key: str, as_of: date
) -> dict[str, DataFrame]:
    """Every gold table as a frame conforming to its contract (nothing written)."""
    out = opted_out_people(persons, events, opt_outs)
    # Every table reads the people left in, and cohort_area reads person and the cohorts: each is
    # materialised once here (localCheckpoint), not recomputed inside every table that uses it.
    persons, events = without_people(persons, out).localCheckpoint(), without_people(events, out).localCheckpoint()
    person = build_person(persons, events, key, as_of).localCheckpoint()
    cohorts = {
        "high_intensity_user": high_intensity_users(events, key, as_of).localCheckpoint(),
        "discharge_delay": discharge_delays(events, key).localCheckpoint(),
        "rising_risk": rising_risk(events, key, as_of).localCheckpoint(),
    }
    tables = {
        "person": person,
        "care_event": build_care_event(events, key),
        "place_month": build_place_month(place_month_counts(persons, events, as_of)),
        # Table names stay short (the run summary's column): hiu is the NHS's "high intensity use".
        "cohort_hiu": cohorts["high_intensity_user"],
        "cohort_delay": cohorts["discharge_delay"],
        "cohort_risk": cohorts["rising_risk"],
        "cohort_area": build_cohort_area(person, cohorts),
    }
    return {name: conform(df, table_contract("gold", name)) for name, df in tables.items()}


@releases_what_it_cached
def curate_all(spark: SparkSession, settings: Settings, as_of: date) -> dict[str, int]:
    """Build every gold table into staging (lake/staging/gold/<table>).

    On a lake on local disk whose silver fits settings.gate_memory_bytes the same rules run in DuckDB
    (jobs.curate_local: 4.2 s against Spark's 58-79 s at 100,000 people); on Spark otherwise.
    """
    from jobs import curate_local  # it imports this module's rules

    expected = {c.name for c in gold_contracts()}
    key = pseudonym_key()
    if curate_local.curates_locally(settings):
        return curate_local.curate_all_local(settings, key, as_of)
    events = linked_events(spark, settings).persist()
    persons = lake.read(spark, settings.table("silver", "person")).persist()
    try:
        built = build_gold(persons, events, opt_out_list(spark, settings), key, as_of)
    finally:
        # build_gold has materialised what it needs from them.
        events.unpersist()
        persons.unpersist()
    if set(built) != expected:
        raise RuntimeError(f"gold builders {sorted(built)} do not match gold contracts {sorted(expected)}")
    counts = {}
    for name, df in built.items():
        staging = settings.table("staging/gold", name)
        lake.replace(df, staging)
        counts[name] = lake.last_commit_rows(spark, staging)  # from the commit's log entry, no scan
        log.info("staged gold.%s: %d rows", name, counts[name])
    return counts
