"""Benchmark: linkage accuracy on a generated place, and linkage cost at scale.

Issue #6's targets: pairwise F1 >= 0.99 and precision >= 0.995 on a generated
place; 1,000,000 identity records linked in under 5 minutes on this machine,
within 3x of Splink's own DuckDB run of the same records and model, peak
memory under 12 GiB; a 1% delivery linked for under 10% of a full link.

1. accuracy: generate a place, land, clean and link it (no Airflow); the link
   stage's own metrics compare against the generator's truth;
2. scale: N synthetic identity records (people repeated with the noise real
   feeds carry), linked by jobs.link.link_records on Spark, then the same
   records and the same comparisons and blocking by Splink on DuckDB; time and
   peak resident memory (the process and its children: Spark's JVM) of each;
3. incremental: 1% new records on top of the Spark link, scored against its model.

Prints and writes bench/results/link-<timestamp>.json.

    .venv/bin/python bench/bench_link.py [--people 2000] [--records 100000] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"

GIVEN = [
    "JAMES", "MARY", "JOHN", "PATRICIA", "ROBERT", "JENNIFER", "MICHAEL", "LINDA", "WILLIAM", "ELIZABETH",
    "DAVID", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH", "CHARLES", "KAREN",
    "MOHAMMED", "AISHA", "OLUWASEUN", "PRIYA", "KRZYSZTOF", "SIOBHAN", "DECLAN", "FATIMA", "GARETH", "MEGAN",
    "CHLOE", "OLIVER", "AMELIA", "HARRY", "ISLA", "JACK", "POPPY", "NOAH", "IVY", "LEO",
]  # fmt: skip
FAMILY = [
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON", "WRIGHT",
    "THOMPSON", "EVANS", "WALKER", "WHITE", "ROBERTS", "GREEN", "HALL", "WOOD", "JACKSON", "CLARKE",
    "KHAN", "PATEL", "BEGUM", "HUSSAIN", "NOWAK", "KOWALSKI", "OKAFOR", "ADEYEMI", "OBRIEN", "MURPHY",
    "NGUYEN", "WONG", "ALI", "AHMED", "SINGH", "KAUR", "CAMPBELL", "STEWART", "MORRIS", "COOK",
]  # fmt: skip
NICK = {"WILLIAM": "BILL", "ROBERT": "BOB", "ELIZABETH": "LIZ", "JAMES": "JIM", "MICHAEL": "MIKE", "THOMAS": "TOM"}


class PeakMemory:
    """Peak resident memory of this process and its children (Spark's JVM), sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _nhs(rng: random.Random) -> str:
    while True:
        digits = "999" + "".join(rng.choice("0123456789") for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return digits + str(check)


def synthetic_records(n: int, seed: int, prefix: str = "") -> list[tuple]:
    """n identity records of about n/2 people, in three sources, with typos, nicknames, swaps and gaps."""
    rng = random.Random(seed)
    rows: list[tuple] = []
    person = 0
    while len(rows) < n:
        person += 1
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        born = date(1925, 1, 1) + timedelta(days=rng.randrange(365 * 95))
        sex = rng.choice("MF")
        postcode = f"LS{rng.randrange(1, 30)} {rng.randrange(10)}{rng.choice('ABDEFG')}{rng.choice('HJLNPQ')}"
        nhs = _nhs(rng)
        for copy in range(rng.choice([1, 1, 2, 2, 3])):
            source = ["gp", "hospital", "council"][copy % 3]
            g, f, b, pc = given, family, born, postcode
            if rng.random() < 0.03:
                i = rng.randrange(len(g))
                g = g[:i] + rng.choice("AEIOUNRST") + g[i + 1 :]
            if g in NICK and rng.random() < 0.05:
                g = NICK[g]
            if rng.random() < 0.1:
                f = f + "-" + rng.choice(FAMILY)
            if b.day <= 12 and rng.random() < 0.01:
                b = date(b.year, b.day, b.month)
            if rng.random() < 0.1:
                pc = None
            number = None if source == "council" and rng.random() < 0.5 else nhs
            rows.append(
                (source, f"{prefix}{source[0]}{person}-{copy}", number, f, g, b, sex, pc, None, f"T{prefix}{person}")
            )
    return rows[:n]


SCHEMA = (
    "source string, record_id string, nhs_number string, family_name string, given_name string, "
    "date_of_birth date, sex string, postcode string, address string, truth_id string"
)


def accuracy(people: int) -> dict:
    from jobs import clean, land, link
    from jobs.config import Settings
    from jobs.generate import generate_place
    from jobs.spark import get_spark

    home = tempfile.mkdtemp(prefix="placelake-bench-link-")
    settings = Settings.from_env({**os.environ, "PLACELAKE_HOME": home})
    spark = get_spark(settings, app_name="bench-link")
    generate_place(settings, people=people)
    land.land_all(spark, settings, batch_id="bench")
    clean.clean_all(spark, settings, batch_id="bench")
    started = time.monotonic()
    summary = link.link_all(spark, settings, run_id="bench")
    return {"people": people, "link_s": round(time.monotonic() - started, 1), **summary}


def spark_scale(n: int) -> dict:
    from pyspark.sql import functions as F

    from jobs.config import Settings
    from jobs.link import link_records
    from jobs.linkage.config import LinkageConfig
    from jobs.spark import get_spark

    home = tempfile.mkdtemp(prefix="placelake-bench-scale-")
    settings = Settings.from_env({**os.environ, "PLACELAKE_HOME": home})
    spark = get_spark(settings, app_name="bench-link-scale")
    config = LinkageConfig.load()
    if n >= 200_000:
        config = type(config)(**{**config.__dict__, "break_lineage": "parquet"})
    records = spark.createDataFrame(synthetic_records(n, seed=1), SCHEMA).drop("truth_id").persist()
    records.count()
    with PeakMemory() as memory:
        started = time.monotonic()
        full = link_records(spark, records, config, settings.path("tmp", "full"), "bench-full")
        persons = full.links.select("person_id").distinct().count()
        full_s = time.monotonic() - started
    previous = full.links.localCheckpoint()
    extra = spark.createDataFrame(synthetic_records(max(n // 100, 1), seed=2, prefix="new"), SCHEMA).drop("truth_id")
    delivered = records.unionByName(extra)
    started = time.monotonic()
    incremental = link_records(
        spark,
        delivered,
        config,
        settings.path("tmp", "incr"),
        "bench-incr",
        previous=previous,
        previous_model=full.model,
    )
    incremental.links.agg(F.count("*")).first()
    incremental_s = time.monotonic() - started
    return {
        "spark_full_s": round(full_s, 1),
        "spark_peak_rss_gib": round(memory.peak / 2**30, 2),
        "identities": full.counts["identities"],
        "persons": persons,
        "incremental_mode": incremental.mode,
        "incremental_new_identities": incremental.counts["new_identities"],
        "incremental_s": round(incremental_s, 1),
        "incremental_over_full": round(incremental_s / full_s, 3),
        "features": _features_pandas(spark, records, config),
    }


def _features_pandas(spark, records, config):
    """The identity features the Spark link compared, for DuckDB to link the same rows."""
    from jobs.linkage.features import identities, identity_features

    return identity_features(identities(records), config.nicknames).toPandas()


def duckdb_scale(features) -> dict:
    """Splink's own DuckDB run: the same identities, comparisons, blocking, training and threshold."""
    from splink import DuckDBAPI, Linker
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    from jobs.link import SILVER_FEATURES, available_features
    from jobs.linkage import model
    from jobs.linkage.config import LinkageConfig

    config = LinkageConfig.load()
    available = available_features(SILVER_FEATURES)
    with PeakMemory() as memory:
        started = time.monotonic()
        db_api = DuckDBAPI()
        linker = Linker(db_api.register(features), model.splink_settings(config, available, dialect="duckdb"))
        model.train(linker, config, available)
        predictions = linker.inference.predict(threshold_match_probability=config.review_floor)
        clusters = cluster_pairwise_predictions_at_threshold(
            features[["unique_id"]],
            predictions.as_pandas_dataframe()[["unique_id_l", "unique_id_r", "match_probability"]],
            db_api,
            node_id_column_name="unique_id",
            threshold_match_probability=config.match_threshold,
        ).as_pandas_dataframe()
        duckdb_s = time.monotonic() - started
    return {
        "duckdb_s": round(duckdb_s, 1),
        "duckdb_peak_rss_gib": round(memory.peak / 2**30, 2),
        "duckdb_persons": int(clusters["cluster_id"].nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=int(os.environ.get("BENCH_LINK_PEOPLE", "2000")))
    parser.add_argument("--records", type=int, default=int(os.environ.get("BENCH_LINK_RECORDS", "100000")))
    parser.add_argument("--skip-accuracy", action="store_true", help="only the scale and incremental runs")
    args = parser.parse_args()
    os.environ.setdefault("PLACELAKE_PSEUDONYM_KEY", secrets.token_hex(32))  # synthetic data, throwaway key

    result: dict = {"benchmark": "link", "at": datetime.now(UTC).isoformat(timespec="seconds"), "records": args.records}
    if not args.skip_accuracy:
        result["accuracy"] = accuracy(args.people)
        print(f"accuracy on a generated place of {args.people}: {json.dumps(result['accuracy'])}")
    scale = spark_scale(args.records)
    features = scale.pop("features")
    result["spark"] = scale
    print(f"spark, {args.records} records: {json.dumps(scale)}")
    result["duckdb"] = duckdb_scale(features)
    print(f"duckdb, same identities: {json.dumps(result['duckdb'])}")
    result["spark_over_duckdb"] = round(scale["spark_full_s"] / max(result["duckdb"]["duckdb_s"], 0.1), 2)
    print(f"spark/duckdb time: {result['spark_over_duckdb']}x; incremental/full: {scale['incremental_over_full']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"link-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
