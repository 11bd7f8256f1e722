from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs import codes
from jobs.contracts import source_contracts


def test_national_lists_hold_every_code_the_source_contracts_allow():
    # A source contract allowing a code the national list lacks would flag valid data as unknown.
    uses = {
        "admission_method": ("admission_method", "nhs_dd"),
        "ethnic_category": ("ethnicity", "ons_2021"),
        "ethnicity": ("ethnicity", "ons_2021"),
    }
    discharge = {"apc_episodes": "nhs_dd", "ae_attendances": "snomed_ecds"}
    for contract in source_contracts():
        for col in contract.columns:
            if col.name in uses:
                list_name, system = uses[col.name]
            elif col.name == "discharge_destination":
                list_name, system = "discharge_destination", discharge[contract.name]
            else:
                continue
            missing = set(col.allowed) - set(codes.code_list(list_name).system(system))
            assert not missing, (contract.name, col.name, missing)


def test_lookup_maps_codes_and_leaves_unknown_codes_null_but_flaggable(spark):
    raw = spark.createDataFrame([("21",), (" 11 ",), ("2a",), ("99",), ("77",), ("",), (None,)], "raw string")
    result = raw.select(
        "raw",
        codes.lookup(F.col("raw"), "admission_method", "nhs_dd", "group").alias("grp"),
        codes.is_unknown(F.col("raw"), "admission_method", "nhs_dd").alias("unknown"),
        codes.is_not_known(F.col("raw"), "admission_method", "nhs_dd").alias("not_known"),
    )
    expected = spark.createDataFrame(
        [
            ("21", "EMERGENCY", False, False),
            (" 11 ", "ELECTIVE", False, False),
            ("2a", "EMERGENCY", False, False),
            ("99", "OTHER", False, True),  # the list's own 'not known': valid, but a default
            ("77", None, True, False),
            ("", None, False, False),  # absent is not unknown
            (None, None, False, False),
        ],
        "raw string, grp string, unknown boolean, not_known boolean",
    )
    assertDataFrameEqual(result, expected)


def test_nhs_2001_ethnic_letters_map_onto_ons_2021(spark):
    raw = spark.createDataFrame([("A",), ("k",), ("Z",), ("Q",)], "raw string")
    result = raw.select("raw", codes.lookup(F.col("raw"), "ethnicity", "nhs_2001").alias("ons"))
    expected = spark.createDataFrame([("A", "D1"), ("k", "A1"), ("Z", "Z"), ("Q", None)], "raw string, ons string")
    assertDataFrameEqual(result, expected)


def test_icd10_chapter_from_the_first_three_characters(spark):
    raw = spark.createDataFrame(
        [
            ("S7200",),  # five characters, as SUS sends it
            ("s72.0",),  # dotted, lower case
            ("T391",),  # XIX spans two letters
            ("D48X",),  # the last category of II
            ("D50",),  # the first of III
            ("H60",),  # ears, not eyes
            ("W19X",),
            ("J45X",),
            ("I214",),
            ("O800",),
            ("Z511",),
            ("A00",),  # the very first category
            ("U85",),  # the last of XXII
            ("D49",),  # in no chapter
            ("U86",),  # past XXII's last
            ("Z",),
            ("bad",),
            ("12345",),
            (None,),
        ],
        "raw string",
    )
    result = raw.select("raw", codes.icd10_chapter(F.col("raw")).alias("chapter"))
    expected = spark.createDataFrame(
        [
            ("S7200", "XIX"),
            ("s72.0", "XIX"),
            ("T391", "XIX"),
            ("D48X", "II"),
            ("D50", "III"),
            ("H60", "VIII"),
            ("W19X", "XX"),
            ("J45X", "X"),
            ("I214", "IX"),
            ("O800", "XV"),
            ("Z511", "XXI"),
            ("A00", "I"),
            ("U85", "XXII"),
            ("D49", None),
            ("U86", None),
            ("Z", None),
            ("bad", None),
            ("12345", None),
            (None, None),
        ],
        "raw string, chapter string",
    )
    assertDataFrameEqual(result, expected)
