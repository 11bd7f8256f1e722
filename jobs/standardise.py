"""Shared standardisers: small pure functions from Column to Column.

Each turns one messy delivered value into the common vocabulary, or into null
with a reason; none drops a row.
"""

from __future__ import annotations

import unicodedata

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs import codes

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


def _nfkc(raw: Column) -> Column:
    """Unicode NFKC: an 'e' plus a combining accent equals the one-character accented letter, and
    full-width or ligature letters their plain forms, before names are compared.

    Spark has no normalisation function; ICU4J (on Spark's own classpath, for collations) has, and
    `reflect` calls it in the JVM: no Python worker, no UDF.
    """
    composed = F.call_function("reflect", F.lit("com.ibm.icu.text.Normalizer"), F.lit("compose"), raw, F.lit(True))
    return F.when(raw.isNotNull(), composed)  # ICU throws on null


# Titles and generational suffixes people type into name fields; removed only when another word
# remains, so a family name field holding just 'DR' is left as delivered.
TITLES = ("MR", "MRS", "MS", "MISS", "MX", "MASTER", "DR", "PROF", "REV", "SIR", "DAME", "LADY", "LORD", "FR")
SUFFIXES = ("JR", "JNR", "SR", "SNR", "II", "III", "IV")
_TITLE = r"^((" + "|".join(TITLES) + r")\s+)+(?=\S)"
_SUFFIX = r"(?<=\S)(\s+(" + "|".join(SUFFIXES) + r"))+$"
# Word processors curl apostrophes and turn hyphens into dashes: one apostrophe, one hyphen.
_APOSTROPHES = "\u2019\u2018\u02bc\u0060\u00b4"
_DASHES = "\u2010\u2011\u2012\u2013\u2014"


def name(raw: Column) -> Column:
    """A person's name as linkage compares it.

    Unicode-normalised (NFKC), upper case, titles (MR, DR...) and suffixes (JR, III...) removed,
    whitespace collapsed; letters, accents, apostrophes and hyphens kept (O'BRIEN, SMITH-JONES, ZOË);
    digits and other punctuation dropped; null when nothing is left.
    """
    text = F.upper(_nfkc(raw))
    text = F.translate(text, _APOSTROPHES + _DASHES, "'" * len(_APOSTROPHES) + "-" * len(_DASHES))
    text = F.regexp_replace(text, r"[^\p{L}\p{M}' -]", " ")
    text = F.trim(F.regexp_replace(text, r"\s+", " "))
    text = F.regexp_replace(text, r"\s*-\s*", "-")
    text = F.regexp_replace(F.regexp_replace(text, _TITLE, ""), _SUFFIX, "")
    text = F.regexp_replace(text, r"^['\s-]+|['\s-]+$", "")
    return F.nullif(text, F.lit(""))


def _accent_folding() -> tuple[str, str]:
    """Accented capitals and their plain letters, for F.translate (no Python in the query)."""
    accented, plain = [], []
    for point in range(0xC0, 0x250):
        char = chr(point)
        base = unicodedata.normalize("NFD", char)[0]
        if char.isupper() and base != char and "A" <= base <= "Z":
            accented.append(char)
            plain.append(base)
    # Letters with a stroke have no decomposition.
    for char, base in (("\u00d8", "O"), ("\u0141", "L"), ("\u0110", "D"), ("\u0126", "H")):
        accented.append(char)
        plain.append(base)
    return "".join(accented), "".join(plain)


_ACCENTED, _PLAIN = _accent_folding()


def parse_date(raw: Column, spark_format: str) -> Column:
    """A date in the contract's format, or null when it is impossible (31/02) or unparseable."""
    return F.try_to_date(F.trim(raw), spark_format)


def is_future(day: Column, as_of: Column) -> Column:
    """True when a date lies after as_of (for an extract, its delivery date: deterministic, unlike today)."""
    return F.coalesce(day > as_of, F.lit(False))


def is_before_birth(day: Column, date_of_birth: Column) -> Column:
    """True when a date precedes the person's birth: a wrong date of birth or a wrong event date."""
    return F.coalesce(day < date_of_birth, F.lit(False))


def flag_list(flags: dict[str, Column]) -> Column:
    """The names of the flags that hold, ';'-separated in the order given; null when none does.

    Flags mark doubtful values that are kept (a future date, an unknown code): a reason to look, not to drop.
    """
    held = [F.when(condition, F.lit(flag)) for flag, condition in flags.items()]
    joined = F.concat_ws(";", *held) if held else F.lit("")
    return F.nullif(joined, F.lit(""))


def sex_from_code(raw: Column, mapping: dict[str, str]) -> Column:
    """Map a source's sex/gender code to M, F or U; anything unmapped is U."""
    expr = F.lit("U")
    for code, value in mapping.items():
        expr = F.when(F.upper(F.trim(raw)) == code, F.lit(value)).otherwise(expr)
    return expr


def sex(raw: Column, system: str) -> Column:
    """M, F or U through the national code list (schemas/codes/sex.yaml); an unknown or missing code is U."""
    return F.coalesce(codes.lookup(raw, "sex", system), F.lit("U"))


def phonetic_key(standardised_name: Column) -> Column:
    """A Soundex key of a standardised name, letters only, for blocking and comparing in linkage.

    'O'BRIEN' and 'OBRIEN' share a key, and so do 'SEÁN' and 'SEAN' (accents folded first);
    a null or letterless name gives null.
    """
    # A combining accent (in a name not normalised) goes with the other non-letters.
    letters = F.regexp_replace(F.translate(standardised_name, _ACCENTED, _PLAIN), r"[^A-Z]", "")
    return F.when(F.length(letters) > 0, F.soundex(letters))
