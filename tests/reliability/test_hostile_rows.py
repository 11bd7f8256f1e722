"""Landing's pure parts against hostile rows and headers (no Spark: these run in `make test` too).

The whole corpus lands through a real pipeline in test_hostile.py; these pin
the rules that hostile input revealed were missing.
"""

from __future__ import annotations

import json
import os

from jobs.config import Settings
from jobs.contracts import source_contract
from jobs.land import csv_records, delivered_files, file_problem, jsonl_records, scan_delivered, scan_file


def test_deeply_nested_json_is_a_rejected_row_not_a_crashed_task():
    names = source_contract("housing_cases").column_names
    deep = '{"case_id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    records = list(jsonl_records([json.dumps({"case_id": "H1"}) + "\n", deep + "\n"], names))
    assert [(r.line, r.reason) for r in records] == [(1, None), (2, "row.unparseable: JSON nested too deeply")]


def test_a_field_over_the_size_limit_is_quarantined_and_the_next_row_still_lands():
    names = ["a", "b", "c"]
    lines = ["1,x,2\n", "3," + "y" * 200_000 + ",4\n", "5,z,6\n"]
    records = list(csv_records(lines, names, ",", '"'))
    assert [(r.line, r.reason is None) for r in records] == [(1, True), (2, False), (3, True)]
    assert records[1].reason.startswith("row.field_too_large: a field is longer than")
    assert records[2].fields == ["5", "z", "6"]


def test_a_header_of_100000_columns_gets_a_short_reason(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n1\n", encoding="utf-8")
    rule, reason, line = file_problem(scan_file(str(path)), source_contract("gp_registrations"))
    assert (rule, line) == ("file.header", 1)
    assert len(reason) < 600, len(reason)
    assert "in all)" in reason  # says how many, lists only the first few


def test_a_symlink_in_landing_is_flagged_and_never_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("not for the lake\n", encoding="utf-8")
    landing = tmp_path / "home" / "landing" / "gp_registrations"
    (landing / "2026-01-01").mkdir(parents=True)
    (landing / "2026-01-01" / "real.csv").write_text("x\n", encoding="utf-8")
    os.symlink(outside / "secret.csv", landing / "2026-01-01" / "link.csv")
    os.symlink(outside, landing / "2026-01-02")
    found = {d.path.rsplit("landing/", 1)[1]: d for d in delivered_files(Settings(home=str(tmp_path / "home")))}
    assert {k: d.symlink for k, d in found.items()} == {
        "gp_registrations/2026-01-01/link.csv": True,
        "gp_registrations/2026-01-01/real.csv": False,
        "gp_registrations/2026-01-02/secret.csv": True,
    }
    link = scan_delivered(found["gp_registrations/2026-01-01/link.csv"])
    assert (link.size, link.text_size, link.header) == (0, 0, None)  # identity from the link, bytes unread
