"""Shared standardisers: small pure functions from Column to Column.

Each turns one messy delivered value into the common vocabulary, or into null
with a reason; none drops a row.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_NHS_WEIGHTS = range(10, 1, -1)


def nhs_number_digits(raw: Column) -> Column:
    """Delivered NHS number with the spaces and dashes people type removed."""
    return F.regexp_replace(F.trim(raw), r"[\s-]", "")


def _nhs_check_digit(digits: Column) -> Column:
    total = sum(F.substring(digits, i + 1, 1).cast("int") * w for i, w in enumerate(_NHS_WEIGHTS))
    remainder = 11 - (total % 11)
    return F.when(remainder == 11, F.lit(0)).otherwise(remainder)


def nhs_number_issue(raw: Column) -> Column:
    """Why an NHS number is unusable: missing, malformed or failed_modulus_11; null if valid."""
    digits = nhs_number_digits(raw)
    return (
        F.when(raw.isNull() | (F.trim(raw) == ""), F.lit("missing"))
        .when(~digits.rlike(r"^[0-9]{10}$"), F.lit("malformed"))
        .when(_nhs_check_digit(digits) != F.substring(digits, 10, 1).cast("int"), F.lit("failed_modulus_11"))
        .otherwise(F.lit(None).cast("string"))
    )


def nhs_number(raw: Column) -> Column:
    """The 10-digit NHS number if it passes Modulus 11, else null (the row survives, the identifier doesn't)."""
    return F.when(nhs_number_issue(raw).isNull(), nhs_number_digits(raw)).otherwise(F.lit(None).cast("string"))


_POSTCODE = r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$"


def postcode(raw: Column) -> Column:
    """A UK postcode in ONS pcds format ('LS1 4AB'), or null if it is not one."""
    compact = F.upper(F.regexp_replace(raw, r"\s", ""))
    return F.when(
        compact.rlike(_POSTCODE),
        F.concat_ws(" ", F.regexp_extract(compact, _POSTCODE, 1), F.regexp_extract(compact, _POSTCODE, 2)),
    ).otherwise(F.lit(None).cast("string"))


def name(raw: Column) -> Column:
    """Upper case, trimmed, inner whitespace collapsed; apostrophes, hyphens and accents kept."""
    cleaned = F.upper(F.trim(F.regexp_replace(raw, r"\s+", " ")))
    return F.when(cleaned == "", F.lit(None).cast("string")).otherwise(cleaned)


def parse_date(raw: Column, spark_format: str) -> Column:
    """A date in the contract's format, or null when it is impossible (31/02) or unparseable."""
    return F.try_to_date(F.trim(raw), spark_format)


def sex_from_code(raw: Column, mapping: dict[str, str]) -> Column:
    """Map a source's sex/gender code to M, F or U; anything unmapped is U."""
    expr = F.lit("U")
    for code, value in mapping.items():
        expr = F.when(F.upper(F.trim(raw)) == code, F.lit(value)).otherwise(expr)
    return expr


def phonetic_key(standardised_name: Column) -> Column:
    """A Soundex key of a standardised name, letters only, for blocking and comparing in linkage.

    'O'BRIEN' and 'OBRIEN' share a key; a null or letterless name gives null.
    """
    letters = F.regexp_replace(standardised_name, r"[^A-Z]", "")
    return F.when(F.length(letters) > 0, F.soundex(letters))
