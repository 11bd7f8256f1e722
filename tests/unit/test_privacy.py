import hashlib
import hmac

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.privacy import PseudonymKeyMissing, hmac_sha256, pseudonym_key, rate_per_1000, rounded_count


@pytest.mark.parametrize("key", ["k" * 32, "a much longer key " * 8, "ключ-с-юникодом-" * 3])
def test_hmac_matches_pythons_hmac(spark, key):
    values = ["P0001", "O'Brien", "Zoë", ""]
    frame = spark.createDataFrame([(v,) for v in values], "v string")
    got = {r.v: r.h for r in frame.select("v", hmac_sha256(F.col("v"), key).alias("h")).collect()}
    for v in values:
        assert got[v] == hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest()


def test_missing_or_short_key_is_a_clear_error_not_a_default():
    with pytest.raises(PseudonymKeyMissing, match="PLACELAKE_PSEUDONYM_KEY is not set"):
        pseudonym_key({})
    with pytest.raises(PseudonymKeyMissing, match="too short"):
        pseudonym_key({"PLACELAKE_PSEUDONYM_KEY": "short"})


def test_counts_of_one_to_seven_are_suppressed_and_the_rest_rounded_to_five(spark):
    frame = spark.createDataFrame([(0,), (1,), (7,), (8,), (12,), (13,), (1002,), (None,)], "n long")
    result = frame.select("n", rounded_count(F.col("n")).alias("published"))
    expected = spark.createDataFrame(
        [(0, 0), (1, None), (7, None), (8, 10), (12, 10), (13, 15), (1002, 1000), (None, None)],
        "n long, published long",
    )
    assertDataFrameEqual(result, expected)


def test_a_rate_on_a_suppressed_count_is_suppressed(spark):
    frame = spark.createDataFrame([(None, 100), (10, 200), (10, None), (0, 0)], "num long, den long")
    result = frame.select("num", "den", rate_per_1000(F.col("num"), F.col("den")).alias("rate"))
    expected = spark.createDataFrame(
        [(None, 100, None), (10, 200, 50.0), (10, None, None), (0, 0, None)], "num long, den long, rate double"
    )
    assertDataFrameEqual(result, expected)
