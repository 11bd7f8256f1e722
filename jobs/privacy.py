"""The privacy boundary in front of gold: keyed pseudonyms and disclosure control."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

KEY_ENV = "PLACELAKE_PSEUDONYM_KEY"
MIN_KEY_LENGTH = 32


class PseudonymKeyMissing(RuntimeError):
    pass


def pseudonym_key(environ: dict[str, str] | None = None) -> str:
    """The place's HMAC key, from the environment only; never a built-in default."""
    env = os.environ if environ is None else environ
    key = env.get(KEY_ENV, "")
    if not key:
        raise PseudonymKeyMissing(
            f"{KEY_ENV} is not set: gold tables are keyed by HMAC-SHA256 with the place's secret key. "
            f"Set it to at least {MIN_KEY_LENGTH} random characters (e.g. `openssl rand -hex 32`) "
            "and keep it out of the repository."
        )
    if len(key) < MIN_KEY_LENGTH:
        raise PseudonymKeyMissing(f"{KEY_ENV} is too short: use at least {MIN_KEY_LENGTH} characters")
    return key


SHA256_BLOCK = 64  # bytes


def _hmac_sha256_pads(secret: bytes):
    """RFC 2104's inner and outer SHA-256 states for a key: each value's HMAC then costs two
    copies of them (0.7 us here, where hmac.new, which derives them again for every value, takes 1.7)."""
    if len(secret) > SHA256_BLOCK:
        secret = hashlib.sha256(secret).digest()
    padded = secret.ljust(SHA256_BLOCK, b"\0")
    return hashlib.sha256(bytes(b ^ 0x36 for b in padded)), hashlib.sha256(bytes(b ^ 0x5C for b in padded))


def hmac_hex(key: str):
    """A function from a string to its HMAC-SHA256 under key (64 lower-case hex characters); None stays None.

    For each engine's user-defined function (Spark's below, DuckDB's in jobs.curate_local): the key
    stays in the function's closure, never in a query's text or plan.
    """
    inner, outer = _hmac_sha256_pads(key.encode("utf-8"))

    def digest(text: str | None) -> str | None:
        if text is None:
            return None
        h = inner.copy()
        h.update(text.encode("utf-8"))
        o = outer.copy()
        o.update(h.digest())
        return o.hexdigest()

    return digest


def hmac_sha256(value: Column, key: str) -> Column:
    """HMAC-SHA256 (RFC 2104) of a string column, as 64 lower-case hex characters; null stays null.

    Python's hashlib in a pandas (Arrow) UDF that holds the key in its closure. Built from Spark
    expressions instead (sha2 over the key's inner and outer pads), the pads were literals in the
    query plan, and plans go to Spark's event logs and UI: anyone reading those could derive the key.
    """

    @F.pandas_udf("string")
    def hmac_sha256(values: pd.Series) -> pd.Series:
        # Derived in the Python worker, once a batch: hash states cannot be pickled into the UDF.
        return values.map(hmac_hex(key))

    return hmac_sha256(value)


def rounded_count(count: Column) -> Column:
    """Disclosure control: 0 stays 0, 1-7 are suppressed (null), the rest round to the nearest 5."""
    return (
        F.when(count.isNull(), F.lit(None))
        .when(count == 0, F.lit(0))
        .when(count <= 7, F.lit(None))
        .otherwise((F.round(count / 5) * 5).cast("long"))
        .cast("long")
    )


def rate_per_1000(numerator: Column, denominator: Column) -> Column:
    """A rate from already-rounded counts; suppressed if either count is."""
    return F.when(
        numerator.isNotNull() & denominator.isNotNull() & (denominator > 0),
        F.round(numerator * 1000.0 / denominator, 1),
    )


def disclosure_controlled(
    raw: DataFrame,
    keys: Sequence[str],
    counts: Sequence[str],
    rates: dict[str, tuple[str, str]],
    total_over: str | None = None,
    total_label: str = "ALL",
) -> DataFrame:
    """Disclosure control for an aggregate that leaves the lake.

    Every count in `counts` is published as rounded_count (1-7 suppressed,
    the rest rounded to the nearest 5). If `total_over` names a key, a total
    row per value of the other keys is appended, with that key set to
    `total_label`: its counts are sums of the *published* cells (a suppressed
    cell adds 0), never the rounded raw total, so a total cannot be differenced
    against its cells to recover a suppressed value. Each rate in `rates`
    (name -> (numerator, denominator)) is then built from published counts, so
    a rate on a suppressed count is suppressed too.
    """
    cells = raw.select(*keys, *[rounded_count(F.col(c)).alias(c) for c in counts])
    if total_over is not None:
        others = [k for k in keys if k != total_over]
        totals = cells.groupBy(*others).agg(
            *[F.sum(F.coalesce(F.col(c), F.lit(0))).cast("long").alias(c) for c in counts]
        )
        cells = cells.unionByName(totals.withColumn(total_over, F.lit(total_label)).select(*keys, *counts))
    return cells.select("*", *[rate_per_1000(F.col(num), F.col(den)).alias(name) for name, (num, den) in rates.items()])
