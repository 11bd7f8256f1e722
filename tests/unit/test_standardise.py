from datetime import date

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import standardise as std


def test_nhs_number_keeps_valid_numbers_and_nulls_the_rest_with_a_reason(spark):
    raw = spark.createDataFrame(
        [
            ("999 000 0026",),  # valid, spaced as many extracts send it
            ("999-000-0026",),  # valid, dashed
            ("9990000027",),  # fails Modulus 11
            ("99900000",),  # too short
            ("999000002X",),  # not digits
            ("",),
            (None,),
        ],
        "raw string",
    )
    result = raw.select(
        "raw", std.nhs_number(F.col("raw")).alias("nhs"), std.nhs_number_issue(F.col("raw")).alias("issue")
    )
    expected = spark.createDataFrame(
        [
            ("999 000 0026", "9990000026", None),
            ("999-000-0026", "9990000026", None),
            ("9990000027", None, "failed_modulus_11"),
            ("99900000", None, "malformed"),
            ("999000002X", None, "malformed"),
            ("", None, "missing"),
            (None, None, "missing"),
        ],
        "raw string, nhs string, issue string",
    )
    assertDataFrameEqual(result, expected)


def test_nhs_number_check_digit_edge_cases(spark):
    # 999000005: weighted sum 253 = 23 x 11, so the check digit is 0.
    # 999000000: weighted sum 243 leaves 11 - 1 = 10, so no check digit can make it valid.
    raw = spark.createDataFrame([("9990000050",), ("9990000000",), ("9990000001",)], "raw string")
    result = raw.select("raw", std.nhs_number_issue(F.col("raw")).alias("issue"))
    expected = spark.createDataFrame(
        [("9990000050", None), ("9990000000", "failed_modulus_11"), ("9990000001", "failed_modulus_11")],
        "raw string, issue string",
    )
    assertDataFrameEqual(result, expected)


def test_postcode_normalises_to_pcds_and_rejects_non_postcodes(spark):
    raw = spark.createDataFrame(
        [("ls1 4ab",), ("LS14AB",), (" SW1A  1AA ",), ("M1 1AE",), ("NOT A PC",), ("12345",), (None,)],
        "raw string",
    )
    result = raw.select("raw", std.postcode(F.col("raw")).alias("pcds"))
    expected = spark.createDataFrame(
        [
            ("ls1 4ab", "LS1 4AB"),
            ("LS14AB", "LS1 4AB"),
            (" SW1A  1AA ", "SW1A 1AA"),
            ("M1 1AE", "M1 1AE"),
            ("NOT A PC", None),
            ("12345", None),
            (None, None),
        ],
        "raw string, pcds string",
    )
    assertDataFrameEqual(result, expected)


def test_name_keeps_apostrophes_hyphens_and_accents(spark):
    raw = spark.createDataFrame(
        [("o'brien",), ("  Smith-Jones ",), ("Zoë",), ("Siobhán  Mary",), ("   ",), (None,)], "raw string"
    )
    result = raw.select("raw", std.name(F.col("raw")).alias("name"))
    expected = spark.createDataFrame(
        [
            ("o'brien", "O'BRIEN"),
            ("  Smith-Jones ", "SMITH-JONES"),
            ("Zoë", "ZOË"),
            ("Siobhán  Mary", "SIOBHÁN MARY"),
            ("   ", None),
            (None, None),
        ],
        "raw string, name string",
    )
    assertDataFrameEqual(result, expected)


def test_parse_date_rejects_impossible_dates_in_the_declared_format(spark):
    raw = spark.createDataFrame(
        [("29/02/2024",), ("31/02/2025",), ("2025-01-01",), ("01/13/2020",), (None,)], "raw string"
    )
    result = raw.select("raw", std.parse_date(F.col("raw"), "dd/MM/yyyy").alias("d"))
    expected = spark.createDataFrame(
        [
            ("29/02/2024", date(2024, 2, 29)),
            ("31/02/2025", None),
            ("2025-01-01", None),
            ("01/13/2020", None),
            (None, None),
        ],
        "raw string, d date",
    )
    assertDataFrameEqual(result, expected)


def test_sex_codes_map_to_m_f_u(spark):
    raw = spark.createDataFrame([("1",), ("2",), ("9",), ("X",), (" 2 ",), (None,)], "raw string")
    result = raw.select("raw", std.sex_from_code(F.col("raw"), {"1": "M", "2": "F"}).alias("sex"))
    expected = spark.createDataFrame(
        [("1", "M"), ("2", "F"), ("9", "U"), ("X", "U"), (" 2 ", "F"), (None, "U")], "raw string, sex string"
    )
    assertDataFrameEqual(result, expected)


def test_phonetic_key_ignores_punctuation_and_groups_similar_spellings(spark):
    raw = spark.createDataFrame(
        [("O'BRIEN",), ("OBRIEN",), ("SMITH",), ("SMYTHE",), ("JONES",), ("'-",), (None,)], "name string"
    )
    keys = [r["key"] for r in raw.select(std.phonetic_key(F.col("name")).alias("key")).collect()]
    assert keys[0] == keys[1] == "O165"
    assert keys[2] == keys[3] == "S530"
    assert keys[4] == "J520"
    assert keys[5] is None and keys[6] is None


def test_name_normalises_unicode_and_drops_titles_suffixes_and_stray_punctuation(spark):
    raw = spark.createDataFrame(
        [
            ("Zoe\u0308",),  # e + combining diaeresis: the same name as the one-character ë
            ("Mr. John",),
            ("DR  PROF  Ann",),
            ("Smith Jr.",),
            ("Henry VIII",),  # only listed suffixes go: VIII stays
            ("Robert Brown III",),
            ("O\u2019Brien",),  # a curly apostrophe
            ("Smith \u2013 Jones",),  # an en dash between spaces
            ("Dr",),  # a title alone is left as delivered
            ("Mrs",),
            ("Ann3 Marie.",),
            ("'-",),
            ("\uff2a\uff4f",),  # full-width letters
            (None,),
        ],
        "raw string",
    )
    result = raw.select("raw", std.name(F.col("raw")).alias("name"))
    expected = spark.createDataFrame(
        [
            ("Zoe\u0308", "ZOË"),
            ("Mr. John", "JOHN"),
            ("DR  PROF  Ann", "ANN"),
            ("Smith Jr.", "SMITH"),
            ("Henry VIII", "HENRY VIII"),
            ("Robert Brown III", "ROBERT BROWN"),
            ("O\u2019Brien", "O'BRIEN"),
            ("Smith \u2013 Jones", "SMITH-JONES"),
            ("Dr", "DR"),
            ("Mrs", "MRS"),
            ("Ann3 Marie.", "ANN MARIE"),
            ("'-", None),
            ("\uff2a\uff4f", "JO"),
            (None, None),
        ],
        "raw string, name string",
    )
    assertDataFrameEqual(result, expected)


def test_phonetic_key_folds_accents_so_accented_and_plain_spellings_meet(spark):
    raw = spark.createDataFrame([("SEÁN",), ("SEAN",), ("ZOË",), ("ZOE",), ("ØSTBY",), ("OSTBY",)], "name string")
    keys = [r["key"] for r in raw.select(std.phonetic_key(F.col("name")).alias("key")).collect()]
    assert keys == ["S500", "S500", "Z000", "Z000", "O231", "O231"]


def test_sex_maps_both_code_systems_and_unknown_codes_to_u(spark):
    raw = spark.createDataFrame([("1",), ("2",), ("9",), ("x",), (" f ",), ("7",), (None,)], "raw string")
    result = raw.select(
        "raw",
        std.sex(F.col("raw"), "nhs_stated_gender").alias("nhs"),
        std.sex(F.col("raw"), "letters").alias("letters"),
    )
    expected = spark.createDataFrame(
        [
            ("1", "M", "U"),
            ("2", "F", "U"),
            ("9", "U", "U"),
            ("x", "U", "U"),
            (" f ", "U", "F"),
            ("7", "U", "U"),
            (None, "U", "U"),
        ],
        "raw string, nhs string, letters string",
    )
    assertDataFrameEqual(result, expected)


def test_future_and_before_birth_dates_are_flagged_never_null(spark):
    rows = spark.createDataFrame(
        [
            (date(2026, 12, 1), date(1950, 1, 1), date(2026, 11, 1)),  # after its delivery
            (date(1949, 6, 1), date(1950, 1, 1), date(2026, 11, 1)),  # before birth
            (date(2026, 11, 1), date(2026, 11, 1), date(2026, 11, 1)),  # born and seen on the delivery day
            (date(2026, 1, 1), None, None),
        ],
        "day date, dob date, delivered date",
    )
    result = rows.select(
        std.flag_list(
            {
                "future": std.is_future(F.col("day"), F.col("delivered")),
                "before_birth": std.is_before_birth(F.col("day"), F.col("dob")),
            }
        ).alias("flags")
    )
    assert [r.flags for r in result.collect()] == ["future", "before_birth", None, None]
