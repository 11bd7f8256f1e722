"""Identities, not events: the identity tuples we link, and the features Splink compares.

A source repeats one person's identity on every event it sends (a GP
registration, fifty A&E attendances): collapsing identical tuples per source
first makes the cost of linkage grow with people, not with activity.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.standardise import phonetic_key

# address: only data engineers' own files carry one (silver sources stop at postcode).
IDENTITY_FIELDS = ["nhs_number", "family_name", "given_name", "date_of_birth", "sex", "postcode", "address"]

# Identity field -> the feature columns blocking rules may use for it (the field's comparison has the same name).
FEATURE_COLUMNS = {
    "given_name": ["given_name", "given_canon", "given_phon"],
    "family_name": ["family_name", "family_phon"],
    "date_of_birth": ["dob", "dob_year", "dob_month", "dob_day"],
    "sex": ["sex"],
    "postcode": ["postcode"],
    "nhs_number": ["nhs_number"],
    "address": ["address"],
}

# Splink compares strings; accents vary between systems (ZOË, ZOE), so both sides lose them.
_ACCENTED = "ÀÁÂÃÄÅĄÇĆČĎÈÉÊËĘĚÌÍÎÏŁÑŃŇÒÓÔÕÖØŐŘŚŠŤÙÚÛÜŮŰÝŹŻŽ"
_PLAIN = "AAAAAAACCCDEEEEEEIIIILNNNOOOOOOORSSTUUUUUUYZZZ"


def identity_id(source: F.Column) -> F.Column:
    """A content hash of (source, identity tuple): equal tuples in one source share it, nulls included."""
    return F.substring(F.sha2(F.to_json(F.struct(source.alias("s"), *IDENTITY_FIELDS)), 256), 1, 24)


def record_identities(records: DataFrame) -> DataFrame:
    """(source, record_id, identity fields, ...) -> (source, record_id, identity_id)."""
    return records.select("source", "record_id", identity_id(F.col("source")).alias("identity_id"))


def identities(records: DataFrame) -> DataFrame:
    """One row per distinct identity tuple per source, with how many records carry it."""
    return (
        records.withColumn("identity_id", identity_id(F.col("source")))
        .groupBy("identity_id", "source", *IDENTITY_FIELDS)
        .agg(F.count("*").alias("records"))
    )


def _plain(name: F.Column) -> F.Column:
    """Upper case letters and single spaces only: accents gone, hyphens become spaces, apostrophes vanish."""
    text = F.translate(F.upper(name), _ACCENTED, _PLAIN)
    text = F.regexp_replace(F.regexp_replace(text, r"['’.]", ""), r"[^A-Z]+", " ")
    text = F.trim(text)
    return F.when(F.length(text) > 0, text)


def nickname_forms(nicknames: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Short form -> the formal names it can stand for (PAT -> PATRICIA, PATRICK)."""
    forms: dict[str, set[str]] = {}
    for formal, shorts in nicknames.items():
        for short in shorts:
            forms.setdefault(short, set()).add(formal)
    return {short: sorted(formal) for short, formal in sorted(forms.items())}


def identity_features(nodes: DataFrame, nicknames: dict[str, tuple[str, ...]], keep: tuple[str, ...] = ()) -> DataFrame:
    """Identity nodes -> the columns the Splink model blocks and compares on (and the nodes' columns in keep).

    given_forms holds the first given name and the formal names it is a short
    form of, so BILL and WILLIAM overlap; given_canon is one of them, for blocking.
    """
    forms = nickname_forms(nicknames)
    lookup = F.create_map(*[F.lit(x) for short, formal in forms.items() for x in (short, F.array(*map(F.lit, formal)))])
    empty = F.array().cast("array<string>")
    given = _plain(F.col("given_name"))
    given_first = F.split(given, " ").getItem(0)
    family = _plain(F.col("family_name"))
    formal = F.coalesce(lookup[given_first], empty) if forms else empty
    return nodes.select(
        F.col("identity_id").alias("unique_id"),
        "source",
        "nhs_number",
        given_first.alias("given_name"),
        family.alias("family_name"),
        F.array_union(F.array(given_first), formal).alias("given_forms"),
        F.coalesce(F.get(formal, 0), given_first).alias("given_canon"),
        phonetic_key(given_first).alias("given_phon"),
        phonetic_key(family).alias("family_phon"),
        # A hyphenated or double-barrelled name meets either of its parts.
        F.split(family, " ").alias("family_tokens"),
        F.date_format("date_of_birth", "yyyy-MM-dd").alias("dob"),
        F.year("date_of_birth").alias("dob_year"),
        F.month("date_of_birth").alias("dob_month"),
        F.dayofmonth("date_of_birth").alias("dob_day"),
        F.when(F.col("sex").isin("M", "F"), F.col("sex")).alias("sex"),
        F.regexp_replace(F.upper("postcode"), r"\s+", " ").alias("postcode"),
        F.regexp_extract(F.upper("postcode"), r"^([A-Z]{1,2}[0-9][A-Z0-9]? [0-9])", 1).alias("postcode_sector"),
        F.regexp_extract(F.upper("postcode"), r"^([A-Z]{1,2}[0-9][A-Z0-9]?)", 1).alias("postcode_district"),
        _plain(F.col("address")).alias("address"),
        *keep,
    )


def nhs_groups(nodes: DataFrame) -> DataFrame:
    """The deterministic pass: identity nodes that share a valid NHS number and agree on date of birth.

    The group's date of birth is the one most of its records carry; a node
    with another date of birth (a wrong but valid NHS number, typically) is
    left to the probabilistic pass. Returns (identity_id, nhs_anchor) for
    nodes in groups of two or more, nhs_anchor being the group's smallest
    consistent identity_id.
    """
    # One shuffle: every window below is over the number, or the number and a date of birth.
    with_nhs = nodes.where(F.col("nhs_number").isNotNull()).repartition("nhs_number")
    number = Window.partitionBy("nhs_number")
    dob = F.col("date_of_birth")
    votes = with_nhs.withColumn("votes", F.sum("records").over(Window.partitionBy("nhs_number", "date_of_birth")))
    modal_dob = F.max_by(dob, F.when(dob.isNotNull(), F.struct("votes", dob.cast("string")))).over(number)
    consistent = votes.withColumn("modal_dob", modal_dob).where(
        dob.isNull() | F.col("modal_dob").isNull() | (dob == F.col("modal_dob"))
    )
    return (
        consistent.select(
            "identity_id",
            F.min("identity_id").over(number).alias("nhs_anchor"),
            F.count("*").over(number).alias("nodes"),
        )
        .where(F.col("nodes") > 1)
        .select("identity_id", "nhs_anchor")
    )
