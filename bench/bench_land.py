"""Landing throughput against the I/O floor: a plain Spark CSV -> Parquet copy
of the same files, in the same JVM, in the same run.

    .venv/bin/python bench/bench_land.py [--people 100000] [--rounds 3] [--profile]
        [--place PLACELAKE_HOME]   # land the files of a place generated before (skips generating)

Generates a place once, then alternates rounds of (plain copy, landing into a
fresh lake) so both see the same machine load; the figure is the ratio of the
medians. Writes bench/results/land-<timestamp>.json. A harness, not a test.
Target (issue #4): landing <= 1.5x the plain copy.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs import fs, land  # noqa: E402
from jobs.config import Settings  # noqa: E402
from jobs.contracts import Contract, source_contracts  # noqa: E402
from jobs.generate import generate_place  # noqa: E402
from jobs.spark import get_spark  # noqa: E402


def plain_copy(spark, landing: str, out: str, contracts: tuple[Contract, ...]) -> None:
    """What any Spark job pays to read these files and write them as Parquet: the floor."""
    for contract in contracts:
        paths = [f.path for f in fs.list_files(f"{landing}/{contract.name}")]
        if not paths:
            continue
        fmt = contract.format
        reader = spark.read.schema(contract.raw_schema())
        if fmt.get("type", "csv") == "jsonl":
            frame = reader.json(paths)
        else:
            frame = (
                reader.option("header", fmt.get("header", True))
                .option("sep", fmt["delimiter"])
                .option("quote", fmt.get("quote", '"'))
                .option("encoding", fmt.get("encoding", "utf-8"))
                .csv(paths)
            )
        frame.write.mode("overwrite").parquet(f"{out}/{contract.name}")


def profiled(names: list[str], totals: dict[str, float]) -> None:
    """Wrap landing's phases to add up their wall time (nested phases overlap)."""
    from jobs import lake

    for module, name in [(land, n) for n in names if hasattr(land, n)] + [(lake, "append_once")]:
        original = getattr(module, name)

        @functools.wraps(original)
        def timed(*args, _original=original, _name=name, **kwargs):
            started = time.monotonic()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_name] = totals.get(_name, 0.0) + time.monotonic() - started

        setattr(module, name, timed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=int(os.environ.get("PLACELAKE_BENCH_PEOPLE", "100000")))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("PLACELAKE_BENCH_ROUNDS", "3")))
    parser.add_argument("--profile", action="store_true", help="also add up time per landing phase")
    parser.add_argument("--place", help="PLACELAKE_HOME of a place generated before: its landing/ is landed")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="placelake-bench-land-"))
    try:
        if args.place:
            # --people then only labels the result: the place is what it was generated as.
            source = Settings.from_env({**os.environ, "PLACELAKE_HOME": args.place})
        else:
            source = Settings.from_env({**os.environ, "PLACELAKE_HOME": str(work / "source")})
            started = time.monotonic()
            written = generate_place(source, people=args.people)
            print(f"generated {args.people} people ({sum(written.values())} rows) in {time.monotonic() - started:.0f}s")
        contracts = source_contracts()
        files = fs.list_files(source.landing)
        spark = get_spark(source, app_name="placelake-bench-land")

        # Warm the JVM on a small place first: class loading and Delta's first
        # commit are not landing's throughput.
        warm = Settings.from_env({**os.environ, "PLACELAKE_HOME": str(work / "warm")})
        generate_place(warm, people=200)
        plain_copy(spark, warm.landing, str(work / "warm-copy"), contracts)
        land.land_all(spark, warm, batch_id="warm-up")

        phases: dict[str, float] = {}
        if args.profile:
            profiled(
                ["scan_file", "recorded_files", "_committed_before", "survey_records", "_land_parsed", "_record"],
                phases,
            )
        copy_s, land_s, rows = [], [], 0
        for r in range(args.rounds):
            started = time.monotonic()
            plain_copy(spark, source.landing, str(work / f"copy-{r}"), contracts)
            copy_s.append(time.monotonic() - started)

            lake_home = Settings.from_env({**os.environ, "PLACELAKE_HOME": str(work / f"lake-{r}")})
            shutil.copytree(source.landing, lake_home.landing)
            started = time.monotonic()
            outcomes = land.land_all(spark, lake_home, batch_id=f"bench-{r}")
            land_s.append(time.monotonic() - started)
            rows = sum(o.rows_in_file for o in outcomes if o.status == "landed")
            print(f"round {r + 1}: plain copy {copy_s[-1]:.2f}s, landing {land_s[-1]:.2f}s ({rows} rows)")

        copy_med, land_med = statistics.median(copy_s), statistics.median(land_s)
        result = {
            "bench": "land",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
            ).stdout.strip(),
            "people": args.people,
            "place": args.place,
            "files": len(files),
            "bytes": sum(f.size for f in files),
            "rows": rows,
            "rounds": args.rounds,
            "spark_master": source.spark_master,
            "cores": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "plain_copy_seconds": [round(s, 3) for s in copy_s],
            "landing_seconds": [round(s, 3) for s in land_s],
            "plain_copy_median_s": round(copy_med, 3),
            "landing_median_s": round(land_med, 3),
            "landing_rows_per_s": round(rows / land_med),
            "plain_copy_rows_per_s": round(rows / copy_med),
            "ratio": round(land_med / copy_med, 2),
            "target_ratio": 1.5,
        }
        if args.profile:
            result["landing_phase_seconds_total"] = {k: round(v, 2) for k, v in sorted(phases.items())}
        out = REPO / "bench" / "results" / f"land-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(
            f"landing {land_med:.2f}s vs plain copy {copy_med:.2f}s (medians of {args.rounds}): "
            f"ratio {result['ratio']} (target <= 1.5); {rows} rows, {result['landing_rows_per_s']} rows/s; "
            f"load average {result['load_average_1m']:.1f} on {result['cores']} cores"
        )
        print(f"wrote {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
