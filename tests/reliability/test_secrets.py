"""The pseudonym key never leaves the environment: not in logs, Airflow's metadata (XComs), Spark's
event log, the report, or any file the run wrote. Each place searched is first shown to hold what
the run wrote there, so the search cannot pass by looking in an empty place."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _holding(needles: list[bytes], paths: list[Path]) -> list[str]:
    return [str(p) for p in paths if any(n in p.read_bytes() for n in needles)]


class _Hidden(list):
    """The key's forms: pytest prints a failing test's arguments, and the key must not reach test output."""

    def __repr__(self) -> str:
        return f"<{len(self)} forms of the pseudonym key, not shown>"


@pytest.fixture(scope="module")
def key() -> list[bytes]:
    value = os.environ["PLACELAKE_PSEUDONYM_KEY"]
    assert len(value) >= 32
    # As text, as it would look in a log that escaped or hex-dumped it, and as HMAC's inner and outer
    # pads (key XOR 0x36 / 0x5c), which derive it: once literals in every curate plan.
    padded = value.encode().ljust(64, b"\0") if len(value.encode()) <= 64 else hashlib.sha256(value.encode()).digest()
    pads = [bytes(b ^ pad for b in padded.ljust(64, b"\0")).hex()[:32].encode() for pad in (0x36, 0x5C)]
    return _Hidden([value.encode(), value.encode().hex().encode(), value[:16].encode(), *pads])


def test_the_key_is_in_no_log_of_the_run(baseline, key):
    logs = [p for p in _files(baseline.home.parent / f"{baseline.home.name}-logs") if p.suffix in (".out", ".err")]
    assert any(b"placelake run" in p.read_bytes() for p in logs)  # the run's own summary is in these
    assert _holding(key, logs) == []


def test_the_key_is_in_no_xcom_and_nowhere_in_airflows_database(baseline, key):
    db = baseline.home / "airflow" / "airflow.db"
    with sqlite3.connect(db) as conn:
        xcoms = [
            bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
            for (v,) in conn.execute("SELECT value FROM xcom")
        ]
    assert any(b"rows_landed" in v for v in xcoms), "the land tasks' summaries are XComs"
    assert sum(any(k in v for k in key) for v in xcoms) == 0  # a count: a failing XCom holds the key
    assert _holding(key, _files(db.parent)) == []


def test_the_key_is_in_no_spark_event_log(event_log_dir, baseline, key):
    logs = _files(event_log_dir)
    assert any(b"SparkListenerApplicationStart" in p.read_bytes() for p in logs)
    assert any(b"SparkListenerEnvironmentUpdate" in p.read_bytes() for p in logs)
    assert _holding(key, logs) == []


def test_the_key_is_in_no_report_and_no_file_under_placelake_home(baseline, key):
    report = baseline.home / "reports" / "quality.html"
    assert report.stat().st_size > 0
    everything = _files(baseline.home)
    assert report in everything and len(everything) > 100
    assert _holding(key, everything) == []
