"""Benchmark: how fast the generator makes a place, and how much memory it needs.

A harness, not a test. Each size runs in a fresh subprocess so its peak RSS
is its own; prints people per minute and peak RSS, and writes
bench/results/generate-<timestamp>.json.

    python bench/bench_generate.py                 # 10k and 100k people
    python bench/bench_generate.py 10000 1000000   # any sizes
    PLACELAKE_BENCH_LARGE=1 make bench             # adds the 1,000,000-person place

The issue's budget: >= 50,000 people per minute, memory flat in place size.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = [10_000, 100_000]
TARGET_PEOPLE_PER_MINUTE = 50_000

_CHILD = """
import json, resource, sys, time
from jobs.config import Settings
from jobs.generate import generate_place
started = time.perf_counter()
written = generate_place(Settings(home=sys.argv[1]), people=int(sys.argv[2]), seed=20261126)
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "rows": written}))
"""


def _landing_bytes(home: Path) -> int:
    return sum(p.stat().st_size for p in (home / "landing").rglob("*") if p.is_file())


def run_size(people: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"placelake-bench-{people}-"))
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(home), str(people)], capture_output=True, text=True, check=True
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        measured["landing_mib"] = _landing_bytes(home) / 2**20
    finally:
        shutil.rmtree(home, ignore_errors=True)
    rows = sum(v for k, v in measured["rows"].items() if k != "ons_postcodes")
    return {
        "people": people,
        "seconds": round(measured["seconds"], 2),
        "people_per_minute": round(people / measured["seconds"] * 60),
        "source_rows": rows,
        "peak_rss_mib": round(measured["peak_rss_mib"], 1),
        "landing_mib": round(measured["landing_mib"], 1),
        "meets_target": people / measured["seconds"] * 60 >= TARGET_PEOPLE_PER_MINUTE,
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    if not argv and os.environ.get("PLACELAKE_BENCH_LARGE"):
        sizes.append(1_000_000)
    results = []
    print(f"{'people':>10} {'seconds':>9} {'people/min':>11} {'rows':>10} {'peak RSS MiB':>13} {'landing MiB':>12}")
    for people in sizes:
        r = run_size(people)
        results.append(r)
        print(
            f"{r['people']:>10} {r['seconds']:>9} {r['people_per_minute']:>11} {r['source_rows']:>10} "
            f"{r['peak_rss_mib']:>13} {r['landing_mib']:>12}"
        )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"generate-{stamp}.json"
    report = {
        "benchmark": "generate",
        "at": stamp,
        "target_people_per_minute": TARGET_PEOPLE_PER_MINUTE,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average_at_start": os.getloadavg(),
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written: {out}")
    return 0 if all(r["meets_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
