"""The whole pipeline at increasing sizes: per stage rows, seconds, rows/s and peak memory.

    .venv/bin/python bench/bench_pipeline.py [--sizes 10000,100000,1000000] [--keep DIR]
    PLACELAKE_BENCH_SIZES=10000 make bench

For each size, in a fresh process (so its peak memory is its own): generate a
place with monthly deliveries; hold its last delivery back; time a full build
of the rest, stage by stage, the way the DAG tasks call them (jobs.pipeline:
land, clean, link, silver checks, curate, gate, publish, report); then put the
last delivery back and time the incremental build it causes. Memory is the
proportional set size (PSS) of the process tree, sampled every 0.25 s: the
Python driver, the JVM (in local mode the Spark driver and its executors are
that one JVM) and Spark's Python workers.

Reference points in the same process, as ratios:
- landing / a plain Spark read-and-write (CSV/JSON to Parquet) of the same
  files (bench_land.plain_copy: the I/O floor), the second of two copies (the
  first also pays the JVM's warm-up, which would flatter the ratio);
- linkage / Splink's own DuckDB deduplication of the same identity records,
  with the same comparisons, blocking and threshold (bench_link.duckdb_scale),
  on the identity records the full link read, run after the incremental build
  (DuckDB's memory stays with the process once it has run).

Prints a table and writes bench/results/pipeline-<timestamp>.json, and each size's jobs.* log
(INFO: each stage's own steps and phases, counts and seconds) to pipeline-<timestamp>-<people>.log. A harness,
not a test. Issue #10's targets: 1M people end to end in < 30 min with peak
memory < 16 GiB; an incremental delivery < 5% of a full build; landing
<= 1.5x its floor; linkage <= 3x Splink on DuckDB.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas
import psutil

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
sys.path[:0] = [str(REPO), str(BENCH)]

from memory_sampler import Memory  # noqa: E402

DEFAULT_SIZES = "10000,100000,1000000"
AS_OF = date(2026, 11, 1)  # the generator's last delivery: ages and months as of that day
TARGETS = {
    "seconds_at_1m": 30 * 60,
    "peak_gib": 16,
    "incremental_over_full": 0.05,
    "landing_over_plain_copy": 1.5,
    "link_over_duckdb": 3.0,
}


def say(text: str) -> None:
    print(f"  [{datetime.now():%H:%M:%S}] {text}", flush=True)


def _stage(name: str, run, rows_in, rows_out) -> dict:
    """Time one stage under its own memory sampler; rows_in/rows_out read the stage's summary."""
    say(f"{name} ...")
    with Memory() as memory:
        started = time.monotonic()
        try:
            summary, status = run(), "success"
        except Exception as exc:  # a failed gate or stage is a result to report, not a crash of the harness
            summary, status = None, f"failed: {type(exc).__name__}"
        seconds = time.monotonic() - started
    n_in = rows_in(summary) if summary is not None else None
    n_out = rows_out(summary) if summary is not None else None
    result = {
        "stage": name,
        "status": status,
        "rows_in": n_in,
        "rows_out": n_out,
        "seconds": round(seconds, 2),
        "rows_per_s": round(n_in / seconds) if n_in and seconds else None,
        "peak_memory_gib": memory.gib(),
    }
    if isinstance(summary, dict) and "mode" in summary:
        result["mode"] = summary["mode"]  # link: full, incremental or unchanged
        if "delivered_records" in summary:  # link: records linked as new (a delivery's, or all)
            result["delivered_records"] = summary["delivered_records"]
    mode = f" ({result['mode']})" if "mode" in result else ""
    say(
        f"{name}: {status}{mode} in {seconds:.1f}s, {n_in} rows in, {n_out} out, "
        f"peak {result['peak_memory_gib']['total']} GiB"
    )
    return result


def build(run_id: str) -> dict:
    """Every stage once, as the two DAGs run them, with their row counts."""
    from jobs import gate, link, pipeline

    spark, settings = pipeline.session(), pipeline.settings()
    silver: dict[str, int] = {}

    def clean():
        result = pipeline.run_clean(run_id)
        silver.update({s: r["silver"] for s, r in result.items()})
        return result

    stages = [
        _stage(
            "land",
            lambda: pipeline.run_land(run_id),
            lambda s: s["rows_landed"] + s["rows_quarantined"],
            lambda s: s["rows_landed"],
        ),
        _stage("clean", clean, lambda s: sum(r["new"] for r in s.values()), lambda s: sum(silver.values())),
        _stage(
            "link",
            lambda: link.link_all(spark, settings, run_id=run_id),
            lambda s: s["records"],
            lambda s: s["persons"],
        ),
        _stage(
            "silver_checks",
            lambda: gate.check_silver(spark, settings, run_id=run_id),
            lambda s: sum(silver.values()),
            lambda s: sum(bool(v["passed"]) for v in s.values()),
        ),
        _stage("curate", lambda: pipeline.run_curate(AS_OF), lambda s: sum(silver.values()), lambda s: sum(s.values())),
        _stage("gate", lambda: pipeline.run_gate(run_id), lambda s: len(s), lambda s: len(s)),
        _stage("publish", pipeline.run_publish, lambda s: len(s), lambda s: sum(v is not None for v in s.values())),
        _stage("report", lambda: pipeline.run_report(run_id), lambda s: None, lambda s: None),
    ]
    total = sum(s["seconds"] for s in stages)
    peak = max(s["peak_memory_gib"]["total"] for s in stages)
    return {"stages": stages, "seconds": round(total, 2), "peak_memory_gib": peak}


def _identity_features(spark, settings):
    """The identity records link_all reads (every silver person source), as Splink's feature frame."""
    from bench_link import _features_pandas

    from jobs.link import person_sources, silver_records
    from jobs.linkage.config import LinkageConfig

    records = silver_records(spark, settings, person_sources(spark, settings))
    return _features_pandas(spark, records, LinkageConfig.load())


def one_size(people: int, out: Path, keep: Path | None = None) -> None:
    """Run in a child process: one size, written to out as JSON.

    keep: the place's home is copied to keep/<people>/after-full between the two builds (untimed) and
    moved to keep/<people>/after-incremental at the end, for a look at what each build left.
    """
    from bench_land import plain_copy
    from bench_link import duckdb_scale

    from jobs import fs, pipeline
    from jobs.contracts import source_contracts
    from jobs.generate import generate_place

    work = Path(tempfile.mkdtemp(prefix=f"placelake-bench-pipeline-{people}-"))
    os.environ["PLACELAKE_HOME"] = str(work / "place")
    settings = pipeline.settings()
    try:
        say(f"generating {people} people (monthly deliveries) ...")
        started = time.monotonic()
        written = generate_place(settings, people=people, every=1)
        say(f"generated {sum(written.values())} rows in {time.monotonic() - started:.0f}s")
        landing = Path(settings.landing)
        last = max(p.name for p in landing.glob("*/*") if p.is_dir())
        held = work / "held"
        for folder in landing.glob(f"*/{last}"):
            shutil.move(str(folder), held / folder.parent.name / last)
        files = fs.list_files(settings.landing)
        held_files = fs.list_files(str(held))

        started = time.monotonic()
        spark = pipeline.session()
        startup = time.monotonic() - started

        say("reference: plain Spark read-and-write of the same landing files, twice ...")
        # The first copy also pays the JVM's warm-up of reading and writing; the floor is the second.
        copies = []
        for attempt in range(2):
            started = time.monotonic()
            plain_copy(spark, settings.landing, str(work / f"plain-copy-{attempt}"), tuple(source_contracts()))
            copies.append(time.monotonic() - started)
        plain_copy_cold_s, plain_copy_s = copies
        say(f"plain copy {plain_copy_cold_s:.1f}s cold, {plain_copy_s:.1f}s warm")

        say(f"full build: every delivery before {last}")
        full = build("bench-full")
        if keep is not None:
            say(f"keeping a copy of the lake after the full build in {keep / str(people) / 'after-full'} ...")
            shutil.copytree(settings.home, keep / str(people) / "after-full", symlinks=True)

        # The identity records the full link read, kept on disk: Splink-DuckDB runs on them after the
        # incremental build, so neither its time nor its memory (held by this process once DuckDB has
        # run: 8.8 GiB at 1M) lands on the build it is not part of.
        identities = work / "identities.pickle"  # exact: parquet would bring lists back as numpy arrays
        features = _identity_features(spark, settings)
        n_identities = len(features)
        features.to_pickle(identities)
        del features
        gc.collect()

        for folder in held.glob(f"*/{last}"):
            shutil.move(str(folder), landing / folder.parent.name / last)
        say(f"incremental build: the delivery of {last}")
        incremental = build("bench-incremental")

        say(f"reference: Splink on DuckDB, the {n_identities} identity records the full link read ...")
        duckdb = duckdb_scale(pandas.read_pickle(identities))
        say(f"duckdb {duckdb['duckdb_s']}s for {n_identities} identities")

        land_s = next(s["seconds"] for s in full["stages"] if s["stage"] == "land")
        link_s = next(s["seconds"] for s in full["stages"] if s["stage"] == "link")
        result = {
            "people": people,
            "source_rows": sum(v for k, v in written.items() if k != "ons_postcodes"),
            "landing_files": len(files),
            "landing_bytes": sum(f.size for f in files),
            "incremental_delivery": last,
            "incremental_files": len(held_files),
            "incremental_bytes": sum(f.size for f in held_files),
            "spark_startup_s": round(startup, 2),
            "full": full,
            "incremental": incremental,
            "incremental_over_full": round(incremental["seconds"] / full["seconds"], 3),
            "plain_copy_cold_s": round(plain_copy_cold_s, 2),
            "plain_copy_s": round(plain_copy_s, 2),
            "landing_over_plain_copy": round(land_s / plain_copy_s, 2),
            "duckdb": {**duckdb, "identities": n_identities},
            "link_over_duckdb": round(link_s / max(duckdb["duckdb_s"], 0.1), 2),
        }
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
        if keep is not None:
            shutil.move(settings.home, keep / str(people) / "after-incremental")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sizes(text: str) -> list[int]:
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def _print(results: list[dict]) -> None:
    print()
    for r in results:
        print(
            f"{r['people']:,} people, {r['source_rows']:,} source rows: full {r['full']['seconds']:.0f}s "
            f"(peak {r['full']['peak_memory_gib']} GiB), incremental {r['incremental']['seconds']:.0f}s "
            f"= {r['incremental_over_full']:.1%} of full; landing {r['landing_over_plain_copy']}x plain copy; "
            f"link {r['link_over_duckdb']}x Splink-DuckDB"
        )
        print(
            f"  {'stage':<14}{'status':<9}{'rows in':>11}{'rows out':>11}{'seconds':>9}{'rows/s':>10}{'peak GiB':>10}"
        )
        for s in r["full"]["stages"]:
            print(
                f"  {s['stage']:<14}{s['status'][:8]:<9}{s['rows_in'] if s['rows_in'] is not None else '-':>11}"
                f"{s['rows_out'] if s['rows_out'] is not None else '-':>11}{s['seconds']:>9.1f}"
                f"{s['rows_per_s'] or '-':>10}{s['peak_memory_gib']['total']:>10}"
            )
        print("  incremental: " + ", ".join(f"{s['stage']} {s['seconds']:.1f}s" for s in r["incremental"]["stages"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=_sizes(os.environ.get("PLACELAKE_BENCH_SIZES", DEFAULT_SIZES)),
        help=f"comma-separated numbers of people (default {DEFAULT_SIZES}, or env PLACELAKE_BENCH_SIZES)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep each size's lake under KEEP/<people>/ (after-full, a copy; after-incremental); default: removed",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child: one size
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)  # the child's jobs.* log
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PLACELAKE_PSEUDONYM_KEY", secrets.token_hex(32))  # synthetic data, throwaway key
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    if args.one:
        if args.log:
            # Each stage's own breakdown (link phases, clean's steps), counts and seconds only, kept
            # beside the results so a figure can be traced without running again.
            logging.basicConfig(
                filename=args.log, level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
            logging.getLogger("jobs").setLevel(logging.INFO)
        one_size(args.one, args.out, args.keep)
        return 0

    results, started = [], datetime.now(UTC)
    for people in args.sizes:
        print(f"== {people:,} people (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            out = Path(handle.name)
        began = time.monotonic()
        keep = ["--keep", str(args.keep.resolve())] if args.keep else []
        RESULTS.mkdir(exist_ok=True)
        log = RESULTS / f"pipeline-{started:%Y%m%dT%H%M%SZ}-{people}.log"
        print(f"  the jobs' log: {log}", flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(people), "--out", str(out), "--log", str(log), *keep], check=False
        )
        if child.returncode != 0 or not out.stat().st_size:
            print(f"{people} people: the run failed (exit {child.returncode}); sizes after it are skipped")
            break
        result = json.loads(out.read_text(encoding="utf-8"))
        result["wall_s"] = round(time.monotonic() - began, 1)
        result["log"] = str(log.relative_to(REPO))
        results.append(result)
        out.unlink()

    _print(results)
    report = {
        "benchmark": "pipeline",
        "at": started.isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
        "python": platform.python_version(),
        "spark_master": os.environ.get("PLACELAKE_SPARK_MASTER", "local[*]"),
        "load_average_at_start": os.getloadavg(),
        "targets": TARGETS,
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"pipeline-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {path}")
    return 0 if results and len(results) == len(args.sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
