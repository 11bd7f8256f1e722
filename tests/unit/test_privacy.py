import hashlib
import hmac
import random

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.privacy import (
    PseudonymKeyMissing,
    disclosure_controlled,
    hmac_sha256,
    pseudonym_key,
    rate_per_1000,
    rounded_count,
)


@pytest.mark.parametrize("key", ["k" * 32, "a much longer key " * 8, "ключ-с-юникодом-" * 3])
def test_hmac_matches_pythons_hmac(spark, key):
    values = ["P0001", "O'Brien", "Zoë", ""]
    frame = spark.createDataFrame([(v,) for v in [*values, None]], "v string")
    got = {r.v: r.h for r in frame.select("v", hmac_sha256(F.col("v"), key).alias("h")).collect()}
    for v in values:
        assert got[v] == hmac.new(key.encode(), v.encode(), hashlib.sha256).hexdigest()
    assert got[None] is None


def test_nothing_derived_from_the_key_is_in_the_query_plan(spark):
    """Plans are written to Spark's event logs and shown in its UI: the key, or its HMAC pads, must not be."""
    key = "k3y-" * 8
    padded = key.encode().ljust(64, b"\0")
    secrets = [key, key.encode().hex(), bytes(b ^ 0x36 for b in padded).hex(), bytes(b ^ 0x5C for b in padded).hex()]
    frame = spark.createDataFrame([("P0001",)], "v string").select(hmac_sha256(F.col("v"), key).alias("h"))
    frame.collect()
    plans = frame._jdf.queryExecution().toString().lower()
    assert not [s for s in secrets if s.lower() in plans or s.lower()[:16] in plans]


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


def _random_count(rng: random.Random) -> int:
    # Mostly the small counts disclosure control is about, around its 7/8 and rounding edges; some large.
    kind = rng.random()
    if kind < 0.15:
        return 0
    if kind < 0.6:
        return rng.randint(1, 12)
    if kind < 0.9:
        return rng.randint(13, 200)
    return rng.randint(201, 100_000)


def test_disclosure_control_holds_on_random_tables(spark):
    """Property: over 200 seeded random tables, every published cell, total and rate obeys the rules."""
    rng = random.Random(20261126)
    raw_rows = []
    for table in range(200):
        for cell in range(rng.randint(1, 8)):
            raw_rows.append((table, f"c{cell}", _random_count(rng), _random_count(rng), _random_count(rng)))
    raw = spark.createDataFrame(raw_rows, "table int, cell string, a long, b long, residents long")
    published = disclosure_controlled(
        raw,
        ["table", "cell"],
        ["a", "b", "residents"],
        {"a_per_1000": ("a", "residents"), "b_per_1000": ("b", "residents")},
        total_over="cell",
    ).collect()

    truth = {(t, c): {"a": a, "b": b, "residents": r} for t, c, a, b, r in raw_rows}
    cells = {(r.table, r.cell): r for r in published if r.cell != "ALL"}
    totals = {r.table: r for r in published if r.cell == "ALL"}
    assert set(cells) == set(truth) and set(totals) == {t for t, _ in truth}
    for key, row in cells.items():
        for column, true in truth[key].items():
            shown = row[column]
            if 1 <= true <= 7:
                assert shown is None, (key, column, true)
            elif true == 0:
                assert shown == 0
            else:
                assert shown % 5 == 0 and shown >= 10 and abs(shown - true) <= 2, (key, column, true, shown)
    for table, total in totals.items():
        members = [row for (t, _), row in cells.items() if t == table]
        for column in ("a", "b", "residents"):
            # Totals come from the published cells, a suppressed cell adding nothing.
            assert total[column] == sum(row[column] or 0 for row in members)
            assert not 1 <= total[column] <= 7
            assert total[column] % 5 == 0
    for row in [*cells.values(), *totals.values()]:
        for rate, count in (("a_per_1000", "a"), ("b_per_1000", "b")):
            if row[count] is None or row["residents"] is None or row["residents"] == 0:
                assert row[rate] is None, (row, rate)
            else:
                # Rounded to one decimal (Spark rounds half up): within 0.05 of the rate of the published counts.
                assert abs(row[rate] - row[count] * 1000 / row["residents"]) <= 0.05 + 1e-9, (row, rate)
